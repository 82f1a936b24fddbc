#!/usr/bin/env bash
# Builds the monitor's on-demand pieces (pieces/*/) with the shipped wasm
# profile and the shipped wasm-opt settings (tools/wasm-opt.sh) into target/pieces/NAME.wasm, and
# prints their sizes (raw, gzip -9, brotli). No wasm-bindgen: each piece is
# a plain module with no imports (API in its crate's top comment).
#   pieces/build.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/pieces}
mkdir -p "$out"
brotli_size() { node -e 'process.stdout.write(String(require("zlib").brotliCompressSync(require("fs").readFileSync(process.argv[1])).length))' "$1"; }
for piece in cmp-cookies gpp-us; do
  cargo build -q --profile wasm --target wasm32-unknown-unknown -p "tagwatch-piece-$piece"
  tools/wasm-opt.sh "target/wasm32-unknown-unknown/wasm/tagwatch_piece_${piece//-/_}.wasm" "$out/$piece.wasm"
  # core::fmt's digit table, unread once optimised (as for the monitor: build.sh).
  node tools/dead-data.mjs "$out/$piece.wasm"
  printf '  %-24s raw %7s  gzip -9 %6s  brotli %6s\n' "$out/$piece.wasm" "$(wc -c < "$out/$piece.wasm")" \
    "$(gzip -9c "$out/$piece.wasm" | wc -c)" "$(brotli_size "$out/$piece.wasm")"
done
