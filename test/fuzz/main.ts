/**
 * `npm run fuzz`: the three fuzzers at their long budgets — ≥ 10^6 host-API calls, ≥ 200 mutated
 * scenario files, ≥ 10^5 qtest lines (compared with qemu-system-ppc64 when installed) — printing
 * the counts and, for any failure, a shrunk repro with the seed that replays it.
 *
 *   npm run fuzz -- [--seed N] [--only host,scenarios,qtest] [--calls N] [--files N] [--lines N]
 *   npm run fuzz -- --only host --seed N --runs R --path P     (replay a host-API failure)
 *   npm run fuzz -- --only scenarios --seed N --index I        (replay one scenario file)
 *
 * Exit 0 when every count that must be 0 is 0, 1 otherwise, 2 on a bad option.
 */

import { parseArgs } from 'node:util';
import { findQemu } from '../diff/qemu-driver.ts';
import { fuzzHostApi, HostFuzzStats } from './host-api.ts';
import { fuzzQtest } from './qtest-lines.ts';
import { fuzzScenarios } from './scenario-mutate.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    only: { type: 'string', default: 'host,scenarios,qtest' },
    calls: { type: 'string', default: '1000000' },
    files: { type: 'string', default: '200' },
    lines: { type: 'string', default: '100000' },
    runs: { type: 'string' },
    path: { type: 'string' },
    index: { type: 'string' },
    // Runs within the scenario limits may take minutes (up to 1e7 events): 2 minutes a file.
    'file-timeout': { type: 'string', default: '120000' },
  },
});

const int = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) {
    process.stderr.write(`fuzz: --${name} expects a non-negative integer, got "${v}"\n`);
    process.exit(2);
  }
  return Number(v);
};

const seed = int('seed', values.seed) ?? Math.floor(Math.random() * 0x7fff_ffff);
const only = new Set(values.only.split(','));
const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
const histogram = (m: ReadonlyMap<string, number>): string =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '(none)';
let failed = false;

out(`xivelab fuzz, seed ${seed} (replay: npm run fuzz -- --seed ${seed})`);

if (only.has('host')) {
  // Chunks of 50 sequences, seeds seed, seed+1, …, until the call budget is spent.
  const target = int('calls', values.calls)!;
  const total = new HostFuzzStats();
  const t0 = performance.now();
  const replay = int('runs', values.runs);
  for (let k = 0; total.calls < target || replay !== undefined; k++) {
    const o = { seed: (seed + k) % 0x8000_0000, runs: replay ?? 50, maxCommands: 300 };
    const r = fuzzHostApi(values.path === undefined ? o : { ...o, path: values.path });
    total.calls += r.stats.calls;
    total.sequences += r.stats.sequences;
    total.exceptions += r.stats.exceptions;
    total.violations += r.stats.violations;
    for (const [key, n] of r.stats.results) total.results.set(key, (total.results.get(key) ?? 0) + n);
    for (const [key, n] of r.stats.signals) total.signals.set(key, (total.signals.get(key) ?? 0) + n);
    if (r.failure !== null) {
      failed = true;
      out(
        `host API: FAILURE (seed ${o.seed}; replay: npm run fuzz -- --only host --seed ${o.seed} --runs 50)`,
      );
      out(r.failure);
      break;
    }
    if (replay !== undefined) break;
  }
  const errs = new Map([...total.results].filter(([k]) => k !== 'ok'));
  const errCalls = [...errs.values()].reduce((a, b) => a + b, 0);
  out(
    `host API: ${total.calls} calls in ${total.sequences} sequences, ${Math.round((performance.now() - t0) / 1000)} s`,
  );
  out(`  results: ok ${total.results.get('ok') ?? 0}, errno ${errCalls}: ${histogram(errs)}`);
  out(`  signals: ${histogram(total.signals)}`);
  out(`  exceptions: ${total.exceptions}, invariant violations: ${total.violations}`);
  if (total.exceptions + total.violations > 0) failed = true;
}

if (only.has('scenarios')) {
  const t0 = performance.now();
  const index = int('index', values.index);
  const r = await fuzzScenarios({
    seed,
    files: int('files', values.files)!,
    timeoutMs: int('file-timeout', values['file-timeout'])!,
    ...(index !== undefined ? { only: index } : {}),
  });
  out(`scenario files: ${r.files} mutated files, ${Math.round((performance.now() - t0) / 1000)} s`);
  out(`  exit codes: ${histogram(r.codes)}`);
  out(`  exit 2 without file:line:col: ${r.positionless.length}`);
  for (const p of r.positionless.slice(0, 5)) out(`    ${p}`);
  for (const f of r.failures) {
    failed = true;
    out(
      `  FAILURE ${f.name}: ${f.outcome.code === 'hang' ? 'hang' : `exit ${f.outcome.code}`} after ${f.mutations.join('; ')}`,
    );
    out(`    ${f.outcome.stderr.split('\n')[0] ?? ''}`);
    out(`    replay: npm run fuzz -- --only scenarios --seed ${seed} --index ${f.index}; shrunk file:`);
    for (const l of f.shrunk.split('\n')) out(`    | ${l}`);
  }
}

if (only.has('qtest')) {
  const t0 = performance.now();
  const qemu = findQemu();
  const r = await fuzzQtest({ seed, lines: int('lines', values.lines)!, abortRate: 0.001, qemu });
  out(
    `qtest lines: ${r.lines} lines, ${r.compared} compared with ${qemu ?? '(no QEMU installed)'}, ${Math.round((performance.now() - t0) / 1000)} s`,
  );
  out(`  xivelab replies: ${histogram(r.replies)}`);
  out(`  QEMU aborts answered FAIL (documented deviation): ${r.qemuAborts}; sessions: ${r.epochs}`);
  out(`  QEMU deaths the same lines on a fresh QEMU did not repeat: ${r.qemuFlakes}`);
  out(`  exceptions: ${r.exceptions}, mismatches: ${r.mismatches.length}`);
  for (const m of r.mismatches.slice(0, 20)) {
    out(
      `  MISMATCH ${JSON.stringify(m.line)}: xivelab ${m.xivelab ?? '(no reply)'} / QEMU ${m.qemu ?? '(no reply)'}`,
    );
    out(`    repro (${m.repro.length} lines from a fresh start): ${JSON.stringify(m.repro.slice(-6))}`);
  }
  if (r.exceptions + r.mismatches.length > 0) failed = true;
}

process.exitCode = failed ? 1 : 0;
