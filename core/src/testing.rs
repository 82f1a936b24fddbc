//! Test inputs: the draws every generated-input test of the core makes, and
//! the texts the byte-level forms (`fields`, `trim`, the JSON writer, the
//! cookie and URL readers) are held to their std forms on. A fixed seed,
//! so every run tries the same inputs and a failure names the one that
//! failed.

use alloc::string::String;

/// A xorshift generator (Marsaglia's 13/7/17), seeded the same every run.
pub(crate) struct Draws(u64);

impl Draws {
    pub(crate) fn new() -> Self {
        Draws(0x9e37_79b9_7f4a_7c15)
    }

    /// The next draw.
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `count` texts, the `n`th made of `n % max_parts` pieces of `parts`
/// chosen by one draw: short texts and long ones, every piece next to
/// every other.
pub(crate) fn texts<'a, S: AsRef<str>>(
    parts: &'a [S],
    max_parts: usize,
    count: usize,
) -> impl Iterator<Item = String> + 'a {
    let mut draws = Draws::new();
    (0..count).map(move |n| {
        let x = draws.next();
        (0..n % max_parts)
            .map(|k| parts[((x >> (k * 7 % 60)) as usize + k) % parts.len()].as_ref())
            .collect()
    })
}
