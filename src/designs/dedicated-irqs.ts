/**
 * Option 4 of the debate (review of the XIVE native mode series, 2019): passthrough vectors get guest irq numbers of their own,
 * from a range above the machine's MSI range, never reused once their function is unplugged
 * (the machine claims them through `SpaprDeviceConfig.lisns`; the runner hands them out). Such a
 * number is never IPI-backed while the guest uses it: the function is bound before the guest
 * first touches its ESB pages, so the first fault already finds the device page — nothing is
 * switched, nothing zapped. What it costs is the guest ABI: the guest sees other irq numbers
 * than with `kernel_irqchip=off` (I6), which David held unacceptable.
 *
 * When a vector is unbound its numbers are retired for good: the VMM replaces the irq's two
 * pages in its ESB mapping with an inaccessible anonymous mapping (MAP_FIXED, PROT_NONE). The
 * replacement runs the mm notifiers (the partition-scoped entries go), nothing can fault the
 * device page in again, and the hole cannot be reused by another mmap. The ESB VMA splits there
 * (adjacent retired ranges merge into one), so, as for option 3, the fault handler must resolve
 * irqs from the absolute file offset: this design carries that fix.
 *
 * @remarks A design of the debate that was never written; the VMM side is what QEMU would do at
 * vfio-pci vector release (hw/vfio/pci.c) with mm/mmap.c:mmap_region() doing the replacement.
 */

import { XIVE_NATIVE_FIXED } from '../host/kvm/xive-native-flags.ts';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_NONE } from '../host/mm/constants.ts';
import { SPAPR_XIVE_ESB_SHIFT } from '../vmm/spapr-xive.ts';
import type { VfioPciSeam, VfioVector, VmmVfioPci } from '../vmm/vfio-pci.ts';
import { type Design, vmmSwitchesPages } from './design.ts';

/** Bytes of one irq's ESB pages (trigger + EOI). */
const ESB_PAIR = 2 ** SPAPR_XIVE_ESB_SHIFT;

/** The option-4 VMM seam: nothing on bind; retire the irq's pages on unbind. */
export class DedicatedIrqsSeam implements VfioPciSeam {
  /** Irqs retired (never to be used again). */
  readonly retired: number[];
  failures: number;
  lastError: string | null;

  constructor() {
    this.retired = [];
    this.failures = 0;
    this.lastError = null;
  }

  bound(_dev: VmmVfioPci, _v: VfioVector): number {
    return 0;
  }

  unbinding(dev: VmmVfioPci, v: VfioVector): number {
    const m = dev.machine;
    const at = m.xiveKvm!.esbMmap + v.lisn * ESB_PAIR;
    const r = m.kvm!.proc.mmap(at, ESB_PAIR, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (r < 0) {
      this.failures++;
      this.lastError = `retiring irq ${v.lisn}: mmap(MAP_FIXED, PROT_NONE): errno ${-r}`;
      return r;
    }
    this.retired.push(v.lisn);
    return 0;
  }
}

/**
 * First guest irq of the dedicated range: the upper half of the sPAPR MSI range (0x1800–0x1fff,
 * 2048 numbers), which the machine's MSI allocation leaves alone as long as the emulated devices
 * need fewer than 0x500 MSIs. Each plug of a function takes the next numbers; none is reused.
 */
export const DEDICATED_LISN_BASE = 0x1800;

export const dedicatedIrqs: Design = {
  name: 'dedicated-irqs',
  accel: 'kvm',
  option: 4,
  summary: 'passthrough vectors get their own never-reused guest irq numbers: no switch, other guest ABI',
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  kernelSeam: (stats) => vmmSwitchesPages(stats),
  vmmSeam: () => new DedicatedIrqsSeam(),
  lisnRange: 'dedicated',
};
