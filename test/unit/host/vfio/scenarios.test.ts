/**
 * The review thread’s passthrough scenarios driven through the whole host path: VFIO SET_IRQS → irq
 * bypass → KVM irqfd consumer → kvmppc_set_passthru_irq → set/clr_mapped → zap of the device
 * file's mappings, with the VMM's (and other processes') page tables observed directly.
 */
import { assert, describe, expect, it } from 'vitest';
import { ENODEV } from '../../../../src/host/errno.ts';
import { EventfdCtx } from '../../../../src/host/kvm/irqfd.ts';
import { KVMPPC_XIVE_NR_IRQS } from '../../../../src/host/kvm/xive-native-uapi.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../../src/host/mm/constants.ts';
import { vfioHotUnplug } from '../../../../src/host/vfio/hotplug.ts';
import { VFIO_PCI_MSIX_IRQ_INDEX } from '../../../../src/host/vfio/vfio.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import { LISN_BASE, makeEnv, P, plugAt, stalePtes, type VfioEnv } from './env.ts';

const RW = PROT_READ | PROT_WRITE;

/** Present PTEs of a process in a user range, as [page index from `base`, pfn]. */
function ptes(e: VfioEnv, p = e.vmm, base = e.esb, pages = 2 * (LISN_BASE + 0x400)): [number, number][] {
  const out: [number, number][] = [];
  p.mm.pgtable.scan(base / P, base / P + pages, (vpn, pfn) => out.push([vpn - base / P, pfn]));
  return out;
}

