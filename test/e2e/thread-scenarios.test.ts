/**
 * The scenarios S1–S23 of the 2019 review thread of the KVM XIVE native device, as tests of the
 * merged behaviour, each driven through the host's syscall surface (open / ioctl / mmap / loads
 * and stores of the VMM process, the guest through KVM_RUN) — and, for S22/S23, through the VMM.
 * Latent-bug scenarios run with the bug's flag on (mainline) and off (fixed) and assert both
 * outcomes.
 */

import { assert, describe, expect, it } from 'vitest';
import type { AtomicStep } from '../../src/host/atomic-step.ts';
import { EINVAL, ENODEV, ENOSPC } from '../../src/host/errno.ts';
import { createHost } from '../../src/host/host.ts';
import {
  encodeKvmCreateDevice,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
} from '../../src/host/kvm/uapi.ts';
import type { KvmXiveNative } from '../../src/host/kvm/xive-native.ts';
import { KVMPPC_XIVE_NR_IRQS } from '../../src/host/kvm/xive-native-uapi.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE, SIGBUS } from '../../src/host/mm/constants.ts';
import type { HostProcess } from '../../src/host/syscalls.ts';
import { Word64 } from '../../src/hw/mmio.ts';
import { PciDevice } from '../../src/hw/phb.ts';
import { bootGuestOnSlots } from '../../src/scenario/guest-port.ts';
import { NULL_TRACE } from '../../src/sim/trace-sink.ts';
import { SpaprMachine } from '../../src/vmm/spapr-machine.ts';
import {
  makeVm,
  mgmtGpa,
  NR_IRQS,
  P,
  run,
  trigGpa,
  type VmEnv,
  type VmEnvOptions,
} from '../unit/host/kvm/host-env.ts';
import { configSource, connect, createSource, setEq } from '../unit/host/kvm/kvm-ioctls.ts';
import { assign, setIrqs, unassign } from '../unit/host/kvm/passthrough-env.ts';

const RW = PROT_READ | PROT_WRITE;
/** A guest irq in QEMU's MSI range. */
const L = 0x1300;

/** The VM's XIVE device object (for inspection only). */
const xiveOf = (e: VmEnv): KvmXiveNative => e.host.kvm.vms[0]!.devices[0]!.xive;

/** PTE pfn of the page at user address `addr` in `p` (−1: none). */
const pte = (p: HostProcess, addr: number): number => p.proc.mm.pgtable.pfn(Math.floor(addr / P));

/** A VMM load of girq n's EOI page at offset `off` through the mapping at `base`; 0 or the signal. */
function esbLoad(p: HostProcess, base: number, n: number, off = 0x800): number {
  return p.load(base + (2 * n + 1) * P + off, 8, new Word64());
}

/** IPI pfns of girq n: [trigger, EOI]. */
function ipiPfns(e: VmEnv, n: number): [number, number] {
  const st = xiveOf(e).irqState(n)!;
  return [st.ipiData.trigPage / P, st.ipiData.eoiPage / P];
}

/** Device pfns of vector v in PHB 0 slot s: [trigger, EOI]. */
function devPfns(e: VmEnv, s: number, v: number): [number, number] {
  const t = e.host.phbs[0]!.msiTriggerPage(s, v) / P;
  return [t, t + 1];
}

/**
 * A VM whose XIVE device exists but is not mmap'd (no ESB/TIMA memslots): a fresh one, or — as
 * after a CAS reboot — a new device in `prev`'s VM.
 */
function makeVmUnmapped(prev?: VmEnv): VmEnv {
  const e = prev ?? vm({ xive: false });
  const cd = e.vmm.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
  expect(e.vmm.ioctl(e.vmFd, KVM_CREATE_DEVICE, cd)).toBe(0);
  return { ...e, devFd: e.vmm.getU32(cd + 4), esb: -1, tima: -1 };
}

function vm(opts: VmEnvOptions = {}): VmEnv {
  return makeVm({ phbs: [{ slots: 4, maxVectors: 64 }], ...opts });
}

