/**
 * One cell of `xivelab compare`: the result of running one scenario under one passthrough-page
 * design with one seed — the invariants I1–I7 with their first violation and its
 * trace, the costs measured on the model's own paths, series for the report's plots, notes.
 *
 * The zod schemas here are the documentation of `report/results.json`: `schema/results.json` is
 * emitted from {@link Results} (`xivelab schema --results`), and the tests parse real output
 * with it.
 *
 * A design runs through a {@link CellRunner}; `cell-dispatch.ts` picks it by the design's `accel`.
 */

import { z } from 'zod';
import type { TraceEvent } from '../sim/trace.ts';
import { RaceRow } from './race-row.ts';
import type { Reference } from './reference.ts';
import type { Scenario } from './schema.ts';

/** The invariants a design is checked against, in report order. */
export const INVARIANTS = ['I1', 'I2', 'I3', 'I4', 'I5', 'I6', 'I7'] as const;
/** One invariant's id. */
export type InvariantId = (typeof INVARIANTS)[number];

/** One-line statement of each invariant, for reports. */
export const INVARIANT_TITLES: Readonly<Record<InvariantId, string>> = {
  I1: 'routing: every guest ESB access for girq n reaches the source currently backing n',
  I2: 'isolation: no PTE or partition-scoped entry reaches an unbound/unplugged device page or host page',
  I3: 'no use-after-free of kernel objects (VMAs, files, devices)',
  I4: 'no lost interrupt: each trigger of an enabled source is delivered or coalesced',
  I5: 'no spurious delivery',
  I6: 'guest ABI: irq numbers, ESB addresses, hcall results, delivered-EISN trace equal the emulated reference',
  I7: 'resources: memslots within the KVM and VMM limits; VMAs within vm.max_map_count',
};

const count = z.int().min(0);

/** One materialised trace event (the shape of `sim/trace.ts` `TraceEvent`). */
export const TraceEventSchema = z.strictObject({
  seq: z.int().min(0).describe('position in the run’s trace stream'),
  time: z.number().min(0).describe('virtual time, ns'),
  cat: z.int().min(0).describe('TRACE_* category bit (sim/trace-sink.ts)'),
  kind: z.string().describe('short stable event name, e.g. esb.trigger'),
  args: z
    .tuple([z.number(), z.number(), z.number(), z.number()])
    .describe('the event’s four numeric arguments'),
});

/** The outcome of one invariant in one cell. */
export const InvariantOutcome = z.strictObject({
  status: z
    .enum(['pass', 'fail', 'n/a'])
    .describe('pass: checked, held; fail: checked, broken; n/a: does not apply to this design/scenario'),
  violations: count.describe('violations found (0 unless status is fail)'),
  first: z
    .strictObject({
      message: z.string().describe('one line naming the seed that replays it'),
      trace: z.array(TraceEventSchema).describe('the shortest trace found that shows it'),
    })
    .nullable()
    .describe('the first violation, or null'),
});
export type InvariantOutcome = z.output<typeof InvariantOutcome>;

/** Costs measured on the model's own paths (counts of the paths running, never estimates). */
export const Costs = z.strictObject({
  memslotsPeak: count.describe('KVM memslots in use, peak'),
  memslotUpdates: count.describe('KVM_SET_USER_MEMORY_REGION calls (memslot creations, moves, deletions)'),
  vmasPeak: count.describe('VMAs in the VMM process, peak'),
  hostFaults: count.describe('host page faults on device (ESB) VMAs: vm_ops.fault runs'),
  partitionFaults: count.describe('partition-scoped (KVM HV) page faults'),
  ptesZapped: count.describe('host PTEs cleared by zaps (zap_vma_ptes / unmap_mapping_range)'),
  vmasVisited: count.describe('VMAs visited by kernel walks (VMA walk, reverse-map walk)'),
  vmmExits: count.describe('exits to the VMM: guest MMIO it emulates plus hcalls it handles'),
  hcalls: count.describe('hypercalls the guest made'),
  modeledTimeNs: z.number().min(0).describe('Σ count × COST_TABLE_NS (see cell.ts)'),
});
export type Costs = z.output<typeof Costs>;

