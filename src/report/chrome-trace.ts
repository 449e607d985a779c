/**
 * Export trace events in the Chrome trace-event JSON format (the "JSON Object Format" of the
 * Trace Event Format document), which Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Tracks are who did the work: one per vCPU (TIMA, thread context, hcalls, the guest's handler),
 * one per host process (its faults, PTE installs, zaps, and the KVM/VMM work done in its
 * context), one per host kernel thread (hard-irq handlers, the irqfd worker) and, for what no
 * thread runs, the XIVE hardware (ESB sources, router). Handler runs are complete slices
 * (`ph: "X"`): the guest's interrupt handler from its ACK to the CPPR restore, an hcall to its
 * return, a page fault to its PTE install, an mmu-notifier invalidation to its zap. Flow arrows
 * (`ph: "s"`/`"t"`/`"f"`, one id per notification) link a trigger to its enqueue, to the ACK that
 * takes it and to its EOI. Arguments are named, numbers of hardware and addresses in hex.
 *
 * `ts` is the model's virtual time in µs; when a run has no clock (every event at the same
 * instant, as in passthrough runs) the timeline is the event sequence instead, 1 µs per event,
 * and `otherData.timeline` says so. A violation is a global instant at the end. Pure: no I/O.
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

/**
 * The names of each event kind's arguments, in the order the ring stores them.
 * Local copy until the typed trace contract lands; replaced by its declarations then.
 */
const ARG_NAMES: Readonly<Record<string, readonly string[]>> = {
  'esb.trigger': ['srcno', 'oldPq', 'newPq', 'forward'],
  'esb.eoi': ['srcno', 'oldPq', 'newPq', 'forward'],
  'esb.lsi': ['srcno', 'oldPq', 'newPq', 'forward'],
  'esb.forward': ['srcno'],
  end_esb: ['endIdx', 'ese', 'op', 'oldPq'],
  'router.masked': ['hwIrq'],
  'router.enqueue': ['endBlk', 'endIdx', 'qindex', 'qdata'],
  'router.escalate': ['endBlk', 'endIdx', 'escBlk', 'escIdx'],
  'router.present': ['cpu', 'ring', 'priority'],
  'opal.irq_config': ['hwIrq', 'vp', 'prio', 'lirq'],
  'opal.sync': ['type', 'hwIrq'],
  'tima.load': ['cpu', 'offset', 'size', 'value'],
  'tima.store': ['cpu', 'offset', 'size', 'value'],
  'tctx.os_line': ['cpu', 'level'],
  'tctx.hv_line': ['cpu', 'level'],
  'tctx.ipb': ['cpu', 'ring', 'ipb', 'pipr'],
  'tctx.cppr': ['cpu', 'ring', 'oldCppr', 'cppr'],
  'tctx.accept': ['cpu', 'ring', 'nsrCppr'],
  'phb.plug': ['phb', 'slot', 'msiHwBase'],
  'phb.unplug': ['phb', 'slot'],
  'mm.zap': ['pid', 'start', 'end', 'ptes'],
  'mm.insert_pfn': ['pid', 'address', 'pfn', 'vma'],
  'mm.fault': ['pid', 'address', 'flags', 'vma'],
  'mm.notify.start': ['pid', 'start', 'end', 'event'],
  'kvm.vm.create': ['lpid', 'pid'],
  'kvm.vm.destroy': ['lpid'],
  'kvm.pt.fault_error': ['lpid', 'gfn', 'errno'],
  'kvm.memslot': ['lpid', 'slot', 'change', 'used'],
  'kvm.run.fail': ['vcpu', 'errno', 'gpa'],
  'kvm.exit.mmio': ['vcpu', 'gpa', 'size', 'write'],
  'kvm.exit.hcall': ['vcpu', 'opcode'],
  'kvm.xive.source': ['irq', 'ipiNumber', 'pq'],
  'kvm.xive.source_config': ['irq', 'target', 'priority', 'eisn'],
  'kvm.xive.eq_config': ['server', 'priority', 'qaddr', 'qshift'],
  'kvm.xive.escalation': ['server', 'ceded'],
  'kvm.xive.connect': ['server', 'vpId', 'cam'],
  'kvm.xive.esb_fault': ['irq', 'odd', 'pfn'],
  'kvm.xive.zap': ['irq', 'pgoff', 'npages'],
  'kvm.xive.set_mapped': ['guestIrq', 'hostHwIrq', 'prio'],
  'kvm.xive.clr_mapped': ['guestIrq', 'hostHwIrq', 'prio'],
  'kvm.irqfd.assign': ['gsi', 'ret'],
  'kvm.irqfd.shutdown': ['gsi'],
  'kvm.irqfd.inject': ['gsi', 'rc'],
  'kvm.passthru.set': ['guestGsi', 'hostIrq', 'hwIrq', 'rc'],
  'kvm.passthru.clr': ['guestGsi', 'hostIrq', 'hwIrq', 'rc'],
  'vfio.msi_enable': ['slot', 'nvec', 'msix'],
  'vfio.msi_disable': ['slot', 'nvec', 'msix'],
  'vfio.vector_set': ['vector', 'irq', 'rc'],
  'host.irq': ['virq', 'hwIrq'],
  'xive.set_vcpu_affinity': ['virq', 'hwIrq', 'forward'],
  hcall: ['cpu', 'opcode'],
  'hcall.unimplemented': ['cpu', 'opcode'],
  'hcall.xive': ['cpu', 'opcode', 'rc', 'arg1'],
  'cpu.ext_irq': ['cpu', 'level'],
  'cas.fail': ['rc'],
  'cas.done': ['xiveExploitation', 'ov5Byte23'],
  'kvm.run_failed': ['vcpu', 'errno'],
  'xive.claim': ['lisn', 'lsi'],
  'xive.free': ['lisn'],
  'xive.kvm.connect': ['fd', 'nrServers'],
  'vfio.plug': ['phb', 'slot', 'firstLisn', 'nvec'],
  'vfio.unplug': ['phb', 'slot', 'firstLisn'],
  'as.rebuild': ['ranges', 'oldRanges'],
  'guest.boot': ['cpus', 'prio'],
  'guest.irq': ['cpu', 'virq', 'lisn'],
  'guest.spurious': ['cpu'],
  'guest.cpu_down': ['cpu'],
  'guest.cpu_up': ['cpu'],
};

