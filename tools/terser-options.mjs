// terser's settings for every script the page gets (the loader, the brain,
// the on-demand adapters), written once: tools/bundle.mjs ships with them,
// tools/js-shares.mjs measures with them (it refuses to measure when its
// minified source is not byte for byte the shipped file). ES2020 output:
// optional chaining and `??` run in every browser the monitor supports;
// `unsafe_arrows` / `unsafe_methods` turn functions that use no `this` or
// `arguments` into arrows and methods (docs/benchmarks.md, eleventh round).
// `reduce_funcs: false` keeps a function used once a declaration instead of
// inlining it as a function expression where it is called: the brain −10
// bytes gzip (−15 brotli), the loader 0 (docs/benchmarks.md, thirteenth
// round); no semantic change (terser's own rewrite, either way).
export const terserOptions = (module, preamble) => ({
  module,
  ecma: 2020,
  compress: { passes: 2, unsafe_arrows: true, unsafe_methods: true, reduce_funcs: false },
  mangle: true,
  format: { preamble },
});
