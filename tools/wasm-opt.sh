#!/usr/bin/env bash
# The shipped wasm's wasm-opt settings, written once: the monitor's module
# (build.sh) and the on-demand pieces (pieces/build.sh) are optimised alike.
#   tools/wasm-opt.sh IN OUT [more wasm-opt arguments…]
# Debian's binaryen (108) breaks wasm-bindgen's externref table; npm's works.
# No custom sections: `name` and debug info, `producers`, and the
# `target_features` list wasm-opt would carry over from the input (151
# bytes no browser reads; tools/pack-extension.mjs reads the raw module's
# for wasm2js).
# Inlining by size, not by callers: a function with one caller is inlined
# into it only when it is small (at most 20 expressions; -Oz alone inlines
# every such function, of any size: the large ones inlined made the module
# smaller raw but larger gzip, by 1,359 bytes), and one of at most 5
# expressions everywhere it is called (-Oz: 2; −169 more). Both values are
# the middle of a flat range (docs/benchmarks.md, ninth round).
# No memory packing: the pass cuts the data into a segment per run of
# non-zero bytes (86 segments here, 74 of them 1 byte: the dangling
# pointers of the constant empty `Vec`s and `String`s in the shell's and
# the engine's empty states), each with its own offset and length; the
# zeros it saves compress to almost nothing, the segment headers do not:
# −249 bytes gzip of the page's wasm (docs/benchmarks.md, thirteenth round).
# Nor `local-cse` and `simplify-locals`: the locals they save make each
# function's code less like the others' (−73 gzip, −107 brotli, +838 raw;
# V8 does its own value numbering and register allocation, the
# instructions a busy page view did not grow: same section).
# Low memory unused (`--low-memory-unused`): a constant added to a pointer
# goes into the load's or store's offset (`i32.load offset=8 (p)`, not
# `i32.load (i32.add p 8)`). The two differ only where the add wraps past
# 2^32 to an address below 1 KiB: a pointer no safe code makes (the stack
# is first in memory, [0, 1 MiB), the data and the heap above it); there
# the folded access traps where the add's wrote into low memory. −61 bytes
# gzip, −118 brotli (docs/benchmarks.md, fourteenth round).
set -euo pipefail
in=$1 out=$2
shift 2
exec "$(dirname "$0")/../node_modules/.bin/wasm-opt" -Oz --converge \
  --one-caller-inline-max-function-size=20 --always-inline-max-function-size=5 \
  --skip-pass=memory-packing --skip-pass=local-cse --skip-pass=simplify-locals \
  --low-memory-unused \
  --strip-debug --strip-producers --strip-target-features \
  --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-multivalue --enable-mutable-globals \
  "$@" "$in" -o "$out"
