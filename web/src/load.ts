/**
 * What the app loads from `xivelab ui`'s server: what it was given, a compare report's
 * results.json, one cell's run (re-run by the server, or the violation trace results.json
 * carries), a Chrome trace file. Types are the core's own.
 */

import { argsFromNamed } from '../../src/report/chrome-trace.ts';
import { mostStaleStep } from '../../src/report/trace-state.ts';
import type { CellResult, InvariantId, Results } from '../../src/scenario/cell.ts';
import type { TraceEvent } from '../../src/sim/trace.ts';
import { TraceColumns } from '../../src/sim/trace-columns.ts';

/** What the server was given (`GET /api/input`). */
export type Input =
  | { kind: 'none' }
  | { kind: 'report'; name: string; results: string }
  | { kind: 'trace'; name: string; file: string }
  | { kind: 'scenario'; name: string; seed: string };

/** A violation marked on a run's timeline. */
export interface Marker {
  readonly invariant: string;
  readonly message: string;
  /** Index into the run's events. */
  readonly step: number;
  /** How the step was chosen, in words. */
  readonly where: string;
}

/** One run to step through. */
export interface Run {
  readonly title: string;
  readonly events: TraceColumns;
  readonly markers: readonly Marker[];
  /** Where the events came from, in words. */
  readonly note: string;
}

async function json<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).trim()}`);
  return (await r.json()) as T;
}

/** `GET /api/run`: a run's events as columns (their wire form: views on the bytes, nothing parsed). */
async function runColumns(url: string): Promise<{ columns: TraceColumns; dropped: number }> {
  performance.mark('run-fetch');
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).trim()}`);
  const out = TraceColumns.decode(await r.arrayBuffer());
  performance.mark('run');
  return out;
}

export const loadInput = (): Promise<Input> => json<Input>('api/input');
export const loadResults = (file: string): Promise<Results> => json<Results>(`data/${file}`);

/** The step of the event with sequence number `seq` (the last one when absent). */
function stepOfSeq(events: TraceColumns, seq: number): number {
  let lo = 0;
  let hi = events.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (events.seq[mid]! < seq) lo = mid + 1;
    else hi = mid;
  }
  return events.seq[lo] === seq ? lo : events.length - 1;
}

/**
 * The run of `cell`: the server re-runs it with the design's trace; where it cannot (a scenario
 * file it does not have), the first failing invariant's violation trace. Each failing
 * invariant is marked at its violation trace's last event.
 */
export async function loadCellRun(cell: CellResult): Promise<Run> {
  // I1…I7 in order (not cell.ts's INVARIANTS: that module brings zod into the page).
  const failing = (Object.keys(cell.invariants) as InvariantId[])
    .sort()
    .filter((i) => cell.invariants[i].status === 'fail');
  const title = `${cell.scenario} × ${cell.design} (seed ${cell.seed})`;
  const q = new URLSearchParams({ scenario: cell.scenario, design: cell.design, seed: String(cell.seed) });
  let events: TraceColumns;
  let note: string;
  try {
    const r = await runColumns(`api/run?${q}`);
    events = r.columns;
    note = `the whole run, re-run with its seed${r.dropped > 0 ? ` (its first ${r.dropped} events dropped)` : ''}`;
  } catch {
    const first = failing.length > 0 ? cell.invariants[failing[0]!].first : null;
    events = TraceColumns.of(first?.trace ?? []);
    note =
      first === null
        ? 'no events: the server cannot re-run this cell and it has no violation trace'
        : `the violation trace of ${failing[0]} from results.json (the server cannot re-run this cell)`;
  }
  const markers = failing.flatMap((inv): Marker[] => {
    const first = cell.invariants[inv].first;
    if (first === null || events.length === 0) return [];
    const last = first.trace.at(-1);
    const end = last ? stepOfSeq(events, last.seq) : events.length - 1;
    // A routing or isolation failure is in the mappings: mark where the most were stale.
    const stale = inv === 'I1' || inv === 'I2' ? mostStaleStep(events, end) : -1;
    return [
      stale >= 0
        ? {
            invariant: inv,
            message: first.message,
            step: stale,
            where: 'the last step with the most stale PTEs before it was found',
          }
        : {
            invariant: inv,
            message: first.message,
            step: end,
            where: 'the end of the shortest run that shows it',
          },
    ];
  });
  return { title, events, markers, note };
}

/** A Chrome trace event as `xivelab` writes it (report/chrome-trace.ts). */
interface ChromeEvent {
  name: string;
  ph: string;
  tid?: number;
  cat?: string;
  ts?: number;
  args?: Record<string, number | string>;
}