/** Names of the series the report plots (a design may add others; they are kept in results.json). */
export const SERIES = {
  /** x: passthrough vectors bound; y: KVM memslots in use. */
  memslotsVsVectors: 'memslots-vs-vectors',
  /**
   * One point per bind refused at the memslot limit. x: passthrough vectors asked for, the
   * refused ones included; y: KVM memslots the VM would need for all of them.
   */
  memslotsWantedVsVectors: 'memslots-wanted-vs-vectors',
  /** x: mappings of the ESB range (processes/VMAs mapping the device file); y: modeled bind cost, ns. */
  bindCostVsMappings: 'bind-cost-vs-mappings',
  /** x: VMAs in the VMM process; y: modeled bind cost, ns. */
  bindCostVsVmas: 'bind-cost-vs-vmas',
} as const;

/** A measured series for the plots. */
export const Series = z.strictObject({
  name: z.string().describe(`series name; the report plots ${Object.values(SERIES).join(', ')}`),
  x: z.string().describe('x axis label'),
  y: z.string().describe('y axis label'),
  points: z.array(z.tuple([z.number(), z.number()])).describe('[x, y] pairs, in measurement order'),
});
export type Series = z.output<typeof Series>;

/** The result of one scenario × design run. */
export const CellResult = z.strictObject({
  scenario: z.string().describe('scenario name'),
  design: z.string().describe('design name (designs/index.ts)'),
  seed: z.int().min(0).describe('seed of the run: compare --seed replays it'),
  invariants: z.strictObject({
    I1: InvariantOutcome,
    I2: InvariantOutcome,
    I3: InvariantOutcome,
    I4: InvariantOutcome,
    I5: InvariantOutcome,
    I6: InvariantOutcome,
    I7: InvariantOutcome,
  }),
  costs: Costs,
  series: z.array(Series),
  notes: z.array(z.string()).describe('what the run could and could not check, in plain words'),
});
export type CellResult = z.output<typeof CellResult>;

/**
 * Modeled cost in ns of one occurrence of each counted path. These weight counts the model made;
 * the ranking of designs rests on the counts, the table only puts them on one axis. Values are
 * orders of magnitude for a POWER9 host running KVM HV with radix MMU (64 KiB pages), chosen so
 * that relative sizes are right:
 *
 * - `hostFault` 1 µs: a minor fault on a VM_PFNMAP VMA — exception entry, VMA lookup under
 *   mmap_lock, the KVM device's `vm_ops.fault` (irq lookup), `vmf_insert_pfn`; Linux minor faults
 *   measure ~0.5–1 µs on current servers.
 * - `partitionFault` 3 µs: a guest access with no partition-scoped entry — HV exit, KVM's radix
 *   page-fault handler (memslot lookup, host PTE walk, maybe a host fault on top, counted
 *   apart), installing the entry, guest re-entry: several times a host minor fault.
 * - `pteZapped` 250 ns: clearing one PTE plus its share of the TLB invalidation (`tlbie` of a
 *   64 KiB page, broadcast to the other threads).
 * - `vmaVisited` 50 ns: one step of a VMA list / interval-tree walk, a couple of cache misses.
 * - `vmmExit` 5 µs: a KVM exit to userspace and back (`KVM_RUN` returns, QEMU dispatches the
 *   MMIO or hcall, re-enters): a few µs on POWER9, the reason XIVE native mode exists.
 * - `hcall` 500 ns: the hcall itself (`sc 1`, KVM's dispatch) on top of any exit it causes.
 * - `memslotUpdate` 50 µs: `KVM_SET_USER_MEMORY_REGION` copies the memslot array and waits
 *   for SRCU readers (`synchronize_srcu_expedited`), tens of µs.
 */
export const COST_TABLE_NS = {
  hostFault: 1_000,
  partitionFault: 3_000,
  pteZapped: 250,
  vmaVisited: 50,
  vmmExit: 5_000,
  hcall: 500,
  memslotUpdate: 50_000,
} as const;
/** One entry of the cost table. */
export type CostKind = keyof typeof COST_TABLE_NS;

/** Counted paths, before the modeled time is derived from them. */
export type CostCounts = Omit<Costs, 'modeledTimeNs'>;

/** Every count at zero: a run that exercised none of the counted paths. */
export const NO_COSTS: Readonly<CostCounts> = Object.freeze({
  memslotsPeak: 0,
  memslotUpdates: 0,
  vmasPeak: 0,
  hostFaults: 0,
  partitionFaults: 0,
  ptesZapped: 0,
  vmasVisited: 0,
  vmmExits: 0,
  hcalls: 0,
});

