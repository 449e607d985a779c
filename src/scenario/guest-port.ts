/**
 * What the runner needs from the guest, in one narrow interface, and its implementation over
 * the Linux-like guest kernel (`src/guest`). Keeping the seam here means the runner and the
 * invariants do not change when the guest's own API grows.
 */

import { GuestKernel } from '../guest/kernel.ts';
import type { GuestVcpu, LoadResult } from '../guest/platform.ts';
import type { TraceSink } from '../sim/trace-sink.ts';
import type { SpaprMachine } from '../vmm/spapr-machine.ts';

/** One interrupt as the guest knows it. */
export interface GuestIrq {
  /** Linux virq. */
  readonly girq: number;
  /** Hardware number (LISN = EISN). */
  readonly lisn: number;
  readonly kind: 'ipi' | 'msi' | 'lsi';
  /** Device name, or `ipi`. */
  readonly device: string;
  /** MSI vector, INTx pin, or the CPU of an IPI. */
  readonly vector: number;
}

export interface GuestPort {
  /** Every interrupt the guest set up (IPIs first, then devices in order). */
  irqs(): readonly GuestIrq[];
  /** Called by the guest on every handler invocation (LISN, vCPU). */
  onDeliver: (lisn: number, cpu: number) => void;

  /** Take the external interrupt on `cpu` once (the arch's do_IRQ: fetch loop, handlers, EOIs). */
  handleInterrupt(cpu: number): void;
  isOnline(cpu: number): boolean;
  /** CPU hotplug; 0 or −errno. */
  cpuDown(cpu: number): number;
  cpuUp(cpu: number): number;
  disableIrq(girq: number): void;
  enableIrq(girq: number): void;
  /** 0 or −errno. */
  setAffinity(girq: number, cpu: number): number;
  sendIpi(from: number, to: number): void;
  isEnabled(girq: number): boolean;
  /** The vCPU the irq targets now, −1 for none. */
  target(girq: number): number;

  // Counters (counts of the guest's paths running).
  delivered(lisn: number): number;
  deferred(lisn: number): number;
  consumed(lisn: number): number;
  unknownEisns(): ReadonlyMap<number, number>;
  /** Entries the guest has read from (cpu, priority)'s queue. */
  queueRead(cpu: number, prio: number): number;
  queueCapacity(cpu: number, prio: number): number;
  cpuDelivered(cpu: number): number;
  cpuIpis(cpu: number): number;
  cpuEqEntries(cpu: number): number;
  cpuOfflines(cpu: number): number;
}

/** Boots a guest on the machine, emitting into `trace` (default: {@link bootGuest}). */
export type GuestBoot = (machine: SpaprMachine, trace: TraceSink) => GuestPort;

/** Boot the Linux-like guest kernel (`src/guest`) on `machine`'s vCPUs: CAS, XIVE, devices. */
export function bootGuest(machine: SpaprMachine, trace: TraceSink): GuestPort {
  const kernel = new GuestKernel(machine.cpus, machine.deviceTree(), trace);
  const rc = kernel.boot();
  if (rc !== 0) throw new Error(`guest boot failed: ${rc}`);
  const dev = kernel.startDevices();
  if (dev !== 0) throw new Error(`guest device probe failed: ${dev}`);
  return kernel;
}

// ---------------------------------------------------------------------------------------------
// Guest-visible traces and migratable vCPUs (KVM mode, migration)
// ---------------------------------------------------------------------------------------------

/**
 * Where a guest-visible trace goes: every entry, in order (see {@link GuestTrace}), as the
 * values it is made of; {@link formatEntry} gives the entry's text.
 */
export interface GuestRecorder {
  /** `cpu` loaded `size` bytes at `addr`: `hi`:`lo` (`L` line). */
  load(cpu: number, addr: number, size: number, hi: number, lo: number): void;
  /** `cpu` stored `hi`:`lo`, `size` bytes at `addr` (`S` line). */
  store(cpu: number, addr: number, size: number, hi: number, lo: number): void;
  /** `cpu` made hcall `opcode` with `args`: `rc` and the output registers (`H` line). */
  hcall(cpu: number, opcode: number, args: readonly bigint[], rc: number, out: readonly bigint[]): void;
  /** A handler of `lisn` ran on `cpu` (`D` line). */
  deliver(cpu: number, lisn: number): void;
}

const h = (n: number): string => n.toString(16);
const hv = (hi: number, lo: number): string =>
  hi >>> 0 ? h(hi >>> 0) + (lo >>> 0).toString(16).padStart(8, '0') : h(lo >>> 0);

