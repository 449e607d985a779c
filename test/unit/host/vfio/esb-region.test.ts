/**
 * The VFIO ESB region (model extension for options 2 and 3): the device fd maps the function's
 * MSI ESB pages, two per vector, and the mappings are revoked when the function leaves vfio-pci.
 */
import { describe, expect, it } from 'vitest';
import { EINVAL } from '../../../../src/host/errno.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE, SIGBUS } from '../../../../src/host/mm/constants.ts';
import { vfioHotUnplug } from '../../../../src/host/vfio/hotplug.ts';
import { VFIO_PCI_ESB_REGION_PGOFF, vfioDeviceFile } from '../../../../src/host/vfio/vfio.ts';
import { LISN_BASE, makeEnv, P, plugAt, stalePtes } from './env.ts';

const RW = PROT_READ | PROT_WRITE;
const OFF = VFIO_PCI_ESB_REGION_PGOFF * P;

function setup() {
  const e = makeEnv();
  const a = plugAt(e, [LISN_BASE, LISN_BASE + 1, LISN_BASE + 2, LISN_BASE + 3]);
  const f = vfioDeviceFile(e.mh, a.vdev);
  if (typeof f === 'number') throw new Error(`open ${f}`);
  const fd = e.vmm.installFd(f);
  return { e, a, fd };
}

describe('VFIO ESB region', () => {
  it('region offset is index 9 << 40 (page offset 9 << 24)', () => {
    expect(VFIO_PCI_ESB_REGION_PGOFF).toBe(0x900_0000);
  });

  it('maps vector v at pages 2v (trigger) and 2v+1 (EOI) of the region', () => {
    const { e, fd } = setup();
    const m = e.vmm.mmap(0, 8 * P, RW, MAP_SHARED, fd, OFF);
    expect(m).toBeGreaterThan(0);
    for (let v = 0; v < 4; v++) {
      expect(e.vmm.load(m + (2 * v + 1) * P + 0x800, 8, e.out)).toBe(0);
      expect(e.vmm.mm.pgtable.pfn(m / P + 2 * v + 1)).toBe(e.phb.msiTriggerPage(0, v) / P + 1);
      expect(e.vmm.store(m + 2 * v * P, 8, 0, 0)).toBe(0);
      expect(e.vmm.mm.pgtable.pfn(m / P + 2 * v)).toBe(e.phb.msiTriggerPage(0, v) / P);
    }
  });

  it('rejects ranges beyond two pages per vector and other regions with -EINVAL', () => {
    const { e, fd } = setup();
    expect(e.vmm.mmap(0, 9 * P, RW, MAP_SHARED, fd, OFF)).toBe(-EINVAL);
    expect(e.vmm.mmap(0, 2 * P, RW, MAP_SHARED, fd, OFF + 7 * P)).toBe(-EINVAL);
    expect(e.vmm.mmap(0, 2 * P, RW, MAP_SHARED, fd, 0)).toBe(-EINVAL);
    expect(e.vmm.mmap(0, 2 * P, RW, MAP_SHARED, fd, OFF - P)).toBe(-EINVAL);
    expect(e.vmm.mmap(0, 2 * P, RW, MAP_SHARED, fd, OFF + 6 * P)).toBeGreaterThan(0);
  });

  it('unplug revokes: the PTEs go, a new access raises SIGBUS, no PTE reaches the gone pages', () => {
    const { e, a, fd } = setup();
    const m = e.vmm.mmap(0, 8 * P, RW, MAP_SHARED, fd, OFF);
    for (let v = 0; v < 4; v++) expect(e.vmm.load(m + (2 * v + 1) * P + 0x800, 8, e.out)).toBe(0);
    expect(stalePtes(e, 0).length).toBe(4);
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    expect(stalePtes(e, 0)).toEqual([]);
    expect(e.vmm.load(m + P + 0x800, 8, e.out)).toBe(SIGBUS);
    expect(e.vmm.mmap(0, 2 * P, RW, MAP_SHARED, fd, OFF)).toBe(-EINVAL);
  });
});