/** Σ count × {@link COST_TABLE_NS}: the modeled time of the counted paths. */
export function modeledTimeNs(c: CostCounts): number {
  const t = COST_TABLE_NS;
  return (
    c.hostFaults * t.hostFault +
    c.partitionFaults * t.partitionFault +
    c.ptesZapped * t.pteZapped +
    c.vmasVisited * t.vmaVisited +
    c.vmmExits * t.vmmExit +
    c.hcalls * t.hcall +
    c.memslotUpdates * t.memslotUpdate
  );
}

/** Costs with {@link modeledTimeNs} filled in. */
function withModeledTime(c: CostCounts): Costs {
  return { ...c, modeledTimeNs: modeledTimeNs(c) };
}

/** What a cell runner measured: the verdicts, the cost counts, the series and the notes. */
export interface CellMeasures {
  readonly invariants: CellResult['invariants'];
  readonly costs: Readonly<CostCounts>;
  readonly series: Series[];
  readonly notes: string[];
}

/** The cell of `design` on `ref` run with `seed`, its modeled time derived from the counts. */
export function cellResult(ref: ScenarioRef, design: string, seed: number, m: CellMeasures): CellResult {
  return {
    scenario: ref.name,
    design,
    seed,
    invariants: m.invariants,
    costs: withModeledTime(m.costs),
    series: m.series,
    notes: m.notes,
  };
}

/** An outcome: checked and held. */
export function passed(): InvariantOutcome {
  return { status: 'pass', violations: 0, first: null };
}

/** An outcome: checked and broken `violations` times; the first with its message and trace. */
export function failed(violations: number, message: string, trace: TraceEvent[]): InvariantOutcome {
  return { status: 'fail', violations, first: { message, trace } };
}

/** The outcome of a check that found `messages` (one per violation; no trace kept). */
export function findingsOutcome(messages: readonly string[]): InvariantOutcome {
  return messages.length === 0 ? passed() : failed(messages.length, messages[0]!, []);
}

/** An outcome: does not apply (say why in the cell's notes). */
export function notApplicable(): InvariantOutcome {
  return { status: 'n/a', violations: 0, first: null };
}

/** A scenario to run: its name, where it came from, and the validated scenario (plain data). */
export interface ScenarioRef {
  /** Name shown in reports (the scenario's `name`). */
  readonly name: string;
  /** The file it was loaded from (for messages and replay). */
  readonly file: string;
  /** The validated scenario; plain data, so it crosses to worker threads. */
  readonly scenario: Scenario;
}

/**
 * Runs one cell. Must be deterministic: the same scenario, design and seed give the same
 * result, in any process or worker thread (no clocks, no `Math.random`). It may throw only for
 * a bug in xivelab; anything the design does wrong is an invariant violation in the result.
 * `reference` is the emulated reference of (scenario, seed) that the designs of a row share
 * (computed once, when a cell first needs it); a runner given none makes its own.
 */
export type CellRunner = (
  scenario: ScenarioRef,
  design: string,
  seed: number,
  reference?: Reference,
) => CellResult;

/** Version of the results.json format. */
export const RESULTS_VERSION = 1;

/** `report/results.json`: every cell of a compare run. */
export const Results = z
  .strictObject({
    tool: z.literal('xivelab'),
    version: z.literal(RESULTS_VERSION),
    seed: z
      .int()
      .min(0)
      .nullable()
      .describe("seed every cell ran with (--seed), or null: each scenario's options.seed"),
    designs: z.array(z.string()).describe('designs run, in column order'),
    scenarios: z.array(z.string()).describe('scenarios run, in row order'),
    costTable: z
      .strictObject({
        hostFault: z.number(),
        partitionFault: z.number(),
        pteZapped: z.number(),
        vmaVisited: z.number(),
        vmmExit: z.number(),
        hcall: z.number(),
        memslotUpdate: z.number(),
      })
      .describe('ns per counted path (COST_TABLE_NS)'),
    cells: z.array(CellResult).describe('one per scenario × design, scenarios outer'),
    races: z
      .array(RaceRow)
      .optional()
      .describe('every built-in race scenario × design, explored exhaustively (absent: not run)'),
  })
  .describe('xivelab compare results');
export type Results = z.output<typeof Results>;

/** The JSON Schema of results.json. */
export function resultsJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(Results), title: 'xivelab compare results' };
}

/** Total violations of a cell, over all invariants. */
export function cellViolations(c: CellResult): number {
  let n = 0;
  for (const id of INVARIANTS) n += c.invariants[id].violations;
  return n;
}
