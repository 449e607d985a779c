import { describe, expect, test } from 'vitest';
import { designNamed } from '../../../src/designs/index.ts';
import {
  type CellResult,
  CellResult as CellResultSchema,
  COST_TABLE_NS,
  cellViolations,
  INVARIANTS,
  modeledTimeNs,
  NO_COSTS,
  notApplicable,
  passed,
  Results,
  resultsJsonSchema,
} from '../../../src/scenario/cell.ts';
import { registryRunner, runDesignCell, traceDesignRun } from '../../../src/scenario/cell-dispatch.ts';
import { emulatedCellRunner, runEmulatedCell, traceEmulated } from '../../../src/scenario/cell-emulated.ts';
import { classifyViolation } from '../../../src/scenario/cell-trace.ts';
import { loadScenario } from '../../../src/scenario/load.ts';
import { checkScenario } from '../../../src/scenario/parse.ts';
import { Reference } from '../../../src/scenario/reference.ts';
import type { TraceSink } from '../../../src/sim/trace-sink.ts';
import type { SpaprMachine } from '../../../src/vmm/spapr-machine.ts';
import { StubGuest } from './stub-guest.ts';

const demoFile = new URL('../../../scenarios/demo.yaml', import.meta.url).pathname;

describe('cell costs', () => {
  test('modeledTimeNs is Σ count × COST_TABLE_NS', () => {
    const c = {
      memslotsPeak: 9,
      memslotUpdates: 2,
      vmasPeak: 40,
      hostFaults: 3,
      partitionFaults: 5,
      ptesZapped: 7,
      vmasVisited: 11,
      vmmExits: 13,
      hcalls: 17,
    };
    // 3×1000 + 5×3000 + 7×250 + 11×50 + 13×5000 + 17×500 + 2×50000
    expect(modeledTimeNs(c)).toBe(3000 + 15000 + 1750 + 550 + 65000 + 8500 + 100000);
  });
  test('the cost table is the documented one', () => {
    expect(COST_TABLE_NS).toEqual({
      hostFault: 1000,
      partitionFault: 3000,
      pteZapped: 250,
      vmaVisited: 50,
      vmmExit: 5000,
      hcall: 500,
      memslotUpdate: 50000,
    });
  });
});

describe('accounting violations map onto I4 (lost) and I5 (spurious)', () => {
  test.each([
    ['trigger-accounted', 'x', 'I4'],
    ['event-routed', 'x', 'I4'],
    ['eq-read-once', 'seed 1: irq 5: 3 EQ entries written but 2 read (entries left or lost)', 'I4'],
    ['eq-read-once', 'seed 1: irq 5: 3 EQ entries read but only 2 written (an entry read twice)', 'I5'],
    ['eq-handled-once', 'seed 1: 3 EQ entries but 2 deliveries + 0 deferred (entries not handled)', 'I4'],
    ['eq-handled-once', 'seed 1: 3 deliveries + 0 deferred but only 2 EQ entries (spurious delivery)', 'I5'],
    ['trigger-delivered', 'x', 'I4'],
    ['no-unknown-eisn', 'x', 'I5'],
    ['queue-overflow', 'x', 'I4'],
  ])('%s (%s) → %s', (invariant, message, want) => {
    expect(classifyViolation({ invariant, message })).toBe(want);
  });
});

describe('the emulated design (kernel_irqchip=off) as a cell', () => {
  const demo = loadScenario(demoFile);
  const ref = { name: demo.name, file: demoFile, scenario: demo };

  test('demo, seed 1: I1/I4/I5 checked and hold, I2/I3/I6/I7 n/a; exits and hcalls counted', () => {
    const c = runEmulatedCell(ref, 'emulated', 1);
    expect(CellResultSchema.parse(c)).toEqual(c);
    expect(Object.fromEntries(INVARIANTS.map((i) => [i, c.invariants[i].status]))).toEqual({
      I1: 'pass',
      I2: 'n/a',
      I3: 'n/a',
      I4: 'pass',
      I5: 'pass',
      I6: 'n/a',
      I7: 'n/a',
    });
    expect(c.costs).toEqual({
      memslotsPeak: 0,
      memslotUpdates: 0,
      vmasPeak: 0,
      hostFaults: 0,
      partitionFaults: 0,
      ptesZapped: 0,
      vmasVisited: 0,
      vmmExits: 49999,
      hcalls: 754,
      modeledTimeNs: 49999 * 5000 + 754 * 500,
    });
    expect(c.notes[0]).toBe(
      'kernel_irqchip=off: 49245 guest MMIO exits (19248 ESB, 29997 TIMA, 0 other) and 754 hcalls, each an exit to the VMM',
    );
    expect(c.series).toEqual([]);
    expect(cellViolations(c)).toBe(0);
  });

  test('deterministic: the same seed gives the same cell, byte for byte', () => {
    const small = checkScenario({
      name: 'small',
      vcpus: 2,
      devices: [{ name: 'd', msis: 4 }],
      workload: { triggers: 500, streams: [{ device: 'd', rate: 1e6 }] },
    });
    const r = { name: 'small', file: 'small.yaml', scenario: small };
    expect(JSON.stringify(runEmulatedCell(r, 'emulated', 5))).toBe(
      JSON.stringify(runEmulatedCell(r, 'emulated', 5)),
    );
  });

  test('a guest that loses EQ entries fails I4, with the shortest trace of the lost irq', () => {
    const lossy = (m: SpaprMachine, _t: TraceSink): StubGuest => {
      const g = new StubGuest(m);
      g.dropEvery = 500;
      return g;
    };
    const s = checkScenario({
      name: 'lossy',
      vcpus: 1,
      devices: [{ name: 'd', msis: 2 }],
      workload: { triggers: 2000, streams: [{ device: 'd', rate: 1e6 }] },
    });
    const c = emulatedCellRunner(lossy)({ name: 'lossy', file: 'lossy.yaml', scenario: s }, 'emulated', 77);
    expect(c.invariants.I4.status).toBe('fail');
    expect(c.invariants.I4.violations).toBe(6);
    expect(c.invariants.I4.first!.message).toBe(
      'seed 77: irq 17 (LISN 0x1300, msi): 749 EQ entries written but 748 read (entries left or lost)',
    );
    const trace = c.invariants.I4.first!.trace;
    expect(trace.length).toBe(256);
    // Only the lost irq's events: its source (LISN 0x1300 = 4864) and the enqueues it caused.
    expect(new Set(trace.map((e) => e.kind))).toEqual(
      new Set(['esb.set_pq', 'esb.trigger', 'esb.forward', 'router.enqueue']),
    );
    expect(trace.filter((e) => e.kind.startsWith('esb.')).every((e) => e.args[0] === 4864)).toBe(true);
    expect(trace.at(-1)).toEqual({
      seq: 14520,
      time: 1484975,
      cat: 4,
      kind: 'router.enqueue',
      args: [0, 6, 999, 2147488512],
    });
    expect(c.invariants.I5.status).toBe('pass');
    expect(cellViolations(c)).toBe(6);
  });
});

