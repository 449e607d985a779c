/**
 * The passthrough runner's memslot series under option 2 (overlap-regions): the slots in use as
 * functions are bound, and past the KVM memslot limit, where binds are refused, the slots the
 * VM would need for every vector asked for — the curve goes on past the limit. And a prefix of a
 * run read off the whole run ({@link runPrefix}) against the run stopped there.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { dedicatedIrqs } from '../../../src/designs/dedicated-irqs.ts';
import { emulated } from '../../../src/designs/emulated.ts';
import { overlapRegions } from '../../../src/designs/overlap-regions.ts';
import { rmap } from '../../../src/designs/rmap.ts';
import { vmaPointer } from '../../../src/designs/vma-pointer.ts';
import { SERIES } from '../../../src/scenario/cell.ts';
import { loadScenario } from '../../../src/scenario/load.ts';
import { parseScenario } from '../../../src/scenario/parse.ts';
import {
  type RunFindingsInput,
  runPassthrough,
  runPrefix,
} from '../../../src/scenario/passthrough-runner.ts';
import { Trace } from '../../../src/sim/trace.ts';
import { TRACE_ESB, TRACE_KVM, TRACE_MM, TRACE_ROUTER, TRACE_VMM } from '../../../src/sim/trace-sink.ts';

/** Six functions of 8 vectors each; KVM with 30 memslots (RAM, ESB and TIMA take 3). */
const scenario = parseScenario(
  [
    'name: pt-memslot-limit',
    'vcpus: 2',
    'devices:',
    ...[0, 1, 2, 3, 4, 5].map((i) => `  - {name: fn${i}, msis: 8}`),
    'passthrough:',
    '  devices: [fn0, fn1, fn2, fn3, fn4, fn5]',
    '  cycles: 1',
    '  msisPerCycle: 12',
    '  maxMemslots: 30',
    'workload: {triggers: 4}',
  ].join('\n'),
  'pt-memslot-limit.yaml',
);

const points = (r: ReturnType<typeof runPassthrough>, name: string) =>
  r.series.find((s) => s.name === name)!.points;

describe('memslots vs vectors bound, up to and past the memslot limit', () => {
  const run = runPassthrough(scenario, overlapRegions, 1);

  test('in use: 8 contiguous irqs per function split the ESB slot into one more piece each (3 + 1 + 8k)', () => {
    expect(points(run, SERIES.memslotsVsVectors)).toEqual([
      [8, 12],
      [16, 20],
      [24, 28],
    ]);
  });

  test('refused: the slots the VM would need for every vector asked for, past the limit, sorted by x', () => {
    const wanted = points(run, SERIES.memslotsWantedVsVectors);
    expect(wanted).toEqual([
      [32, 36],
      [40, 44],
      [48, 52],
    ]);
    expect(wanted.every(([, y]) => y > 30)).toBe(true);
    expect(wanted.map(([x]) => x)).toEqual([...wanted.map(([x]) => x)].sort((a, b) => a - b));
    expect(run.violations.I7.map((v) => v.message)).toEqual([
      'fn3: passthrough set-up failed: -28 (the VM would need 36 memslots, KVM has 30) (cycle 0, seed 1)',
      'fn4: passthrough set-up failed: -28 (the VM would need 44 memslots, KVM has 30) (cycle 0, seed 1)',
      'fn5: passthrough set-up failed: -28 (the VM would need 52 memslots, KVM has 30) (cycle 0, seed 1)',
    ]);
  });

  test('a design whose binds cost no memslot has no refused point', () => {
    const r = runPassthrough(scenario, rmap, 1);
    expect(points(r, SERIES.memslotsVsVectors).map(([, y]) => y)).toEqual([3, 3, 3, 3, 3, 3]);
    expect(points(r, SERIES.memslotsWantedVsVectors)).toEqual([]);
  });
});

describe('a prefix of a run, read off the whole run, is the run stopped there', () => {
  /** Three cycles, then a migration and a fourth plug on the destination. */
  const three = loadScenario(
    fileURLToPath(new URL('../../../scenarios/pt-late-mapping.yaml', import.meta.url)),
  );
  const migrating = parseScenario(
    [
      'name: pt-prefix',
      'vcpus: 2',
      'devices: [{name: nic0, msis: 16}]',
      'passthrough: {devices: [nic0], cycles: 3, msisPerCycle: 40, migrate: true}',
      'workload: {triggers: 120}',
    ].join('\n'),
    'pt-prefix.yaml',
  );
  const fields = (r: RunFindingsInput) => ({
    view: r.view,
    handled: [...r.handled].sort(),
    expected: [...r.expected].sort(),
    deliveries: r.deliveries,
    violations: r.violations,
  });
  for (const [s, design] of [
    [three, vmaPointer],
    [three, dedicatedIrqs],
    [migrating, rmap],
    [migrating, emulated],
  ] as const) {
    test(`${s.name} under ${design.name}: cycles 1, 2 and 3`, () => {
      const whole = runPassthrough(s, design, 1);
      expect(whole.ends.length).toBe(whole.cycles);
      for (const cycles of [1, 2, 3]) {
        const stopped = runPassthrough(s, design, 1, { maxCycles: cycles });
        expect(fields(runPrefix(whole, cycles))).toEqual(fields(stopped));
      }
    });
  }

  test("a traced run's events up to a cycle's end are the events of the run stopped there", () => {
    const mask = TRACE_ESB | TRACE_ROUTER | TRACE_KVM | TRACE_MM | TRACE_VMM;
    const trace = new Trace(mask, 1 << 18);
    const whole = runPassthrough(three, vmaPointer, 1, { trace });
    const all = trace.events();
    expect(all.length).toBe(trace.total);
    expect(whole.ends.at(-1)!.traced).toBe(trace.total);
    for (const cycles of [1, 2]) {
      const t = new Trace(mask, 1 << 18);
      runPassthrough(three, vmaPointer, 1, { maxCycles: cycles, trace: t });
      expect(whole.ends[cycles - 1]!.traced).toBe(t.total);
      expect(all.slice(0, t.total)).toEqual(t.events());
    }
    expect(runPassthrough(three, vmaPointer, 1).ends.map((e) => e.traced)).toEqual([0, 0, 0]);
  });

  test('a prefix longer than the run is refused', () => {
    const whole = runPassthrough(migrating, rmap, 1, { maxCycles: 2 });
    expect(() => runPrefix(whole, 3)).toThrow('runPrefix: 3 cycles of a run of 2');
  });
});
