//! Consent Mode: one command a line (`default|update<TAB>key=value key=value`)
//! folded into a state, plus `gcs` / `gcd` parsing of every line; never a
//! panic, and the state always maps to categories and serialises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::consent_mode::{parse_gcd, parse_gcs, ConsentMode};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let mut lines = input.lines();
    let region = lines.next().filter(|r| !r.is_empty());
    let mut state = ConsentMode::new(region);
    for line in lines {
        let _ = parse_gcs(line);
        let _ = parse_gcd(line);
        let (command, rest) = line.split_once('\t').unwrap_or((line, ""));
        let params: Vec<(&str, &str)> = rest.split(' ').filter_map(|kv| kv.split_once('=')).collect();
        state.apply(command, &params);
        let _ = state.categories();
    }
    serde_json::to_string(&state).expect("the state serialises");
});