describe('merged behaviour — mapping / ABI', () => {
  it('S1: TIMA at pgoff 0 up to 4 pages, ESB at pgoff 4 up to 2·NR_IRQS pages; any other pgoff -EINVAL; no mmap op -ENODEV', () => {
    const e = vm();
    const p = e.vmm;
    expect(p.mmap(0, 4 * P, RW, MAP_SHARED, e.devFd, 0)).toBeGreaterThan(0);
    expect(p.mmap(0, 5 * P, RW, MAP_SHARED, e.devFd, 0)).toBe(-EINVAL);
    expect(p.mmap(0, 2 * KVMPPC_XIVE_NR_IRQS * P, RW, MAP_SHARED, e.devFd, 4 * P)).toBeGreaterThan(0);
    expect(p.mmap(0, (2 * KVMPPC_XIVE_NR_IRQS + 1) * P, RW, MAP_SHARED, e.devFd, 4 * P)).toBe(-EINVAL);
    for (const pg of [1, 2, 3, 5, 7, 4 + 2 * L + 1])
      expect(p.mmap(0, P, RW, MAP_SHARED, e.devFd, pg * P)).toBe(-EINVAL);
    expect(p.mmap(0, P, RW, MAP_SHARED, e.vmFd, 0)).toBe(-ENODEV);
  });

  it('S2: TIMA page 0, 1 and 3 raise SIGBUS; page 2 maps the OS TIMA page, for the VMM and the guest', () => {
    const e = vm();
    const w = new Word64();
    expect(e.vmm.load(e.tima + 0 * P, 8, w)).toBe(SIGBUS);
    expect(e.vmm.load(e.tima + 1 * P, 8, w)).toBe(SIGBUS);
    expect(e.vmm.load(e.tima + 3 * P, 8, w)).toBe(SIGBUS);
    expect(e.vmm.load(e.tima + 2 * P, 8, w)).toBe(0);
    expect(pte(e.vmm, e.tima + 2 * P) * P).toBe(e.host.chip.timaPageAddr(2));
    expect(e.host.phys.ownerName(pte(e.vmm, e.tima + 2 * P) * P)).toBe('p9.tima');
  });

  it('S3: bind zaps exactly file pages 4+2n and 5+2n in the mapping (n = 0, 1, 2, NR_IRQS-1 of the mapping); TIMA and the neighbours stay', () => {
    for (const n of [0, 1, 2, NR_IRQS - 1]) {
      const e = vm();
      for (const i of [n - 1, n, n + 1])
        if (i >= 0 && i < NR_IRQS) expect(createSource(e.vmm, e.devFd, i)).toBe(0);
      for (const i of [n - 1, n, n + 1]) {
        if (i < 0 || i >= NR_IRQS) continue;
        expect(esbLoad(e.vmm, e.esb, i)).toBe(0);
        expect(e.vmm.store(e.esb + 2 * i * P, 8, 0, 0)).toBe(0);
      }
      expect(e.vmm.load(e.tima + 2 * P, 8, new Word64())).toBe(0);
      const present = (): number =>
        e.vmm.proc.mm.pgtable.countPresent(e.esb / P, e.esb / P + 2 * NR_IRQS) +
        e.vmm.proc.mm.pgtable.countPresent(e.tima / P, e.tima / P + 4);
      const before = present();
      assign(e, 0, [n]);
      expect(pte(e.vmm, e.esb + 2 * n * P)).toBe(-1);
      expect(pte(e.vmm, e.esb + (2 * n + 1) * P)).toBe(-1);
      expect(present()).toBe(before - 2);
      expect(pte(e.vmm, e.tima + 2 * P)).toBeGreaterThan(0);
    }
  });

  it('S3 regression (28-May-2019 fix): with the zap missing the ESB offset, girq n keeps its IPI page and irq n-2 (or the TIMA) loses its own', () => {
    const e = vm({ xiveFlags: { zapOmitsEsbOffset: true } });
    const n = 2;
    for (const i of [0, 1, 2]) {
      expect(createSource(e.vmm, e.devFd, i)).toBe(0);
      expect(esbLoad(e.vmm, e.esb, i)).toBe(0);
    }
    const ipi = ipiPfns(e, n);
    assign(e, 0, [n]);
    expect(pte(e.vmm, e.esb + (2 * n + 1) * P)).toBe(ipi[1]); // stale: the guest EOIs the IPI
    expect(pte(e.vmm, e.esb + 1 * P)).toBe(-1); // irq 0's EOI page (file page 5 = 2·2 + 1) zapped
  });

  it('S4: even page → trigger page, odd → EOI page, for the IPI and for the passthrough source', () => {
    const e = vm();
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    const g = run(e);
    const w = new Word64();
    const vmx = e.host.kvm.vms[0]!;
    g.load(trigGpa(L), 8, w);
    g.load(mgmtGpa(L) + 0x800, 8, w);
    expect([vmx.pt.lookup(trigGpa(L) / P, false), vmx.pt.lookup(mgmtGpa(L) / P, false)]).toEqual(
      ipiPfns(e, L),
    );
    assign(e, 0, [L]);
    g.load(trigGpa(L), 8, w);
    g.load(mgmtGpa(L) + 0x800, 8, w);
    expect([vmx.pt.lookup(trigGpa(L) / P, false), vmx.pt.lookup(mgmtGpa(L) / P, false)]).toEqual(
      devPfns(e, 0, 0),
    );
  });
});

