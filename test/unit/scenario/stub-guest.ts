/**
 * A minimal stand-in guest for the runner's tests: just enough of Linux's sPAPR XIVE driver
 * (CAS, one always-notify queue per CPU at priority 6, sources routed with EISN = LISN, the
 * ACK / queue-scan / CPPR loop, MSI EOI = SET_PQ_00 + re-trigger on Q, LSI EOI through
 * H_INT_ESB, mask with saved P, retrigger on unmask, CPU offline with queue flush) to drive the
 * runner through a real machine. The real guest lives in src/guest.
 */

import { casOptionVectors } from '../../../src/guest/kernel.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import type { GuestIrq, GuestPort } from '../../../src/scenario/guest-port.ts';
import type { TraceSink } from '../../../src/sim/trace-sink.ts';
import { KVMPPC_H_CAS } from '../../../src/vmm/spapr-cas.ts';
import type { SpaprMachine } from '../../../src/vmm/spapr-machine.ts';
import {
  H_INT_ESB,
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  SPAPR_XIVE_END_ALWAYS_NOTIFY,
  SPAPR_XIVE_SRC_SET_EISN,
} from '../../../src/vmm/spapr-xive-hcalls.ts';

const ESB_BASE = 0x0006_0100_0000_0000;
const PRIO = 6;
const QSIZE = 16;
const QENTRIES = (1 << QSIZE) / 4;

export class StubGuest implements GuestPort {
  onDeliver: (lisn: number, cpu: number) => void = () => {};
  /** Test hook: silently discard every Nth entry read from a queue (0: never). */
  dropEvery = 0;
  private popped = 0;
  protected readonly m: SpaprMachine;
  private readonly list: GuestIrq[] = [];
  private readonly enabledMap = new Map<number, boolean>();
  private readonly savedP = new Map<number, boolean>();
  private readonly targets = new Map<number, number>();
  private readonly online: boolean[];
  private readonly qbase: number[];
  private readonly qidx: number[];
  private readonly qtoggle: number[];
  private readonly qread: number[];
  private readonly counts = {
    delivered: new Map<number, number>(),
    deferred: new Map<number, number>(),
    consumed: new Map<number, number>(),
  };
  private readonly unknown = new Map<number, number>();
  private readonly cpuStats: { delivered: number; ipis: number; eq: number; offlines: number }[];
  private readonly w = new Word64();
  private readonly out: bigint[] = new Array<bigint>(9).fill(0n);

  constructor(m: SpaprMachine) {
    this.m = m;
    const n = m.cpus.length;
    this.online = new Array<boolean>(n).fill(true);
    this.qbase = Array.from({ length: n }, (_, i) => 0x20_0000 + i * (1 << QSIZE));
    this.qidx = new Array<number>(n).fill(0);
    this.qtoggle = new Array<number>(n).fill(1);
    this.qread = new Array<number>(n).fill(0);
    this.cpuStats = Array.from({ length: n }, () => ({ delivered: 0, ipis: 0, eq: 0, offlines: 0 }));
    const c0 = m.cpus[0]!;
    m.writeMemory(0x1_0000, casOptionVectors());
    this.must(c0.hcall(KVMPPC_H_CAS, [0x1_0000n, 0x10_0000n, 0x10_0000n], this.out), 'CAS');
    for (const c of m.cpus) {
      this.must(
        c.hcall(
          H_INT_SET_QUEUE_CONFIG,
          [
            SPAPR_XIVE_END_ALWAYS_NOTIFY,
            BigInt(c.id),
            BigInt(PRIO),
            BigInt(this.qbase[c.id]!),
            BigInt(QSIZE),
          ],
          this.out,
        ),
        'SET_QUEUE_CONFIG',
      );
      c.store(m.deviceTree().timaOsPage + 0x11, 1, 0, 0xff);
    }
    for (const c of m.cpus)
      this.add({ girq: c.id, lisn: c.id, kind: 'ipi', device: 'ipi', vector: c.id }, c.id);
    let t = 0;
    for (const d of m.devices) {
      d.msis.forEach((lisn, v) => {
        this.add({ girq: 16 + this.list.length, lisn, kind: 'msi', device: d.name, vector: v }, t++ % n);
      });
      d.lsis.forEach((lisn, v) => {
        // Shared INTx lines: one irq per LISN.
        if (this.list.some((q) => q.lisn === lisn)) return;
        this.add({ girq: 16 + this.list.length, lisn, kind: 'lsi', device: d.name, vector: v }, t++ % n);
      });
    }
  }