describe('cell dispatch', () => {
  test('the emulated design runs the emulated cell; an unknown design is a clear error', () => {
    // A workload scenario without passthrough functions runs the emulated cell unchanged.
    const w = checkScenario({ vcpus: 1, devices: [{ name: 'd', msis: 1 }], workload: { triggers: 5 } });
    const ref = { name: 'w', file: 'w', scenario: w };
    const emulated = designNamed('emulated');
    expect(runDesignCell(ref, emulated, 3)).toEqual(runEmulatedCell(ref, 'emulated', 3));
    expect(traceDesignRun(ref, emulated, 3)).toEqual(traceEmulated(ref, 3));
    const s = checkScenario({ vcpus: 1, devices: [{ name: 'd', msis: 1 }], workload: { triggers: 1 } });
    expect(() => registryRunner({ name: 'x', file: 'x', scenario: s }, 'no-such', 1)).toThrow(
      /^unknown design "no-such" \(known: emulated/,
    );
  });
});

describe('the emulated cell feeds the reference', () => {
  test("its run records the same guest-visible trace as the reference's own emulated run", () => {
    const ref = { name: 'demo', file: demoFile, scenario: loadScenario(demoFile) };
    const reference = new Reference(ref.scenario, 1);
    const cell = runEmulatedCell(ref, 'emulated', 1, reference);
    const fresh = new Reference(ref.scenario, 1).guestTrace();
    const kept = reference.guestTrace();
    expect(kept).not.toBe(fresh);
    expect([kept.count, kept.blocks]).toEqual([fresh.count, fresh.blocks]);
    expect(kept.count).toBeGreaterThan(10_000);
    // The cell itself is the cell of a run without a reference.
    expect(cell).toEqual(runEmulatedCell(ref, 'emulated', 1));
  });

  test('a reference of another seed or scenario, or one that has its trace, keeps its own', () => {
    const ref = { name: 'demo', file: demoFile, scenario: loadScenario(demoFile) };
    const other = new Reference(ref.scenario, 2);
    runEmulatedCell(ref, 'emulated', 1, other);
    const mine = new Reference(ref.scenario, 2).guestTrace();
    expect(other.guestTrace().blocks).toEqual(mine.blocks);
    const held = new Reference(ref.scenario, 1);
    const first = held.guestTrace();
    runEmulatedCell(ref, 'emulated', 1, held);
    expect(held.guestTrace()).toBe(first);
  });
});

describe('results.json schema', () => {
  const cell: CellResult = {
    scenario: 's',
    design: 'd',
    seed: 1,
    invariants: {
      I1: passed(),
      I2: notApplicable(),
      I3: notApplicable(),
      I4: passed(),
      I5: passed(),
      I6: notApplicable(),
      I7: { status: 'fail', violations: 1, first: { message: 'm', trace: [] } },
    },
    costs: { ...NO_COSTS, modeledTimeNs: 0 },
    series: [{ name: 'memslots-vs-vectors', x: 'vectors', y: 'memslots', points: [[1, 2]] }],
    notes: [],
  };
  test('a document parses; unknown keys and bad statuses are rejected', () => {
    const doc = {
      tool: 'xivelab',
      version: 1,
      seed: null,
      designs: ['d'],
      scenarios: ['s'],
      costTable: { ...COST_TABLE_NS },
      cells: [cell],
    };
    expect(Results.parse(doc)).toEqual(doc);
    expect(Results.safeParse({ ...doc, extra: 1 }).success).toBe(false);
    const bad = {
      ...cell,
      invariants: { ...cell.invariants, I1: { status: 'ok', violations: 0, first: null } },
    };
    expect(Results.safeParse({ ...doc, cells: [bad] }).success).toBe(false);
  });
  test('schema/results.json is up to date (regenerate: xivelab schema --results > schema/results.json)', async () => {
    const { readFileSync } = await import('node:fs');
    const onDisk = JSON.parse(readFileSync(new URL('../../../schema/results.json', import.meta.url), 'utf8'));
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(resultsJsonSchema())));
  });
});