describe('merged behaviour — multiple mappings', () => {
  it('S5: two mappings of the ESB range both refault onto the device page after bind, and onto the IPI after unbind', () => {
    const e = vm();
    const second = e.vmm.mmap(0, 2 * NR_IRQS * P, RW, MAP_SHARED, e.devFd, 4 * P);
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    const both = (): number[] => {
      expect(esbLoad(e.vmm, e.esb, L)).toBe(0);
      expect(esbLoad(e.vmm, second, L)).toBe(0);
      return [pte(e.vmm, e.esb + (2 * L + 1) * P), pte(e.vmm, second + (2 * L + 1) * P)];
    };
    const ipi = ipiPfns(e, L)[1];
    expect(both()).toEqual([ipi, ipi]);
    const a = assign(e, 0, [L]);
    const dev = devPfns(e, 0, 0)[1];
    expect(both()).toEqual([dev, dev]);
    unassign(e, a, 0);
    expect(both()).toEqual([ipi, ipi]);
  });

  it('S6: a second mapping covering only the first 2k pages is affected only for the irqs it covers', () => {
    const e = vm();
    const k = 4;
    const part = e.vmm.mmap(0, 2 * k * P, RW, MAP_SHARED, e.devFd, 4 * P);
    for (const i of [2, 5]) {
      expect(createSource(e.vmm, e.devFd, i)).toBe(0);
      expect(esbLoad(e.vmm, e.esb, i)).toBe(0);
    }
    expect(esbLoad(e.vmm, part, 2)).toBe(0);
    const zapped = e.vmm.proc.mm.stats.ptesZapped;
    assign(e, 0, [2]);
    expect(pte(e.vmm, part + 5 * P)).toBe(-1);
    expect(pte(e.vmm, e.esb + 5 * P)).toBe(-1);
    expect(e.vmm.proc.mm.stats.ptesZapped - zapped).toBe(2);
    assign(e, 1, [5]);
    expect(e.vmm.proc.mm.stats.ptesZapped - zapped).toBe(3);
    expect(pte(e.vmm, part + 5 * P)).toBe(-1);
  });

  it('S7: a forked child (MAP_SHARED) and a process that got the fd by SCM_RIGHTS are zapped too', () => {
    const e = vm();
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    const child = e.vmm.fork();
    assert(typeof child !== 'number', `fork: ${child}`);
    const peer = e.host.spawn();
    const pfd = e.vmm.sendFd(peer, e.devFd);
    const third = peer.mmap(0, 2 * NR_IRQS * P, RW, MAP_SHARED, pfd, 4 * P);
    const maps: [HostProcess, number][] = [
      [e.vmm, e.esb],
      [child, e.esb],
      [peer, third],
    ];
    for (const [p, b] of maps) expect(esbLoad(p, b, L)).toBe(0);
    assign(e, 0, [L]);
    expect(maps.map(([p, b]) => pte(p, b + (2 * L + 1) * P))).toEqual([-1, -1, -1]);
    for (const [p, b] of maps) expect(esbLoad(p, b, L)).toBe(0);
    const dev = devPfns(e, 0, 0)[1];
    expect(maps.map(([p, b]) => pte(p, b + (2 * L + 1) * P))).toEqual([dev, dev, dev]);
  });

  it('S8: bind before any mmap: no zap, no error; the first access after mmap faults in the passthrough page', () => {
    const g = makeVmUnmapped();
    expect(createSource(g.vmm, g.devFd, L)).toBe(0);
    const x = xiveOf(g);
    expect(x.mapping).toBe(null);
    assign(g, 0, [L]);
    expect(x.stats.setMapped).toBe(1);
    expect(x.stats.zaps).toBe(0);
    expect(x.irqState(L)!.ptNumber).toBe(g.host.phbs[0]!.msiHwIrq(0, 0));
    const esb = g.vmm.mmap(0, 2 * NR_IRQS * P, RW, MAP_SHARED, g.devFd, 4 * P);
    expect(esbLoad(g.vmm, esb, L)).toBe(0);
    expect(pte(g.vmm, esb + (2 * L + 1) * P)).toBe(devPfns(g, 0, 0)[1]);
  });

  it('S9: munmap one of two mappings, then bind: the survivor is zapped and refaults correctly', () => {
    const e = vm();
    const second = e.vmm.mmap(0, 2 * NR_IRQS * P, RW, MAP_SHARED, e.devFd, 4 * P);
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    expect(esbLoad(e.vmm, e.esb, L)).toBe(0);
    expect(esbLoad(e.vmm, second, L)).toBe(0);
    expect(e.vmm.munmap(second, 2 * NR_IRQS * P)).toBe(0);
    assign(e, 0, [L]);
    expect(pte(e.vmm, e.esb + (2 * L + 1) * P)).toBe(-1);
    expect(esbLoad(e.vmm, e.esb, L)).toBe(0);
    expect(pte(e.vmm, e.esb + (2 * L + 1) * P)).toBe(devPfns(e, 0, 0)[1]);
  });

  it('S10 (latent): through the tail of a split ESB VMA girq 1 resolves as girq 0 (mainline) / as girq 1 (fixed)', () => {
    const got: number[] = [];
    for (const relative of [true, false]) {
      const e = vm({ xiveFlags: { faultUsesVmaRelativePgoff: relative } });
      for (const i of [0, 1]) expect(createSource(e.vmm, e.devFd, i)).toBe(0);
      const m = e.vmm.mmap(0, 8 * P, RW, MAP_SHARED, e.devFd, 4 * P);
      expect(e.vmm.munmap(m, 2 * P)).toBe(0);
      expect(e.vmm.load(m + 3 * P + 0x800, 8, new Word64())).toBe(0);
      got.push(
        pte(e.vmm, m + 3 * P) === ipiPfns(e, 0)[1] ? 0 : pte(e.vmm, m + 3 * P) === ipiPfns(e, 1)[1] ? 1 : -1,
      );
    }
    expect(got).toEqual([0, 1]);
  });
});

