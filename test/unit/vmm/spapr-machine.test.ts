import { describe, expect, it } from 'vitest';
import { NO_CPU, Word64 } from '../../../src/hw/mmio.ts';
import { Trace } from '../../../src/sim/trace.ts';
import { MemoryRegion } from '../../../src/vmm/memory-region.ts';
import { SpaprMachine, type SpaprMachineConfig } from '../../../src/vmm/spapr-machine.ts';

const H_INT_GET_SOURCE_INFO = 0x3a8;
const H_INT_SET_SOURCE_CONFIG = 0x3ac;
const H_INT_SET_QUEUE_CONFIG = 0x3b8;
const VC_BASE = 0x0006_0100_0000_0000;
const TM_BASE = 0x0006_0302_0318_0000;
const TM_OS = TM_BASE + 0x20000;

/** QEMU 7.2's CAS table with OV5 byte 23 = `byte23` (no OV5 when null). */
function casTable(byte23: number | null): Uint8Array {
  const b = [0xff, 0xff, 0, 0, 0, 0x4e, 0, 0, 0, 0, 0, 0, 0x0f, 0, 0, 0x03];
  b.push(byte23 === null ? 0x03 : 0x04, 0x02, 0x00, 0x00, 0x80, 0, 0, 0, 0, 0, 0);
  if (byte23 !== null) {
    const ov5 = new Array<number>(24).fill(0);
    ov5[22] = byte23;
    b.push(0x17, ...ov5);
  }
  return new Uint8Array(b);
}

function boot(extra: Partial<SpaprMachineConfig> = {}) {
  const trace = new Trace();
  const m = new SpaprMachine({ smp: 1, ramSize: 1 << 30, devices: [], trace, ...extra });
  return { m, trace, cpu: m.cpus[0]! };
}

function cas(m: SpaprMachine, byte23: number | null): number {
  m.writeMemory(0x10000, casTable(byte23));
  return m.cpus[0]!.hcall(0xf002, [0x10000n, 0x100000n, 0x100000n], new Array<bigint>(9).fill(0n));
}

describe('SpaprMachine boot (as QEMU 7.2 boots pseries under qtest)', () => {
  it('H_INT_GET_SOURCE_INFO is H_FUNCTION before CAS and succeeds after', () => {
    const { m, cpu } = boot();
    const out = new Array<bigint>(9).fill(0n);
    expect(cpu.hcall(H_INT_GET_SOURCE_INFO, [0n, 0n], out)).toBe(-2);
    expect(m.casDone).toBe(false);
    expect(cas(m, 0x40)).toBe(0);
    expect(m.casDone).toBe(true);
    expect(m.xive.exploitation).toBe(true);
    expect(cpu.hcall(H_INT_GET_SOURCE_INFO, [0n, 0n], out)).toBe(0);
    // 2-page MSI: no flags, mgmt page, trigger page, shift 16
    expect(out.slice(0, 4)).toEqual([0n, BigInt(VC_BASE + 0x10000), BigInt(VC_BASE), 16n]);
    // the device-tree update header (version 1) was written at fdt_buf
    const w = new Word64();
    m.load(0x100000, 4, w);
    expect(w.lo).toBe(1);
  });

  it('ESB GET via sysmem reads PQ 01; a 4-byte ESB read reads 0 with QEMU’s guest error', () => {
    const { m, trace } = boot();
    const w = new Word64();
    m.load(0x0006_0100_0001_0800, 8, w);
    expect([w.hi, w.lo]).toEqual([0, 1]);
    w.set(5, 5);
    m.load(0x0006_0100_0001_0800, 4, w);
    expect([w.hi, w.lo]).toEqual([0, 0]);
    expect(trace.guestErrors).toEqual([
      "Invalid access at addr 0x10800, size 4, region 'xive.esb-emulated', reason: invalid size (min:8 max:8)",
    ]);
  });

  it('END ESB window reads 0 (disabled region), also past LISN 0x1FFF', () => {
    const { m } = boot();
    const w = new Word64().set(1, 1);
    m.load(0x0006_0100_4000_0000, 8, w);
    expect([w.hi, w.lo]).toEqual([0, 0]);
    m.load(0x0006_0100_4006_0800, 8, w);
    expect([w.hi, w.lo]).toEqual([0, 0]);
    expect(m.sysmem.translate(m.xive.endBase)).toBeNull();
    expect(m.xive.endBase).toBe(0x0006_0100_4000_0000);
  });

  it('TIMA lwz at OS page + 0x10 from cpu 0 reads 0x000000ff', () => {
    const { cpu } = boot();
    const r = { hi: 7, lo: 7 };
    cpu.load(TM_OS + 0x10, 4, r);
    expect(r).toEqual({ hi: 0, lo: 0x0000_00ff });
  });

  it('renders the documented memory map', () => {
    const { m } = boot();
    expect(m.sysmem.flatView.sections().map((s) => [s.offsetWithinAddressSpace, s.size, s.mr.name])).toEqual([
      [0, 1 << 30, 'ppc_spapr.ram'],
      [VC_BASE, 0x4000_0000, 'xive.esb-emulated'],
      [TM_BASE, 0x40000, 'xive.tima'],
    ]);
    m.setXiveMmioEnabled(false);
    expect(m.sysmem.flatView.count).toBe(1);
    m.setXiveMmioEnabled(true);
    expect(m.sysmem.flatView.count).toBe(3);
  });

  it('lets a KVM RAM-device overlay (priority 1) cover xive.esb-emulated and fall back on removal', () => {
    const { m } = boot();
    const events: string[] = [];
    m.sysmem.addListener({
      regionAdd: (s) => events.push(`add ${s.mr.name}`),
      regionDel: (s) => events.push(`del ${s.mr.name}`),
    });
    events.length = 0;
    const kvm = MemoryRegion.ramDevice('xive.esb-kvm', m.esbRegion.size, 0x7fff_0000_0000, {
      load: (_o, _s, _c, out) => out.set(0, 0x42),
      store: () => {},
    });
    m.esbRegion.addSubregionOverlap(0, kvm, 1);
    expect(events).toEqual(['del xive.esb-emulated', 'add xive.esb-kvm']);
    const w = new Word64();
    m.load(VC_BASE + 0x10800, 8, w);
    expect(w.lo).toBe(0x42);
    m.esbRegion.delSubregion(kvm);
    m.load(VC_BASE + 0x10800, 8, w);
    expect(w.lo).toBe(1);
  });
});

