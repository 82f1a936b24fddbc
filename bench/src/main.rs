//! Classification cost per Resource Timing entry, as plain timings so the
//! same program runs natively and as wasm (wasm32-wasip1 under Node's WASI,
//! V8 like the browser). `./build.sh bench` runs both side by side; the
//! criterion bench (`core/benches/classify.rs`) is the native reference.
//! Prints one line per case: `case ns_per_entry`.

use std::hint::black_box;
use std::time::Instant;
use tagwatch_core::catalog::{self, vendors};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::url;

const CORPUS: &str = include_str!("../../tests/fixtures/corpus/page-load-urls.txt");

/// The baseline: any vendor domain anywhere in the URL.
fn naive(url: &str) -> Option<&'static str> {
    vendors()
        .iter()
        .find(|v| v.domains().any(|d| url.contains(d)))
        .map(|v| v.id)
}

fn time(name: &str, entries: usize, mut f: impl FnMut() -> usize) {
    // Warm up, then take the best of 7 runs of ~50 ms each.
    let mut rounds = 1usize;
    loop {
        let t = Instant::now();
        for _ in 0..rounds {
            black_box(f());
        }
        if t.elapsed().as_millis() >= 50 {
            break;
        }
        rounds *= 2;
    }
    let best = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..rounds {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / (rounds * entries) as f64
        })
        .fold(f64::INFINITY, f64::min);
    println!("{name} {best:.1}");
}

fn main() {
    let urls: Vec<&str> = CORPUS.lines().collect();
    let n = urls.len();
    let _ = catalog::vendor("intercom"); // parse the catalog once, outside the timings
    time("baseline_substring", n, || {
        urls.iter().filter_map(|u| naive(black_box(u))).count()
    });
    time("parse_and_classify", n, || {
        urls.iter()
            .filter_map(|u| url::parse(black_box(u)))
            .filter_map(|p| catalog::classify_request(&p.host, &p.path, "script"))
            .count()
    });
    time("engine_request", n, || {
        let mut e = Engine::new(Policy::default(), "https://shop.example/");
        for (i, u) in urls.iter().enumerate() {
            e.request(Request {
                url: black_box(u),
                start: i as f64,
                initiator: "script",
                frame: "top",
                ..Default::default()
            });
        }
        e.findings().len()
    });
}
