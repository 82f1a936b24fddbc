//! Classification cost per Resource Timing entry, on a page-load-shaped
//! corpus (`tests/fixtures/corpus/page-load-urls.txt`), side by side with a
//! naive baseline (substring search of every vendor domain in the URL, what
//! many detectors do). Results and method: docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tagwatch_core::catalog::{self, VENDORS};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::url;

fn corpus() -> Vec<String> {
    include_str!("../../tests/fixtures/corpus/page-load-urls.txt")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The baseline: any vendor domain anywhere in the URL (also wrong: it
/// matches query strings and lookalike hosts).
fn naive(url: &str) -> Option<&'static str> {
    VENDORS
        .iter()
        .find(|v| v.domains().any(|d| url.contains(d)))
        .map(|v| v.id)
}

fn bench(c: &mut Criterion) {
    let urls = corpus();
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(urls.len() as u64));
    g.bench_function("baseline_substring", |b| {
        b.iter(|| urls.iter().filter_map(|u| naive(black_box(u))).count())
    });
    g.bench_function("parse_and_classify", |b| {
        b.iter(|| {
            urls.iter()
                .filter_map(|u| url::parse(black_box(u)))
                .filter_map(|p| catalog::classify_request(&p.host, &p.path, "script"))
                .count()
        })
    });
    g.bench_function("engine_request", |b| {
        b.iter(|| {
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
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