describe('SpaprMachine CAS outcomes', () => {
  it('0x80 ("both") is fatal: the machine reports QEMU’s exit message', () => {
    const { m } = boot();
    const seen: string[] = [];
    m.onFatalError = (msg) => seen.push(msg);
    expect(cas(m, 0x80)).toBe(-1);
    expect(m.fatalError).toBe('guest requested an invalid interrupt mode');
    expect(seen).toEqual(['guest requested an invalid interrupt mode']);
    expect(m.casDone).toBe(false);
    expect(m.xive.exploitation).toBe(false);
  });

  it('no OV5 → H_PARAMETER and CAS not done', () => {
    const { m } = boot();
    expect(cas(m, null)).toBe(-4);
    expect(m.casDone).toBe(false);
    expect(m.fatalError).toBeNull();
  });

  it('a CAS buffer smaller than the header is fatal', () => {
    const { m, cpu } = boot();
    m.writeMemory(0x10000, casTable(0x40));
    expect(cpu.hcall(0xf002, [0x10000n, 0x100000n, 2n], [])).toBe(-1);
    expect(m.fatalError).toBe('SLOF provided insufficient CAS buffer 2 (min: 4)');
  });

  it('unknown hcalls return H_FUNCTION', () => {
    const { cpu } = boot();
    expect(cpu.hcall(0x04, [], [])).toBe(-2);
    expect(cpu.hcall(0x3a9, [], [])).toBe(-2);
  });

  it('system reset forgets CAS and restores PQ 01', () => {
    const { m, cpu } = boot();
    expect(cas(m, 0x40)).toBe(0);
    const w = new Word64();
    m.load(VC_BASE + 0x10c00, 8, w); // SET_PQ_00
    m.load(VC_BASE + 0x10800, 8, w);
    expect(w.lo).toBe(0);
    m.reset();
    expect(m.casDone).toBe(false);
    expect(m.xive.exploitation).toBe(false);
    expect(cpu.hcall(H_INT_GET_SOURCE_INFO, [0n, 0n], [])).toBe(-2);
    m.load(VC_BASE + 0x10800, 8, w);
    expect(w.lo).toBe(1);
    expect(cas(m, 0x40)).toBe(0);
  });
});

