//! The operator's Ed25519 key pair (`tagwatch keys init`): the secret key
//! signs evidence bundles and purge checkpoints, the public key is what a
//! reader checks them with. Files (docs/evidence.md#keys):
//!
//! - `tagwatch-signing.key`: the line `tagwatch-ed25519-secret-v1`, then
//!   the 32-byte secret seed as 64 hex digits; created with mode 0600 and
//!   never overwritten; never printed.
//! - `tagwatch-signing.pub`: the 32-byte public key as 64 hex digits.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use tagwatch_store::chain::{from_hex, parse_public_key, to_hex};

pub const SECRET_FILE: &str = "tagwatch-signing.key";
pub const PUBLIC_FILE: &str = "tagwatch-signing.pub";
/// The first line of a secret key file: what it is and its version.
const SECRET_HEADER: &str = "tagwatch-ed25519-secret-v1";
/// Most bytes read of a key file: a key file is under 100 bytes; anything
/// longer is not one.
const MAX_KEY_FILE: u64 = 1024;

/// Makes a new key pair in `dir` (created if missing); refuses to replace
/// an existing secret key. Answers the public key.
pub fn init(dir: &Path) -> Result<(VerifyingKey, PathBuf), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the key directory {}: {e}", dir.display()))?;
    let secret_path = dir.join(SECRET_FILE);
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| format!("the operating system gave no random bytes for a key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&secret_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} exists: tagwatch never replaces a signing key (bundles and checkpoints signed with it would no longer match a new public key); move it away first if you mean to",
                secret_path.display()
            )
        } else {
            format!("cannot create {}: {e}", secret_path.display())
        }
    })?;
    writeln!(file, "{SECRET_HEADER}\n{}", to_hex(&seed))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", secret_path.display()))?;
    let public = key.verifying_key();
    let public_path = dir.join(PUBLIC_FILE);
    std::fs::write(&public_path, format!("{}\n", to_hex(public.as_bytes())))
        .map_err(|e| format!("cannot write {}: {e}", public_path.display()))?;
    Ok((public, secret_path))
}

fn read_small(path: &Path) -> Result<String, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut text = String::new();
    #[allow(clippy::disallowed_methods)] // Bounded: take(MAX_KEY_FILE).
    file.take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text)
}

/// The secret key in `path` (a file `keys init` wrote).
pub fn load_secret(path: &Path) -> Result<SigningKey, String> {
    let text = read_small(path)?;
    let mut lines = text.lines();
    let bad = || {
        format!(
            "{} is not a tagwatch secret key (it starts with the line {SECRET_HEADER}); make one with `tagwatch keys init`",
            path.display()
        )
    };
    if lines.next().map(str::trim) != Some(SECRET_HEADER) {
        return Err(bad());
    }
    let seed: [u8; 32] = lines
        .next()
        .and_then(|l| from_hex(l.trim()))
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A public key given as 64 hex digits, or as a file holding them (a
/// `.pub` file, or a secret key file: its public half).
pub fn load_public(arg: &str) -> Result<VerifyingKey, String> {
    if let Ok(key) = parse_public_key(arg) {
        return Ok(key);
    }
    let path = Path::new(arg);
    if !path.exists() {
        return Err(format!(
            "{arg:?} is neither a public key (64 hex digits) nor a file holding one"
        ));
    }
    let text = read_small(path)?;
    if text.trim_start().starts_with(SECRET_HEADER) {
        return load_secret(path).map(|k| k.verifying_key());
    }
    parse_public_key(text.trim()).map_err(|e| format!("{}: {e}", path.display()))
}
