// Instructions a Node script runs, counted by callgrind: the one way the
// V8-side benches (tools/bench-wasm-entries.mjs, tools/bench-sweep.mjs)
// run their `--child` under valgrind. `--no-liftoff --single-threaded`:
// TurboFan only and no background compiler threads, so the count does not
// depend on when a tier-up lands.
import { spawnSync } from 'node:child_process';

/** Callgrind's total instructions for `node --no-liftoff --single-threaded script ...args`. */
export function nodeInstructions(script, args, what) {
  const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath,
    '--no-liftoff', '--single-threaded', script, ...args], { encoding: 'utf8' });
  const m = /I\s+refs:\s+([\d,]+)/.exec(r.stderr || '');
  if (r.status !== 0 || !m) throw new Error(`no instruction count${what ? ` for ${what}` : ''} (status ${r.status}): ${(r.stderr || '').slice(-800)}`);
  return Number(m[1].replaceAll(',', ''));
}
