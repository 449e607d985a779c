import { describe, expect, test } from 'vitest';
import { GuestKernel } from '../../../src/guest/kernel.ts';
import { NULL_TRACE } from '../../../src/sim/trace-sink.ts';
import { FakeMachine, mgmt, TIMA_OS, trig } from './fake-machine.ts';

const MSI = 0x1300;
const LSI = 0x1200;

/** Boot 2 (or n) CPUs with one device (2 MSIs, 1 LSI), start it, clear the log. */
function setup(opts: { cpus?: number; flags?: Record<number, number>; eqSizes?: number[] } = {}) {
  const m = new FakeMachine(opts.cpus ?? 2);
  for (const [l, f] of Object.entries(opts.flags ?? {})) m.sources.set(Number(l), { flags: f });
  const dt = m.dt({
    devices: [{ name: 'nic', msis: [MSI, MSI + 1], lsis: [LSI] }],
    ...(opts.eqSizes ? { eqSizes: opts.eqSizes } : {}),
  });
  const k = new GuestKernel(m.cpus, dt, NULL_TRACE);
  expect(k.boot()).toBe(0);
  expect(k.startDevices()).toBe(0);
  m.clear();
  const virq = k.virqOf(MSI);
  const d = k.core.desc(virq)!;
  return { m, k, virq, d, xd: d.xd! };
}

