/**
 * The kernel seam of the option-1 designs on the whole host path (VFIO → irq bypass →
 * set_mapped → the design's re-point): which mappings each design re-points, what it costs, and
 * where it breaks (scenarios S5, S7, S9, S10 of the 2019 review thread).
 */
import { assert, describe, expect, it } from 'vitest';
import { type Design, DesignStats } from '../../../src/designs/design.ts';
import { rmap } from '../../../src/designs/rmap.ts';
import { rmapFixed } from '../../../src/designs/rmap-fixed.ts';
import { vmaPointer } from '../../../src/designs/vma-pointer.ts';
import { vmaWalk } from '../../../src/designs/vma-walk.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../src/host/mm/constants.ts';
import type { Process } from '../../../src/host/mm/process.ts';
import { vfioHotUnplug } from '../../../src/host/vfio/hotplug.ts';
import { LISN_BASE, makeEnv, P, plugAt, stalePtes, type VfioEnv } from '../host/vfio/env.ts';

const RW = PROT_READ | PROT_WRITE;
const L = LISN_BASE;

function env(d: Design): { e: VfioEnv; stats: DesignStats } {
  const stats = new DesignStats();
  const e = makeEnv({ flags: d.xiveFlags, recordMapping: d.kernelSeam(stats) });
  e.guest.createSource(L);
  return { e, stats };
}

/** The pfn a load of girq L's EOI page through `base` in `p` leaves mapped. */
function touch(e: VfioEnv, p: Process, base: number): number {
  expect(p.load(base + (2 * L + 1) * P + 0x800, 8, e.out)).toBe(0);
  return p.mm.pgtable.pfn(base / P + 2 * L + 1);
}

/** Present PTEs of girq L's EOI page in each of `maps`, after a bind: true = still the IPI's. */
function staleAfterBind(e: VfioEnv, maps: [Process, number][]): boolean[] {
  const ipi = maps.map(([p, b]) => touch(e, p, b));
  plugAt(e, [L]);
  return maps.map(([p, b], i) => p.mm.pgtable.pfn(b / P + 2 * L + 1) === ipi[i]);
}

