/**
 * The cell runner of passthrough scenarios (issue 5): every design, the emulated reference
 * included, runs the scenario with {@link runPassthrough}; the invariants come from what the run
 * saw on the host/VMM state (I1, I2, I3, I7), from the guest's deliveries against the PQ model of
 * the same MSIs (I4 lost, I5 spurious) and from the guest-visible view and delivery trace against
 * the emulated reference's (I6). A failing invariant carries the shortest run that shows it (the
 * fewest cycles, by bisection) traced.
 */

import { deliveryFindings, firstDifference } from '../check/passthrough.ts';
import type { Design } from '../designs/design.ts';
import { emulated } from '../designs/emulated.ts';
import { designNamed } from '../designs/index.ts';
import { TRACE_ESB, TRACE_KVM, TRACE_MM, TRACE_ROUTER, TRACE_VMM } from '../hw/trace-sink.ts';
import { Trace, type TraceEvent } from '../sim/trace.ts';
import {
  type CellResult,
  type CellRunner,
  type InvariantId,
  type InvariantOutcome,
  notApplicable,
  passed,
  type ScenarioRef,
  withModeledTime,
} from './cell.ts';
import { type PassthroughRun, runPassthrough, type StateInvariant } from './passthrough-runner.ts';
import type { Scenario } from './schema.ts';

/** Events kept with a violation. */
const VIOLATION_EVENTS = 256;
/** What a passthrough violation trace records. */
const PASSTHROUGH_TRACE_MASK = TRACE_ESB | TRACE_ROUTER | TRACE_KVM | TRACE_MM | TRACE_VMM;

/** Emulated reference runs, per scenario object and (seed, cycles): designs share them. */
const references = new WeakMap<Scenario, Map<string, PassthroughRun>>();

/** The emulated reference run of `s` (memoized: it is the same for every design). */
function reference(s: Scenario, seed: number, maxCycles?: number): PassthroughRun {
  let m = references.get(s);
  if (m === undefined) {
    m = new Map();
    references.set(s, m);
  }
  const key = `${seed}/${maxCycles ?? 'all'}`;
  let r = m.get(key);
  if (r === undefined) {
    r = runPassthrough(s, emulated, seed, maxCycles === undefined ? {} : { maxCycles });
    m.set(key, r);
  }
  return r;
}

/** All findings of a run per invariant (I6 against `ref`, or n/a when `ref` is null). */
function findings(run: PassthroughRun, ref: PassthroughRun | null): Record<InvariantId, string[] | null> {
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

/** The fewest cycles that still show a failure of `inv`, traced. */
function shortestTrace(s: Scenario, design: Design, seed: number, inv: InvariantId): TraceEvent[] {
  const ref = (cycles: number): PassthroughRun | null => (inv === 'I6' ? reference(s, seed, cycles) : null);
  const shows = (cycles: number): boolean =>
    (findings(runPassthrough(s, design, seed, { maxCycles: cycles }), ref(cycles))[inv]?.length ?? 0) > 0;
  let lo = 1;
  let hi = s.passthrough!.cycles;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (shows(mid)) hi = mid;
    else lo = mid + 1;
  }
  const trace = new Trace(PASSTHROUGH_TRACE_MASK, 1 << 16);
  runPassthrough(s, design, seed, { maxCycles: hi, trace });
  return trace.events().slice(-VIOLATION_EVENTS);
}

/**
 * Run one passthrough scenario under `designName`, traced (what `xivelab run --design D --trace
 * out.json` exports).
 */
export function tracePassthrough(
  ref: ScenarioRef,
  designName: string,
  seed: number,
): { events: TraceEvent[]; dropped: number } {
  const design = designNamed(designName);
  return Trace.capture(PASSTHROUGH_TRACE_MASK, (trace) =>
    runPassthrough(ref.scenario, design, seed, { trace }),
  );
}

/** Run one passthrough scenario under `designName`. */
export const runPassthroughCell: CellRunner = (
  ref: ScenarioRef,
  designName: string,
  seed: number,
): CellResult => {
  const design = designNamed(designName);
  const s = ref.scenario;
  const run = runPassthrough(s, design, seed);
  const f = findings(run, design.accel === 'emulated' ? null : reference(s, seed));
  const kvmOnly = new Set<InvariantId>(['I1', 'I3', 'I7']);
  const outcome = (inv: InvariantId): InvariantOutcome => {
    const msgs = f[inv];
    if (msgs === null || (design.accel === 'emulated' && kvmOnly.has(inv))) return notApplicable();
    if (msgs.length === 0) return passed();
    return {
      status: 'fail',
      violations: msgs.length,
      // The run's own messages (I1, I2, I3, I7) already end with `(cycle n, seed s)`.
      first: {
        message: inv === 'I4' || inv === 'I5' || inv === 'I6' ? `${msgs[0]!} (seed ${seed})` : msgs[0]!,
        trace: shortestTrace(s, design, seed, inv),
      },
    };
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
  if (design.accel === 'emulated')
    notes.push(
      'I1, I2, I3, I7 concern host kernel objects the emulated machine does not use; I6: the reference itself',
    );
  return {
    scenario: ref.name,
    design: designName,
    seed,
    invariants,
    costs: withModeledTime(run.costs),
    series: run.series,
    notes,
  };
};
