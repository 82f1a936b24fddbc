//! The catalog's first use natively: one host looked up in a fresh process
//! (`measure.sh` runs it many times). Prints the first and a second
//! lookup's time in ms, as `run.mjs first-use` does for the wasm.
use std::time::Instant;
use tagwatch_core::catalog;

fn main() {
    let t = Instant::now();
    let first = catalog::vendor_for_host(std::hint::black_box("widget.intercom.io"));
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let second = catalog::vendor_for_host(std::hint::black_box("www.google-analytics.com"));
    let second_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(first.is_some() && second.is_some());
    println!("{first_ms:.4} {second_ms:.4}");
}
