/**
 * The machine state a trace implies: replay a run's state-changing events and get, at any step,
 * the host processes' PTEs (grouped by VMA), KVM's memslots, the ESB sources' PQ bits, the
 * routing (EAS) entries, the ENDs' event queues and each vCPU's TIMA OS ring — what `xivelab ui`
 * shows beside the timeline. Pure and DOM-free: events in, plain data out.
 *
 * Each event kind that changes state has one handler in {@link HANDLERS} (what it changes, and
 * the keys of what changed, which the UI highlights); a kind without a handler changes nothing.
 * New event kinds plug in with one handler each.
 *
 * {@link TraceReplay} keeps a snapshot every {@link SNAPSHOT_EVERY} events, so the state at any
 * step costs at most that many handler calls after the first visit: a 1M-event trace scrubs
 * without replaying from the start.
 */

import { KVM_MR_DELETE } from '../host/kvm/memslots.ts';
import { TM_QW1_NSR_EO, TM_QW1_OS, xiveIpbToPipr, xivePriorityToIpb } from '../hw/xive/regs.ts';
import type { TraceEvent } from '../sim/trace.ts';
import type { TraceColumns } from '../sim/trace-columns.ts';

/** A present PTE of a process, as the trace shows it. */
export interface PteState {
  readonly pfn: number;
  /** The VMA the fault that installed it was in (the model's VMA id). */
  readonly vma: number;
  /** The KVM device irq whose ESB page it maps (from the device fault before it), −1 unknown. */
  readonly irq: number;
  /** What backed the irq when the PTE was installed: the host hw irq it was mapped to, −1 its IPI. */
  readonly backing: number;
  /** The irq has been re-pointed (set_mapped / clr_mapped) away from {@link backing} and no zap removed the PTE. */
  readonly stale: boolean;
}

/** One host process: its PTEs by virtual address. */
export interface ProcState {
  readonly ptes: Map<number, PteState>;
}

/** An ESB source's PQ bits, by the source number the trace gives. */
export interface SourceState {
  readonly pq: number;
}

/** A routing entry (the KVM device's source config, or the host chip's OPAL irq config). */
export interface EasState {
  readonly target: number;
  readonly prio: number;
  readonly eisn: number;
  /** Priority 0xff: the EAS is masked. */
  readonly masked: boolean;
  /** Passthrough: the host hardware irq the guest irq is mapped to (set_mapped), −1 none. */
  readonly hwIrq: number;
}

/** An END's event queue as the router wrote it. */
export interface EndState {
  /** Entries written. */
  readonly entries: number;
  /** The index of the last entry written. */
  readonly index: number;
  /** The generation (toggle) bit of the last entry. */
  readonly toggle: number;
  /** The EISN (data) of the last entry. */
  readonly lastData: number;
}

/** A vCPU's TIMA OS ring (QW1). */
export interface OsRingState {
  readonly ipb: number;
  readonly pipr: number;
  readonly cppr: number;
  /** The exception line to the vCPU (NSR EO). */
  readonly line: boolean;
}

/** A KVM memslot, by slot id (the trace names the change, not the range). */
export interface MemslotState {
  readonly lpid: number;
  /** KVM_MR_CREATE, KVM_MR_MOVE or KVM_MR_FLAGS_ONLY: the last change. */
  readonly change: number;
}

/** The state a trace implies up to some step. Maps are keyed by the numbers the events carry. */
export interface MachineState {
  readonly procs: Map<number, ProcState>;
  readonly memslots: Map<number, MemslotState>;
  /** Memslots in use, as KVM counted at the last change. */
  memslotsUsed: number;
  readonly sources: Map<number, SourceState>;
  /** Routing entries, keyed `guest:<irq>` (KVM device) or `hw:<irq>` (host chip). */
  readonly eas: Map<string, EasState>;
  /** ENDs, keyed `<blk>/<idx>`. */
  readonly ends: Map<string, EndState>;
  readonly osRings: Map<number, OsRingState>;
  /** The last KVM device ESB fault (irq), which the next PTE install belongs to; −1 none. */
  pendingFaultIrq: number;
}

/** The empty state (before the first event). */
export function emptyState(): MachineState {
  return {
    procs: new Map(),
    memslots: new Map(),
    memslotsUsed: 0,
    sources: new Map(),
    eas: new Map(),
    ends: new Map(),
    osRings: new Map(),
    pendingFaultIrq: -1,
  };
}

/** A copy sharing no mutable map with `s` (entries are immutable records). */
export function cloneState(s: MachineState): MachineState {
  const procs = new Map<number, ProcState>();
  for (const [pid, p] of s.procs) procs.set(pid, { ptes: new Map(p.ptes) });
  return {
    procs,
    memslots: new Map(s.memslots),
    memslotsUsed: s.memslotsUsed,
    sources: new Map(s.sources),
    eas: new Map(s.eas),
    ends: new Map(s.ends),
    osRings: new Map(s.osRings),
    pendingFaultIrq: s.pendingFaultIrq,
  };
}

