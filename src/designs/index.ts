/**
 * Every design of `src/designs/`, by name. The emulated reference is not a {@link Design} with
 * seams: the runners treat the name `emulated` as the VMM-emulated machine.
 */

import { dedicatedIrqs } from './dedicated-irqs.ts';
import type { Design } from './design.ts';
import { overlapRegions } from './overlap-regions.ts';
import { qemuRemap } from './qemu-remap.ts';
import { qemuRemapUntracked } from './qemu-remap-untracked.ts';
import { rmap } from './rmap.ts';
import { rmapFixed } from './rmap-fixed.ts';
import { vmaPointer } from './vma-pointer.ts';
import { vmaWalk } from './vma-walk.ts';

/** The designs with a kernel seam (and, for options 2–4, a VMM seam), in report order. */
export const DESIGNS: ReadonlyMap<string, Design> = new Map<string, Design>(
  [vmaPointer, vmaWalk, rmap, rmapFixed, overlapRegions, qemuRemap, qemuRemapUntracked, dedicatedIrqs].map(
    (d) => [d.name, d],
  ),
);
