/**
 * The passthrough-page designs of the debate (review of the XIVE native mode series, 2019), each a small object plugged in
 * at the model's seams:
 * - the kernel seam: what the KVM XIVE device records when its file is mmap'd and how it
 *   re-points an irq's ESB pages on bind/unbind ({@link XiveRecordMapping}), and which latent
 *   bugs of the merged code it carries ({@link XiveNativeFlags});
 * - the VMM seam (options 2–4): what the VMM does on bind/unbind and how it numbers interrupts.
 *
 * One run uses one design, so the hot call sites stay monomorphic.
 */

import type { AtomicStep } from '../host/atomic-step.ts';
import {
  fileMappingZapper,
  type XiveMapping,
  type XiveNativeFlags,
  type XiveRecordMapping,
} from '../host/kvm/xive-native-flags.ts';
import type { File } from '../host/mm/file.ts';
import type { VfioPciSeam } from '../vmm/vfio-pci.ts';

/** Counts of a design's own paths running (what the kernel seam did, and what went wrong). */
export class DesignStats {
  /** Re-point requests (one per bind or unbind that reached the seam). */
  repoints = 0;
  /** VMAs the seam looked at to find the ones to zap. */
  vmasVisited = 0;
  /** zap calls the seam issued (zap_vma_ptes or a per-VMA unmap). */
  zaps = 0;
  /** Accesses to a VMA the kernel had already freed (I3). */
  useAfterFree = 0;
}

/** One design. */
export interface Design {
  /** Its name on the command line and in reports (the registry, `designs/index.ts`, lists them). */
  readonly name: string;
  /**
   * Where the guest's XIVE lives: `kvm`, the in-kernel XIVE native device on the host model
   * (`kernel_irqchip=on`, the seams below apply); `emulated`, the VMM's own XIVE
   * (`kernel_irqchip=off`), which has no seams.
   */
  readonly accel: 'emulated' | 'kvm';
  /** The option of the 2019 review it implements (1–4), or 0 for the emulated reference. */
  readonly option: 0 | 1 | 2 | 3 | 4;
  /** One line for reports. */
  readonly summary: string;
  /** Latent-bug flags of the KVM device (merged behaviour unless a design fixes them). */
  readonly xiveFlags: Partial<XiveNativeFlags>;
  /**
   * The kernel seam: what the device records at mmap, counting into `stats`. `null` keeps the
   * mainline record (the file's address_space).
   */
  kernelSeam(stats: DesignStats): XiveRecordMapping | null;
  /**
   * The VMM seam (options 2–4): a fresh seam per run, called by the VMM's vfio-pci after each
   * vector is bound and before it is unbound. Absent: the VMM does nothing on bind/unbind.
   */
  readonly vmmSeam?: () => VfioPciSeam;
  /**
   * Where passthrough functions get their guest irq numbers: the machine's MSI range (default,
   * as QEMU), or a dedicated range above it, never reused (option 4).
   */
  readonly lisnRange?: 'machine' | 'dedicated';
}

/**
 * The kernel seam of options 2–4: the VMM switches the pages, so the device's record re-points
 * nothing; it only counts the re-point requests the kernel makes (set/clr_mapped still run).
 */
export function vmmSwitchesPages(stats: DesignStats): XiveRecordMapping {
  const record: XiveMapping = {
    unmapMappingRange(): void {
      stats.repoints++;
    },
  };
  return () => record;
}

/** The mainline record, counting the VMAs the reverse map reaches and the zaps it issues. */
export function countingFileMapping(stats: DesignStats): (file: File) => XiveMapping {
  return (file) => {
    const inner = fileMappingZapper(file.mapping);
    const count = (pgoff: number, npages: number): void => {
      stats.repoints++;
      const hit = file.mapping.iMmap.query(pgoff, pgoff + npages - 1).length;
      stats.vmasVisited += hit;
      stats.zaps += hit;
    };
    return {
      unmapMappingRange(pgoff: number, npages: number): void {
        count(pgoff, npages);
        inner.unmapMappingRange(pgoff, npages);
      },
      *unmapMappingRangeSteps(pgoff: number, npages: number, who: string): Generator<AtomicStep, void, void> {
        count(pgoff, npages);
        yield* inner.unmapMappingRangeSteps!(pgoff, npages, who);
      },
    };
  };
}
