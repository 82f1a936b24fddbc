#!/usr/bin/env bash
# The core's share of the page's wasm, measured on its own (docs/benchmarks.md,
# "issue 11: core"). Builds bench/core-wasm with the shipped profile and
# build.sh's wasm-opt flags, twice: the page's main module (no CMP cookie
# readers, no GPP decoder) and, for comparison, the module with them
# (feature `parsers`); builds the on-demand pieces (pieces/build.sh); prints
# sizes (raw, gzip -9, brotli); checks that main module + pieces judge a
# scripted page view exactly as the module with the parsers does; and times
# the catalog's first use (min and median of RUNS fresh processes, wasm
# under Node and native).
#   bench/core-wasm/measure.sh [OUT_DIR]
# FEATURES=parsers (or "", for std's panic machinery) changes the main
# module's features.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/core-wasm}
mkdir -p "$out"
brotli_size() { node -e 'process.stdout.write(String(require("zlib").brotliCompressSync(require("fs").readFileSync(process.argv[1])).length))' "$1"; }
size() { printf '  %-28s raw %7s  gzip -9 %6s  brotli %6s\n' "$1" "$(wc -c < "$2")" "$(gzip -9c "$2" | wc -c)" "$(brotli_size "$2")"; }
build() { # OUT_NAME FEATURES
  cargo build -q --profile wasm --target wasm32-unknown-unknown -p tagwatch-core-wasm --no-default-features ${2:+--features "$2"}
  local raw=target/wasm32-unknown-unknown/wasm/tagwatch_core_wasm.wasm
  cp "$raw" "$out/$1-pre.wasm"
  node_modules/.bin/wasm-opt -Oz --converge --strip-debug --strip-producers \
    --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-multivalue --enable-mutable-globals "$raw" -o "$out/$1.wasm"
}
build main "${FEATURES-trap}"
build parsers "trap parsers"
echo "core alone (wasm-opt -Oz):"
size "main module" "$out/main.wasm"
size "with the parsers" "$out/parsers.wasm"
echo "on-demand pieces:"
pieces/build.sh "$out" | sed 's|'"$out"'/||'
node bench/core-wasm/run.mjs scenario "$out/parsers.wasm" > "$out/scenario-parsers.txt"
node bench/core-wasm/run.mjs scenario "$out/main.wasm" "$out/cmp-cookies.wasm" "$out/gpp-us.wasm" > "$out/scenario-main.txt"
if cmp -s "$out/scenario-parsers.txt" "$out/scenario-main.txt"; then
  echo "main module + pieces judge the scripted page view as the module with the parsers does"
else
  echo "main module + pieces DIFFER from the module with the parsers:" >&2
  diff "$out/scenario-parsers.txt" "$out/scenario-main.txt" | cut -c1-300 >&2 || true
  exit 1
fi
# First use: min and median of RUNS fresh processes (the machine may be
# shared; the minimum is the least disturbed run).
runs=${RUNS:-31}
stats() { sort -n -k1 "$2" | awk -v n="$runs" -v what="$1" 'NR == 1 { min = $1 } NR == int((n + 1) / 2) { med = $1; second = $2 }
  END { printf "%-28s min %7.3f ms  median %7.3f ms  (a second lookup: %s ms)\n", what, min, med, second }'; }
for _ in $(seq "$runs"); do node bench/core-wasm/run.mjs first-use "$out/main.wasm"; done > "$out/first-use.txt"
stats "catalog first use, wasm" "$out/first-use.txt"
cargo build -q --release -p tagwatch-core-wasm --example first_use
for _ in $(seq "$runs"); do target/release/examples/first_use; done > "$out/first-use-native.txt"
stats "catalog first use, native" "$out/first-use-native.txt"
