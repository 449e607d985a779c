import { describe, expect, it } from 'vitest';
import { RACE_DESIGNS } from '../../../src/check/explore/race-schema.ts';
import {
  DESIGN_NAMES,
  DESIGNS,
  designNamed,
  designVcpuLimit,
  findDesign,
  kvmVcpuLimit,
  unknownDesign,
} from '../../../src/designs/index.ts';
import { P9_MAX_THREADS } from '../../../src/hw/xive/p9-chip.ts';

describe('the design registry', () => {
  it('lists every design once, the emulated reference first, in report order', () => {
    expect(DESIGN_NAMES).toEqual([
      'emulated',
      'vma-pointer',
      'vma-walk',
      'rmap',
      'rmap-fixed',
      'overlap-regions',
      'qemu-remap',
      'qemu-remap-untracked',
      'dedicated-irqs',
    ]);
    expect(DESIGNS.map((d) => [d.name, d.accel, d.option])).toEqual([
      ['emulated', 'emulated', 0],
      ['vma-pointer', 'kvm', 1],
      ['vma-walk', 'kvm', 1],
      ['rmap', 'kvm', 1],
      ['rmap-fixed', 'kvm', 1],
      ['overlap-regions', 'kvm', 2],
      ['qemu-remap', 'kvm', 3],
      ['qemu-remap-untracked', 'kvm', 3],
      ['dedicated-irqs', 'kvm', 4],
    ]);
  });

  it('finds a design by name; an unknown name is one line listing the known ones', () => {
    expect(findDesign('rmap')?.name).toBe('rmap');
    expect(findDesign('nope')).toBe(undefined);
    const msg = `unknown design "nope" (known: ${DESIGN_NAMES.join(', ')})`;
    expect(unknownDesign('nope')).toBe(msg);
    expect(() => designNamed('nope')).toThrow(msg);
  });

  it('the race scenarios’ designs are KVM designs of the registry', () => {
    expect(RACE_DESIGNS.map((n) => findDesign(n)?.accel)).toEqual(RACE_DESIGNS.map(() => 'kvm'));
  });

  it('KVM mode runs at most one vCPU per host chip thread; the emulated design has no such limit', () => {
    expect(P9_MAX_THREADS).toBe(128);
    expect(kvmVcpuLimit(128)).toBe(null);
    expect(kvmVcpuLimit(129)).toBe('KVM mode runs at most 128 vCPUs (one host thread each), not 129');
    expect(designVcpuLimit(designNamed('rmap'), 129)).toBe(kvmVcpuLimit(129));
    expect(designVcpuLimit(designNamed('emulated'), 129)).toBe(null);
  });
});