describe('irq_chip ops (exact ESB offsets)', () => {
  test('mask = load SET_PQ_01; old P → saved_p; unmask with saved_p = SET_PQ_10, else SET_PQ_00', () => {
    const { m, k, d, xd } = setup();
    m.esbLoad = () => 2; // old PQ 10
    k.xive.xiveChip.mask(d);
    expect(xd.savedP).toBe(true);
    expect(xd.staleP).toBe(false);
    k.xive.xiveChip.unmask(d);
    expect(xd.savedP).toBe(false);
    m.esbLoad = () => 0;
    k.xive.xiveChip.mask(d);
    expect(xd.savedP).toBe(false);
    k.xive.xiveChip.unmask(d);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xd00), size: 8 },
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xe00), size: 8 },
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xd00), size: 8 },
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xc00), size: 8 },
    ]);
  });

  test('mask with stale_p set does not record saved_p and clears stale_p', () => {
    const { m, k, d, xd } = setup();
    xd.staleP = true;
    m.esbLoad = () => 2;
    k.xive.xiveChip.mask(d);
    expect([xd.savedP, xd.staleP]).toEqual([false, false]);
  });

  test('StoreEOI source: SET_PQ_10 carries LD_ST_MO (0xE40), EOI is a store at 0x400', () => {
    const { m, k, d, xd } = setup({ flags: { [MSI]: 0x1 } });
    xd.savedP = true;
    k.xive.xiveChip.unmask(d);
    k.xive.xiveChip.eoi(d);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xe40), size: 8 },
      { cpu: 0, op: 'store', addr: mgmt(MSI, 0x400), size: 8, value: 0n },
    ]);
  });

  test('MSI EOI: SET_PQ_00, then a trigger-page store only when the old PQ had Q', () => {
    const { m, k, d, xd } = setup();
    m.esbLoad = () => 2; // PQ 10: no Q
    xd.savedP = true;
    k.xive.xiveChip.eoi(d);
    expect(xd.savedP).toBe(false);
    m.esbLoad = () => 3; // PQ 11
    k.xive.xiveChip.eoi(d);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xc00), size: 8 },
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xc00), size: 8 },
      { cpu: 0, op: 'store', addr: trig(MSI), size: 8, value: 0n },
    ]);
  });

  test('TRIGGER flag: the re-trigger goes to the (single) management page', () => {
    const { m, k, d } = setup({ flags: { [MSI]: 0x2 } });
    m.esbLoad = () => 1;
    k.xive.xiveChip.eoi(d);
    expect(m.io()[1]).toEqual({ cpu: 0, op: 'store', addr: mgmt(MSI, 0), size: 8, value: 0n });
  });

  test('LSI EOI: LOAD_EOI; through H_INT_ESB(0, lisn, 0, 0) when the source has the flag', () => {
    const a = setup({ flags: { [LSI]: 0x4 } });
    const la = a.k.core.desc(a.k.virqOf(LSI))!;
    a.k.xive.xiveChip.eoi(la);
    expect(a.m.io()).toEqual([{ cpu: 0, op: 'load', addr: mgmt(LSI, 0x000), size: 8 }]);
    const b = setup({ flags: { [LSI]: 0x8 | 0x4 } });
    const lb = b.k.core.desc(b.k.virqOf(LSI))!;
    b.k.xive.xiveChip.eoi(lb);
    expect(b.m.io()).toEqual([{ cpu: 0, op: 'hcall', opcode: 0x3c8, args: [0n, BigInt(LSI), 0n, 0n] }]);
  });

  test('a disabled irq is never EOId: stale_p set, saved_p cleared, no ESB access', () => {
    const { m, k, d, xd } = setup();
    expect(k.disableIrq(d.irq)).toBe(0);
    xd.savedP = true;
    k.xive.xiveChip.eoi(d);
    expect([xd.staleP, xd.savedP]).toEqual([true, false]);
    expect(m.io()).toEqual([]);
  });

  test('retrigger: SET_PQ_11 then the source EOI (MSI); refused for an LSI', () => {
    const { m, k, d } = setup({ flags: { [LSI]: 0x4 } });
    m.esbLoad = (a) => (a === mgmt(MSI, 0xc00) ? 3 : 0);
    expect(k.xive.xiveChip.retrigger(d)).toBe(1);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xf00), size: 8 },
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xc00), size: 8 },
      { cpu: 0, op: 'store', addr: trig(MSI), size: 8, value: 0n },
    ]);
    m.clear();
    expect(k.xive.xiveChip.retrigger(k.core.desc(k.virqOf(LSI))!)).toBe(0);
    expect(m.io()).toEqual([]);
  });

  test('shutdown: mask, SET_SOURCE_CONFIG(SET_EISN, lisn, target, 0xff, XIVE_BAD_IRQ), slot released lazily', () => {
    const { m, k, virq, xd } = setup();
    const drv = k.drivers[0]!;
    expect(k.core.freeIrq(virq, drv)).toBe(0);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xd00), size: 8 },
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, BigInt(MSI), 0n, 0xffn, 0x7fff_ffffn] },
    ]);
    expect(xd.target).toBe(-1);
    expect(k.queueAccounting(0)).toMatchObject({ count: 2, pendingCount: 1 });
  });

  test('get_irqchip_state(ACTIVE) follows P, saved_p, stale_p and the disabled state', () => {
    const { m, k, d, xd } = setup();
    m.esbLoad = () => 2;
    expect(k.xive.getIrqchipStateActive(d)).toBe(true);
    xd.staleP = true;
    expect(k.xive.getIrqchipStateActive(d)).toBe(false);
    xd.staleP = false;
    k.disableIrq(d.irq);
    expect(k.xive.getIrqchipStateActive(d)).toBe(false);
    xd.savedP = true;
    expect(k.xive.getIrqchipStateActive(d)).toBe(true);
    m.esbLoad = () => 0xff;
    expect(k.xive.getIrqchipStateActive(d)).toBe(false);
  });

  test('lazy disable: no ESB access; the interrupt taken while disabled is masked, not EOId, and retriggered on enable', () => {
    const { m, k, virq } = setup();
    k.disableIrq(virq);
    expect(m.io()).toEqual([]);
    // One entry for the MSI in CPU 0's queue (generation 1, EISN = virq).
    const qpage = k.xive.xcs[0]!.queue[6]!.qpage;
    m.writeBe32(qpage, (0x8000_0000 | virq) >>> 0);
    m.acks.push(0x8006);
    m.esbLoad = (a) => (a === mgmt(MSI, 0xd00) ? 2 : a === mgmt(MSI, 0xc00) ? 3 : 0);
    expect(k.handleInterrupt(0)).toBe(1);
    expect(k.drivers[0]!.calls).toBe(0);
    expect(k.deferred(MSI)).toBe(1);
    expect(k.consumed(MSI)).toBe(1);
    const xd = k.core.desc(virq)!.xd!;
    expect([xd.savedP, xd.staleP]).toEqual([false, true]);
    m.clear();
    expect(k.enableIrq(virq)).toBe(0);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xc00), size: 8 }, // unmask
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xf00), size: 8 }, // retrigger: PQ 11
      { cpu: 0, op: 'load', addr: mgmt(MSI, 0xc00), size: 8 }, // EOI
      { cpu: 0, op: 'store', addr: trig(MSI), size: 8, value: 0n },
    ]);
  });
});

