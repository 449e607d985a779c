/**
 * Export trace events in the Chrome trace-event JSON format (the "JSON Object Format" of the
 * Trace Event Format document), which Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Tracks are who did the work: one per vCPU (TIMA, thread context, hcalls, the guest's handler;
 * under KVM the chip's thread contexts are host hardware threads, tracked as such), one per host
 * process (its faults, PTE installs, zaps, and the KVM/VMM work done in its context), one per
 * host kernel thread (hard-irq handlers, the irqfd worker) and, for what no thread runs, the
 * XIVE hardware (ESB sources, router). Handler runs are complete slices
 * (`ph: "X"`): the guest's interrupt handler from its ACK to the CPPR restore, an hcall to its
 * return, a page fault to its PTE install, an mmu-notifier invalidation to its zap. Flow arrows
 * (`ph: "s"`/`"t"`/`"f"`, one id per notification) link a trigger to its enqueue, to the ACK that
 * takes it and to its EOI. Arguments are named, numbers of hardware and addresses in hex.
 *
 * `ts` is the model's virtual time in µs, point events instants; when a run has no clock (every
 * event at the same instant, as in passthrough runs) the timeline is the event sequence instead,
 * each event a 1 µs slice, and `otherData.timeline` says so. A violation is a global instant at
 * the end. Pure: no I/O.
 */

import type { TraceEvent } from '../sim/trace.ts';
import { argNamesOf } from '../sim/trace-objects.ts';
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
} from '../sim/trace-sink.ts';

/**
 * Arguments that are counts, ids, levels, return codes or enums, shown in decimal; every other
 * argument is a number of the hardware or an address (irq numbers, PQ bits, EISNs, pfns,
 * addresses, register values) and is shown in hex.
 */
const DECIMAL_ARGS: ReadonlySet<string> = new Set([
  'pid',
  'child',
  'to',
  'newFd',
  'entries',
  'writable',
  'cpu',
  'vcpu',
  'cpus',
  'lpid',
  'slot',
  'change',
  'used',
  'vma',
  'event',
  'ptes',
  'npages',
  'nvec',
  'msix',
  'size',
  'write',
  'forward',
  'odd',
  'ring',
  'level',
  'priority',
  'prio',
  'target',
  'server',
  'ceded',
  'qindex',
  'qshift',
  'rc',
  'ret',
  'errno',
  'fd',
  'nrServers',
  'ranges',
  'oldRanges',
  'phb',
  'vector',
  'lsi',
  'ese',
  'op',
  'type',
  'xiveExploitation',
]);

