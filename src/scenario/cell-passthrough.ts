/**
 * The cell runner of passthrough scenarios: every design, the emulated reference
 * included, runs the scenario with {@link runPassthrough}; the invariants come from what the run
 * saw on the host/VMM state (I1, I2, I3, I7), from the guest's deliveries against the PQ model of
 * the same MSIs (I4 lost, I5 spurious) and from the guest-visible view and delivery trace against
 * the emulated reference's (I6). A failing invariant carries the shortest run that shows it (the
 * fewest cycles, by bisection) traced.
 */

import { deliveryFindings, firstDifference } from '../check/passthrough.ts';
import type { Design } from '../designs/design.ts';
import { designNamed } from '../designs/index.ts';
import { type CapturedTrace, Trace, type TraceEvent } from '../sim/trace.ts';
import { TRACE_ESB, TRACE_KVM, TRACE_MM, TRACE_ROUTER, TRACE_VMM } from '../sim/trace-sink.ts';
import {
  type CellResult,
  type CellRunner,
  cellResult,
  failed,
  type InvariantId,
  type InvariantOutcome,
  notApplicable,
  passed,
  type ScenarioRef,
} from './cell.ts';
import { causalHistory, shortestPrefix } from './cell-trace.ts';
import {
  type PassthroughRun,
  type RunFindingsInput,
  runPassthrough,
  runPrefix,
  type StateInvariant,
} from './passthrough-runner.ts';
import { Reference } from './reference.ts';

/** What a passthrough violation trace records, and the events its ring holds. */
const PASSTHROUGH_TRACE_MASK = TRACE_ESB | TRACE_ROUTER | TRACE_KVM | TRACE_MM | TRACE_VMM;
const PASSTHROUGH_TRACE_EVENTS = 1 << 18;

/** All findings of a run per invariant (I6 against `ref`, or n/a when `ref` is null). */
function findings(run: RunFindingsInput, ref: RunFindingsInput | null): Record<InvariantId, string[] | null> {
  const { lost, spurious } = deliveryFindings(run.handled, run.expected);
  let i6: string[] | null = null;
  if (ref !== null) {
    const v = firstDifference('guest view', run.view, ref.view);
    const t = firstDifference('delivery', run.deliveries, ref.deliveries);
    i6 = [v, t].filter((x): x is string => x !== null);
  }
  const st = (k: StateInvariant): string[] => run.violations[k].map((x) => x.message);
  return { I1: st('I1'), I2: st('I2'), I3: st('I3'), I4: lost, I5: spurious, I6: i6, I7: st('I7') };
}

/**
 * The shortest traces of one cell's failing invariants. Whether the first `n` cycles show a
 * failure is read off the cell's whole run ({@link runPrefix}), and so is the trace of the `n`
 * found: the beginning of the whole run's trace, up to the end of cycle `n`, when its ring kept
 * every event; otherwise the run stopped after `n` cycles is made again, traced (once per `n`).
 */
class ShortestTraces {
  private readonly reference: Reference;
  private readonly design: Design;
  /** The cell's whole run, and its trace (null: untraced). */
  private readonly run: PassthroughRun;
  private readonly trace: Trace | null;
  /** The whole run's events, once read. */
  private all: TraceEvent[] | null = null;
  /** Traced runs made again, by the cycles they stopped after. */
  private readonly traced = new Map<number, TraceEvent[]>();

  constructor(reference: Reference, design: Design, run: PassthroughRun, trace: Trace | null) {
    this.reference = reference;
    this.design = design;
    this.run = run;
    this.trace = trace;
  }

  /** The fewest cycles that still show a failure of `inv`, traced: its causal history and tail. */
  of(inv: InvariantId): TraceEvent[] {
    const ref = (cycles: number): RunFindingsInput | null =>
      inv === 'I6' ? runPrefix(this.reference.passthrough(), cycles) : null;
    const shows = (cycles: number): boolean =>
      (findings(runPrefix(this.run, cycles), ref(cycles))[inv]?.length ?? 0) > 0;
    const cycles = shortestPrefix(1, this.reference.scenario.passthrough!.cycles, shows);
    const message = findings(runPrefix(this.run, cycles), ref(cycles))[inv]?.[0] ?? '';
    return causalHistory(this.events(cycles), message);
  }

  /** The trace of the run stopped after `cycles` cycles. */
  private events(cycles: number): TraceEvent[] {
    if (this.trace !== null) {
      this.all ??= this.trace.events();
      if (this.all.length === this.trace.total) {
        if (cycles === this.run.cycles) return this.all;
        return this.all.slice(0, this.run.ends[cycles - 1]!.traced);
      }
    }
    let events = this.traced.get(cycles);
    if (events === undefined) {
      const { scenario: s, seed } = this.reference;
      const trace = new Trace(PASSTHROUGH_TRACE_MASK, PASSTHROUGH_TRACE_EVENTS);
      runPassthrough(s, this.design, seed, { maxCycles: cycles, trace });
      events = trace.events();
      this.traced.set(cycles, events);
    }
    return events;
  }
}

/**
 * Run one passthrough scenario under `designName`, traced (what `xivelab run --design D --trace
 * out.json` exports).
 */
export function tracePassthrough(ref: ScenarioRef, designName: string, seed: number): CapturedTrace {
  const design = designNamed(designName);
  return Trace.capture(PASSTHROUGH_TRACE_MASK, (trace) =>
    runPassthrough(ref.scenario, design, seed, { trace }),
  );
}

/** The invariants about host kernel objects the emulated machine does not use. */
const KVM_ONLY: ReadonlySet<InvariantId> = new Set<InvariantId>(['I1', 'I3', 'I7']);

/** Run one passthrough scenario under `designName`, checked against `reference`. */
export const runPassthroughCell: CellRunner = (
  ref: ScenarioRef,
  designName: string,
  seed: number,
  reference: Reference = new Reference(ref.scenario, seed),
): CellResult => {
  const design = designNamed(designName);
  const isReference = design.accel === 'emulated';
  // The reference design's run is the reference run itself; a design's run is traced, for the
  // violations' traces (a trace only records).
  const trace = isReference ? null : new Trace(PASSTHROUGH_TRACE_MASK, PASSTHROUGH_TRACE_EVENTS);
  const run = isReference
    ? reference.passthrough()
    : runPassthrough(ref.scenario, design, seed, trace === null ? {} : { trace });
  const f = findings(run, isReference ? null : reference.passthrough());
  const traces = new ShortestTraces(reference, design, run, trace);
  const outcome = (inv: InvariantId): InvariantOutcome => {
    const msgs = f[inv];
    if (msgs === null || (isReference && KVM_ONLY.has(inv))) return notApplicable();
    if (msgs.length === 0) return passed();
    // The run's own messages (I1, I2, I3, I7) already end with `(cycle n, seed s)`.
    const message = inv === 'I4' || inv === 'I5' || inv === 'I6' ? `${msgs[0]!} (seed ${seed})` : msgs[0]!;
    return failed(msgs.length, message, traces.of(inv));
  };
  const invariants = {
    I1: outcome('I1'),
    I2: outcome('I2'),
    I3: outcome('I3'),
    I4: outcome('I4'),
    I5: outcome('I5'),
    I6: outcome('I6'),
    I7: outcome('I7'),
  };
  const notes = [...run.notes];
  if (isReference)
    notes.push(
      'I1, I2, I3, I7 concern host kernel objects the emulated machine does not use; I6: the reference itself',
    );
  return cellResult(ref, designName, seed, { invariants, costs: run.costs, series: run.series, notes });
};
