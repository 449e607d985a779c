/**
 * Export trace events in the Chrome trace-event JSON format (the "JSON Object Format" of the
 * Trace Event Format document), which Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Each model event becomes an instant event (`ph: "i"`, thread scope) on a track named after
 * its category (ESB, router, TIMA, hcall, mm, KVM, guest, VMM), with its four arguments and its
 * sequence number in `args`. Timestamps are the model's virtual time in µs (`ts` may be
 * fractional); when a trace carries no time (every event at the same instant), the sequence
 * number is the timeline instead (1 µs per event) and the metadata says so. A violation is a
 * global instant event at the end. Pure: no I/O.
 */

import {
  TRACE_ESB,
  TRACE_GUEST,
  TRACE_GUEST_ERROR,
  TRACE_HCALL,
  TRACE_KVM,
  TRACE_MM,
  TRACE_ROUTER,
  TRACE_TIMA,
  TRACE_VMM,
} from '../hw/trace-sink.ts';
import type { TraceEvent } from '../sim/trace.ts';

/** Track (thread) of each category, in display order. */
const TRACKS: readonly (readonly [number, string])[] = [
  [TRACE_ESB, 'ESB'],
  [TRACE_ROUTER, 'router'],
  [TRACE_TIMA, 'TIMA'],
  [TRACE_HCALL, 'hcall'],
  [TRACE_MM, 'mm'],
  [TRACE_KVM, 'KVM'],
  [TRACE_GUEST, 'guest'],
  [TRACE_VMM, 'VMM'],
  [TRACE_GUEST_ERROR, 'guest error'],
];

/** A Chrome trace event (the fields this exporter writes). */
export interface ChromeEvent {
  name: string;
  ph: 'i' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  s?: 't' | 'g';
  cat?: string;
  args: Record<string, number | string>;
}

/** A Chrome trace-event JSON document. */
export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ns';
  otherData: Record<string, string | number>;
}

/** What the trace is about (goes to `otherData` and the process name). */
export interface TraceInfo {
  scenario: string;
  design: string;
  seed: number;
  /** A violation to mark at the end of the timeline. */
  violation?: { invariant: string; message: string };
  /** Older events the ring had already overwritten. */
  dropped?: number;
}

const PID = 1;

function track(cat: number): [number, string] {
  for (let i = 0; i < TRACKS.length; i++) {
    const [bit, name] = TRACKS[i]!;
    if (cat & bit) return [i + 1, name];
  }
  return [TRACKS.length + 1, `cat 0x${cat.toString(16)}`];
}

/** Convert `events` (oldest first) to a Chrome trace-event document. */
export function toChromeTrace(events: readonly TraceEvent[], info: TraceInfo): ChromeTrace {
  const timed = events.some((e) => e.time !== events[0]!.time);
  const ts = (e: TraceEvent): number => (timed ? e.time / 1000 : e.seq - events[0]!.seq);
  const out: ChromeEvent[] = [
    {
      name: 'process_name',
      ph: 'M',
      pid: PID,
      tid: 0,
      args: { name: `xivelab ${info.scenario} × ${info.design} (seed ${info.seed})` },
    },
  ];
  const used = new Map<number, string>();
  for (const e of events) {
    const [tid, name] = track(e.cat);
    used.set(tid, name);
  }
  for (const [tid, name] of [...used].sort((a, b) => a[0] - b[0])) {
    out.push({ name: 'thread_name', ph: 'M', pid: PID, tid, args: { name } });
    out.push({ name: 'thread_sort_index', ph: 'M', pid: PID, tid, args: { sort_index: tid } });
  }
  for (const e of events) {
    const [tid, name] = track(e.cat);
    out.push({
      name: e.kind,
      cat: name,
      ph: 'i',
      s: 't',
      pid: PID,
      tid,
      ts: ts(e),
      args: { seq: e.seq, a0: e.args[0], a1: e.args[1], a2: e.args[2], a3: e.args[3] },
    });
  }
  if (info.violation) {
    const last = events.length > 0 ? ts(events[events.length - 1]!) : 0;
    out.push({
      name: `violation ${info.violation.invariant}`,
      cat: 'violation',
      ph: 'i',
      s: 'g',
      pid: PID,
      tid: 0,
      ts: last,
      args: { message: info.violation.message },
    });
  }
  const otherData: Record<string, string | number> = {
    tool: 'xivelab',
    scenario: info.scenario,
    design: info.design,
    seed: info.seed,
    events: events.length,
    timeline: timed
      ? 'virtual time (ts in µs)'
      : 'event sequence (1 µs per event: the trace carries no time)',
  };
  if (info.dropped !== undefined) otherData.dropped = info.dropped;
  if (info.violation) otherData.violation = info.violation.message;
  return { traceEvents: out, displayTimeUnit: 'ns', otherData };
}

/** A file name for a violation's trace: `<scenario>--<design>--<invariant>.trace.json`, safe characters only. */
export function violationTraceFile(scenario: string, design: string, invariant: string): string {
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${safe(scenario)}--${safe(design)}--${safe(invariant)}.trace.json`;
}