describe('merged behaviour — passthrough lifecycle', () => {
  it('S11: bind → the guest EOIs through the device page; unbind → the IPI again, left at PQ 10 (mainline) or with the guest-visible PQ carried over (fixed)', () => {
    const pqAfter: number[] = [];
    for (const xics of [true, false]) {
      const e = vm({ xiveFlags: { nativeSetMappedUsesXicsPq: xics } });
      expect(createSource(e.vmm, e.devFd, L)).toBe(0);
      expect(configSource(e.vmm, e.devFd, L, 6, 0, 0x42)).toBe(0);
      const g = run(e);
      const w = new Word64();
      g.load(mgmtGpa(L) + 0xc00, 8, w); // guest unmask: SET_PQ_00
      const a = assign(e, 0, [L]);
      g.load(mgmtGpa(L) + 0x800, 8, w);
      expect(e.host.kvm.vms[0]!.pt.lookup(mgmtGpa(L) / P, false)).toBe(devPfns(e, 0, 0)[1]);
      unassign(e, a, 0);
      g.load(mgmtGpa(L) + 0x800, 8, w);
      expect(e.host.kvm.vms[0]!.pt.lookup(mgmtGpa(L) / P, false)).toBe(ipiPfns(e, L)[1]);
      pqAfter.push(w.lo & 3);
    }
    expect(pqAfter).toEqual([2, 0]);
  });

  it('S12 (latent race): a fault that selected the IPI before bind published returns the IPI page to insert (mainline); under the lock it waits and gets the device page (fixed)', () => {
    const got: string[] = [];
    for (const outside of [true, false]) {
      const e = vm({ xiveFlags: { faultSelectsOutsideLock: outside } });
      expect(createSource(e.vmm, e.devFd, L)).toBe(0);
      // VFIO requests the vector (SET_IRQS with no KVM irqfd yet): the host irq exists, unbound.
      const pdev = new PciDevice({ name: 'nic', msix: 1 });
      expect(e.host.phbs[0]!.plug(0, pdev)).toBe(true);
      const vfd = e.vmm.open(`/dev/vfio/devices/vfio${e.host.vfioBind(0, 0)}`);
      expect(setIrqs(e.vmm, vfd, [e.vmm.eventfd()])).toBe(0);
      const x = xiveOf(e);
      const bind = x.setMappedSteps(L, e.host.phbs[0]!.msiHwIrq(0, 0));
      const fault = x.esbFaultSteps(4, 4 + 2 * L + 1, null);
      const head = (st: AtomicStep | number | undefined): string =>
        typeof st === 'object' ? st.label.replace(/[ (:].*$/, '') : String(st);
      const seen: string[] = [];
      if (outside) {
        seen.push(head(fault.next().value));
        fault.next(); // the selection ran: the IPI
        for (let b = bind.next(); !b.done; b = bind.next()) seen.push(head(b.value));
      } else {
        let b = bind.next();
        seen.push(head(b.value));
        b = bind.next();
        seen.push(head(b.value));
        b = bind.next(); // xive_lock_and_mask ran: the block lock is held
        fault.next();
        const read = fault.next().value as AtomicStep;
        seen.push(read.canRun() ? 'fault-runs' : 'fault-waits');
        for (; !b.done; b = bind.next()) seen.push(head(b.value));
      }
      let r = fault.next();
      while (!r.done) r = fault.next();
      const pfn = r.value;
      got.push(
        `${seen.join(' ')} → ${pfn === ipiPfns(e, L)[1] ? 'ipi' : pfn === devPfns(e, 0, 0)[1] ? 'device' : pfn}`,
      );
    }
    expect(got).toEqual([
      // reset_mapped's zap: i_mmap_lock_read, the one VMA's PTE-lock section, i_mmap_unlock_read.
      'esb_fault set_mapped xive_lock_and_mask reset_mapped reset_mapped reset_mapped publish route → ipi',
      'set_mapped xive_lock_and_mask fault-waits reset_mapped reset_mapped reset_mapped publish route → device',
    ]);
  });

  it('S13: errors leave every mapping intact — no source block, unbind of never-bound (-ENODEV), reset_mapped out of range (-EINVAL); a double bind is refused', () => {
    const e = vm();
    const M = 0x100; // block 0; L's block (4) is never created
    expect(createSource(e.vmm, e.devFd, M)).toBe(0);
    expect(esbLoad(e.vmm, e.esb, M)).toBe(0);
    const x = xiveOf(e);
    const present = e.vmm.proc.mm.pgtable.countPresent(e.esb / P, e.esb / P + 2 * NR_IRQS);
    const a0 = assign(e, 0, [L]); // set_mapped fails in its source-block lookup
    expect(e.host.kvm.vms[0]!.irqfds.log.at(-1)).toMatch(
      /kvmppc_xive_set_mapped \(gsi 4864, hw 0x[0-9a-f]+\) fails: -22/,
    );
    expect(x.stats.zaps).toBe(0);
    // kvmppc_clr_passthru_irq finds no pimap entry for a never-bound pair.
    const virq = e.host.vfioDevice(a0.n)!.ctx[0]!.irq;
    expect(e.host.kvm.vms[0]!.irqfds.kvmppcClrPassthruIrq(virq, M)).toBe(-ENODEV);
    expect(x.resetMapped(KVMPPC_XIVE_NR_IRQS)).toBe(-EINVAL);
    expect(x.stats.zaps).toBe(0);
    expect(e.vmm.proc.mm.pgtable.countPresent(e.esb / P, e.esb / P + 2 * NR_IRQS)).toBe(present);
    // Double bind: a second function's vector on a GSI already bound keeps the first binding.
    assign(e, 1, [M]);
    const hw1 = e.host.phbs[0]!.msiHwIrq(1, 0);
    expect(x.irqState(M)!.ptNumber).toBe(hw1);
    assign(e, 2, [M]);
    expect(x.irqState(M)!.ptNumber).toBe(hw1);
    expect(x.stats.zaps).toBe(1);
  });
});

describe('merged behaviour — release / teardown', () => {
  it('S14: close(fd) with a mapping alive defers the release to the last munmap; afterwards set/clr_mapped are -ENODEV and touch no PTE', () => {
    const e = vm();
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    const x = xiveOf(e);
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(x.released).toBe(false);
    expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
    expect(x.released).toBe(false);
    expect(e.vmm.munmap(e.esb, 2 * NR_IRQS * P)).toBe(0);
    expect(x.released).toBe(true);
    expect(x.mapping).toBe(null);
    const hw = e.host.phbs[0]!.msiHwIrq(0, 0);
    expect(x.setMapped(L, hw)).toBe(-ENODEV);
    expect(x.clrMapped(L, hw)).toBe(-ENODEV);
  });

  it('S15: VM destroyed with a passthrough bound, KVM device released before VFIO teardown: KVM masks the irq, keeps its host data; VFIO frees it later', () => {
    const e = vm();
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    const a = assign(e, 0, [L]);
    const hw = e.host.phbs[0]!.msiHwIrq(0, 0);
    expect(e.vmm.munmap(e.esb, 2 * NR_IRQS * P)).toBe(0);
    expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(e.host.phbs[0]!.slots[0]!.msiSource.getPq(0)).toBe(1); // masked by KVM
    expect(e.host.xive.irqOfHw(hw)).not.toBe(null); // host data kept
    unassign(e, a, 0);
    expect(e.host.xive.irqOfHw(hw)).toBe(null);
  });

  it('S16: release + create reuse the kept struct (CAS reboot); faults and zaps work after the re-mmap, no stale mapping', () => {
    const e = vm();
    const x = xiveOf(e);
    expect(e.vmm.munmap(e.esb, 2 * NR_IRQS * P)).toBe(0);
    expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(x.mapping).toBe(null);
    const g = makeVmUnmapped(e);
    expect(xiveOf(g)).toBe(x);
    expect(createSource(g.vmm, g.devFd, L)).toBe(0);
    const esb = g.vmm.mmap(0, 2 * NR_IRQS * P, RW, MAP_SHARED, g.devFd, 4 * P);
    expect(esbLoad(g.vmm, esb, L)).toBe(0);
    assign(g, 0, [L]);
    expect(pte(g.vmm, esb + (2 * L + 1) * P)).toBe(-1);
    expect(esbLoad(g.vmm, esb, L)).toBe(0);
    expect(pte(g.vmm, esb + (2 * L + 1) * P)).toBe(devPfns(g, 0, 0)[1]);
  });

  it('S17: out of VPs, the vCPU connect fails with -ENOSPC; releasing the half-made device frees nothing twice and a later VM connects', () => {
    const host = createHost({ nrCpus: 4 });
    const vmm = host.spawn();
    const kvmFd = vmm.open('/dev/kvm');
    const made: { vmFd: number; devFd: number; vcpuFd: number }[] = [];
    let rc = 0;
    for (let i = 0; i < 300 && rc === 0; i++) {
      const vmFd = vmm.ioctl(kvmFd, KVM_CREATE_VM, 0);
      const cd = vmm.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
      expect(vmm.ioctl(vmFd, KVM_CREATE_DEVICE, cd)).toBe(0);
      const devFd = vmm.getU32(cd + 4);
      const vcpuFd = vmm.ioctl(vmFd, KVM_CREATE_VCPU, 0);
      rc = connect(vmm, vcpuFd, devFd, 0);
      made.push({ vmFd, devFd, vcpuFd });
    }
    expect(rc).toBe(-ENOSPC);
    // 2^19 VPs in blocks of KVM_MAX_VCPUS (2048), the first block the host's.
    expect(made.length - 1).toBe(2 ** 19 / 2048 - 1);
    const failed = made.at(-1)!;
    for (const fd of [failed.devFd, failed.vcpuFd, failed.vmFd]) expect(vmm.close(fd)).toBe(0);
    const first = made[0]!;
    for (const fd of [first.devFd, first.vcpuFd, first.vmFd]) expect(vmm.close(fd)).toBe(0);
    const vmFd = vmm.ioctl(kvmFd, KVM_CREATE_VM, 0);
    const cd = vmm.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    expect(vmm.ioctl(vmFd, KVM_CREATE_DEVICE, cd)).toBe(0);
    expect(connect(vmm, vmm.ioctl(vmFd, KVM_CREATE_VCPU, 0), vmm.getU32(cd + 4), 0)).toBe(0);
  });

  it('S18: release excludes vCPU runs: a vCPU in KVM_RUN is made to exit before the device goes', () => {
    const e = vm();
    const g = run(e);
    expect(g.running).toBe(true);
    expect(e.vmm.munmap(e.esb, 2 * NR_IRQS * P)).toBe(0);
    expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(g.running).toBe(false);
    expect(e.host.kvm.vms[0]!.vcpuArchs[0]!.xiveVcpu).toBe(null);
  });
});

describe('merged behaviour — robustness / hotplug', () => {
  it('S19: ESB fault with no source block → SIGBUS; block present, source invalid → SIGBUS (no crash)', () => {
    const e = vm();
    expect(esbLoad(e.vmm, e.esb, 0x1000)).toBe(SIGBUS);
    expect(createSource(e.vmm, e.devFd, 0x1000)).toBe(0);
    expect(esbLoad(e.vmm, e.esb, 0x1001)).toBe(SIGBUS);
    expect(esbLoad(e.vmm, e.esb, 0x1000)).toBe(0);
  });

  it('S20: vCPU hot-unplug resets its EQs (qshift 0, flags 0, qaddr 0) — accepted', () => {
    const e = vm({ vcpus: 2 });
    expect(setEq(e.vmm, e.devFd, 1, 6, { flags: 0, qshift: 0, qaddr: 0 })).toBe(0);
  });

  it('S21: EQ config with flags other than ALWAYS_NOTIFY, qshift outside {0, 16} or a misaligned qaddr → -EINVAL; END ESBs are never mappable', () => {
    const e = vm();
    expect(setEq(e.vmm, e.devFd, 0, 5, { flags: 2, qshift: 16, qaddr: 0x20_0000 })).toBe(-EINVAL);
    expect(setEq(e.vmm, e.devFd, 0, 5, { qshift: 12, qaddr: 0x20_0000 })).toBe(-EINVAL);
    expect(setEq(e.vmm, e.devFd, 0, 5, { qshift: 16, qaddr: 0x20_0100 })).toBe(-EINVAL);
    // The file offsets have only TIMA (0) and ESB (4) ranges: nothing maps END ESBs.
    expect(e.vmm.mmap(0, P, RW, MAP_SHARED, e.devFd, 3 * P)).toBe(-EINVAL);
  });

  it('S22: the guest irq numbers and the ESB addresses of every irq are the same with kernel_irqchip on and off, with or without a passthrough', () => {
    const cfg = {
      smp: 2,
      ramSize: 0x800_0000,
      devices: [{ name: 'nic', msis: 4, lsis: 1 }],
      trace: NULL_TRACE,
    };
    const host = createHost();
    const view = (m: SpaprMachine): string[] => {
      const k = bootGuestOnSlots(m, NULL_TRACE).kernel;
      return k.irqs().map((q) => {
        const xd = q.kind === 'ipi' ? k.xive.xcs[q.vector]!.ipiData : k.core.descs[q.girq]!.xd!;
        return `${q.kind} virq ${q.girq} lisn ${q.lisn} eoi ${xd.eoiPage.toString(16)} trig ${xd.trigPage.toString(16)} flags ${xd.flags}`;
      });
    };
    const emu = view(new SpaprMachine(cfg));
    expect(emu.length).toBe(2 + 4 + 1);
    expect(emu[2]).toBe('msi virq 256 lisn 4864 eoi 6010026010000 trig 6010026000000 flags 0');
    expect(view(new SpaprMachine({ ...cfg, accel: { kind: 'kvm', host } }))).toEqual(emu);
    // A second KVM guest whose first MSI is backed by a passthrough function from the start, as
    // QEMU's vfio-pci binds it (KVM_IRQFD with GSI = LISN, then SET_IRQS): the same view.
    // (Its own host: vCPU i of every VM runs on host thread i.)
    const host2 = createHost();
    const m = new SpaprMachine({ ...cfg, accel: { kind: 'kvm', host: host2 } });
    const lisn = m.devices[0]!.msis[0]!;
    assign({ host: host2, vmm: m.kvm!.proc, vmFd: m.kvm!.vmFd }, 0, [lisn]);
    const x = host2.kvm.vms[0]!.devices[0]!.xive;
    expect(x.irqState(lisn)!.ptNumber).toBe(host2.phbs[0]!.msiHwIrq(0, 0));
    expect(view(m)).toEqual(emu);
    // … and the guest's accesses to that irq's ESB page now reach the device.
    m.cpus[0]!.load(0x6010026010000 + 0x800, 8, new Word64());
    expect(host2.kvm.vms[0]!.pt.lookup(0x6010026010000 / P, false)).toBe(
      host2.phbs[0]!.msiTriggerPage(0, 0) / P + 1,
    );
  });

  it('S23: however many irqs are passed through, the XIVE device costs exactly 2 memslots (ESB + TIMA)', () => {
    const e = vm();
    const vmx = e.host.kvm.vms[0]!;
    expect(vmx.stats.memslotsUsed).toBe(3); // RAM + ESB + TIMA
    const gsis = Array.from({ length: 64 }, (_, i) => L + i);
    for (const g of gsis) expect(createSource(e.vmm, e.devFd, g)).toBe(0);
    assign(e, 0, gsis);
    expect(xiveOf(e).stats.setMapped).toBe(64);
    expect(vmx.stats.memslotsUsed).toBe(3);
    expect(vmx.stats.memslotsPeak).toBe(3);
  });
});
