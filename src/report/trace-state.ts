/**
 * The machine state a trace implies: replay a run's state-changing events and get, at any step,
 * the host processes' VMAs and the device PTEs in them, KVM's memslots and partition-scoped
 * entries, the ESB sources' PQ bits, the routing (EAS) entries, the ENDs' event queues and each
 * vCPU's TIMA OS ring — what `xivelab ui` shows beside a run's timeline and a race's lanes. Pure
 * and DOM-free: events in, plain data out.
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
import { PAGE_SIZE } from '../host/mm/constants.ts';
import { TM_QW1_NSR_EO, TM_QW1_OS, xiveIpbToPipr, xivePriorityToIpb } from '../hw/xive/regs.ts';
import type { TraceEvent } from '../sim/trace.ts';
import type { TraceColumns } from '../sim/trace-columns.ts';

/** A present device PTE of a process (installed by a KVM device ESB fault, or copied by fork). */
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

/** A VMA as the trace shows it: mapped by mmap or mremap, cut by munmap. */
export interface VmaState {
  readonly end: number;
  /** The file page (anonymous: the address's page) the VMA's start maps. */
  readonly pgoff: number;
}

/** One host process: its VMAs by start address, its device PTEs by virtual address. */
export interface ProcState {
  readonly vmas: Map<number, VmaState>;
  readonly ptes: Map<number, PteState>;
}

/** A partition-scoped entry: guest frame → host pfn. */
export interface PartitionEntry {
  readonly pfn: number;
  readonly writable: boolean;
}