/** `n` as `0x…` (`-0x…` when negative; non-integers as they are). */
export function hex(n: number): string {
  if (!Number.isInteger(n)) return String(n);
  return n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`;
}

/** `e`'s arguments by name, hardware numbers and addresses in hex. */
export function namedArgs(e: TraceEvent): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  argNamesOf(e.kind).forEach((name, i) => {
    const v = e.args[i]!;
    out[name] = DECIMAL_ARGS.has(name) ? v : hex(v);
  });
  return out;
}

/**
 * The inverse of {@link namedArgs}: an exported event's named arguments (numbers, or hex
 * strings) back into the model's four-number argument tuple, in the contract's order.
 */
export function argsFromNamed(
  kind: string,
  args: Readonly<Record<string, unknown>>,
): [number, number, number, number] {
  const out: [number, number, number, number] = [0, 0, 0, 0];
  argNamesOf(kind).forEach((name, i) => {
    const v = args[name];
    if (typeof v === 'number') out[i] = v;
    else if (typeof v === 'string') out[i] = v.startsWith('-') ? -Number(v.slice(1)) : Number(v);
  });
  return out;
}

/** A Chrome trace event (the fields this exporter writes). */
export interface ChromeEvent {
  name: string;
  ph: 'X' | 'i' | 'M' | 's' | 't' | 'f';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  s?: 'g';
  cat?: string;
  id?: number;
  bp?: 'e';
  args?: Record<string, number | string>;
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

/** The track groups (Chrome processes), in display order. */
const VCPUS = 1;
const HW_THREADS = 5;
const PROCESSES = 2;
const KTHREADS = 3;
const HARDWARE = 4;
const GROUP_NAMES: Readonly<Record<number, string>> = {
  [VCPUS]: 'guest vCPUs',
  [PROCESSES]: 'host processes',
  [KTHREADS]: 'host kernel threads',
  [HARDWARE]: 'XIVE hardware',
  [HW_THREADS]: 'host hardware threads (XIVE thread contexts)',
};

/**
 * Thread ids are unique across the groups (`group × TID_STRIDE + n`, never 0): Perfetto's JSON
 * importer names a thread by its tid alone (JsonTraceParserImpl::ParseJsonPacket →
 * ProcessTracker::UpdateThreadName), and tid 0 is its idle thread.
 */
const TID_STRIDE = 10_000;

/** A track: a Chrome (pid, tid) pair and its name. */
interface Track {
  pid: number;
  tid: number;
  name: string;
}

/** Track `n` of group `pid`. */
const track = (pid: number, n: number, name: string): Track => ({ pid, tid: pid * TID_STRIDE + n, name });

/** Host kernel threads by event kind (work no process context runs). */
const KTHREAD_OF: Readonly<Record<string, readonly [number, string]>> = {
  'host.irq': [1, 'hardirq (host XIVE)'],
  'kvm.irqfd.inject': [1, 'hardirq (host XIVE)'],
  'xive.set_vcpu_affinity': [1, 'hardirq (host XIVE)'],
  'kvm.irqfd.assign': [2, 'kworker (irqfd)'],
  'kvm.irqfd.shutdown': [2, 'kworker (irqfd)'],
};

/** The VMM's track: its host process when a VM names it, else a track of its own. */
function vmmTrack(vmmPid: number | undefined): Track {
  return vmmPid === undefined ? track(PROCESSES, 0, 'VMM') : track(PROCESSES, vmmPid, `pid ${vmmPid} (VMM)`);
}

/** Who ran `e`. */
function trackOf(e: TraceEvent, vmmPid: number | undefined, kvm: boolean): Track {
  const names = argNamesOf(e.kind);
  const cpuAt = names.findIndex((n) => n === 'cpu' || n === 'vcpu');
  if (cpuAt >= 0) {
    const cpu = e.args[cpuAt]!;
    // Under KVM the chip's thread contexts are the host's hardware threads, not the guest's vCPUs.
    return kvm && e.cat & (TRACE_ESB | TRACE_ROUTER | TRACE_TIMA)
      ? track(HW_THREADS, cpu + 1, `hardware thread ${cpu}`)
      : track(VCPUS, cpu + 1, `vCPU ${cpu}`);
  }
  const k = KTHREAD_OF[e.kind];
  if (k !== undefined) return track(KTHREADS, k[0], k[1]);
  const pidAt = names.indexOf('pid');
  if (pidAt >= 0 && e.kind !== 'kvm.vm.create') {
    const pid = e.args[pidAt]!;
    return pid === vmmPid ? vmmTrack(vmmPid) : track(PROCESSES, pid, `pid ${pid}`);
  }
  if (e.cat & (TRACE_KVM | TRACE_VMM | TRACE_HCALL | TRACE_MM | TRACE_GUEST)) return vmmTrack(vmmPid);
  if (e.cat & TRACE_ROUTER) return track(HARDWARE, 2, 'router (EAS/END)');
  if (e.cat & (TRACE_ESB | TRACE_TIMA)) return track(HARDWARE, 1, 'ESB sources');
  if (e.cat & TRACE_GUEST_ERROR) return track(HARDWARE, 3, 'guest errors');
  return track(HARDWARE, 4, `cat ${hex(e.cat)}`);
}

/** A handler run: events `[begin, end]` (indices) on one track, named. */
interface Slice {
  begin: number;
  end: number;
  name: string;
}

/** NSR of an ACK's `nsrCppr`: non-zero when the ACK took an interrupt. */
const ackTook = (e: TraceEvent): boolean => e.kind === 'tctx.accept' && e.args[2]! >= 0x100;

/**
 * The handler runs in `events`: the guest's irq handler (an ACK that took an interrupt, to the
 * next ACK or CPPR change of that vCPU), an hcall to its return, a page fault to the PTE it
 * installed, an mmu-notifier invalidation to its zap.
 */
function handlerSlices(events: readonly TraceEvent[], tracks: readonly Track[]): Slice[] {
  const out: Slice[] = [];
  // Open runs by track and kind.
  const open = new Map<string, { begin: number; name: string; key: number }>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const track = `${tracks[i]!.pid}:${tracks[i]!.tid}:`;
    const start = (kind: string, name: string, key: number): void => {
      open.set(track + kind, { begin: i, name, key });
    };
    /** Close the open run of `kind` (with `key`, when given) at event `end`. */
    const close = (kind: string, end: number, key?: number): void => {
      const o = open.get(track + kind);
      if (o === undefined || (key !== undefined && o.key !== key)) return;
      out.push({ begin: o.begin, end: Math.max(o.begin, end), name: o.name });
      open.delete(track + kind);
    };
    switch (e.kind) {
      case 'tctx.accept':
        // The next ACK starts after the handler: the run ends just before it.
        close('irq', i - 1);
        if (ackTook(e)) start('irq', 'irq handler', 0);
        break;
      case 'tctx.cppr':
        close('irq', i);
        break;
      case 'guest.irq': {
        const o = open.get(`${track}irq`);
        if (o !== undefined) o.name = `irq handler lisn ${hex(e.args[2]!)}`;
        break;
      }
      case 'hcall':
        start('hcall', `hcall ${hex(e.args[1]!)}`, e.args[1]!);
        break;
      case 'hcall.xive':
      case 'hcall.unimplemented':
        close('hcall', i, e.args[1]!);
        break;
      case 'mm.fault':
        start('fault', `page fault ${hex(e.args[1]!)}`, e.args[1]!);
        break;
      case 'mm.insert_pfn':
        close('fault', i, e.args[1]!);
        break;
      case 'mm.notify.start':
        start('zap', `invalidate ${hex(e.args[1]!)}-${hex(e.args[2]!)}`, 0);
        break;
      case 'mm.zap':
        close('zap', i);
        break;
    }
  }
  // A run the trace ends inside lasts to the end.
  for (const o of open.values()) out.push({ begin: o.begin, end: events.length - 1, name: o.name });
  return out;
}

/** A flow: the events (indices) one notification went through, trigger first. */
export type Flow = number[];

/**
 * The notifications' flows: a forwarded trigger (or EOI that re-triggers), the enqueue that
 * routed it, the ACK that took it on the thread it was presented to, and the EOI of its source
 * (an LSI's EOI load, an MSI's PQ reset to 00). A guest that drains its queue in a handler EOIs
 * an entry before any ACK of its own: that flow goes from the enqueue to the EOI.
 */
export function notificationFlows(events: readonly TraceEvent[]): Flow[] {
  const flows: Flow[] = [];
  const triggered = new Map<number, Flow>();
  let routing: Flow | null = null;
  /** Presented flows by thread, until an ACK takes them. */
  const awaitingAck = new Map<number, Flow[]>();
  /** Routed flows by source, until its EOI. */
  const awaitingEoi = new Map<number, Flow>();
  const eoi = (srcno: number, i: number): void => {
    const f = awaitingEoi.get(srcno);
    if (f === undefined) return;
    f.push(i);
    awaitingEoi.delete(srcno);
    for (const [cpu, fs] of awaitingAck)
      awaitingAck.set(
        cpu,
        fs.filter((x) => x !== f),
      );
  };
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    switch (e.kind) {
      case 'esb.eoi':
        eoi(e.args[0]!, i);
        if (e.args[3]) triggered.set(e.args[0]!, [i]);
        break;
      case 'esb.set_pq':
        if (e.args[2] === 0) eoi(e.args[0]!, i);
        break;
      case 'esb.trigger':
      case 'esb.lsi':
        if (e.args[3]) triggered.set(e.args[0]!, [i]);
        break;
      case 'esb.forward':
        routing = triggered.get(e.args[0]!) ?? [i];
        triggered.delete(e.args[0]!);
        awaitingEoi.set(e.args[0]!, routing);
        flows.push(routing);
        break;
      case 'router.enqueue':
        routing?.push(i);
        break;
      case 'router.present':
        if (routing !== null) {
          const cpu = e.args[0]!;
          awaitingAck.set(cpu, [...(awaitingAck.get(cpu) ?? []), routing]);
          routing = null;
        }
        break;
      case 'router.masked':
      case 'router.escalate':
        routing = null;
        break;
      case 'tctx.accept':
        if (ackTook(e)) {
          for (const f of awaitingAck.get(e.args[0]!) ?? []) f.push(i);
          awaitingAck.delete(e.args[0]!);
        }
        break;
    }
  }
  return flows.filter((f) => f.length >= 2);
}

/** Convert `events` (oldest first) to a Chrome trace-event document. */
export function toChromeTrace(events: readonly TraceEvent[], info: TraceInfo): ChromeTrace {
  const timed = events.some((e) => e.time !== events[0]!.time);
  // µs from whole ns (at most 3 decimals: Perfetto's json::CoerceToTs reads them exactly).
  const ts = (e: TraceEvent): number => (timed ? e.time / 1000 : e.seq - events[0]!.seq);
  const span = (from: TraceEvent, to: TraceEvent): number =>
    timed ? (to.time - from.time) / 1000 : to.seq - from.seq + 1;
  const vmm = events.find((e) => e.kind === 'kvm.vm.create');
  const vmmPid = vmm === undefined ? undefined : vmm.args[1];
  const kvm = events.some((e) => (e.cat & TRACE_KVM) !== 0);
  const tracks = events.map((e) => trackOf(e, vmmPid, kvm));
  const slices = handlerSlices(events, tracks);
  const flows = notificationFlows(events);

  // What the trace is about goes to otherData: a process_name for pid 0 would rename Perfetto's
  // idle process.
  const out: ChromeEvent[] = [];
  const used = new Map<string, Track>();
  for (const t of tracks) used.set(`${t.pid}:${t.tid}`, t);
  const sorted = [...used.values()].sort((a, b) => a.pid - b.pid || a.tid - b.tid);
  for (const pid of new Set(sorted.map((t) => t.pid))) {
    out.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: GROUP_NAMES[pid]! } });
    out.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
  }
  for (const t of sorted) {
    out.push({ name: 'thread_name', ph: 'M', pid: t.pid, tid: t.tid, args: { name: t.name } });
    out.push({ name: 'thread_sort_index', ph: 'M', pid: t.pid, tid: t.tid, args: { sort_index: t.tid } });
  }

  const flowAt = new Map<number, ChromeEvent[]>();
  flows.forEach((f, id) => {
    f.forEach((i, n) => {
      const t = tracks[i]!;
      const ph = n === 0 ? 's' : n === f.length - 1 ? 'f' : 't';
      const ev: ChromeEvent = { name: 'notification', cat: 'flow', ph, id: id + 1, pid: t.pid, tid: t.tid };
      ev.ts = ts(events[i]!);
      if (ph !== 's') ev.bp = 'e';
      flowAt.set(i, [...(flowAt.get(i) ?? []), ev]);
    });
  });
  const sliceAt = new Map<number, Slice[]>();
  for (const s of slices) sliceAt.set(s.begin, [...(sliceAt.get(s.begin) ?? []), s]);
  events.forEach((e, i) => {
    const t = tracks[i]!;
    // A handler run encloses the events it spans: it comes first at its start.
    for (const s of sliceAt.get(i) ?? []) {
      const end = events[s.end]!;
      out.push({
        name: s.name,
        cat: 'handler',
        ph: 'X',
        pid: t.pid,
        tid: t.tid,
        ts: ts(e),
        dur: span(e, end),
        args: { from: e.seq, to: end.seq },
      });
    }
    // A point event lasts one step of the sequence timeline (a slice an arrow can bind to); in
    // virtual time it is an instant: many events share one nanosecond, and 1 ns slices would
    // overlap the handler runs around them.
    const ev: ChromeEvent = { name: e.kind, cat: 'event', ph: timed ? 'i' : 'X', pid: t.pid, tid: t.tid };
    ev.ts = ts(e);
    if (!timed) ev.dur = 1;
    ev.args = { seq: e.seq, ...namedArgs(e) };
    out.push(ev);
    // A flow step binds to the topmost slice of its track at its ts (FlowTracker::Begin / Step /
    // End → SliceTracker::GetTopmostSliceOnTrack): right after its event in the file, since
    // Perfetto's sorter keeps file order among instants and flow events of one ts.
    for (const f of flowAt.get(i) ?? []) out.push(f);
  });

  if (info.violation) {
    const last = events.length > 0 ? ts(events[events.length - 1]!) : 0;
    out.push({
      name: `violation ${info.violation.invariant}`,
      cat: 'violation',
      ph: 'i',
      s: 'g',
      pid: 0,
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
      : 'event sequence (the run has no clock: ts is the event number, 1 µs per event)',
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