describe('the review thread’s passthrough scenarios through VFIO + irq bypass', () => {
  it('S3: binding girq n zaps exactly file pages 4+2n, 5+2n (n = 0, 1, 2); TIMA and the neighbours stay', () => {
    for (const n of [0, 1, 2]) {
      const e = makeEnv();
      const tima = e.vmm.mmap(0, 4 * P, RW, MAP_SHARED, e.devFd, 0);
      expect(e.vmm.load(tima + 2 * P, 8, e.out)).toBe(0);
      for (let i = 0; i < 4; i++) {
        e.guest.createSource(i);
        e.guest.esbLoad(i, 0x800);
        e.guest.esbTrigger(i);
      }
      const before = ptes(e);
      plugAt(e, [n]);
      const gone = before.filter(([pg]) => pg === 2 * n || pg === 2 * n + 1);
      expect(gone.length).toBe(2);
      expect(ptes(e)).toEqual(before.filter(([pg]) => pg !== 2 * n && pg !== 2 * n + 1));
      expect(e.vmm.mm.pgtable.countPresent(tima / P, tima / P + 4)).toBe(1);
    }
  });

  it('S3 at girq NR_IRQS-1: the last pair of the 2^21-page ESB range', () => {
    const e = makeEnv();
    const n = KVMPPC_XIVE_NR_IRQS - 1;
    const big = e.vmm.mmap(0, 2 * KVMPPC_XIVE_NR_IRQS * P, RW, MAP_SHARED, e.devFd, 4 * P);
    expect(big).toBeGreaterThan(0);
    e.guest.createSource(n);
    expect(e.vmm.load(big + (2 * n + 1) * P + 0x800, 8, e.out)).toBe(0);
    expect(ptes(e, e.vmm, big, 2 * KVMPPC_XIVE_NR_IRQS).length).toBe(1);
    plugAt(e, [n]);
    expect(ptes(e, e.vmm, big, 2 * KVMPPC_XIVE_NR_IRQS)).toEqual([]);
    expect(e.vmm.load(big + (2 * n + 1) * P + 0x800, 8, e.out)).toBe(0);
    expect(ptes(e, e.vmm, big, 2 * KVMPPC_XIVE_NR_IRQS)).toEqual([
      [2 * n + 1, e.phb.msiTriggerPage(0, 0) / P + 1],
    ]);
  });

  it('S5 / S7: a second mapping, a forked child and an SCM_RIGHTS receiver all refault onto the device page, then the IPI', () => {
    const e = makeEnv();
    const L = LISN_BASE;
    e.guest.createSource(L);
    const len = 2 * (L + 1) * P;
    const second = e.vmm.mmap(0, len, RW, MAP_SHARED, e.devFd, 4 * P);
    const child = e.vmm.fork();
    assert(typeof child !== 'number', `fork: ${child}`);
    const peer = e.mh.spawn();
    const pfd = e.vmm.sendFd(peer, e.devFd);
    expect(pfd).toBeGreaterThanOrEqual(0);
    const third = peer.mmap(0, len, RW, MAP_SHARED, pfd, 4 * P);
    const touch = (): number[] => {
      const r: number[] = [];
      for (const [proc, base] of [
        [e.vmm, e.esb],
        [e.vmm, second],
        [child, e.esb],
        [peer, third],
      ] as const) {
        expect(proc.load(base + (2 * L + 1) * P + 0x800, 8, e.out)).toBe(0);
        r.push(proc.mm.pgtable.pfn(base / P + 2 * L + 1));
      }
      return r;
    };
    const ipi = touch();
    expect(new Set(ipi).size).toBe(1);
    const a = plugAt(e, [L]);
    const dev = e.phb.msiTriggerPage(0, 0) / P + 1;
    expect(touch()).toEqual([dev, dev, dev, dev]);
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    expect(stalePtes(e, 0)).toEqual([]);
    expect(touch()).toEqual(ipi);
  });

  it('S8: bind before any mmap zaps nothing; the first access after mmap faults the device page in', () => {
    const e = makeEnv();
    // As before the VMM's first mmap: `xive->mapping` is still NULL (the env's mapping is simply not
    // recorded yet; its PTEs are empty).
    e.dev.mapping = null;
    e.guest.createSource(LISN_BASE);
    const zaps = e.dev.stats.zaps;
    plugAt(e, [LISN_BASE]);
    expect(e.dev.stats.zaps).toBe(zaps);
    expect(e.guest.esbLoad(LISN_BASE, 0x800)).toBe(2);
    expect(e.vmm.mm.pgtable.pfn(e.esb / P + 2 * LISN_BASE + 1)).toBe(e.phb.msiTriggerPage(0, 0) / P + 1);
  });

  it('S9: munmap one of two mappings, then bind: the survivor is zapped and refaults correctly', () => {
    const e = makeEnv();
    const L = LISN_BASE;
    e.guest.createSource(L);
    const other = e.vmm.mmap(0, 2 * (L + 1) * P, RW, MAP_SHARED, e.devFd, 4 * P);
    expect(e.vmm.load(other + (2 * L + 1) * P + 0x800, 8, e.out)).toBe(0);
    e.guest.esbLoad(L, 0x800);
    expect(e.vmm.munmap(other, 2 * (L + 1) * P)).toBe(0);
    plugAt(e, [L]);
    expect(e.vmm.mm.pgtable.flags(e.esb / P + 2 * L + 1) & 1).toBe(0);
    expect(e.guest.esbLoad(L, 0x800)).toBe(2);
  });

  it('S13: binding a GSI with no source fails in set_mapped before any zap; double bind of a GSI is refused (-EINVAL) and leaves the first bind', () => {
    const e = makeEnv();
    const zaps = e.dev.stats.zaps;
    const a = plugAt(e, [LISN_BASE]); // no GRP_SOURCE for the GSI
    expect(a.isBound(0)).toBe(false);
    expect(e.dev.stats.zaps).toBe(zaps);
    expect(e.irqfds.log.at(-1)).toMatch(/kvmppc_xive_set_mapped \(gsi 4864, hw 0x1000000\) fails: -22/);
    vfioHotUnplug(e.vfio, a);
    // Double bind: a second device's vector on the same GSI.
    e.guest.createSource(LISN_BASE);
    const a1 = plugAt(e, [LISN_BASE], 0);
    const efd = new EventfdCtx();
    // A second irqfd on the same GSI with its own eventfd (KVM allows it), and a second device.
    expect(e.irqfds.kvmIrqfd(efd, LISN_BASE, 0)).toBe(0);
    const pdev = new PciDevice({ name: 'second', msix: 1 });
    e.phb.plug(1, pdev);
    const v2 = e.vfio.bind(pdev);
    if (typeof v2 === 'number') throw new Error('bind');
    v2.open();
    expect(v2.setIrqsEventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, [efd])).toBe(0);
    expect(e.vfio.stats.producerFailures).toBe(1);
    expect(e.vfio.log.at(-1)).toBe('second: irq bypass producer (token vector 0) registration fails: -22');
    expect(a1.isBound(0)).toBe(true);
    expect(e.dev.irqState(LISN_BASE)!.ptNumber).toBe(a1.hwIrq(0));
  });

  it('S14 / S15: device released while a passthrough is bound: set/clr_mapped then -ENODEV; the VFIO teardown still frees everything', () => {
    const e = makeEnv();
    e.guest.createSource(LISN_BASE);
    const a = plugAt(e, [LISN_BASE]);
    const hw = a.hwIrq(0);
    const virq = a.vdev.ctx[0]!.irq;
    const src = e.phb.slots[0]!.msiSource;
    // Last close of the device fd after every mapping is gone → release.
    expect(e.vmm.munmap(e.esb, 2 * (LISN_BASE + 0x400) * P)).toBe(0);
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(e.dev.released).toBe(true);
    expect(e.dev.mapping).toBe(null);
    expect(src.getPq(0)).toBe(1); // KVM masked the passthrough irq
    expect(e.host.irqOfHw(hw)).not.toBe(null); // … and kept its host data
    expect(e.dev.setMapped(LISN_BASE, hw)).toBe(-ENODEV);
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    expect(e.irqfds.log.at(-1)).toBe(`kvmppc_clr_passthru_irq (irq ${virq}, gsi ${LISN_BASE}) fails: -19`);
    expect(e.host.irqOfHw(hw)).toBe(null); // VFIO freed and disposed its vector
    expect(e.bypass.producers.length + e.bypass.consumers.length).toBe(0);
  });
});