/** A device ESB fault between its page read and its PTE install: what the page it read was. */
interface PendingFault {
  readonly irq: number;
  readonly backing: number;
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

/** A KVM memslot, by slot id. */
export interface MemslotState {
  readonly lpid: number;
  /** KVM_MR_CREATE, KVM_MR_MOVE or KVM_MR_FLAGS_ONLY: the last change. */
  readonly change: number;
  /** Its range (`kvm.memslot.range`), −1 before the trace gives it. */
  readonly baseGfn: number;
  readonly npages: number;
  readonly hva: number;
}

/** The state a trace implies up to some step. Maps are keyed by the numbers the events carry. */
export interface MachineState {
  readonly procs: Map<number, ProcState>;
  readonly memslots: Map<number, MemslotState>;
  /** Memslots in use, as KVM counted at the last change. */
  memslotsUsed: number;
  /** Partition-scoped entries, keyed `<lpid>:<gfn>`. */
  readonly partition: Map<string, PartitionEntry>;
  readonly sources: Map<number, SourceState>;
  /** Routing entries, keyed `guest:<irq>` (KVM device) or `hw:<irq>` (host chip). */
  readonly eas: Map<string, EasState>;
  /** ENDs, keyed `<blk>/<idx>`. */
  readonly ends: Map<string, EndState>;
  readonly osRings: Map<number, OsRingState>;
  /** KVM device ESB faults whose PTE is not installed yet, by the pfn they return. */
  readonly pendingFaults: Map<number, PendingFault>;
  /** Children forked whose copied PTEs are still to come: child pid → parent pid. */
  readonly forkedFrom: Map<number, number>;
}

/** The empty state (before the first event). */
export function emptyState(): MachineState {
  return {
    procs: new Map(),
    memslots: new Map(),
    memslotsUsed: 0,
    partition: new Map(),
    sources: new Map(),
    eas: new Map(),
    ends: new Map(),
    osRings: new Map(),
    pendingFaults: new Map(),
    forkedFrom: new Map(),
  };
}

/** A copy sharing no mutable map with `s` (entries are immutable records). */
export function cloneState(s: MachineState): MachineState {
  const procs = new Map<number, ProcState>();
  for (const [pid, p] of s.procs) procs.set(pid, { vmas: new Map(p.vmas), ptes: new Map(p.ptes) });
  return {
    procs,
    memslots: new Map(s.memslots),
    memslotsUsed: s.memslotsUsed,
    partition: new Map(s.partition),
    sources: new Map(s.sources),
    eas: new Map(s.eas),
    ends: new Map(s.ends),
    osRings: new Map(s.osRings),
    pendingFaults: new Map(s.pendingFaults),
    forkedFrom: new Map(s.forkedFrom),
  };
}

/**
 * Keys of what an event changed: `pte:<pid>:<addr>`, `vma:<pid>:<start>`, `slot:<n>`,
 * `pt:<lpid>:<gfn>`, `src:<n>`, `eas:<key>`, `end:<key>`, `os:<cpu>`.
 */
export type ChangeKeys = string[];

/** An event kind's effect on the state: changes `s` and returns what changed. */
export type EventHandler = (s: MachineState, a: readonly [number, number, number, number]) => ChangeKeys;

function proc(s: MachineState, pid: number): ProcState {
  let p = s.procs.get(pid);
  if (p === undefined) {
    p = { vmas: new Map(), ptes: new Map() };
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

/** `pid`'s device PTEs in `[start, end)` removed; their keys. */
function dropPtes(s: MachineState, pid: number, start: number, end: number): ChangeKeys {
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
}

/** `[start, end)` unmapped from `pid`'s VMAs (the ones straddling an end keep the rest); their keys. */
function unmapVmas(s: MachineState, pid: number, start: number, end: number): ChangeKeys {
  const p = s.procs.get(pid);
  if (p === undefined) return [];
  const out: ChangeKeys = [];
  for (const [vs, v] of [...p.vmas]) {
    if (v.end <= start || vs >= end) continue;
    p.vmas.delete(vs);
    out.push(`vma:${pid}:${vs}`);
    if (vs < start) p.vmas.set(vs, { end: start, pgoff: v.pgoff });
    if (v.end > end) {
      p.vmas.set(end, { end: v.end, pgoff: v.pgoff + (end - vs) / PAGE_SIZE });
      out.push(`vma:${pid}:${end}`);
    }
  }
  return out;
}

/** A device PTE installed at `addr` of `pid`. */
function setPte(s: MachineState, pid: number, addr: number, pte: PteState): ChangeKeys {
  proc(s, pid).ptes.set(addr, pte);
  return [`pte:${pid}:${addr}`];
}

/**
 * The state-changing event kinds and their effect. Argument order is the trace contract's
 * (`sim/trace-events.ts`): `mm.insert_pfn` (pid, address, pfn, vma), `mm.zap` (pid, start, end,
 * ptes), `kvm.xive.esb_fault` (irq, odd, pfn), `kvm.memslot` (lpid, slot, change, used),
 * `esb.*` (srcno, old PQ, new PQ, forwarded), `router.enqueue` (blk, idx, qindex, qdata),
 * `tctx.*` (cpu, ring, …), and so on.
 */
export const HANDLERS: Readonly<Record<string, EventHandler>> = {
  // The fault read the page now backing the irq; its PTE install (mm.insert_pfn of the same pfn)
  // may come steps later, after the irq was re-pointed (the race the explorer finds).
  'kvm.xive.esb_fault': (s, [irq, , pfn]) => {
    s.pendingFaults.set(pfn, { irq, backing: s.eas.get(`guest:${irq}`)?.hwIrq ?? -1 });
    return [];
  },
  'mm.insert_pfn': (s, [pid, addr, pfn, vma]) => {
    const f = s.pendingFaults.get(pfn);
    s.pendingFaults.delete(pfn);
    const irq = f?.irq ?? -1;
    const backing = f?.backing ?? -1;
    const now = irq < 0 ? -1 : (s.eas.get(`guest:${irq}`)?.hwIrq ?? -1);
    return setPte(s, pid, addr, { pfn, vma, irq, backing, stale: irq >= 0 && now !== backing });
  },
  'mm.zap': (s, [pid, start, end]) => dropPtes(s, pid, start, end),
  'mm.mmap': (s, [pid, start, end, pgoff]) => {
    const out = unmapVmas(s, pid, start, end);
    proc(s, pid).vmas.set(start, { end, pgoff });
    return [...out, `vma:${pid}:${start}`];
  },
  'mm.munmap': (s, [pid, start, end]) => [...unmapVmas(s, pid, start, end), ...dropPtes(s, pid, start, end)],
  'mm.mremap': (s, [pid, oldStart, oldEnd, newStart]) => {
    const p = s.procs.get(pid);
    if (p === undefined) return [];
    const out: ChangeKeys = [];
    for (const [addr, pte] of [...p.ptes]) {
      if (addr < oldStart || addr >= oldEnd) continue;
      out.push(...dropPtes(s, pid, addr, addr + 1), ...setPte(s, pid, addr - oldStart + newStart, pte));
    }
    return out;
  },
  'mm.fork': (s, [pid, child]) => {
    const parent = s.procs.get(pid);
    const c = proc(s, child);
    for (const [start, v] of parent?.vmas ?? []) c.vmas.set(start, v);
    s.forkedFrom.set(child, pid);
    return [...c.vmas.keys()].map((start) => `vma:${child}:${start}`);
  },
  // Only a copy of a device PTE is one (fork copies the anonymous ones too).
  'mm.copy_pte': (s, [pid, addr, , vma]) => {
    const from = s.procs.get(s.forkedFrom.get(pid) ?? -1)?.ptes.get(addr);
    return from === undefined ? [] : setPte(s, pid, addr, { ...from, vma });
  },
  'mm.exit': (s, [pid]) => {
    const p = s.procs.get(pid);
    if (p === undefined) return [];
    s.procs.delete(pid);
    s.forkedFrom.delete(pid);
    return [
      ...[...p.vmas.keys()].map((a) => `vma:${pid}:${a}`),
      ...[...p.ptes.keys()].map((a) => `pte:${pid}:${a}`),
    ];
  },
  'kvm.memslot': (s, [lpid, slot, change, used]) => {
    const old = s.memslots.get(slot);
    if (change === KVM_MR_DELETE) s.memslots.delete(slot);
    else s.memslots.set(slot, { baseGfn: -1, npages: 0, hva: -1, ...old, lpid, change });
    s.memslotsUsed = used;
    return [`slot:${slot}`];
  },
  'kvm.memslot.range': (s, [slot, baseGfn, npages, hva]) => {
    const m = s.memslots.get(slot);
    if (m === undefined) return [];
    s.memslots.set(slot, { ...m, baseGfn, npages, hva });
    return [`slot:${slot}`];
  },
  'kvm.pt.insert': (s, [lpid, gfn, pfn, writable]) => {
    s.partition.set(`${lpid}:${gfn}`, { pfn, writable: writable !== 0 });
    return [`pt:${lpid}:${gfn}`];
  },
  'kvm.pt.invalidate': (s, [lpid, startGfn, endGfn]) => {
    const out: ChangeKeys = [];
    for (const key of [...s.partition.keys()]) {
      const [l, g] = key.split(':').map(Number);
      if (l === lpid && g! >= startGfn && g! < endGfn) {
        s.partition.delete(key);
        out.push(`pt:${key}`);
      }
    }
    return out;
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

  /**
   * The state after event `k` (−1: before the first) and the keys events `from..k` changed (by
   * default event `k`'s: a race step's events are `from..k`).
   */
  stateAt(k: number, from = k): { state: MachineState; changed: ReadonlySet<string> } {
    const last = Math.min(k, this.length - 1);
    const first = Math.max(0, Math.min(from, last));
    let snap = Math.min(Math.floor(first / SNAPSHOT_EVERY), this.snapshots.length - 1);
    const s = cloneState(this.snapshots[snap]!);
    const changed = new Set<string>();
    for (let i = snap * SNAPSHOT_EVERY; i <= last; i++) {
      const keys = this.apply.apply(s, i);
      if (i >= first && last === k) for (const key of keys) changed.add(key);
      if ((i + 1) % SNAPSHOT_EVERY === 0 && (i + 1) / SNAPSHOT_EVERY === this.snapshots.length) {
        this.snapshots.push(cloneState(s));
        snap++;
      }
    }
    return { state: s, changed };
  }
}
