import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bitmapFindNextZeroArea,
  SPAPR_IRQ_EPOW,
  SPAPR_IRQ_HOTPLUG,
  SPAPR_IRQ_IPI,
  SPAPR_IRQ_MSI,
  SPAPR_IRQ_PCI_LSI,
  SPAPR_IRQ_VIO,
  SPAPR_MSI_ALIGN_QEMU72,
  SPAPR_NR_MSIS,
  SPAPR_NR_XIRQS,
  SPAPR_XIRQ_BASE,
  SPAPR_XIVE_NR_IRQS,
  SpaprMsiBitmap,
  spaprPhbLsi,
} from '../../../src/vmm/spapr-irq.ts';

describe('sPAPR IRQ numbering (hw/ppc/spapr_irq.c)', () => {
  it('has QEMU 7.2 values', () => {
    expect([SPAPR_IRQ_IPI, SPAPR_XIRQ_BASE, SPAPR_IRQ_EPOW, SPAPR_IRQ_HOTPLUG]).toEqual([
      0, 0x1000, 0x1000, 0x1001,
    ]);
    expect([SPAPR_IRQ_VIO, SPAPR_IRQ_PCI_LSI, SPAPR_IRQ_MSI]).toEqual([0x1100, 0x1200, 0x1300]);
    expect([SPAPR_NR_XIRQS, SPAPR_NR_MSIS, SPAPR_XIVE_NR_IRQS]).toEqual([0x1000, 0xd00, 0x2000]);
    expect([spaprPhbLsi(0, 0), spaprPhbLsi(0, 3), spaprPhbLsi(1, 0)]).toEqual([0x1200, 0x1203, 0x1204]);
  });
});

describe('bitmapFindNextZeroArea', () => {
  it('finds the first aligned zero run and reports the would-be end on failure', () => {
    const m = new Uint8Array(16);
    m.set([1, 0, 1, 0, 0, 0, 1], 0);
    expect(bitmapFindNextZeroArea(m, 16, 0, 1, 0)).toBe(1);
    expect(bitmapFindNextZeroArea(m, 16, 0, 2, 0)).toBe(3);
    expect(bitmapFindNextZeroArea(m, 16, 0, 2, 1)).toBe(4);
    expect(bitmapFindNextZeroArea(m, 16, 0, 4, 3)).toBe(8);
    expect(bitmapFindNextZeroArea(m, 16, 0, 16, 0)).toBe(17); // 1 + 16: end beyond size
  });
});

describe('SpaprMsiBitmap (spapr_irq_msi_alloc / _free)', () => {
  it('allocates first fit from SPAPR_IRQ_MSI, power-of-two aligned', () => {
    const b = new SpaprMsiBitmap();
    expect(b.alloc(1, true)).toBe(0x1300);
    expect(b.alloc(4, true)).toBe(0x1304);
    expect(b.alloc(1, true)).toBe(0x1301);
    expect(b.alloc(3, true)).toBe(0x1308); // aligned to 4
    expect(b.alloc(2, false)).toBe(0x1302);
    expect(b.used).toBe(11);
    expect(b.isAllocated(0x130b)).toBe(false);
    expect(b.isAllocated(0x1304)).toBe(true);
  });

  it('frees and reuses', () => {
    const b = new SpaprMsiBitmap();
    const a = b.alloc(8, true);
    const c = b.alloc(8, true);
    b.free(a, 8);
    expect(b.isAllocated(a)).toBe(false);
    expect(b.alloc(2, true)).toBe(a);
    expect(c).toBe(0x1308);
    expect(() => b.free(0x12ff, 1)).toThrow(RangeError);
  });

  it('fails with QEMU’s message when exhausted', () => {
    const b = new SpaprMsiBitmap(8);
    expect(b.alloc(8, true)).toBe(0x1300);
    expect(b.alloc(1, true)).toBe(-1);
    expect(b.lastError).toBe("can't find a free 1-IRQ block");
    const full = new SpaprMsiBitmap();
    expect(full.alloc(SPAPR_NR_MSIS, false)).toBe(0x1300);
    expect(full.alloc(1, false)).toBe(-1);
  });

  it('QEMU 7.2 bool-align variant: MSI unaligned, MSI-X 2-aligned', () => {
    const b = new SpaprMsiBitmap(SPAPR_NR_MSIS, SPAPR_MSI_ALIGN_QEMU72);
    expect(b.alloc(1, true)).toBe(0x1300);
    expect(b.alloc(4, true)).toBe(0x1301);
    expect(b.alloc(1, false)).toBe(0x1306);
  });

  it('snapshot/restore round-trips', () => {
    const b = new SpaprMsiBitmap();
    b.alloc(3, true);
    b.alloc(1, false);
    const s = b.snapshot();
    const c = new SpaprMsiBitmap();
    c.restore(s);
    expect(c.alloc(1, false)).toBe(b.alloc(1, false));
  });

  it('never overlaps and respects alignment over random alloc/free sequences (seed 7)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ n: fc.integer({ min: 1, max: 9 }), align: fc.boolean(), freeIdx: fc.nat() }), {
          maxLength: 40,
        }),
        (ops) => {
          const b = new SpaprMsiBitmap(64);
          const live: [number, number][] = [];
          for (const op of ops) {
            if (op.freeIdx % 3 === 0 && live.length > 0) {
              const [irq, n] = live.splice(op.freeIdx % live.length, 1)[0]!;
              b.free(irq, n);
              continue;
            }
            const irq = b.alloc(op.n, op.align);
            if (irq < 0) continue;
            const i = irq - SPAPR_IRQ_MSI;
            if (op.align) expect(i % 2 ** Math.ceil(Math.log2(op.n))).toBe(0);
            for (const [j, m] of live) expect(irq + op.n <= j || j + m <= irq).toBe(true);
            live.push([irq, op.n]);
          }
          expect(b.used).toBe(live.reduce((s, [, n]) => s + n, 0));
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
});
