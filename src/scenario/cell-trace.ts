/**
 * What the cell runners share about violations: which of I4/I5 an accounting violation breaks,
 * the search for the shortest run that still shows a violation (bisection of a prefix of the
 * same seeded run), the events a violation keeps — the causal history of the objects it names
 * and the tail of the run — and what an exported trace records.
 */

import { Trace, type TraceEvent } from '../sim/trace.ts';
import { objectsNamedIn, touches } from '../sim/trace-objects.ts';
import { TRACE_ESB, TRACE_HCALL, TRACE_ROUTER, TRACE_TIMA, TRACE_VMM } from '../sim/trace-sink.ts';
import { failed, type InvariantOutcome, passed } from './cell.ts';
import type { Result } from './result.ts';
import type { Scenario } from './schema.ts';

/** A violation as a run result carries it. */
export type Violation = Result['violations'][number];

/** Events kept in a violation's trace (the tail of the shortest run that shows it). */
export const VIOLATION_TRACE_EVENTS = 256;

/** At most this many events of a violation's causal history are kept (half the oldest, half the latest). */
export const VIOLATION_HISTORY_EVENTS = 2048;

/**
 * The events of a violation's trace: every event touching an object `message` names (the
 * mapping's creation, the faults that filled its PTEs, the zaps that missed them — at most
 * {@link VIOLATION_HISTORY_EVENTS}, the oldest and the latest), the VM's creation (which names
 * the VMM's process), and the last {@link VIOLATION_TRACE_EVENTS} events of the run, in order.
 */
export function causalHistory(events: readonly TraceEvent[], message: string): TraceEvent[] {
  const o = objectsNamedIn(message);
  const tail = events.length - VIOLATION_TRACE_EVENTS;
  const history = events.filter((e, i) => i < tail && (e.kind === 'kvm.vm.create' || touches(e, o)));
  const half = VIOLATION_HISTORY_EVENTS / 2;
  const keep = new Set(
    history.length <= VIOLATION_HISTORY_EVENTS
      ? history
      : [...history.slice(0, half), ...history.slice(-half)],
  );
  return events.filter((e, i) => i >= tail || keep.has(e));
}

/** Trace categories a workload run's exported trace records. */
export const EXPORT_TRACE_MASK = TRACE_ESB | TRACE_ROUTER | TRACE_HCALL | TRACE_TIMA | TRACE_VMM;

/** Which of I4/I5 an accounting violation breaks. */
export function classifyViolation(v: Violation): 'I4' | 'I5' {
  switch (v.invariant) {
    case 'no-unknown-eisn':
      return 'I5';
    case 'eq-read-once':
      // "read twice" is a spurious entry; "left or lost" a lost one.
      return /read twice/.test(v.message) ? 'I5' : 'I4';
    case 'eq-handled-once':
      return /spurious/.test(v.message) ? 'I5' : 'I4';
    default:
      // trigger-accounted, event-routed, trigger-delivered, queue-overflow, step-limit: an event
      // went missing, or the run did not finish.
      return 'I4';
  }
}

/** The smallest `n` in [lo, hi] for which `shows(n)` holds, assuming it holds from there on
 * (hi when it never holds below). */
export function shortestPrefix(lo: number, hi: number, shows: (n: number) => boolean): number {
  let a = lo;
  let b = hi;
  while (a < b) {
    const mid = Math.floor((a + b) / 2);
    if (shows(mid)) b = mid;
    else a = mid + 1;
  }
  return b;
}

/** The same scenario stopped after `limit` (triggers, or ns when it stops on duration only). */
function limited(s: Scenario, limit: number): Scenario {
  const w = s.workload;
  return w.triggers !== undefined
    ? { ...s, workload: { ...w, triggers: limit } }
    : { ...s, workload: { ...w, duration: limit } };
}

function sameViolation(a: Violation, b: Violation): boolean {
  return a.invariant === b.invariant && a.lisn === b.lisn && a.cpu === b.cpu;
}

/** Runs a workload scenario — the cell's, or a prefix of it — optionally traced. */
export type ScenarioRun = (s: Scenario, trace?: Trace) => Result;

/** The events of a traced run about `v`'s interrupt numbered `srcno` (all, when none). */
function eventsAbout(events: TraceEvent[], srcno: number): TraceEvent[] {
  const kept: TraceEvent[] = [];
  let routing = false;
  for (const e of events) {
    const mine = e.kind.startsWith('esb.') || e.kind === 'router.masked' ? e.args[0] === srcno : false;
    if (mine) {
      kept.push(e);
      routing = e.kind === 'esb.forward';
    } else if (routing && e.kind.startsWith('router.')) {
      kept.push(e);
      if (e.kind === 'router.enqueue') routing = false;
    }
  }
  return kept;
}

/**
 * The shortest run found that still shows `v`: bisect the workload's stop condition (the run
 * with a smaller limit is a prefix of the same seeded run), then re-run it with a trace and keep
 * the events about `v`'s interrupt (or the tail, when it names none). `srcnoOf` numbers the
 * interrupt as the traced source does (emulated: the LISN itself; under KVM: the chip's IPI).
 */
export function shortestWorkloadTrace(
  s: Scenario,
  v: Violation,
  run: ScenarioRun,
  srcnoOf: (lisn: number) => number = (lisn) => lisn,
): TraceEvent[] {
  const full = s.workload.triggers ?? s.workload.duration ?? 1;
  const shows = (limit: number): boolean =>
    run(limited(s, limit)).violations.some((x) => sameViolation(x, v));
  const hi = shortestPrefix(1, full, shows);
  const limit = hi < full && shows(hi) ? hi : full;
  const trace = new Trace(EXPORT_TRACE_MASK, 1 << 18);
  run(limited(s, limit), trace);
  const events = trace.events();
  if (v.lisn === undefined) return events.slice(-VIOLATION_TRACE_EVENTS);
  return eventsAbout(events, srcnoOf(v.lisn)).slice(-VIOLATION_TRACE_EVENTS);
}

/**
 * I4 and I5 from a workload run's accounting violations, each failing one with the shortest
 * trace `traceOf` finds for its first violation.
 */
export function accountingOutcomes(
  result: Result,
  traceOf: (v: Violation) => TraceEvent[],
): Record<'I4' | 'I5', InvariantOutcome> {
  const byInv: Record<'I4' | 'I5', Violation[]> = { I4: [], I5: [] };
  for (const v of result.violations) byInv[classifyViolation(v)].push(v);
  const outcome = (vs: readonly Violation[]): InvariantOutcome =>
    vs.length === 0 ? passed() : failed(vs.length, vs[0]!.message, traceOf(vs[0]!));
  return { I4: outcome(byInv.I4), I5: outcome(byInv.I5) };
}