describe('fetch loop', () => {
  test('ACK, queue scan with toggle wrap, EISN → handler, EOI, peek/replay, CPPR 0xff at the end', () => {
    // 4 KiB queues: 1024 entries.
    const { m, k, virq } = setup({ eqSizes: [12] });
    const xc = k.xive.xcs[0]!;
    const q = xc.queue[6]!;
    expect(q.msk).toBe(1023);
    const v2 = k.virqOf(MSI + 1);
    // Consumer at the last slot: entry there is generation 1; after the wrap toggle = 1, so
    // the next valid entry has generation 0.
    q.idx = 1023;
    m.writeBe32(q.qpage + 1023 * 4, (0x8000_0000 | virq) >>> 0);
    m.writeBe32(q.qpage, v2);
    m.writeBe32(q.qpage + 4, 0x8000_0000 | v2); // stale generation after the wrap: empty
    m.acks.push(0x8006);
    const seen: number[] = [];
    k.onDeliver = (lisn, cpu) => seen.push(lisn, cpu);
    expect(k.handleInterrupt(0)).toBe(2);
    expect(seen).toEqual([MSI, 0, MSI + 1, 0]);
    expect([q.idx, q.toggle, q.reads]).toEqual([1, 1, 2]);
    expect(xc.pendingPrio).toBe(0);
    expect(xc.cppr).toBe(0xff);
    const tima = m.io().filter((o) => o.op !== 'hcall' && o.addr >= TIMA_OS);
    expect(tima).toEqual([
      { cpu: 0, op: 'load', addr: TIMA_OS + 0x810, size: 2 }, // ACK: prio 6 pending
      { cpu: 0, op: 'load', addr: TIMA_OS + 0x810, size: 2 }, // replay after the first EOI's peek
      { cpu: 0, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0xffn }, // queue empty at the last peek
    ]);
    expect(k.delivered(MSI)).toBe(1);
    expect(k.delivered(MSI + 1)).toBe(1);
    expect(k.cpuDelivered(0)).toBe(2);
    expect(k.cpuEqEntries(0)).toBe(2);
  });

  test('no EO bit in the ACK: nothing pending, a spurious exception', () => {
    const { m, k } = setup();
    m.acks.push(0x00ff);
    expect(k.handleInterrupt(0)).toBe(0);
    expect(k.cpuSpurious(0)).toBe(1);
  });

  test('unknown EISN: counted, dropped, the scan goes on', () => {
    const { m, k, virq } = setup();
    const q = k.xive.xcs[0]!.queue[6]!;
    m.writeBe32(q.qpage, 0x8000_0000 | 4000);
    m.writeBe32(q.qpage + 4, (0x8000_0000 | virq) >>> 0);
    m.acks.push(0x8006);
    expect(k.handleInterrupt(0)).toBe(1);
    expect([...k.unknownEisns()]).toEqual([[4000, 1]]);
    expect(k.delivered(MSI)).toBe(1);
  });

  test('IPI: store to the target IPI trigger page; handled on the target with source EOI', () => {
    const { m, k } = setup();
    expect(k.sendIpi(0, 1)).toBe(0);
    expect(m.io()).toEqual([{ cpu: 0, op: 'store', addr: trig(1), size: 8, value: 0n }]);
    const q = k.xive.xcs[1]!.queue[6]!;
    m.writeBe32(q.qpage, 0x8000_0000 | k.xive.ipiVirq);
    m.acks.push(0x8006);
    m.clear();
    expect(k.handleInterrupt(1)).toBe(1);
    expect(k.cpuIpis(1)).toBe(1);
    expect(k.delivered(1)).toBe(1);
    expect(m.io().filter((o) => o.op === 'load' && o.addr < TIMA_OS)).toEqual([
      { cpu: 1, op: 'load', addr: mgmt(1, 0xc00), size: 8 },
    ]);
  });
});

describe('targets', () => {
  test('round robin from fuzz; a full queue (entries − 1) is skipped; none left → −ENXIO', () => {
    const { k } = setup({ cpus: 3 });
    const x = k.xive;
    const all = new Uint8Array([1, 1, 1]);
    x.fuzz = 7; // 7 % 3 = 1 → start at CPU 1
    const q1 = x.xcs[1]!.queue[6]!;
    const before = q1.count;
    expect(x.pickIrqTarget(k.core.desc(k.virqOf(MSI))!, all)).toBe(1);
    expect(q1.count).toBe(before + 1);
    q1.count = q1.msk; // full: 16383 sources
    x.fuzz = 1;
    expect(x.pickIrqTarget(k.core.desc(k.virqOf(MSI))!, all)).toBe(2);
    for (const c of [0, 2]) x.xcs[c]!.queue[6]!.count = 16383;
    expect(x.pickIrqTarget(k.core.desc(k.virqOf(MSI))!, all)).toBe(-1);
    expect(k.checkQueues()).toEqual([]);
    q1.count = 16384;
    expect(k.checkQueues()).toEqual(['CPU 1: 16384 sources target a queue of 16384 entries']);
  });

  test('set_affinity: SET_SOURCE_CONFIG to the new CPU with the virq as EISN; the old slot is released when the queue is next seen empty', () => {
    const { m, k, virq } = setup();
    expect(k.target(virq)).toBe(0);
    const before0 = k.queueAccounting(0).count;
    expect(k.setAffinity(virq, 1)).toBe(0);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, BigInt(MSI), 1n, 6n, BigInt(virq)] },
    ]);
    expect(k.target(virq)).toBe(1);
    expect(k.queueAccounting(0)).toMatchObject({ count: before0, pendingCount: 1 });
    // Already in the mask: nothing to do.
    m.clear();
    expect(k.setAffinity(virq, new Uint8Array([1, 1]))).toBe(0);
    expect(m.io()).toEqual([]);
    // CPU 0 sees its queue empty: the release applies.
    m.acks.push(0x8006);
    k.handleInterrupt(0);
    expect(k.queueAccounting(0)).toMatchObject({ count: before0 - 1, pendingCount: 0 });
    expect(k.setAffinity(virq, 5)).toBe(-22);
  });
});

