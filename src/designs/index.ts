/**
 * The design registry: every design, the emulated reference included, in report order. Every
 * name list, usage message and "unknown design" error of the program is derived from it, and
 * the limit of KVM mode ({@link kvmVcpuLimit}) is stated here once.
 */

import { P9_MAX_THREADS } from '../hw/xive/p9-chip.ts';
import { dedicatedIrqs } from './dedicated-irqs.ts';
import type { Design } from './design.ts';
import { emulated } from './emulated.ts';
import { overlapRegions } from './overlap-regions.ts';
import { qemuRemap } from './qemu-remap.ts';
import { qemuRemapUntracked } from './qemu-remap-untracked.ts';
import { rmap } from './rmap.ts';
import { rmapFixed } from './rmap-fixed.ts';
import { vmaPointer } from './vma-pointer.ts';
import { vmaWalk } from './vma-walk.ts';

/** Every design, in report order: the reference first, then options 1–4. */
export const DESIGNS: readonly Design[] = Object.freeze([
  emulated,
  vmaPointer,
  vmaWalk,
  rmap,
  rmapFixed,
  overlapRegions,
  qemuRemap,
  qemuRemapUntracked,
  dedicatedIrqs,
]);

/** The names of {@link DESIGNS}, in report order. */
export const DESIGN_NAMES: readonly string[] = Object.freeze(DESIGNS.map((d) => d.name));

const BY_NAME: ReadonlyMap<string, Design> = new Map(DESIGNS.map((d) => [d.name, d]));

/** The design named `name`, or undefined. */
export function findDesign(name: string): Design | undefined {
  return BY_NAME.get(name);
}

/** The one-line error for a name that is not a design. */
export function unknownDesign(name: string): string {
  return `unknown design "${name}" (known: ${DESIGN_NAMES.join(', ')})`;
}

/**
 * The design named `name`.
 * @throws Error with {@link unknownDesign}'s message.
 */
export function designNamed(name: string): Design {
  const d = BY_NAME.get(name);
  if (d === undefined) throw new Error(unknownDesign(name));
  return d;
}

/**
 * Why KVM mode cannot run a guest of `vcpus` vCPUs, or null when it can: the model runs each
 * vCPU on a host thread of its own (vCPU i on thread i), so at most the host chip's
 * {@link P9_MAX_THREADS}.
 */
export function kvmVcpuLimit(vcpus: number): string | null {
  return vcpus > P9_MAX_THREADS
    ? `KVM mode runs at most ${P9_MAX_THREADS} vCPUs (one host thread each), not ${vcpus}`
    : null;
}

/** Why `design` cannot run a guest of `vcpus` vCPUs, or null when it can. */
export function designVcpuLimit(design: Design, vcpus: number): string | null {
  return design.accel === 'kvm' ? kvmVcpuLimit(vcpus) : null;
}