/** Keys of what an event changed: `pte:<pid>:<addr>`, `slot:<n>`, `src:<n>`, `eas:<key>`, `end:<key>`, `os:<cpu>`. */
export type ChangeKeys = string[];

/** An event kind's effect on the state: changes `s` and returns what changed. */
export type EventHandler = (s: MachineState, a: readonly [number, number, number, number]) => ChangeKeys;

function proc(s: MachineState, pid: number): ProcState {
  let p = s.procs.get(pid);
  if (p === undefined) {
    p = { ptes: new Map() };
    s.procs.set(pid, p);
  }
  return p;
}

const NO_RING: OsRingState = { ipb: 0, pipr: 0xff, cppr: 0, line: false };

function osRing(s: MachineState, cpu: number, ring: number, f: (r: OsRingState) => OsRingState): ChangeKeys {
  if (ring !== TM_QW1_OS) return [];
  s.osRings.set(cpu, f(s.osRings.get(cpu) ?? NO_RING));
  return [`os:${cpu}`];
}

function setPq(s: MachineState, srcno: number, pq: number): ChangeKeys {
  s.sources.set(srcno, { pq });
  return [`src:${srcno}`];
}

/** KVM device irq `irq` is now backed by host hw irq `hw` (−1: its IPI): its PTEs that map another page are stale. */
function repoint(s: MachineState, irq: number, hw: number): ChangeKeys {
  const out: ChangeKeys = [];
  for (const [pid, p] of s.procs) {
    for (const [addr, pte] of p.ptes) {
      const stale = pte.backing !== hw;
      if (pte.irq === irq && pte.stale !== stale) {
        p.ptes.set(addr, { ...pte, stale });
        out.push(`pte:${pid}:${addr}`);
      }
    }
  }
  return out;
}

function setEas(s: MachineState, key: string, f: (e: EasState) => EasState): ChangeKeys {
  const old = s.eas.get(key) ?? { target: -1, prio: 0xff, eisn: 0, masked: true, hwIrq: -1 };
  s.eas.set(key, f(old));
  return [`eas:${key}`];
}

/**
 * The state-changing event kinds and their effect. Argument order is each event's `emit` call:
 * `mm.insert_pfn` (pid, address, pfn, vma), `mm.zap` (pid, start, end, cleared),
 * `kvm.xive.esb_fault` (irq, odd page, pgoff, 0), `kvm.memslot` (lpid, slot, change, used),
 * `esb.*` (srcno, old PQ, new PQ, forwarded), `router.enqueue` (blk, idx, qindex, qdata),
 * `tctx.*` (cpu, ring, …).
 */
export const HANDLERS: Readonly<Record<string, EventHandler>> = {
  'kvm.xive.esb_fault': (s, [irq]) => {
    s.pendingFaultIrq = irq;
    return [];
  },
  'mm.insert_pfn': (s, [pid, addr, pfn, vma]) => {
    const irq = s.pendingFaultIrq;
    const backing = irq < 0 ? -1 : (s.eas.get(`guest:${irq}`)?.hwIrq ?? -1);
    proc(s, pid).ptes.set(addr, { pfn, vma, irq, backing, stale: false });
    s.pendingFaultIrq = -1;
    return [`pte:${pid}:${addr}`];
  },
  'mm.zap': (s, [pid, start, end]) => {
    const p = s.procs.get(pid);
    if (p === undefined) return [];
    const out: ChangeKeys = [];
    for (const addr of p.ptes.keys()) {
      if (addr >= start && addr < end) {
        p.ptes.delete(addr);
        out.push(`pte:${pid}:${addr}`);
      }
    }
    return out;
  },
  'kvm.memslot': (s, [lpid, slot, change, used]) => {
    if (change === KVM_MR_DELETE) s.memslots.delete(slot);
    else s.memslots.set(slot, { lpid, change });
    s.memslotsUsed = used;
    return [`slot:${slot}`];
  },
  'esb.trigger': (s, [srcno, , pq]) => setPq(s, srcno, pq),
  'esb.eoi': (s, [srcno, , pq]) => setPq(s, srcno, pq),
  'esb.lsi': (s, [srcno, , pq]) => setPq(s, srcno, pq),
  'esb.set_pq': (s, [srcno, , pq]) => setPq(s, srcno, pq),
  'kvm.xive.source_config': (s, [irq, target, prio, eisn]) =>
    setEas(s, `guest:${irq}`, (e) => ({ ...e, target, prio, eisn, masked: prio === 0xff })),
  'opal.irq_config': (s, [hwIrq, vp, prio, lirq]) =>
    setEas(s, `hw:${hwIrq}`, (e) => ({ ...e, target: vp, prio, eisn: lirq, masked: prio === 0xff })),
  'kvm.xive.set_mapped': (s, [irq, hw]) => [
    ...setEas(s, `guest:${irq}`, (e) => ({ ...e, hwIrq: hw })),
    ...repoint(s, irq, hw),
  ],
  'kvm.xive.clr_mapped': (s, [irq]) => [
    ...setEas(s, `guest:${irq}`, (e) => ({ ...e, hwIrq: -1 })),
    ...repoint(s, irq, -1),
  ],
  'router.enqueue': (s, [blk, idx, qindex, qdata]) => {
    const key = `${blk}/${idx}`;
    const old = s.ends.get(key);
    s.ends.set(key, {
      entries: (old?.entries ?? 0) + 1,
      index: qindex,
      toggle: qdata >>> 31,
      lastData: qdata & 0x7fff_ffff,
    });
    return [`end:${key}`];
  },
  'tctx.ipb': (s, [cpu, ring, ipb, pipr]) => osRing(s, cpu, ring, (r) => ({ ...r, ipb, pipr })),
  'tctx.cppr': (s, [cpu, ring, , cppr]) => osRing(s, cpu, ring, (r) => ({ ...r, cppr })),
  'tctx.accept': (s, [cpu, ring, ret]) =>
    osRing(s, cpu, ring, (r) => {
      if (((ret >> 8) & TM_QW1_NSR_EO) === 0) return { ...r, cppr: ret & 0xff, line: false };
      const ipb = r.ipb & ~xivePriorityToIpb(ret & 0xff);
      return { ipb, pipr: xiveIpbToPipr(ipb), cppr: ret & 0xff, line: false };
    }),
  'tctx.os_line': (s, [cpu, level]) => osRing(s, cpu, TM_QW1_OS, (r) => ({ ...r, line: level !== 0 })),
};