/** An interleaving explorer counterexample (`xivelab explore --trace`): one lane per thread. */
export interface Race {
  readonly title: string;
  readonly threads: readonly string[];
  readonly steps: readonly { readonly thread: number; readonly label: string; readonly effect: string }[];
  /** What went wrong (the explorer's kind and message). */
  readonly verdict: string;
  /** The command line that replays the schedule. */
  readonly replay: string;
  /**
   * The machine's trace events of the schedule, replayed by the server (each event's time is its
   * step: 0 the set-up, 1…n the steps); null when it cannot replay it.
   */
  readonly events: TraceColumns | null;
  /** Where the events came from, or why there are none, in words. */
  readonly note: string;
}

/** A counterexample's Chrome trace: thread names, one slice per step, the schedule in `metadata`. */
function toRace(
  doc: { traceEvents: ChromeEvent[]; metadata: Record<string, string> },
  events: TraceColumns | null,
  note: string,
): Race {
  const threads: string[] = [];
  const steps: { thread: number; label: string; effect: string; step: number }[] = [];
  for (const e of doc.traceEvents) {
    const a = e.args ?? {};
    if (e.ph === 'M' && e.name === 'thread_name') threads[e.tid ?? 0] = String(a.name ?? '');
    else if (e.ph === 'X')
      steps.push({ thread: e.tid ?? 0, label: e.name, effect: String(a.effect ?? ''), step: Number(a.step) });
  }
  steps.sort((x, y) => x.step - y.step);
  const m = doc.metadata;
  return {
    title: `${m.scenario} × ${m.design}`,
    threads,
    steps,
    verdict: `${m.kind}: ${m.message}`,
    replay: `xivelab explore ${m.scenario} --design ${m.design} --replay ${m.schedule}`,
    events,
    note,
  };
}

/**
 * A Chrome trace file back into events (the ones with `seq`, `a0`…`a3`), its violation as a
 * marker; an explorer counterexample as a {@link Race}.
 */
export async function loadTraceFile(file: string): Promise<Run | Race> {
  const doc = await json<{
    traceEvents: ChromeEvent[];
    otherData?: Record<string, string | number>;
    metadata?: Record<string, string>;
  }>(`data/${file}`);
  if (doc.metadata?.schedule !== undefined) {
    const metadata = doc.metadata;
    return runColumns(`api/race?${new URLSearchParams({ file })}`).then(
      ({ columns }) =>
        toRace(
          { traceEvents: doc.traceEvents, metadata },
          columns,
          `interleaving explorer counterexample; the machine's state replayed from ${columns.length} trace events of its schedule`,
        ),
      (e: unknown) =>
        toRace(
          { traceEvents: doc.traceEvents, metadata },
          null,
          `interleaving explorer counterexample (no state: ${e instanceof Error ? e.message : String(e)})`,
        ),
    );
  }
  const timed = String(doc.otherData?.timeline ?? '').startsWith('virtual time');
  const events: TraceEvent[] = [];
  const markers: Marker[] = [];
  for (const e of doc.traceEvents) {
    const a = e.args ?? {};
    if (e.ph === 'i' && e.cat === 'violation') {
      markers.push({
        invariant: e.name.replace(/^violation /, ''),
        message: String(a.message ?? ''),
        step: events.length - 1,
        where: 'the end of the trace',
      });
    } else if (e.cat === 'event' && typeof a.seq === 'number') {
      // Model events are instants in virtual time, or one-step slices on a sequence timeline.
      events.push({
        seq: a.seq,
        time: timed ? Math.round((e.ts ?? 0) * 1000) : 0,
        cat: 0,
        kind: e.name,
        args: argsFromNamed(e.name, a),
      });
    }
  }
  const d = doc.otherData ?? {};
  return {
    title: d.scenario !== undefined ? `${d.scenario} × ${d.design} (seed ${d.seed})` : file,
    events: TraceColumns.of(events),
    markers,
    note: `${file}: ${events.length} events`,
  };
}

/** The run of the scenario the server was given (run there at start-up). */
export async function loadScenarioRun(name: string, seed: string): Promise<Run> {
  const r = await runColumns('api/run');
  const note = `the scenario, run by xivelab ui${r.dropped > 0 ? ` (its first ${r.dropped} events dropped)` : ''}`;
  return { title: `${name} (seed ${seed})`, events: r.columns, markers: [], note };
}