describe('CPU hotplug', () => {
  test('offline: migrate, CPPR 0, flush (whose empty scan already reopens CPPR, as Linux), CPPR 0xff, teardown (CPPR 0, IPI masked and unrouted, queue reset); online again', () => {
    const { m, k, virq } = setup();
    expect(k.target(virq)).toBe(0);
    const qpage = k.xive.xcs[1]!.queue[6]!.qpage;
    expect(k.cpuDown(1)).toBe(0);
    expect(k.isOnline(1)).toBe(false);
    expect(k.target(k.virqOf(MSI + 1))).toBe(0);
    expect(m.io()).toEqual([
      { cpu: 1, op: 'hcall', opcode: 0x3ac, args: [2n, BigInt(MSI + 1), 0n, 6n, BigInt(k.virqOf(MSI + 1))] },
      { cpu: 1, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0n },
      { cpu: 1, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0xffn },
      { cpu: 1, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0xffn },
      { cpu: 1, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0n },
      { cpu: 1, op: 'load', addr: mgmt(1, 0xd00), size: 8 },
      { cpu: 1, op: 'hcall', opcode: 0x3ac, args: [2n, 1n, 1n, 0xffn, 16n] },
      { cpu: 1, op: 'hcall', opcode: 0x3b8, args: [0n, 1n, 6n, 0n, 0n] },
    ]);
    expect(k.cpuDown(0)).toBe(-16);
    expect(k.sendIpi(0, 1)).toBe(-6);
    m.clear();
    expect(k.cpuUp(1)).toBe(0);
    expect(m.io()).toEqual([
      { cpu: 0, op: 'hcall', opcode: 0x3b4, args: [0n, 1n, 6n] },
      { cpu: 0, op: 'hcall', opcode: 0x3b8, args: [1n, 1n, 6n, BigInt(qpage), 16n] },
      { cpu: 0, op: 'hcall', opcode: 0x3a8, args: [0n, 1n] },
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, 1n, 1n, 6n, 16n] },
      { cpu: 0, op: 'load', addr: mgmt(1, 0xc00), size: 8 },
      { cpu: 1, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0xffn },
    ]);
    expect(k.cpuOfflines(1)).toBe(1);
    expect(k.cpuUp(1)).toBe(-22);
  });

  test('flush: an MSI entry left in the dying queue is re-triggered, an LSI EOId, counted deferred', () => {
    const { m, k, virq } = setup({ flags: { [LSI]: 0x4 } });
    k.setAffinity(virq, 1);
    const lsiVirq = k.virqOf(LSI);
    k.setAffinity(lsiVirq, 1);
    const xc = k.xive.xcs[1]!;
    m.writeBe32(xc.queue[6]!.qpage, (0x8000_0000 | virq) >>> 0);
    m.writeBe32(xc.queue[6]!.qpage + 4, (0x8000_0000 | lsiVirq) >>> 0);
    // The ACK already happened (pending_prio set) but the CPU goes down before scanning.
    xc.pendingPrio = 1 << 6;
    m.clear();
    m.esbLoad = (a) => (a === mgmt(MSI, 0xc00) ? 3 : 0);
    expect(k.cpuDown(1)).toBe(0);
    const esb = m.io().filter((o) => o.op !== 'hcall' && o.addr < TIMA_OS && o.addr !== mgmt(1, 0xd00));
    expect(esb).toEqual([
      { cpu: 1, op: 'load', addr: mgmt(MSI, 0xf00), size: 8 },
      { cpu: 1, op: 'load', addr: mgmt(MSI, 0xc00), size: 8 },
      { cpu: 1, op: 'store', addr: trig(MSI), size: 8, value: 0n },
      { cpu: 1, op: 'load', addr: mgmt(LSI, 0x000), size: 8 },
    ]);
    expect([k.deferred(MSI), k.deferred(LSI), k.delivered(MSI)]).toEqual([1, 1, 0]);
  });
});