  private must(rc: number, what: string): void {
    if (rc !== 0) throw new Error(`stub guest: ${what} → ${rc}`);
  }

  private add(q: GuestIrq, target: number): void {
    this.list.push(q);
    this.route(q.lisn, target);
    this.enabledMap.set(q.girq, true);
    this.esbLoad(q.lisn, 0xc00);
  }

  private route(lisn: number, target: number): void {
    this.targets.set(lisn, target);
    this.must(
      this.m.cpus[0]!.hcall(
        H_INT_SET_SOURCE_CONFIG,
        [SPAPR_XIVE_SRC_SET_EISN, BigInt(lisn), BigInt(target), BigInt(PRIO), BigInt(lisn)],
        this.out,
      ),
      'SET_SOURCE_CONFIG',
    );
  }

  private byGirq(girq: number): GuestIrq {
    return this.list.find((q) => q.girq === girq)!;
  }

  protected esbLoad(lisn: number, op: number, cpu = 0): number {
    this.m.cpus[cpu]!.load(ESB_BASE + lisn * 0x2_0000 + 0x1_0000 + op, 8, this.w);
    return this.w.lo;
  }

  private trigger(lisn: number, cpu = 0): void {
    this.m.cpus[cpu]!.store(ESB_BASE + lisn * 0x2_0000, 8, 0, 0);
  }

  private bump(m: Map<number, number>, k: number): void {
    m.set(k, (m.get(k) ?? 0) + 1);
  }

  private eoi(q: GuestIrq, cpu: number): void {
    if (q.kind === 'lsi') {
      this.m.cpus[cpu]!.hcall(H_INT_ESB, [0n, BigInt(q.lisn), 0n, 0n], this.out);
    } else if (this.esbLoad(q.lisn, 0xc00, cpu) & 1) {
      this.trigger(q.lisn, cpu);
    }
  }

  /** Retrigger an MSI as Linux's xive_irq_retrigger: PQ := 11, then EOI. */
  private retrigger(q: GuestIrq, cpu: number): void {
    this.esbLoad(q.lisn, 0xf00, cpu);
    this.eoi(q, cpu);
  }

  private pop(cpu: number): number {
    const base = this.qbase[cpu]!;
    const word = this.m.sysmem.loadBe32(base + this.qidx[cpu]! * 4);
    if (word >>> 31 !== this.qtoggle[cpu]) return -1;
    this.qidx[cpu] = (this.qidx[cpu]! + 1) % QENTRIES;
    if (this.qidx[cpu] === 0) this.qtoggle[cpu] ^= 1;
    this.qread[cpu]!++;
    this.cpuStats[cpu]!.eq++;
    return word & 0x7fff_ffff;
  }

  /** Acknowledge and restore CPPR without reading the queue (a broken guest, for tests). */
  protected ackOnly(cpu: number): void {
    const c = this.m.cpus[cpu]!;
    const tima = this.m.deviceTree().timaOsPage;
    c.load(tima + 0x810, 2, this.w);
    c.store(tima + 0x11, 1, 0, 0xff);
  }

  handleInterrupt(cpu: number): void {
    const c = this.m.cpus[cpu]!;
    const tima = this.m.deviceTree().timaOsPage;
    c.load(tima + 0x810, 2, this.w);
    for (let eisn = this.pop(cpu); eisn >= 0; eisn = this.pop(cpu)) {
      if (this.dropEvery > 0 && ++this.popped % this.dropEvery === 0) continue;
      const q = this.list.find((x) => x.lisn === eisn);
      if (!q) {
        this.bump(this.unknown, eisn);
        continue;
      }
      this.bump(this.counts.consumed, eisn);
      if (!this.enabledMap.get(q.girq)) {
        this.bump(this.counts.deferred, eisn);
        continue;
      }
      this.bump(this.counts.delivered, eisn);
      this.cpuStats[cpu]!.delivered++;
      if (q.kind === 'ipi') this.cpuStats[cpu]!.ipis++;
      this.onDeliver(eisn, cpu);
      this.eoi(q, cpu);
    }
    c.store(tima + 0x11, 1, 0, 0xff);
  }