describe('kernel seam of the option-1 designs', () => {
  it('S5: two mappings in the VMM — rmap, rmap-fixed and vma-walk re-point both; vma-pointer only the last one', () => {
    const got: Record<string, boolean[]> = {};
    for (const d of [rmap, rmapFixed, vmaWalk, vmaPointer]) {
      const { e } = env(d);
      const second = e.vmm.mmap(0, 2 * (L + 1) * P, RW, MAP_SHARED, e.devFd, 4 * P);
      got[d.name] = staleAfterBind(e, [
        [e.vmm, e.esb],
        [e.vmm, second],
      ]);
    }
    expect(got).toEqual({
      rmap: [false, false],
      'rmap-fixed': [false, false],
      'vma-walk': [false, false],
      'vma-pointer': [true, false],
    });
  });

  it('S7: a forked child and an SCM_RIGHTS receiver — only the reverse map reaches them all; the VMA walk sees the VMM alone, the VMA pointer the last mmap alone', () => {
    const got: Record<string, boolean[]> = {};
    for (const d of [rmap, vmaWalk, vmaPointer]) {
      const { e } = env(d);
      const child = e.vmm.fork();
      assert(typeof child !== 'number', `fork: ${child}`);
      const peer = e.mh.spawn();
      const pfd = e.vmm.sendFd(peer, e.devFd);
      const third = peer.mmap(0, 2 * (L + 1) * P, RW, MAP_SHARED, pfd, 4 * P);
      got[d.name] = staleAfterBind(e, [
        [e.vmm, e.esb],
        [child, e.esb],
        [peer, third],
      ]);
      // The stale PTEs point at the IPI, not at the device: the device's pages leak only after unplug.
      expect(stalePtes(e, 0)).toEqual([]);
    }
    expect(got).toEqual({
      rmap: [false, false, false],
      'vma-walk': [false, true, true],
      // The pointer follows the last ESB mmap — the receiver's — and forgets the VMM's own.
      'vma-pointer': [true, true, false],
    });
  });

  it('S7 → I2: after unplug the forked child of a vma-walk VMM still reaches the gone device page', () => {
    const { e } = env(vmaWalk);
    const child = e.vmm.fork();
    assert(typeof child !== 'number', `fork: ${child}`);
    const a = plugAt(e, [L]);
    const dev = e.phb.msiTriggerPage(0, 0) / P + 1;
    expect(touch(e, child, e.esb)).toBe(dev);
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    expect(stalePtes(e, 0)).toEqual([{ pid: child.pid, vpn: e.esb / P + 2 * L + 1, pfn: dev }]);
  });

  it('S9: munmap the last ESB mapping, then bind — vma-pointer touches a freed VMA and leaves the survivor stale', () => {
    const { e, stats } = env(vmaPointer);
    const second = e.vmm.mmap(0, 2 * (L + 1) * P, RW, MAP_SHARED, e.devFd, 4 * P);
    const ipi = touch(e, e.vmm, e.esb);
    expect(e.vmm.munmap(second, 2 * (L + 1) * P)).toBe(0);
    plugAt(e, [L]);
    expect(stats.useAfterFree).toBe(1);
    expect(stats.zaps).toBe(0);
    expect(e.vmm.mm.pgtable.pfn(e.esb / P + 2 * L + 1)).toBe(ipi);

    const r = env(rmap);
    const s2 = r.e.vmm.mmap(0, 2 * (L + 1) * P, RW, MAP_SHARED, r.e.devFd, 4 * P);
    touch(r.e, r.e.vmm, r.e.esb);
    expect(r.e.vmm.munmap(s2, 2 * (L + 1) * P)).toBe(0);
    plugAt(r.e, [L]);
    expect(r.stats.useAfterFree).toBe(0);
    expect(touch(r.e, r.e.vmm, r.e.esb)).toBe(r.e.phb.msiTriggerPage(0, 0) / P + 1);
  });

  it('costs: vma-walk visits every VMA of the VMM per re-point; rmap visits only the VMAs mapping the pages', () => {
    const w = env(vmaWalk);
    const r = env(rmap);
    for (const { e } of [w, r]) {
      // 10 unrelated anonymous mappings in the VMM, and a TIMA mapping.
      for (let i = 0; i < 10; i++) e.vmm.mmap(0, P, RW, 0x22, -1, 0);
      e.vmm.mmap(0, 4 * P, RW, MAP_SHARED, e.devFd, 0);
    }
    const vmas = w.e.vmm.mm.vmas.count;
    plugAt(w.e, [L]);
    plugAt(r.e, [L]);
    expect(w.stats.repoints).toBe(1);
    expect(w.stats.vmasVisited).toBe(vmas);
    expect(w.stats.zaps).toBe(1);
    expect(r.stats.repoints).toBe(1);
    expect(r.stats.vmasVisited).toBe(1);
    expect(r.stats.zaps).toBe(1);
  });

  it('S10: a split ESB VMA — rmap resolves girq 1 through the tail as girq 0, rmap-fixed as girq 1', () => {
    const got: Record<string, number> = {};
    for (const d of [rmap, rmapFixed]) {
      const { e } = env(d);
      e.guest.createSource(0);
      e.guest.createSource(1);
      const m = e.vmm.mmap(0, 8 * P, RW, MAP_SHARED, e.devFd, 4 * P);
      expect(e.vmm.munmap(m, 2 * P)).toBe(0);
      // girq 1's EOI page is file page 7: address m + 3 pages, in the tail VMA (pgoff 6).
      expect(e.vmm.load(m + 3 * P + 0x800, 8, e.out)).toBe(0);
      got[d.name] = e.vmm.mm.pgtable.pfn(m / P + 3);
    }
    // Reference pfns from an unsplit mapping with the same source creation order.
    const { e } = env(rmapFixed);
    e.guest.createSource(0);
    e.guest.createSource(1);
    const eoi = (irq: number): number => {
      expect(e.vmm.load(e.esb + (2 * irq + 1) * P + 0x800, 8, e.out)).toBe(0);
      return e.vmm.mm.pgtable.pfn(e.esb / P + 2 * irq + 1);
    };
    expect(got).toEqual({ rmap: eoi(0), 'rmap-fixed': eoi(1) });
  });
});
