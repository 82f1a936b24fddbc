#!/usr/bin/env bash
# tagwatch build entry point.
#   ./build.sh setup   install what is missing (idempotent)
#   ./build.sh build   build dist/ (loader + optimised wasm) and target/release/tagwatch
#   ./build.sh test    setup + build + extension + every test (native, wasm in Chromium, end-to-end)
#   ./build.sh demo    setup + build, start the collector (SQLite) and the demo site
#   ./build.sh bench   benchmarks: classification native vs wasm, shipped sizes, page cost, collector ingest and load (docs/benchmarks.md)
#   ./build.sh fuzz    bounded cargo-fuzz runs of every parser (needs the nightly toolchain)
#   ./build.sh dist    build, pack dist/ for deployment, and the extension (dist/extension/, dist/tagwatch-extension.zip)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Where the time goes: `phase TEXT` logs TEXT and starts timing it (ending
# the phase before it); `timings` prints each phase's wall time, at the end
# of `./build.sh test` whether it passes or fails.
PHASES=() PHASE= PHASE_START=0 E2E_PID=
phase() { phase_end; PHASE=$1 PHASE_START=$SECONDS; log "$1"; }
phase_end() {
  [ -z "$PHASE" ] || PHASES+=("$(printf '%5ss  %s' $((SECONDS - PHASE_START)) "$PHASE")")
  PHASE=
}
timings() {
  phase_end
  [ ${#PHASES[@]} -gt 0 ] || return 0
  printf '\033[1m==> wall time per phase (%ss in all)\033[0m\n' "$SECONDS" >&2
  printf '    %s\n' "${PHASES[@]}" >&2
}

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

setup() {
  if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
    log "adding the wasm32 target"
    rustup target add wasm32-unknown-unknown
  fi
  [ -f Cargo.lock ] || cargo generate-lockfile
  local want; want=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (a few minutes)"
    # --locked fails on this registry mirror (one locked dependency is not served).
    cargo install wasm-bindgen-cli --version "=$want"
  fi
  local pkgs=()
  [ -x /usr/bin/chromium ] || pkgs+=(chromium)
  [ -x /usr/bin/chromedriver ] || pkgs+=(chromium-driver)
  command -v openssl >/dev/null || pkgs+=(openssl)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs+=(postgresql)
  [ -x /usr/sbin/clickhouse-server ] || pkgs+=(clickhouse-server)
  command -v node >/dev/null || pkgs+=(nodejs npm)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages from package-lock.json"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

gz() { gzip -9c "$1" | wc -c; }

# The monitor's wasm with FEATURES: wasm-bindgen's glue in OUT (min.js,
# min_bg.wasm: short import names) and the optimised module at WASM, its
# symbol map (names of the wasm functions, for tools/cpu-profile.mjs) in
# target/symbols/ under the module's file name.
monitor_wasm() {
  local features=$1 out=$2 wasm=$3
  mkdir -p target/symbols
  cargo build --profile wasm --target wasm32-unknown-unknown -p tagwatch-monitor --features "$features"
  rm -rf "$out" && mkdir -p "$out" "$(dirname "$wasm")"
  wasm-bindgen --target no-modules --no-typescript --out-dir "$out" --out-name tagwatch \
    target/wasm32-unknown-unknown/wasm/tagwatch_monitor.wasm
  cp target/wasm32-unknown-unknown/wasm/tagwatch_monitor.wasm "$out/raw.wasm"
  # Short import names in the wasm and the glue (hashed names gzip badly).
  node tools/minify-imports.mjs "$out/tagwatch_bg.wasm" "$out/tagwatch.js" "$out/min_bg.wasm" "$out/min.js"
  # The shipped settings (tools/wasm-opt.sh), with the symbol map.
  tools/wasm-opt.sh "$out/min_bg.wasm" "$wasm" --symbolmap="target/symbols/$(basename "$wasm").symbols"
  # Data only the code wasm-opt removed read (core::fmt's digit table),
  # left out of the segments where the module proves it unread.
  node tools/dead-data.mjs "$wasm"
}

build() {
  phase "building the collector and CLI (target/release/tagwatch)"
  cargo build --release -p tagwatch -p tagwatch-precompress
  phase "building the monitor (wasm)"
  monitor_wasm trap target/wasm-bindgen dist/tagwatch_bg.wasm
  # The on-demand pieces (src/pieces.rs), fetched only by pages that need them.
  pieces/build.sh dist/ondemand >/dev/null
  # The loader (dist/tagwatch.js) and the brain (dist/tagwatch_bg.js).
  node tools/bundle.mjs --glue target/wasm-bindgen/min.js --out dist
  # Each served file's precompressed twins (FILE.gz by zopfli, FILE.br), for
  # servers that send them (README, "Serve dist/").
  node tools/sizes.mjs --served | xargs -d '\n' target/release/tagwatch-precompress
  # Raw, gzip -9, brotli and the .gz twin; budgets in tests/e2e/size.test.mjs.
  node tools/sizes.mjs >&2
}

# The Chromium extension from what build() made: dist/extension/ and dist/tagwatch-extension.zip.
extension() {
  phase "packing the browser extension (tools/pack-extension.mjs)"
  # The extension's monitor has the consent decoders inside (feature
  # `parsers`, no on-demand pieces): it is installed once, not downloaded
  # on every page view.
  monitor_wasm trap,parsers target/wasm-bindgen-extension target/extension-wasm/extension_bg.wasm
  node tools/pack-extension.mjs --wasm target/extension-wasm/extension_bg.wasm \
    --glue target/wasm-bindgen-extension/min.js --raw target/wasm-bindgen-extension/raw.wasm
}

# The end-to-end tests need only what build() and extension() made (dist/,
# target/release/tagwatch) and use no fixed port, no shared file and no
# server of the native tests, and they mostly wait on the browser and the
# monitor's timers: they run in the background (log: target/e2e.log, shown
# when they end) while the native tests, lints and wasm tests use the CPU.
run_tests() {
  # The servers this run starts (and the ClickHouse shards the sharded
  # test starts) stop with it, whether it passes or fails, and so do the
  # end-to-end tests if the rest fails first.
  trap 'timings; [ -z "$E2E_PID" ] || kill -TERM -- -"$E2E_PID" "$E2E_PID" 2>/dev/null || true
        tools/clickhouse.sh stop >/dev/null 2>&1 || true; tools/postgres.sh stop >/dev/null 2>&1 || true' EXIT
  phase "PostgreSQL for the collector's storage tests (target/pg)"
  TAGWATCH_TEST_POSTGRES=$(tools/postgres.sh)
  export TAGWATCH_TEST_POSTGRES TAGWATCH_REQUIRE_POSTGRES=1
  phase "ClickHouse for the events-store tests (target/clickhouse)"
  TAGWATCH_TEST_CLICKHOUSE=$(tools/clickhouse.sh)
  export TAGWATCH_TEST_CLICKHOUSE TAGWATCH_REQUIRE_CLICKHOUSE=1
  # After the servers: releases.test.mjs also runs against ClickHouse
  # (`--events`, a database of its own) when TAGWATCH_TEST_CLICKHOUSE is set.
  log "end-to-end tests (Playwright, real Chromium, collector) in the background: target/e2e.log"
  # Its own process group (setsid), so that the trap stops every file's
  # node, collector and Chromium with it; --wait: its exit status is the
  # tests' even if setsid had to fork.
  setsid --wait node --test --test-concurrency=1 tests/e2e/ >target/e2e.log 2>&1 &
  E2E_PID=$!
  phase "native tests (core, collector, CLI)"
  cargo test --workspace
  phase "lints: rustfmt"
  # rustfmt: every crate of the workspace (fuzz/ is its own workspace).
  cargo fmt --all --check
  phase "lints: clippy (native, every target)"
  cargo clippy --workspace --all-targets -- -D warnings
  phase "lints: clippy (wasm)"
  cargo clippy -p tagwatch-monitor --target wasm32-unknown-unknown -- -D warnings
  cargo clippy -p tagwatch-monitor --target wasm32-unknown-unknown --features parsers -- -D warnings
  phase "wasm tests in headless Chromium"
  CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=60 \
    cargo test -p tagwatch-monitor --target wasm32-unknown-unknown --features parsers
  phase "waiting for the end-to-end tests (started with the native tests)"
  local rc=0
  wait "$E2E_PID" || rc=$?
  E2E_PID=
  cat target/e2e.log
  # Their own wall time, as the test runner measured it (they may have
  # ended long before the wait).
  PHASES+=("$(awk '/^# duration_ms/ { printf "%5ds", $3 / 1000 }' target/e2e.log)  end-to-end tests (alongside the phases from the native tests on)")
  [ "$rc" -eq 0 ] || { log "end-to-end tests failed (exit $rc; log above and in target/e2e.log)"; exit "$rc"; }
}

bench() {
  log "criterion: classification on the page-load corpus (native)"
  cargo bench -p tagwatch-core --bench classify -- --noplot
  log "classification per entry, ns: native vs wasm (wasm32-wasip1 under Node's V8)"
  rustup target list --installed | grep -q wasm32-wasip1 || rustup target add wasm32-wasip1
  cargo build --release -q -p tagwatch-bench
  cargo build --release -q -p tagwatch-bench --target wasm32-wasip1
  paste <(target/release/tagwatch-bench) \
        <(node --no-warnings tools/run-wasi.mjs target/wasm32-wasip1/release/tagwatch-bench.wasm | awk '{print $2}') |
    awk 'BEGIN { printf "%-22s %10s %10s\n", "case", "native", "wasm" } { printf "%-22s %10s %10s\n", $1, $2, $3 }'
  log "the engine's instructions per entry on the busy page (callgrind, tools/bench-engine.mjs)"
  if command -v valgrind >/dev/null; then node tools/bench-engine.mjs; else log "no valgrind: skipped"; fi
  log "building dist/ (log: target/bench-build.log)"
  # In the background so that `set -e` still stops it at the first error
  # (it would not in an `||` list); its output only when it fails.
  build >target/bench-build.log 2>&1 &
  wait $! || { tail -n 40 target/bench-build.log >&2; log "the build failed (target/bench-build.log)"; exit 1; }
  log "shipped sizes: raw, gzip -9, brotli; every page view and on-demand pieces (tools/sizes.mjs)"
  node tools/sizes.mjs
  log "main-thread cost per page view, with and without the monitor (headless Chromium, tools/bench-page.mjs)"
  node tools/bench-page.mjs
  log "collector ingest on loopback, against GET /healthz"
  node tools/bench-collector.mjs
  local pkgs=()
  command -v wrk >/dev/null || pkgs+=(wrk)
  command -v nginx >/dev/null || pkgs+=(nginx)
  command -v sqlite3 >/dev/null || pkgs+=(sqlite3)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  log "collector under load (wrk), against nginx answering 204 on the same machine"
  tools/bench-load.sh
  log "the same with the reports in ClickHouse (--events)"
  CH=$(tools/clickhouse.sh) tools/bench-load.sh
  log "the dashboard's queries on SQLite, PostgreSQL and ClickHouse, same data (tools/bench-scale.sh)"
  tools/bench-scale.sh
}

case "${1:-}" in
  setup) setup ;;
  build) setup; build ;;
  test) trap timings EXIT; phase "setup"; setup; build; extension; run_tests ;;
  demo) setup; build; exec bash tests/demo.sh ;;
  bench) setup; bench ;;
  dist)
    setup; build
    tar -czf target/tagwatch-dist.tar.gz -C dist --exclude=./extension --exclude=./tagwatch-extension.zip . &&
      log "target/tagwatch-dist.tar.gz"
    extension ;;
  fuzz)
    # cargo-fuzz targets in fuzz/ (nightly), seeded from tests/fixtures, each for
    # FUZZ_RUNS inputs (default 20000, at most FUZZ_SECONDS each); fails on a crash.
    rustup toolchain list | grep -q '^nightly' || { log "cargo fuzz needs a nightly toolchain (rustup toolchain install nightly)"; exit 1; }
    command -v cargo-fuzz >/dev/null || { log "installing cargo-fuzz 0.13.1"; cargo install cargo-fuzz --version =0.13.1; }
    python3 fuzz/seed.py
    cargo +nightly fuzz build
    failed=()
    for t in $(cargo +nightly fuzz list); do
      log "fuzz $t: ${FUZZ_RUNS:-20000} runs"
      cargo +nightly fuzz run "$t" -- -runs="${FUZZ_RUNS:-20000}" -max_total_time="${FUZZ_SECONDS:-120}" \
        -timeout=10 -print_final_stats=1 || failed+=("$t")
    done
    [ ${#failed[@]} -eq 0 ] || { log "fuzz: crash in ${failed[*]} (inputs in fuzz/artifacts/)"; exit 1; } ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