  irqs(): readonly GuestIrq[] {
    return this.list;
  }
  isOnline(cpu: number): boolean {
    return this.online[cpu]!;
  }
  cpuDown(cpu: number): number {
    if (!this.online[cpu] || this.online.filter(Boolean).length === 1) return -16;
    this.online[cpu] = false;
    this.cpuStats[cpu]!.offlines++;
    const to = this.online.indexOf(true);
    for (const q of this.list)
      if (q.kind !== 'ipi' && this.targets.get(q.lisn) === cpu) this.route(q.lisn, to);
    this.m.cpus[cpu]!.store(this.m.deviceTree().timaOsPage + 0x11, 1, 0, 0);
    // Flush: entries already queued are re-sent to their new target.
    for (let eisn = this.pop(cpu); eisn >= 0; eisn = this.pop(cpu)) {
      const q = this.list.find((x) => x.lisn === eisn)!;
      this.bump(this.counts.consumed, eisn);
      if (q.kind === 'ipi' && this.enabledMap.get(q.girq)) {
        // The dying CPU still takes its own IPI (its source stays routed to it).
        this.bump(this.counts.delivered, eisn);
        this.cpuStats[cpu]!.delivered++;
        this.cpuStats[cpu]!.ipis++;
        this.onDeliver(eisn, cpu);
        this.eoi(q, cpu);
        continue;
      }
      this.bump(this.counts.deferred, eisn);
      if (!this.enabledMap.get(q.girq)) continue;
      if (q.kind === 'lsi') this.eoi(q, to);
      else this.retrigger(q, to);
    }
    return 0;
  }
  cpuUp(cpu: number): number {
    if (this.online[cpu]) return -22;
    this.online[cpu] = true;
    this.m.cpus[cpu]!.store(this.m.deviceTree().timaOsPage + 0x11, 1, 0, 0xff);
    return 0;
  }
  disableIrq(girq: number): void {
    const q = this.byGirq(girq);
    this.enabledMap.set(girq, false);
    const old = this.esbLoad(q.lisn, 0xd00);
    this.savedP.set(girq, (old & 2) !== 0);
  }
  enableIrq(girq: number): void {
    const q = this.byGirq(girq);
    this.enabledMap.set(girq, true);
    if (this.savedP.get(girq) && q.kind !== 'lsi') this.retrigger(q, 0);
    else this.esbLoad(q.lisn, 0xc00);
  }
  setAffinity(girq: number, cpu: number): number {
    this.route(this.byGirq(girq).lisn, cpu);
    return 0;
  }
  sendIpi(from: number, to: number): void {
    this.trigger(to, from);
  }
  isEnabled(girq: number): boolean {
    return this.enabledMap.get(girq) ?? false;
  }
  target(girq: number): number {
    return this.targets.get(this.byGirq(girq).lisn) ?? -1;
  }
  delivered(lisn: number): number {
    return this.counts.delivered.get(lisn) ?? 0;
  }
  deferred(lisn: number): number {
    return this.counts.deferred.get(lisn) ?? 0;
  }
  consumed(lisn: number): number {
    return this.counts.consumed.get(lisn) ?? 0;
  }
  unknownEisns(): ReadonlyMap<number, number> {
    return this.unknown;
  }
  queueRead(cpu: number, prio: number): number {
    return prio === PRIO ? (this.qread[cpu] ?? 0) : 0;
  }
  queueCapacity(_cpu: number, _prio: number): number {
    return QENTRIES;
  }
  cpuDelivered(cpu: number): number {
    return this.cpuStats[cpu]!.delivered;
  }
  cpuIpis(cpu: number): number {
    return this.cpuStats[cpu]!.ipis;
  }
  cpuEqEntries(cpu: number): number {
    return this.cpuStats[cpu]!.eq;
  }
  cpuOfflines(cpu: number): number {
    return this.cpuStats[cpu]!.offlines;
  }
}

export const stubGuest = (m: SpaprMachine, _trace: TraceSink): GuestPort => new StubGuest(m);
