import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { selectScenarios, writeReport } from '../../src/cli/compare.ts';
import { DESIGN_NAMES } from '../../src/designs/index.ts';
import { textMatrix } from '../../src/report/markdown.ts';
import { type CellResult, Results } from '../../src/scenario/cell.ts';
import { registryRunner } from '../../src/scenario/cell-dispatch.ts';
import { runEmulatedCell } from '../../src/scenario/cell-emulated.ts';
import { planCells, resultsDocument, runCellsSequential } from '../../src/scenario/compare.ts';
import { cli, root, spawnCli } from './cli-env.ts';

const tmp = mkdtempSync(join(tmpdir(), 'xivelab-compare-'));

const read = (dir: string, f: string): string => readFileSync(join(dir, f), 'utf8');

/** compare of demo × emulated in this thread, without the races (fast). */
const DEMO_EMULATED = [
  'compare',
  '--scenarios',
  'demo',
  '--designs',
  'emulated',
  '--jobs',
  '1',
  '--no-races',
];

describe('xivelab compare through the real entry point (npm start runs it with no options), 2 worker threads', () => {
  const out = join(tmp, 'report');
  // Pinned to today's designs and built-in scenarios so the exact values stay put as more land.
  const r = spawnCli(
    'compare',
    '--designs',
    'emulated',
    '--scenarios',
    'demo,foundation',
    '--jobs',
    '2',
    '--out',
    out,
  );

  test('exit 0; the matrix on stdout; plain progress lines on a pipe', () => {
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([
      'scenario    design    I1    I2   I3   I4    I5    I6   I7   memslots  VMAs  host faults  partition faults  PTEs zapped  VMAs visited  VMM exits  hcalls  modeled ms',
      '----------  --------  ----  ---  ---  ----  ----  ---  ---  --------  ----  -----------  ----------------  -----------  ------------  ---------  ------  ----------',
      'demo        emulated  pass  n/a  n/a  pass  pass  n/a  n/a         0     0            0                 0            0             0      49999     754     250.372',
      'foundation  emulated  pass  n/a  n/a  pass  pass  n/a  n/a         0     0            0                 0            0             0     249432    9226    1251.773',
      '',
      `2 cells, 0 invariant violations; wrote 30 files to ${out}/ (report.md, report.html, results.json, 4 plots, 18 traces)`,
      'races: 42 race scenario × design explored (DPOR), 18 with a counterexample (report.md, "Races")',
      '',
    ]);
    const lines = r.err.trimEnd().split('\n');
    expect(lines[0]).toBe('compare: 2 cells');
    expect(
      lines
        .slice(1)
        .every((l) => /^\[[12]\/2\] (demo|foundation) × emulated: no violations \(\d+ ms\)$/.test(l)),
    ).toBe(true);
    expect(lines.length).toBe(3);
  });

  test('report/ holds exactly the report files', () => {
    expect(readdirSync(out).sort()).toEqual([
      'bind-cost-vs-mappings.png',
      'bind-cost-vs-mappings.svg',
      'bind-cost-vs-vmas.png',
      'bind-cost-vs-vmas.svg',
      'costs.csv',
      'memslots-vs-vectors.png',
      'memslots-vs-vectors.svg',
      'report.html',
      'report.md',
      'results.json',
      'traces',
      'violations.png',
      'violations.svg',
    ]);
    // Only the race counterexamples: no cell has a violation.
    expect(readdirSync(join(out, 'traces')).every((f) => f.startsWith('race--'))).toBe(true);
  });

  test('results.json matches its schema and carries the measured costs', () => {
    const doc = Results.parse(JSON.parse(read(out, 'results.json')));
    expect([doc.tool, doc.version, doc.seed, doc.designs, doc.scenarios]).toEqual([
      'xivelab',
      1,
      null,
      ['emulated'],
      ['demo', 'foundation'],
    ]);
    expect(
      doc.cells.map((c) => [c.scenario, c.seed, c.costs.vmmExits, c.costs.hcalls, c.costs.modeledTimeNs]),
    ).toEqual([
      ['demo', 1, 49999, 754, 250372000],
      ['foundation', 20261124, 249432, 9226, 1251773000],
    ]);
  });

  test('report.md and report.html', () => {
    const md = read(out, 'report.md').split('\n');
    expect(md[2]).toBe(
      "2 cells: 2 scenarios × 1 design, each scenario's own seed. 0 of 2 cells fail at least one invariant.",
    );
    expect(md).toContain('| foundation | ✅ pass |');
    expect(md).toContain('| foundation | emulated | 20261124 | pass | n/a | n/a | pass | pass | n/a | n/a |');
    expect(md).toContain(
      '### H6. The merged zap (unmap_mapping_range on the device file) holds in every scenario — NOT TESTED',
    );
    const html = read(out, 'report.html');
    expect(html.match(/<svg xmlns=/g)!.length).toBe(4);
    expect(html).not.toMatch(/<script|src=|href="https?:/);
  });

  test('PNG plots are PNGs', () => {
    for (const f of readdirSync(out).filter((x) => x.endsWith('.png'))) {
      expect([...readFileSync(join(out, f)).subarray(0, 4)], f).toEqual([0x89, 0x50, 0x4e, 0x47]);
    }
  });

  test('Races: every built-in race scenario × design with its verdict; a counterexample links a trace with one track per thread', () => {
    const md = read(out, 'report.md').split('\n');
    expect(md).toContain('## Races');
    expect(md).toContain(
      '| s12-fault-vs-bind | rmap | VIOLATION | 8 | 6 | I1: pid 1 maps the EOI page of girq 5 to pfn 0x601000021, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001) — 14 steps, schedule `0.0.0.1.1.1.1.1.1.1.1.1.0.0` — [trace](traces/race--s12-fault-vs-bind--rmap.trace.json) |',
    );
    expect(md).toContain('| s12-fault-vs-bind | rmap-fixed | exhausted | 5 | 3 | — |');
    const res = Results.parse(JSON.parse(read(out, 'results.json')));
    expect(res.races!.length).toBe(42);
    const t = JSON.parse(read(out, 'traces/race--s12-fault-vs-bind--rmap.trace.json'));
    expect(
      t.traceEvents
        .filter((e: { name: string }) => e.name === 'thread_name')
        .map((e: { args: { name: string } }) => e.args.name),
    ).toEqual(['fault', 'bind']);
    expect(read(out, 'report.html')).toContain('<h2 id="races">Races</h2>');
  });

  test('the same cells in this thread (--jobs 1): deterministic regardless of jobs', async () => {
    const one = join(tmp, 'one');
    const s = await cli(...DEMO_EMULATED, '--out', one);
    expect(s.code).toBe(0);
    const a = Results.parse(JSON.parse(read(out, 'results.json')));
    const b = Results.parse(JSON.parse(read(one, 'results.json')));
    expect(b.cells).toEqual([a.cells[0]]);
  });
});

describe('violations get a Chrome trace each', () => {
  test('a design that breaks I3 in every scenario: a trace file per violation, linked from the report', async () => {
    const broken = (ref: Parameters<typeof runEmulatedCell>[0], design: string, seed: number): CellResult => {
      const c = runEmulatedCell(ref, design, seed);
      return {
        ...c,
        invariants: {
          ...c.invariants,
          I3: {
            status: 'fail',
            violations: 2,
            first: {
              message: `seed ${seed}: VMA 0x7fff0000 used after munmap`,
              trace: [
                { seq: 3, time: 2000, cat: 0x20, kind: 'mm.munmap', args: [1, 0x7fff0000, 0x20000, 0] },
              ],
            },
          },
        },
      };
    };
    // A design the registry does not have: run its cells here and write the report as compare does.
    const demo = selectScenarios(['demo']);
    const plan = planCells(demo, ['emulated', 'test-broken'], 5);
    const cells = runCellsSequential(plan, (ref, design, seed) =>
      design === 'test-broken' ? broken(ref, design, seed) : registryRunner(ref, design, seed),
    );
    const out = join(tmp, 'broken');
    mkdirSync(out, { recursive: true });
    await writeReport(out, resultsDocument(cells, ['emulated', 'test-broken'], ['demo'], 5));
    expect(textMatrix(cells).split('\n')[3]).toBe(
      'demo      test-broken  pass  n/a  FAIL ×2  pass  pass  n/a  n/a         0     0            0                 0            0             0      49730     753     249.026',
    );
    expect(readdirSync(join(out, 'traces'))).toEqual(['demo--test-broken--I3.trace.json']);
    const t = JSON.parse(read(out, 'traces/demo--test-broken--I3.trace.json'));
    expect(t.otherData).toEqual({
      tool: 'xivelab',
      scenario: 'demo',
      design: 'test-broken',
      seed: 5,
      events: 1,
      timeline: 'event sequence (the run has no clock: ts is the event number, 1 µs per event)',
      violation: 'seed 5: VMA 0x7fff0000 used after munmap',
    });
    expect(t.traceEvents.at(-1)).toEqual({
      name: 'violation I3',
      cat: 'violation',
      ph: 'i',
      s: 'g',
      pid: 0,
      tid: 0,
      ts: 0,
      args: { message: 'seed 5: VMA 0x7fff0000 used after munmap' },
    });
    // The munmap on pid 1's track, its arguments by name.
    expect(t.traceEvents.find((e: { name: string }) => e.name === 'mm.munmap')).toEqual({
      name: 'mm.munmap',
      cat: 'event',
      ph: 'X',
      pid: 2,
      tid: 20001,
      ts: 0,
      dur: 1,
      args: { seq: 3, pid: 1, start: '0x7fff0000', end: '0x20000', ptes: 0 },
    });
    const md = read(out, 'report.md').split('\n');
    const at = md.indexOf(
      '- **demo × test-broken, I3** (2): seed 5: VMA 0x7fff0000 used after munmap — [demo--test-broken--I3.trace.json](traces/demo--test-broken--I3.trace.json) (1 events)',
    );
    expect(md[at + 1]).toBe('  1. #3 munmap (mm.munmap): pid 1, start 0x7fff0000, end 0x20000, ptes 0');

    // --expect: the same verdicts as results.json → exit 0; a YAML expecting what did not
    // happen → exit 1 and the cells that changed.
    const again = [
      'compare',
      '--scenarios',
      'demo',
      '--designs',
      'emulated,rmap',
      '--seed',
      '5',
      '--no-races',
    ];
    expect((await cli(...again, '--jobs', '1', '--out', out)).code).toBe(0);
    const same = join(tmp, 'expected-results.json');
    writeFileSync(same, read(out, 'results.json'));
    const ok = await cli(...again, '--jobs', '1', '--out', out, '--expect', same);
    expect(ok.code).toBe(0);
    expect(ok.out.endsWith(`\nexpect: all 2 cells match ${same}\n`)).toBe(true);
    const yaml = join(tmp, 'expected.yaml');
    writeFileSync(yaml, 'demo:\n  emulated: pass\n  rmap: {I1: pass, I3: fail}\n');
    const bad = await cli(...again, '--jobs', '1', '--out', out, '--expect', yaml);
    expect(bad.code).toBe(1);
    expect(
      bad.out.endsWith(`\nexpect: 1 of 2 cells differ from ${yaml}:\n  demo × rmap: I3 fail → pass\n`),
    ).toBe(true);
    writeFileSync(yaml, 'demo:\n  emulated: fail\n');
    const whole = await cli(...again, '--jobs', '1', '--out', out, '--expect', yaml);
    expect(whole.code).toBe(1);
    expect(whole.out).toContain(
      `\nexpect: 2 of 2 cells differ from ${yaml}:\n  demo × emulated: fail → pass\n  demo × rmap: no expected verdict (got pass)\n`,
    );

    // A later run without violations leaves no stale traces.
    expect((await cli(...DEMO_EMULATED, '--out', out)).code).toBe(0);
    expect(existsSync(join(out, 'traces'))).toBe(false);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

describe('compare: --out and --expect are checked before any cell runs (one line, exit 2)', () => {
  const args = ['compare', '--scenarios', 'demo', '--designs', 'emulated', '--jobs', '1'];

  test('an existing file, a path under /proc, a bad --expect', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    expect(await cli(...args, '--out', file)).toEqual({
      code: 2,
      out: '',
      err: `xivelab: --out ${file}: exists and is not a directory\n`,
    });
    expect(await cli(...args, '--out', '/proc/nope/report')).toEqual({
      code: 2,
      out: '',
      err: 'xivelab: --out /proc/nope/report: cannot create /proc/nope: no such file or directory\n',
    });
    expect(await cli(...args, '--out', join(tmp, 'x'), '--expect', join(tmp, 'nope.yaml'))).toEqual({
      code: 2,
      out: '',
      err: `xivelab: --expect ${join(tmp, 'nope.yaml')}: no such file\n`,
    });
    const odd = join(tmp, 'odd.yaml');
    writeFileSync(odd, 'demo:\n  emulated: maybe\n');
    const r = await cli(...args, '--out', join(tmp, 'x'), '--expect', odd);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      new RegExp(
        `^xivelab: --expect ${odd}: demo\\.emulated: .*\\(expected scenario → design → pass, fail, n/a or a map of I1\\.\\.I7 to those\\)\\n$`,
      ),
    );
  });

  test('a traces/ folder xivelab did not write is never deleted', async () => {
    const out = join(tmp, 'foreign');
    mkdirSync(join(out, 'traces'), { recursive: true });
    writeFileSync(join(out, 'traces', 'notes.txt'), 'mine');
    const r = await cli(...args, '--out', out);
    expect(r).toEqual({
      code: 2,
      out: '',
      err: `xivelab: --out ${out}: ${join(out, 'traces')} holds files xivelab did not write (it replaces that folder); move them or choose another --out\n`,
    });
    expect(readFileSync(join(out, 'traces', 'notes.txt'), 'utf8')).toBe('mine');
    expect(readdirSync(out)).toEqual(['traces']);
  });

  test('the real entry point: /proc/nope ends at once with exit 2', () => {
    const r = spawnCli(...args, '--out', '/proc/nope');
    expect([r.code, r.out, r.err]).toEqual([
      2,
      '',
      'xivelab: --out /proc/nope: cannot create /proc/nope: no such file or directory\n',
    ]);
  });
});

describe('bad input: one line, exit 2', () => {
  test.each([
    [['--designs', 'nope'], 'xivelab: unknown design "nope" (known: emulated'],
    [['--scenarios', 'nope'], 'nope: no built-in scenario "nope" (built-ins: demo'],
    [
      ['--jobs', '0'],
      "error: option '--jobs <n>' argument '0' is invalid. expected a number of worker threads in 1..256",
    ],
  ])('compare %j', async (args, first) => {
    const r = await cli('compare', ...args, '--out', join(tmp, 'bad'));
    expect(r.code).toBe(2);
    expect(r.err.startsWith(first)).toBe(true);
    expect(r.err.trimEnd().split('\n').length).toBe(1);
    expect(r.out).toBe('');
  });
});

describe('xivelab run --design --trace', () => {
  test('writes the run as Chrome trace-event JSON (Perfetto), events stamped with virtual time', async () => {
    const file = join(tmp, 'demo.trace.json');
    const r = await cli('run', 'scenarios/demo.yaml', '--design', 'emulated', '--trace', file);
    expect(r.code).toBe(0);
    expect(r.err).toBe(`wrote 207604 trace events to ${file}\n`);
    expect(r.out.split('\n')[2]).toBe(
      'demo      emulated  pass  n/a  n/a  pass  pass  n/a  n/a         0     0            0                 0            0             0      49999     754     250.372',
    );
    const t = JSON.parse(readFileSync(file, 'utf8'));
    expect(t.otherData).toEqual({
      tool: 'xivelab',
      scenario: 'demo',
      design: 'emulated',
      seed: 1,
      events: 207604,
      timeline: 'virtual time (ts in µs)',
      dropped: 0,
    });
    // 20 metadata events, the 207604 events, 13486 handler runs, the flows' 53268 points.
    expect(t.traceEvents.length).toBe(274378);
    expect(t.traceEvents.filter((e: { ph: string }) => e.ph === 's').length).toBe(14088);
    expect(t.traceEvents.filter((e: { cat: string }) => e.cat === 'event').at(-1)).toEqual({
      name: 'tctx.cppr',
      cat: 'event',
      ph: 'i',
      pid: 1,
      tid: 10001,
      ts: 6523.972,
      args: { seq: 207603, cpu: 0, ring: 16, oldCppr: '0x0', cppr: '0xff' },
    });
  });
  test('an unknown design is exit 2', async () => {
    const r = await cli('run', 'scenarios/demo.yaml', '--design', 'nope');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`xivelab: unknown design "nope" (known: ${DESIGN_NAMES.join(', ')})\n`);
  });
});

test('schema --results prints schema/results.json', async () => {
  const r = await cli('schema', '--results');
  expect(JSON.parse(r.out)).toEqual(JSON.parse(readFileSync(new URL('schema/results.json', root), 'utf8')));
});