/** The text of a trace entry: the `L`, `S`, `H` and `D` lines of a {@link GuestRecorder}. */
export const formatEntry = {
  load: (cpu: number, addr: number, size: number, hi: number, lo: number): string =>
    `${cpu} L ${h(addr)}/${size} = ${hv(hi, lo)}`,
  store: (cpu: number, addr: number, size: number, hi: number, lo: number): string =>
    `${cpu} S ${h(addr)}/${size} ${hv(hi, lo)}`,
  hcall: (cpu: number, opcode: number, args: readonly bigint[], rc: number, out: readonly bigint[]): string =>
    `${cpu} H ${h(opcode)}(${args.map((x) => x.toString(16)).join(',')}) = ${rc} [${out.map((x) => x.toString(16)).join(',')}]`,
  deliver: (cpu: number, lisn: number): string => `${cpu} D ${h(lisn)}`,
};

/** FNV-1a (32-bit) offset basis and prime. */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x0100_0193;
/** Entry tags mixed into the digest (the line letters). */
const TAG_L = 0x4c;
const TAG_S = 0x53;
const TAG_H = 0x48;
const TAG_D = 0x44;

/**
 * A guest-visible trace kept as digests — FNV-1a over the values of each block of {@link BLOCK}
 * entries, 32 bits at a time — rather than as the entries, which a 100k-trigger workload makes
 * by the million; it also keeps the text of the entries of one `window` of entry indexes, to
 * show a difference once the digests found its block.
 */
export class GuestTraceDigest implements GuestRecorder {
  static readonly BLOCK = 4096;
  /** Digest of each full block, and of the last partial one once {@link finish}ed. */
  readonly blocks: number[] = [];
  /** Entries recorded. */
  count = 0;
  /** The entries whose index is in `window`. */
  readonly kept: string[] = [];
  readonly window: readonly [number, number] | null;
  private h = FNV_OFFSET;
  private finished = false;

  constructor(window: readonly [number, number] | null = null) {
    this.window = window;
  }

  private inWindow(): boolean {
    const w = this.window;
    return w !== null && this.count >= w[0] && this.count < w[1];
  }

  private mix(v: number): void {
    this.h = Math.imul(this.h ^ v, FNV_PRIME);
  }

  /** Mix a number of up to 53 bits (an address) as two words. */
  private mixWide(v: number): void {
    const hi = Math.floor(v / 2 ** 32);
    this.mix(hi);
    this.mix(v - hi * 2 ** 32);
  }

  private mixBig(v: bigint): void {
    this.mix(Number(BigInt.asUintN(32, v >> 32n)));
    this.mix(Number(BigInt.asUintN(32, v)));
  }

  /** Close the entry: the separator, then the block boundary. */
  private end(): void {
    this.mix(0x0a);
    if (++this.count % GuestTraceDigest.BLOCK === 0) {
      this.blocks.push(this.h >>> 0);
      this.h = FNV_OFFSET;
    }
  }

  private access(tag: number, cpu: number, addr: number, size: number, hi: number, lo: number): void {
    this.mix(tag);
    this.mix(cpu);
    this.mixWide(addr);
    this.mix(size);
    this.mix(hi);
    this.mix(lo);
    this.end();
  }

  load(cpu: number, addr: number, size: number, hi: number, lo: number): void {
    if (this.inWindow()) this.kept.push(formatEntry.load(cpu, addr, size, hi, lo));
    this.access(TAG_L, cpu, addr, size, hi >>> 0, lo >>> 0);
  }

  store(cpu: number, addr: number, size: number, hi: number, lo: number): void {
    if (this.inWindow()) this.kept.push(formatEntry.store(cpu, addr, size, hi, lo));
    this.access(TAG_S, cpu, addr, size, hi >>> 0, lo >>> 0);
  }

  hcall(cpu: number, opcode: number, args: readonly bigint[], rc: number, out: readonly bigint[]): void {
    if (this.inWindow()) this.kept.push(formatEntry.hcall(cpu, opcode, args, rc, out));
    this.mix(TAG_H);
    this.mix(cpu);
    this.mix(opcode);
    this.mix(args.length);
    for (const a of args) this.mixBig(a);
    this.mixWide(rc);
    this.mix(out.length);
    for (const o of out) this.mixBig(o);
    this.end();
  }

  deliver(cpu: number, lisn: number): void {
    if (this.inWindow()) this.kept.push(formatEntry.deliver(cpu, lisn));
    this.mix(TAG_D);
    this.mix(cpu);
    this.mix(lisn);
    this.end();
  }

  /** Close the last partial block (idempotent). */
  finish(): this {
    if (!this.finished && this.count % GuestTraceDigest.BLOCK !== 0) this.blocks.push(this.h >>> 0);
    this.finished = true;
    return this;
  }

  /** The first block where `a` and `b` differ (a longer trace differs after the shorter's end), or −1. */
  static firstDifferentBlock(a: GuestTraceDigest, b: GuestTraceDigest): number {
    a.finish();
    b.finish();
    const n = Math.min(a.blocks.length, b.blocks.length);
    for (let i = 0; i < n; i++) if (a.blocks[i] !== b.blocks[i]) return i;
    return a.count === b.count ? -1 : n;
  }
}