describe('SpaprMachine interrupt numbering and devices', () => {
  const devices = [
    { name: 'net0', msis: 2, lsis: 1 },
    { name: 'blk0', msis: 1, lsis: 4 },
  ];

  it('claims IPIs, EPOW, HOTPLUG, VIO, PHB LSIs and device MSIs', () => {
    const { m } = boot({ smp: 2, devices });
    const claimed = [0, 1, 0x1000, 0x1001, 0x1100, 0x1200, 0x1201, 0x1202, 0x1203, 0x1300, 0x1301, 0x1302];
    for (const l of claimed) expect(m.xive.isClaimed(l)).toBe(true);
    for (const l of [2, 0x1002, 0x1101, 0x1204, 0x1303, 0x1fff]) expect(m.xive.isClaimed(l)).toBe(false);
    expect(m.xive.source.isLsi(0x1200)).toBe(true);
    expect(m.xive.source.isLsi(0x1300)).toBe(false);
    expect(m.devices.map((d) => [d.name, d.msis, d.lsis])).toEqual([
      ['net0', [0x1300, 0x1301], [0x1200]],
      ['blk0', [0x1302], [0x1201, 0x1202, 0x1203, 0x1200]],
    ]);
  });

  it('rejects more than 4 LSIs per device with a clear error', () => {
    expect(() => boot({ devices: [{ name: 'bad', msis: 0, lsis: 5 }] })).toThrow(
      'device bad: 5 LSIs requested, a PCI function has 4 INTx pins at most',
    );
  });

  it('publishes the device tree', () => {
    const { m } = boot({ smp: 2, devices });
    expect(m.deviceTree()).toEqual({
      ramSize: 1 << 30,
      ramFree: 0x100000,
      timaOsPage: 0x0006_0302_031a_0000,
      ipiRange: [0, 2],
      eqSizes: [16],
      resIntPriorities: [7, 0xf8],
      devices: [
        { name: 'net0', msis: [0x1300, 0x1301], lsis: [0x1200] },
        { name: 'blk0', msis: [0x1302], lsis: [0x1201, 0x1202, 0x1203, 0x1200] },
      ],
    });
  });

  it('shared INTx lines are wired-OR', () => {
    const { m } = boot({ devices });
    const [net, blk] = m.devices;
    net!.setLsi(0, true);
    blk!.setLsi(3, 1);
    expect(m.xive.source.isAsserted(0x1200)).toBe(true);
    net!.setLsi(0, false);
    expect(m.xive.source.isAsserted(0x1200)).toBe(true);
    blk!.setLsi(3, 0);
    expect(m.xive.source.isAsserted(0x1200)).toBe(false);
    expect(() => net!.setLsi(1, 1)).toThrow(RangeError);
    expect(() => net!.raiseMsi(2)).toThrow(RangeError);
  });

  it('an MSI reaches vCPU 0 through the queue and raises/lowers its external interrupt', () => {
    const { m, cpu } = boot({ devices });
    expect(cas(m, 0x40)).toBe(0);
    const out = new Array<bigint>(9).fill(0n);
    // SET_QUEUE_CONFIG(flags 0, target 0, prio 3, qpage 0x200000, qsize 16)
    expect(cpu.hcall(H_INT_SET_QUEUE_CONFIG, [0n, 0n, 3n, 0x200000n, 16n], out)).toBe(0);
    // SET_SOURCE_CONFIG(SET_EISN, lisn 0x1301, target 0, prio 3, eisn 0xabc)
    expect(cpu.hcall(H_INT_SET_SOURCE_CONFIG, [2n, 0x1301n, 0n, 3n, 0xabcn], out)).toBe(0);
    m.load(VC_BASE + 0x1301 * 0x20000 + 0x10c00, 8, new Word64()); // PQ := 00 (unmask ESB)
    cpu.store(TM_OS + 0x11, 1, 0, 0xff); // CPPR := 0xFF
    const edges: boolean[] = [];
    cpu.onExternalInterrupt = (l) => edges.push(l);
    m.devices[0]!.raiseMsi(1);
    expect(cpu.externalInterrupt).toBe(true);
    const w = new Word64();
    m.load(0x200000, 4, w);
    expect(w.lo).toBe(0x8000_0abc);
    const ack = { hi: 0, lo: 0 };
    cpu.load(TM_OS + 0x810, 2, ack); // ACK_OS_REG
    expect(ack.lo).toBe(0x8003); // NSR EO, CPPR 3
    expect(cpu.externalInterrupt).toBe(false);
    expect(edges).toEqual([true, false]);
    expect([cpu.raises, cpu.lowers]).toEqual([1, 1]);
  });

  it('TIMA accesses without a vCPU are a guest error, not a crash', () => {
    const { m, trace } = boot();
    const w = new Word64();
    m.load(TM_OS + 0x10, 4, w);
    expect(trace.guestErrors.length).toBe(1);
    expect(NO_CPU).toBe(-1);
  });

  it('validates the configuration', () => {
    expect(() => boot({ smp: 0 })).toThrow(RangeError);
    expect(() => boot({ ramSize: 0x100000 })).toThrow(RangeError);
  });
});
