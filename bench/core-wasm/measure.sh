#!/usr/bin/env bash
# Builds the core-alone wasm with the shipped profile and prints its size
# (raw, gzip -9, brotli) after wasm-opt as build.sh runs it, the largest
# items by crate (twiggy), and the catalog's first-use time under Node
# (median of RUNS fresh processes). FEATURES="" builds it with std's panic
# machinery instead of the trapping handler.
#   bench/core-wasm/measure.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/core-wasm}
mkdir -p "$out"
features=${FEATURES-trap}
cargo build -q --profile wasm --target wasm32-unknown-unknown -p tagwatch-core-wasm \
  --no-default-features ${features:+--features "$features"}
raw=target/wasm32-unknown-unknown/wasm/tagwatch_core_wasm.wasm
node_modules/.bin/wasm-opt -Oz --converge --strip-debug --strip-producers \
  --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-multivalue --enable-mutable-globals "$raw" -o "$out/core.wasm"
cp "$raw" "$out/core-pre.wasm"
size() { printf '%-28s raw %7s  gzip -9 %6s  brotli %6s\n' "$1" "$(wc -c < "$2")" "$(gzip -9c "$2" | wc -c)" \
  "$(node -e 'process.stdout.write(String(require("zlib").brotliCompressSync(require("fs").readFileSync(process.argv[1])).length))' "$2")"; }
size "core alone (wasm-opt -Oz)" "$out/core.wasm"
node bench/core-wasm/run.mjs scenario "$out/core.wasm" > "$out/scenario.txt"
# First use: min and median of RUNS fresh processes (the machine may be
# shared; the minimum is the least disturbed run).
runs=${RUNS:-31}
stats() { sort -n -k1 "$2" | awk -v n="$runs" -v what="$1" 'NR == 1 { min = $1 } NR == int((n + 1) / 2) { med = $1; second = $2 }
  END { printf "%-28s min %7.3f ms  median %7.3f ms  (a second lookup: %s ms)\n", what, min, med, second }'; }
for _ in $(seq "$runs"); do node bench/core-wasm/run.mjs first-use "$out/core.wasm"; done > "$out/first-use.txt"
stats "catalog first use, wasm" "$out/first-use.txt"
cargo build -q --release -p tagwatch-core-wasm --example first_use
for _ in $(seq "$runs"); do target/release/examples/first_use; done > "$out/first-use-native.txt"
stats "catalog first use, native" "$out/first-use-native.txt"