/**
 * What the guest saw, in order: every load (address, size, value), store, hcall (opcode,
 * arguments, R3 and the output registers) and handler delivery, tagged with the vCPU. Two runs
 * of the same guest and workload on two machines are equivalent for the guest iff their traces
 * are equal. Entries are strings (`L`, `S`, `H`, `D` lines, {@link formatEntry}); `filter` drops
 * entries (e.g. by address range) before they are stored.
 */
export class GuestTrace implements GuestRecorder {
  readonly entries: string[] = [];
  filter: ((entry: string) => boolean) | null = null;

  private push(e: string): void {
    if (this.filter === null || this.filter(e)) this.entries.push(e);
  }

  load(cpu: number, addr: number, size: number, hi: number, lo: number): void {
    this.push(formatEntry.load(cpu, addr, size, hi, lo));
  }

  store(cpu: number, addr: number, size: number, hi: number, lo: number): void {
    this.push(formatEntry.store(cpu, addr, size, hi, lo));
  }

  hcall(cpu: number, opcode: number, args: readonly bigint[], rc: number, out: readonly bigint[]): void {
    this.push(formatEntry.hcall(cpu, opcode, args, rc, out));
  }

  deliver(cpu: number, lisn: number): void {
    this.push(formatEntry.deliver(cpu, lisn));
  }

  /** Index of the first entry where `a` and `b` differ, or −1 if equal. */
  static firstDifference(a: GuestTrace, b: GuestTrace): number {
    const n = Math.min(a.entries.length, b.entries.length);
    for (let i = 0; i < n; i++) if (a.entries[i] !== b.entries[i]) return i;
    return a.entries.length === b.entries.length ? -1 : n;
  }
}

/**
 * A vCPU as the guest holds it: it forwards to the machine vCPU it currently runs on, which a
 * migration switches to the destination's, and may record a {@link GuestTrace}. The guest keeps
 * its own state (the model of its registers and kernel memory) across the switch, as a real
 * guest's state moves with the migration stream.
 */
export class GuestVcpuSlot implements GuestVcpu {
  readonly id: number;
  target: GuestVcpu;
  trace: GuestRecorder | null;

  constructor(target: GuestVcpu, trace: GuestRecorder | null = null) {
    this.id = target.id;
    this.target = target;
    this.trace = trace;
  }

  get externalInterrupt(): boolean {
    return this.target.externalInterrupt;
  }

  load(addr: number, size: 1 | 2 | 4 | 8, out: LoadResult): void {
    this.target.load(addr, size, out);
    this.trace?.load(this.id, addr, size, out.hi, out.lo);
  }

  store(addr: number, size: 1 | 2 | 4 | 8, hi: number, lo: number): void {
    this.target.store(addr, size, hi, lo);
    this.trace?.store(this.id, addr, size, hi, lo);
  }

  hcall(opcode: number, args: readonly bigint[], out: bigint[]): number {
    const rc = this.target.hcall(opcode, args, out);
    this.trace?.hcall(this.id, opcode, args, rc, out);
    return rc;
  }
}

/** A guest booted on migratable vCPU slots. */
export interface SlottedGuest {
  readonly kernel: GuestKernel;
  readonly slots: readonly GuestVcpuSlot[];
}

/**
 * Boot the Linux-like guest on `machine` (emulated or KVM: `new SpaprMachine({ …, accel: { kind:
 * 'kvm', host } })`) through {@link GuestVcpuSlot}s, optionally recording what it sees; handler
 * deliveries are recorded too (`D` lines: LISN and CPU).
 */
export function bootGuestOnSlots(
  machine: SpaprMachine,
  trace: TraceSink,
  record: GuestRecorder | null = null,
): SlottedGuest {
  const slots = machine.cpus.map((c) => new GuestVcpuSlot(c, record));
  const kernel = new GuestKernel(slots, machine.deviceTree(), trace);
  if (record !== null) kernel.onDeliver = (lisn, cpu) => record.deliver(cpu, lisn);
  const rc = kernel.boot();
  if (rc !== 0) throw new Error(`guest boot failed: ${rc}`);
  const dev = kernel.startDevices();
  if (dev !== 0) throw new Error(`guest device probe failed: ${dev}`);
  return { kernel, slots };
}

/** Point every slot at the vCPU of the same id on `machine` (after a migration). */
export function moveGuest(guest: SlottedGuest, machine: SpaprMachine): void {
  for (const s of guest.slots) {
    const c = machine.cpus[s.id];
    if (c === undefined) throw new Error(`destination has no vCPU ${s.id}`);
    s.target = c;
  }
}
