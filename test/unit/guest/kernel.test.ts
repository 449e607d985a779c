import { describe, expect, test } from 'vitest';
import { casOptionVectors, GuestKernel } from '../../../src/guest/kernel.ts';
import { NULL_TRACE } from '../../../src/sim/trace-sink.ts';
import { FakeMachine, mgmt, TIMA_OS } from './fake-machine.ts';

describe('CAS', () => {
  test('the option-vector table: PVR pair, terminator, 5 vectors, OV5 byte 23 = 0x40', () => {
    const t = casOptionVectors();
    expect([...t.slice(0, 16)]).toEqual([0xff, 0xff, 0, 0, 0, 0x4e, 0, 0, 0, 0, 0, 0, 0x0f, 0, 0, 3]);
    expect([...t.slice(16, 27)]).toEqual([4, 2, 0, 0, 0x80, 0, 0, 0, 0, 0, 0]);
    expect(t[27]).toBe(0x17); // OV5: 24 bytes
    const ov5 = t.slice(28);
    expect(ov5.length).toBe(24);
    expect(ov5[22]).toBe(0x40);
    expect([...ov5].filter((b) => b !== 0)).toEqual([0x40]);
  });

  test('boot issues H_CAS(table, buffer, 64 KiB) with the table in guest RAM, before any H_INT call', () => {
    const m = new FakeMachine(1);
    const k = new GuestKernel(m.cpus, m.dt(), NULL_TRACE);
    expect(k.boot()).toBe(0);
    const first = m.log.find((o) => o.op === 'hcall');
    expect(first).toEqual({ cpu: 0, op: 'hcall', opcode: 0xf002, args: [0x10_0000n, 0x11_0000n, 0x1_0000n] });
    const t = casOptionVectors();
    const inRam = Array.from({ length: t.length }, (_, i) => m.byte(0x10_0000 + i));
    expect(inRam).toEqual([...t]);
  });

  test('CAS failure: boot returns −ENODEV and issues nothing else', () => {
    const m = new FakeMachine(1);
    m.rc = (op) => (op === 0xf002 ? -4 : 0);
    const k = new GuestKernel(m.cpus, m.dt(), NULL_TRACE);
    expect(k.boot()).toBe(-19);
    expect(m.io().map((o) => (o.op === 'hcall' ? o.opcode : -1))).toEqual([0xf002]);
  });
});

describe('XIVE init', () => {
  test.each([
    [[7, 0xf8], 6],
    [[6, 2], 5],
    [[0, 3, 6, 2], 5],
    [[3, 5], 2],
  ])('reserved %j → priority %i', (res, prio) => {
    const m = new FakeMachine(1);
    const k = new GuestKernel(
      m.cpus,
      m.dt({ resIntPriorities: res as unknown as [number, number] }),
      NULL_TRACE,
    );
    expect(k.boot()).toBe(0);
    expect(k.xive.prio).toBe(prio);
  });

  test('every priority reserved → −ENODEV', () => {
    const m = new FakeMachine(1);
    const k = new GuestKernel(m.cpus, m.dt({ resIntPriorities: [0, 8] }), NULL_TRACE);
    expect(k.boot()).toBe(-19);
  });

  test('per CPU: zeroed 64 KiB queue, GET_QUEUE_INFO, SET_QUEUE_CONFIG(ALWAYS_NOTIFY, cpu, 6, qpage, 16), IPI, CPPR 0xff', () => {
    const m = new FakeMachine(2);
    // Dirty the pages the queues will use: boot must zero them.
    for (let a = 0x12_0000; a < 0x14_0000; a += 4096) m.writeBe32(a, 0xdead_beef);
    const k = new GuestKernel(m.cpus, m.dt(), NULL_TRACE);
    expect(k.boot()).toBe(0);
    const ops = m.io().slice(1);
    expect(ops).toEqual([
      // boot CPU: queue (pages after the two CAS pages), CPPR
      { cpu: 0, op: 'hcall', opcode: 0x3b4, args: [0n, 0n, 6n] },
      { cpu: 0, op: 'hcall', opcode: 0x3b8, args: [1n, 0n, 6n, 0x12_0000n, 16n] },
      { cpu: 0, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0xffn },
      // its IPI: source info, route (EISN = IPI virq 16), unmask
      { cpu: 0, op: 'hcall', opcode: 0x3a8, args: [0n, 0n] },
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, 0n, 0n, 6n, 16n] },
      { cpu: 0, op: 'load', addr: mgmt(0, 0xc00), size: 8 },
      // CPU 1 prepared by CPU 0, then opens its own CPPR
      { cpu: 0, op: 'hcall', opcode: 0x3b4, args: [0n, 1n, 6n] },
      { cpu: 0, op: 'hcall', opcode: 0x3b8, args: [1n, 1n, 6n, 0x13_0000n, 16n] },
      { cpu: 0, op: 'hcall', opcode: 0x3a8, args: [0n, 1n] },
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, 1n, 1n, 6n, 16n] },
      { cpu: 0, op: 'load', addr: mgmt(1, 0xc00), size: 8 },
      { cpu: 1, op: 'store', addr: TIMA_OS + 0x11, size: 1, value: 0xffn },
    ]);
    for (let a = 0x12_0000; a < 0x14_0000; a += 4096) expect(m.readBe(a, 4)).toBe(0n);
    expect(k.queueCapacity(0, 6)).toBe(16384);
    expect(k.queueCapacity(0, 5)).toBe(0);
    expect(k.irqs()).toEqual([
      { girq: 16, lisn: 0, kind: 'ipi', device: 'ipi', vector: 0 },
      { girq: 16, lisn: 1, kind: 'ipi', device: 'ipi', vector: 1 },
    ]);
  });
});

