/**
 * The sPAPR interrupt number space and the dynamic MSI allocator.
 *
 * @remarks Models include/hw/ppc/spapr_irq.h and hw/ppc/spapr_irq.c (QEMU 7.2 numbering: the
 * XIVE controller has `SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS` = 0x2000 LISNs, IPIs in 0..0xFFF).
 */

/** Per-vCPU IPIs: LISN = vCPU id (XIVE only). */
export const SPAPR_IRQ_IPI = 0x0;
/** Size of the IPI range (newer QEMU name; 7.2 uses the same 0x1000 implicitly). */
export const SPAPR_IRQ_NR_IPIS = 0x1000;
/** First device interrupt (= XICS_IRQ_BASE). */
export const SPAPR_XIRQ_BASE = 0x1000;
/** RTAS EPOW event source. */
export const SPAPR_IRQ_EPOW = SPAPR_XIRQ_BASE + 0x0000;
/** RTAS hotplug event source. */
export const SPAPR_IRQ_HOTPLUG = SPAPR_XIRQ_BASE + 0x0001;
/** 256 VIO devices. */
export const SPAPR_IRQ_VIO = SPAPR_XIRQ_BASE + 0x0100;
/** PHB INTx: 4 per PHB (32 PHBs). */
export const SPAPR_IRQ_PCI_LSI = SPAPR_XIRQ_BASE + 0x0200;
/** Start of the bitmap-allocated dynamic MSI range. */
export const SPAPR_IRQ_MSI = SPAPR_XIRQ_BASE + 0x0300;
/** Device interrupts. */
export const SPAPR_NR_XIRQS = 0x1000;
/** MSI bitmap size: 0xD00. */
export const SPAPR_NR_MSIS = SPAPR_XIRQ_BASE + SPAPR_NR_XIRQS - SPAPR_IRQ_MSI;
/** XIVE `nr-irqs` on 7.2: 0x2000. */
export const SPAPR_XIVE_NR_IRQS = SPAPR_NR_XIRQS + SPAPR_XIRQ_BASE;
/** INTx pins per PHB (`PCI_NUM_PINS`). */
export const PCI_NUM_PINS = 4;

/** LSI of pin `pin` of PHB `index`. @remarks Models spapr_pci.c: SPAPR_IRQ_PCI_LSI + index * PCI_NUM_PINS + pin. */
export function spaprPhbLsi(index: number, pin: number): number {
  return SPAPR_IRQ_PCI_LSI + index * PCI_NUM_PINS + pin;
}

/**
 * Alignment rule of {@link SpaprMsiBitmap.alloc}: the intended one (a block of `num` MSIs
 * aligned to `num` rounded up to a power of two when `align` is set, as the older
 * `ics_find_free` allocator and PCI MSI require).
 */
export const SPAPR_MSI_ALIGN_POW2 = 0;
/**
 * QEMU 7.2's actual arithmetic: `bool align; align -= 1;` turns `true` into an align mask of 0
 * and `false` into 1, so multi-vector MSI blocks are not aligned while MSI-X blocks are
 * 2-aligned. A latent defect, selectable for differential runs.
 */
export const SPAPR_MSI_ALIGN_QEMU72 = 1;

/**
 * First zero run of `nr` bits at or after `start` whose index is a multiple of
 * `alignMask + 1`; returns an index > `size - nr` (the would-be end) when none fits.
 *
 * @remarks Models util/bitmap.c:bitmap_find_next_zero_area().
 */
export function bitmapFindNextZeroArea(
  map: Uint8Array,
  size: number,
  start: number,
  nr: number,
  alignMask: number,
): number {
  let s = start;
  for (;;) {
    let index = s;
    while (index < size && map[index] !== 0) index++;
    // __ALIGN_MASK: round up to a multiple of alignMask + 1 (alignMask = 2^k - 1).
    index = Math.ceil(index / (alignMask + 1)) * (alignMask + 1);
    const end = index + nr;
    if (end > size) return end;
    let i = index;
    while (i < end && map[i] === 0) i++;
    if (i >= end) return index;
    s = i + 1;
  }
}

const pow2ceil = (n: number): number => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)));

/** The MSI bitmap (`spapr->irq_map`), one byte per LISN above {@link SPAPR_IRQ_MSI}. */
export class SpaprMsiBitmap {
  readonly nr: number;
  readonly alignMode: number;
  private readonly map: Uint8Array;
  /** Message of the last failed {@link alloc}, QEMU's wording. */
  lastError: string;

  constructor(nr: number = SPAPR_NR_MSIS, alignMode: number = SPAPR_MSI_ALIGN_POW2) {
    this.nr = nr;
    this.alignMode = alignMode;
    this.map = new Uint8Array(nr);
    this.lastError = '';
  }

  /**
   * Allocate `num` consecutive MSIs, first fit; returns the first LISN or −1.
   *
   * @remarks Models hw/ppc/spapr_irq.c:spapr_irq_msi_alloc(). QEMU tests failure with
   * `irq == irq_map_nr`, which bitmap_find_next_zero_area() never returns for `num ≥ 1` (it
   * returns the would-be end); we test `irq + num > nr`, the evident intent, instead of
   * modelling the overflow.
   */
  alloc(num: number, align: boolean): number {
    if (!Number.isInteger(num) || num < 1) throw new RangeError(`spapr msi alloc: bad count ${num}`);
    const mask = this.alignMode === SPAPR_MSI_ALIGN_QEMU72 ? (align ? 0 : 1) : align ? pow2ceil(num) - 1 : 0;
    const irq = bitmapFindNextZeroArea(this.map, this.nr, 0, num, mask);
    if (irq + num > this.nr) {
      this.lastError = `can't find a free ${num}-IRQ block`;
      return -1;
    }
    this.map.fill(1, irq, irq + num);
    return irq + SPAPR_IRQ_MSI;
  }

  /** @remarks Models hw/ppc/spapr_irq.c:spapr_irq_msi_free(). */
  free(irq: number, num: number): void {
    const i = irq - SPAPR_IRQ_MSI;
    if (i < 0 || i + num > this.nr)
      throw new RangeError(`spapr msi free: 0x${irq.toString(16)}+${num} outside the MSI range`);
    this.map.fill(0, i, i + num);
  }

  /** True when LISN `irq` is allocated. */
  isAllocated(irq: number): boolean {
    const i = irq - SPAPR_IRQ_MSI;
    return i >= 0 && i < this.nr && this.map[i] !== 0;
  }

  /** Number of allocated MSIs. */
  get used(): number {
    let n = 0;
    for (let i = 0; i < this.nr; i++) n += this.map[i]!;
    return n;
  }

  snapshot(): { v: 1; map: number[] } {
    const used: number[] = [];
    for (let i = 0; i < this.nr; i++) if (this.map[i] !== 0) used.push(i);
    return { v: 1, map: used };
  }

  restore(s: { v: 1; map: readonly number[] }): void {
    if (s.v !== 1) throw new Error(`SpaprMsiBitmap snapshot version ${String(s.v)}`);
    this.map.fill(0);
    for (const i of s.map) this.map[i] = 1;
  }
}
