import { describe, expect, it } from 'vitest';
import { KVM_DEV_XIVE_GRP_SOURCE } from '../../../../src/host/kvm/xive-native-uapi.ts';
import { MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE, SIGBUS } from '../../../../src/host/mm/constants.ts';
import { FrameTable } from '../../../../src/host/mm/frames.ts';
import { MmHost } from '../../../../src/host/mm/mm-host.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { P9_IPI_ESB_BASE, P9_TIMA_BASE } from '../../../../src/hw/xive/p9-chip.ts';
import { XIVE_TM_SIZE } from '../../../../src/hw/xive/tima.ts';
import { NULL_TRACE } from '../../../../src/sim/trace-sink.ts';
import { makeEnv } from './xive-env.ts';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;

/** The device fd mmap'd by a real process: faults go through mm's vm_ops, zaps through i_mmap. */
function setup() {
  const e = makeEnv();
  const frames = new FrameTable({ ramBase: 0x1000_0000, ramFrames: 64 }, NULL_TRACE);
  // The memory manager's physical map reaches the same MMIO owners as the chip's.
  frames.addMmio(P9_IPI_ESB_BASE, e.chip.ipiSource.esbSize, e.chip.ipiSource, 'p9.ipi-esb');
  frames.addMmio(P9_TIMA_BASE, XIVE_TM_SIZE, e.chip.tima, 'p9.tima');
  const mh = new MmHost(NULL_TRACE, { frames });
  const p = mh.spawn();
  const file = mh.anonInodeGetFile(
    'kvm-xive',
    { name: 'kvm-xive', mmap: (f, vma) => e.dev.mmap(f, vma) },
    e.dev,
  );
  const fd = p.installFd(file);
  return { e, p, fd, out: new Word64() };
}

describe('XIVE native device behind a real mmap (kvmppc_xive_native_mmap(); S1, S2, S5, S9)', () => {
  it('mmap offsets: TIMA at 0 (≤ 4 pages), ESB at 4; others -EINVAL (S1)', () => {
    const { p, fd } = setup();
    expect(p.mmap(0, 5 * P, RW, MAP_SHARED, fd, 0)).toBe(-22);
    expect(p.mmap(0, 2 * P, RW, MAP_SHARED, fd, 2 * P)).toBe(-22);
    expect(p.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0)).toBeGreaterThan(0);
    expect(p.mmap(0, 64 * P, RW, MAP_SHARED, fd, 4 * P)).toBeGreaterThan(0);
  });

  it('TIMA: page 2 reads the OS ring of the accessing thread, pages 0, 1, 3 SIGBUS (S2)', () => {
    const { p, fd, out } = setup();
    const tima = p.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
    expect(p.load(tima + 2 * P + 0x10, 4, out, 1)).toBe(0);
    expect(out.lo).toBe(0x0000_00ff); // NSR CPPR IPB LSMFB: LSMFB reset 0xFF
    for (const pg of [0, 1, 3]) expect(p.load(tima + pg * P + 0x10, 4, out, 1)).toBe(SIGBUS);
  });

  it('a bind zaps every mapping of the irq; both refault onto the device page, then back (S5, S9)', () => {
    const { e, p, fd, out } = setup();
    const a = p.mmap(0, 32 * P, RW, MAP_SHARED, fd, 4 * P);
    const b = p.mmap(0, 32 * P, RW, MAP_SHARED, fd, 4 * P);
    e.um.putU64(0x1_0000, 0n);
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE, 5n, 0x1_0000, e.um)).toBe(0);
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE, 6n, 0x1_0000, e.um)).toBe(0);
    // GET on girq 5's EOI page through both mappings: the IPI, PQ 01.
    for (const base of [a, b]) {
      expect(p.load(base + 11 * P + 0x800, 8, out)).toBe(0);
      expect(out.lo).toBe(1);
    }
    expect(p.load(a + 13 * P + 0x800, 8, out)).toBe(0); // girq 6 mapped too
    const dev = e.host.allocIrq();
    e.host.requestIrq(e.host.createMapping(dev), () => {}, 'vfio-msi');
    expect(e.dev.setMapped(5, dev)).toBe(0);
    expect(e.dev.stats.zaps).toBe(1);
    const faults = e.dev.stats.esbFaults;
    for (const base of [a, b]) {
      expect(p.load(base + 11 * P + 0x800, 8, out)).toBe(0);
      expect(out.lo).toBe(2); // the device source, PQ 10 after the host handed it over
    }
    expect(e.dev.stats.esbFaults).toBe(faults + 2);
    // girq 6's PTE survived the zap: no new fault.
    expect(p.load(a + 13 * P + 0x800, 8, out)).toBe(0);
    expect(e.dev.stats.esbFaults).toBe(faults + 2);
    // Unmap one mapping, unbind: the survivor refaults onto the IPI (PQ 10 after clr_mapped).
    expect(p.munmap(b, 32 * P)).toBe(0);
    expect(e.dev.clrMapped(5, dev)).toBe(0);
    expect(p.load(a + 11 * P + 0x800, 8, out)).toBe(0);
    expect(out.lo).toBe(2);
    expect(p.load(a + 11 * P + 0xd00, 8, out)).toBe(0); // SET_PQ_01 on the IPI
    expect(e.host.pqOf(e.dev.irqState(5)!.ipiData)).toBe(1);
  });
});