describe('devices', () => {
  const boot = (flags: Record<number, number> = {}) => {
    const m = new FakeMachine(2);
    for (const [l, f] of Object.entries(flags)) m.sources.set(Number(l), { flags: f });
    const dt = m.dt({ devices: [{ name: 'nic', msis: [0x1300, 0x1301], lsis: [0x1200] }] });
    const k = new GuestKernel(m.cpus, dt, NULL_TRACE);
    expect(k.boot()).toBe(0);
    m.clear();
    return { m, k };
  };

  test('probe: source info, PQ=01 on mapping, then startup routes (round robin) and unmasks', () => {
    const { m, k } = boot({ 4608: 0x8 | 0x4 });
    expect(k.startDevices()).toBe(0);
    // virq = first free at hwirq % 512: 0x1300 % 512 = 256; 0x1200 % 512 = 0 → from 1 → 17.
    expect(m.io()).toEqual([
      { cpu: 0, op: 'hcall', opcode: 0x3a8, args: [0n, 0x1300n] },
      { cpu: 0, op: 'load', addr: mgmt(0x1300, 0xd00), size: 8 },
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, 0x1300n, 0n, 6n, 256n] },
      { cpu: 0, op: 'load', addr: mgmt(0x1300, 0xc00), size: 8 },
      { cpu: 0, op: 'hcall', opcode: 0x3a8, args: [0n, 0x1301n] },
      { cpu: 0, op: 'load', addr: mgmt(0x1301, 0xd00), size: 8 },
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, 0x1301n, 1n, 6n, 257n] },
      { cpu: 0, op: 'load', addr: mgmt(0x1301, 0xc00), size: 8 },
      // LSI with H_INT_ESB: every ESB access through the hcall
      { cpu: 0, op: 'hcall', opcode: 0x3a8, args: [0n, 0x1200n] },
      { cpu: 0, op: 'hcall', opcode: 0x3c8, args: [0n, 0x1200n, 0xd00n, 0n] },
      { cpu: 0, op: 'hcall', opcode: 0x3ac, args: [2n, 0x1200n, 0n, 6n, 17n] },
      { cpu: 0, op: 'hcall', opcode: 0x3c8, args: [0n, 0x1200n, 0xc00n, 0n] },
    ]);
    expect(k.irqs().slice(2)).toEqual([
      { girq: 256, lisn: 0x1300, kind: 'msi', device: 'nic', vector: 0 },
      { girq: 257, lisn: 0x1301, kind: 'msi', device: 'nic', vector: 1 },
      { girq: 17, lisn: 0x1200, kind: 'lsi', device: 'nic', vector: 0 },
    ]);
    expect([k.target(256), k.target(257), k.target(17)]).toEqual([0, 1, 0]);
    expect(k.queueAccounting(0).count).toBe(2);
    expect(k.queueAccounting(1).count).toBe(1);
    expect(k.isEnabled(256)).toBe(true);
  });
});