/** Apply one event to `s`; returns what it changed (nothing for a kind without a handler). */
export function applyEvent(s: MachineState, e: TraceEvent): ChangeKeys {
  const h = HANDLERS[e.kind];
  return h === undefined ? [] : h(s, e.args);
}

/** The state after events `0..k` (inclusive) of `events`: the pure form of {@link TraceReplay.stateAt}. */
export function stateAt(events: readonly TraceEvent[], k: number): MachineState {
  const s = emptyState();
  for (let i = 0; i <= k && i < events.length; i++) applyEvent(s, events[i]!);
  return s;
}

/** {@link applyEvent} on columns: each kind's handler looked up once. */
class ColumnApplier {
  private readonly c: TraceColumns;
  private readonly handlers: readonly (EventHandler | undefined)[];

  constructor(c: TraceColumns) {
    this.c = c;
    this.handlers = c.kinds.map((k) => HANDLERS[k]);
  }

  apply(s: MachineState, i: number): ChangeKeys {
    const h = this.handlers[this.c.kind[i]!];
    if (h === undefined) return [];
    const a = this.c.args;
    return h(s, [a[4 * i]!, a[4 * i + 1]!, a[4 * i + 2]!, a[4 * i + 3]!]);
  }
}

/**
 * The last step in `0..end` after which the most PTEs are stale (−1: none ever is): where a
 * routing or isolation failure found by the end of a run shows best in the mappings.
 */
export function mostStaleStep(events: TraceColumns, end: number): number {
  const apply = new ColumnApplier(events);
  const s = emptyState();
  const stale = new Set<string>();
  let last = -1;
  let most = 0;
  for (let i = 0; i <= end && i < events.length; i++) {
    for (const key of apply.apply(s, i)) {
      if (!key.startsWith('pte:')) continue;
      const [, pid, addr] = key.split(':');
      if (s.procs.get(Number(pid))?.ptes.get(Number(addr))?.stale) stale.add(key);
      else stale.delete(key);
    }
    if (stale.size > 0 && stale.size >= most) {
      most = stale.size;
      last = i;
    }
  }
  return last;
}

/** Events between two snapshots. */
export const SNAPSHOT_EVERY = 4096;

/**
 * Replays a trace with a snapshot every {@link SNAPSHOT_EVERY} events, made on the way the first
 * time a step past it is asked for.
 */
export class TraceReplay {
  private readonly length: number;
  private readonly apply: ColumnApplier;
  /** snapshots[i]: the state before event `i * SNAPSHOT_EVERY`. */
  private readonly snapshots: MachineState[] = [emptyState()];

  constructor(events: TraceColumns) {
    this.length = events.length;
    this.apply = new ColumnApplier(events);
  }

  /** The state after event `k` (−1: before the first) and the keys event `k` changed. */
  stateAt(k: number): { state: MachineState; changed: ReadonlySet<string> } {
    const last = Math.min(k, this.length - 1);
    let snap = Math.min(Math.floor(Math.max(last, 0) / SNAPSHOT_EVERY), this.snapshots.length - 1);
    const s = cloneState(this.snapshots[snap]!);
    let changed: ChangeKeys = [];
    for (let i = snap * SNAPSHOT_EVERY; i <= last; i++) {
      changed = this.apply.apply(s, i);
      if ((i + 1) % SNAPSHOT_EVERY === 0 && (i + 1) / SNAPSHOT_EVERY === this.snapshots.length) {
        this.snapshots.push(cloneState(s));
        snap++;
      }
    }
    return { state: s, changed: new Set(last === k ? changed : []) };
  }
}