/** The names of `kind`'s arguments (`a0`..`a3` for a kind the contract does not declare). */
export function argNamesOf(kind: string): readonly string[] {
  return ARG_NAMES[kind] ?? ['a0', 'a1', 'a2', 'a3'];
}

/**
 * Arguments that are counts, ids, levels, return codes or enums, shown in decimal; every other
 * argument is a number of the hardware or an address (irq numbers, PQ bits, EISNs, pfns,
 * addresses, register values) and is shown in hex.
 */
const DECIMAL_ARGS: ReadonlySet<string> = new Set([
  'pid',
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
const PROCESSES = 2;
const KTHREADS = 3;
const HARDWARE = 4;
const GROUP_NAMES: Readonly<Record<number, string>> = {
  [VCPUS]: 'guest vCPUs',
  [PROCESSES]: 'host processes',
  [KTHREADS]: 'host kernel threads',
  [HARDWARE]: 'XIVE hardware',
};

/** A track: a Chrome (pid, tid) pair and its name. */
interface Track {
  pid: number;
  tid: number;
  name: string;
}

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
  return vmmPid === undefined
    ? { pid: PROCESSES, tid: 0, name: 'VMM' }
    : { pid: PROCESSES, tid: vmmPid, name: `pid ${vmmPid} (VMM)` };
}

/** Who ran `e`. */
function trackOf(e: TraceEvent, vmmPid: number | undefined): Track {
  const names = argNamesOf(e.kind);
  const cpuAt = names.findIndex((n) => n === 'cpu' || n === 'vcpu');
  if (cpuAt >= 0) return { pid: VCPUS, tid: e.args[cpuAt]! + 1, name: `vCPU ${e.args[cpuAt]}` };
  const k = KTHREAD_OF[e.kind];
  if (k !== undefined) return { pid: KTHREADS, tid: k[0], name: k[1] };
  const pidAt = names.indexOf('pid');
  if (pidAt >= 0 && e.kind !== 'kvm.vm.create') {
    const pid = e.args[pidAt]!;
    return pid === vmmPid ? vmmTrack(vmmPid) : { pid: PROCESSES, tid: pid, name: `pid ${pid}` };
  }
  if (e.cat & (TRACE_KVM | TRACE_VMM | TRACE_HCALL | TRACE_MM | TRACE_GUEST)) return vmmTrack(vmmPid);
  if (e.cat & TRACE_ROUTER) return { pid: HARDWARE, tid: 2, name: 'router (EAS/END)' };
  if (e.cat & (TRACE_ESB | TRACE_TIMA)) return { pid: HARDWARE, tid: 1, name: 'ESB sources' };
  if (e.cat & TRACE_GUEST_ERROR) return { pid: HARDWARE, tid: 3, name: 'guest errors' };
  return { pid: HARDWARE, tid: 4, name: `cat ${hex(e.cat)}` };
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
type Flow = number[];

/**
 * The notifications' flows: a forwarded trigger (or EOI that re-triggers), the enqueue that
 * routed it, the ACK on the vCPU it was presented to, and the EOI of its source.
 */
function notificationFlows(events: readonly TraceEvent[]): Flow[] {
  const flows: Flow[] = [];
  const triggered = new Map<number, Flow>();
  let routing: Flow | null = null;
  const awaitingAck = new Map<number, Flow[]>();
  const awaitingEoi = new Map<number, Flow>();
  const srcOf = new Map<Flow, number>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    switch (e.kind) {
      case 'esb.eoi': {
        const f = awaitingEoi.get(e.args[0]!);
        if (f !== undefined) {
          f.push(i);
          awaitingEoi.delete(e.args[0]!);
        }
        if (e.args[3]) triggered.set(e.args[0]!, [i]);
        break;
      }
      case 'esb.trigger':
      case 'esb.lsi':
        if (e.args[3]) triggered.set(e.args[0]!, [i]);
        break;
      case 'esb.forward':
        routing = triggered.get(e.args[0]!) ?? [i];
        triggered.delete(e.args[0]!);
        srcOf.set(routing, e.args[0]!);
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
          for (const f of awaitingAck.get(e.args[0]!) ?? []) {
            f.push(i);
            awaitingEoi.set(srcOf.get(f)!, f);
          }
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
  const ts = (e: TraceEvent): number => (timed ? e.time / 1000 : e.seq - events[0]!.seq);
  // A point event lasts one step of the sequence timeline; in virtual time it is an instant,
  // except a flow's anchor, which lasts 1 ns so the arrow has a slice to bind to.
  const pointDur = (anchor: boolean): number | undefined => (timed ? (anchor ? 0.001 : undefined) : 1);
  const vmm = events.find((e) => e.kind === 'kvm.vm.create');
  const vmmPid = vmm === undefined ? undefined : vmm.args[1];
  const tracks = events.map((e) => trackOf(e, vmmPid));
  const slices = handlerSlices(events, tracks);
  const flows = notificationFlows(events);
  const anchors = new Set(flows.flat());

  const out: ChromeEvent[] = [
    {
      name: 'process_name',
      ph: 'M',
      pid: 0,
      tid: 0,
      args: { name: `xivelab ${info.scenario} × ${info.design} (seed ${info.seed})` },
    },
  ];
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
        dur: ts(end) - ts(e) + (timed ? 0 : 1),
        args: { from: e.seq, to: end.seq },
      });
    }
    const dur = pointDur(anchors.has(i));
    const ev: ChromeEvent = {
      name: e.kind,
      cat: 'event',
      ph: dur === undefined ? 'i' : 'X',
      pid: t.pid,
      tid: t.tid,
    };
    ev.ts = ts(e);
    if (dur !== undefined) ev.dur = dur;
    ev.args = { seq: e.seq, ...namedArgs(e) };
    out.push(ev);
  });

  flows.forEach((f, id) => {
    f.forEach((i, n) => {
      const t = tracks[i]!;
      const last = n === f.length - 1;
      const ph = n === 0 ? 's' : last ? 'f' : 't';
      const ev: ChromeEvent = {
        name: 'notification',
        cat: 'flow',
        ph,
        id: id + 1,
        pid: t.pid,
        tid: t.tid,
        ts: ts(events[i]!),
      };
      if (ph !== 's') ev.bp = 'e';
      out.push(ev);
    });
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
