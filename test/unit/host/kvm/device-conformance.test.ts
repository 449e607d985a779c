/**
 * The KVM XIVE native device through the syscall surface only (ioctl / mmap / loads and stores
 * of the VMM process and of the guest): every attribute and error path of book3s_xive_native.c,
 * its mmap and fault rules, and the surprises of the merged code.
 */

import { assert, describe, expect, it } from 'vitest';
import { E2BIG, EBUSY, EFAULT, EINVAL, ENOENT, ENXIO } from '../../../../src/host/errno.ts';
import {
  decodeKvmPpcXiveEq,
  encodeKvmDirtyLog,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VCPU,
  KVM_DEV_XIVE_EQ_SYNC,
  KVM_DEV_XIVE_GRP_CTRL,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE_SYNC,
  KVM_DEV_XIVE_NR_SERVERS,
  KVM_DEV_XIVE_RESET,
  KVM_GET_DIRTY_LOG,
  KVM_IRQFD,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_SET_DEVICE_ATTR,
  KVM_XIVE_LEVEL_ASSERTED,
  KVM_XIVE_LEVEL_SENSITIVE,
  kvmXiveEqId,
} from '../../../../src/host/kvm/uapi.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../../src/host/mm/constants.ts';
import type { HostProcess } from '../../../../src/host/syscalls.ts';
import {
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../../../../src/host/vfio/vfio.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import { ESB_GPA, eqGpa, makeVm, mgmtGpa, P, run, TIMA_OS_GPA, trigGpa, type VmEnv } from './host-env.ts';
import {
  configSource,
  connect,
  createSource,
  devAttr,
  getAttr,
  hasAttr,
  setAttrU64,
  setEq,
  setRegion,
} from './kvm-ioctls.ts';

const SIGBUS = 7;

const ctrl = (e: VmEnv, attr: number, addr = 0): number =>
  devAttr(e.vmm, e.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_CTRL, attr, addr);

/** PQ of a source read by the VMM through its ESB mapping (GET, no side effect). */
function pq(e: VmEnv, irq: number): number {
  const w = new Word64();
  expect(e.vmm.load(e.esb + (2 * irq + 1) * P + 0x800, 8, w)).toBe(0);
  return w.lo & 3;
}

/** An ESB management load by the VMM; returns the old PQ. */
function esbOp(e: VmEnv, irq: number, off: number): number {
  const w = new Word64();
  expect(e.vmm.load(e.esb + (2 * irq + 1) * P + off, 8, w)).toBe(0);
  return w.lo & 3;
}

function trigger(e: VmEnv, irq: number): void {
  expect(e.vmm.store(e.esb + 2 * irq * P, 8, 0, 0)).toBe(0);
}

/** EQ entry `i` of vCPU `v`'s queue, read by the VMM from guest RAM. */
function eqEntry(e: VmEnv, v: number, i: number): number {
  const w = new Word64();
  expect(e.vmm.load(e.ram + eqGpa(v) + 4 * i, 4, w)).toBe(0);
  return w.lo >>> 0;
}

/** A targeted, unmasked MSI source. */
function liveSource(e: VmEnv, irq: number, server: number, eisn: number): void {
  expect(createSource(e.vmm, e.devFd, irq)).toBe(0);
  expect(configSource(e.vmm, e.devFd, irq, 6, server, eisn)).toBe(0);
  esbOp(e, irq, 0xc00);
}

function getEq(e: VmEnv, server: number, prio: number, fill = 0xaa): { rc: number; bytes: Uint8Array } {
  const a = e.vmm.userAlloc(64);
  e.vmm.putBytes(a, new Uint8Array(64).fill(fill));
  const rc = getAttr(e.vmm, e.devFd, KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(server, prio), a);
  return { rc, bytes: e.vmm.getBytes(a, 64) };
}

describe('GRP_CTRL and has/get_attr (kvmppc_xive_native_set_attr(), has_attr(), get_attr())', () => {
  it('has_attr: CTRL 1–3; SOURCE*, SYNC below 0x100000; EQ_CONFIG any attr; everything else -ENXIO', () => {
    const e = makeVm();
    const p = e.vmm;
    for (const a of [1, 2, 3]) expect(hasAttr(p, e.devFd, KVM_DEV_XIVE_GRP_CTRL, a)).toBe(0);
    for (const a of [0, 4]) expect(hasAttr(p, e.devFd, KVM_DEV_XIVE_GRP_CTRL, a)).toBe(-ENXIO);
    for (const g of [KVM_DEV_XIVE_GRP_SOURCE, KVM_DEV_XIVE_GRP_SOURCE_CONFIG, KVM_DEV_XIVE_GRP_SOURCE_SYNC]) {
      expect(hasAttr(p, e.devFd, g, 0)).toBe(0);
      expect(hasAttr(p, e.devFd, g, 0xf_ffff)).toBe(0);
      expect(hasAttr(p, e.devFd, g, 0x10_0000)).toBe(-ENXIO);
    }
    expect(hasAttr(p, e.devFd, KVM_DEV_XIVE_GRP_EQ_CONFIG, 2n ** 64n - 1n)).toBe(0);
    expect(hasAttr(p, e.devFd, 0, 0)).toBe(-ENXIO);
    expect(hasAttr(p, e.devFd, 6, 0)).toBe(-ENXIO);
  });

  it('unknown CTRL attr or group → -ENXIO; get_attr only for EQ_CONFIG', () => {
    const e = makeVm();
    const a = e.vmm.userAlloc(64);
    expect(ctrl(e, 4, a)).toBe(-ENXIO);
    expect(devAttr(e.vmm, e.devFd, KVM_SET_DEVICE_ATTR, 6, 0, a)).toBe(-ENXIO);
    expect(getAttr(e.vmm, e.devFd, KVM_DEV_XIVE_GRP_CTRL, 1, a)).toBe(-ENXIO);
    expect(getAttr(e.vmm, e.devFd, KVM_DEV_XIVE_GRP_SOURCE, 0, a)).toBe(-ENXIO);
  });

  it('NR_SERVERS: -EFAULT, 0 and > KVM_MAX_VCPU_IDS -EINVAL, > KVM_MAX_VCPUS clamped, -EBUSY after a connect', () => {
    const e = makeVm({ vcpus: 0 });
    const p = e.vmm;
    const a = p.userAlloc(4);
    const nr = (v: number): number => {
      p.putU32(a, v);
      return ctrl(e, KVM_DEV_XIVE_NR_SERVERS, a);
    };
    expect(ctrl(e, KVM_DEV_XIVE_NR_SERVERS, 0)).toBe(-EFAULT);
    expect(nr(0)).toBe(-EINVAL);
    expect(nr(16385)).toBe(-EINVAL);
    expect(nr(16384)).toBe(0);
    const x = e.host.kvm.vms[0]!.devices[0]!.xive;
    expect(x.nrServers).toBe(2048);
    expect(nr(8)).toBe(0);
    expect(x.nrServers).toBe(8);
    const v = p.ioctl(e.vmFd, KVM_CREATE_VCPU, 0);
    expect(connect(p, v, e.devFd, 0)).toBe(0);
    expect(nr(4)).toBe(-EBUSY);
  });

  it('RESET: always 0; targeted sources masked (PQ 01, EAS masked) but still valid; masked ones untouched', () => {
    const e = makeVm();
    liveSource(e, 0x10, 0, 0x51);
    expect(createSource(e.vmm, e.devFd, 0x11)).toBe(0);
    esbOp(e, 0x11, 0xe00); // never targeted, PQ 10
    expect(ctrl(e, KVM_DEV_XIVE_RESET)).toBe(0);
    expect(pq(e, 0x10)).toBe(1);
    expect(pq(e, 0x11)).toBe(2);
    esbOp(e, 0x10, 0xc00);
    trigger(e, 0x10);
    expect(eqEntry(e, 0, 0)).toBe(0); // EAS masked: nothing queued
    // RESET also cleaned up every queue (kvmppc_xive_reset()): targeting finds no queue → -EBUSY ...
    expect(configSource(e.vmm, e.devFd, 0x10, 6, 0, 0x52)).toBe(-EBUSY);
    // ... and works again once the EQ is reconfigured: the source is still valid.
    expect(setEq(e.vmm, e.devFd, 0, 6, { qshift: 16, qaddr: eqGpa(0) })).toBe(0);
    expect(configSource(e.vmm, e.devFd, 0x10, 6, 0, 0x52)).toBe(0);
    esbOp(e, 0x10, 0xc00);
    trigger(e, 0x10);
    expect(eqEntry(e, 0, 0)).toBe(0x8000_0052);
  });

  it('EQ_SYNC: 0; syncs source and queue of targeted sources only; dirties exactly one gfn per queue (EQ gfn 16 → byte 2 bit 0 of the little-endian log)', () => {
    const e = makeVm({ vcpus: 2 });
    liveSource(e, 0x20, 0, 1);
    expect(createSource(e.vmm, e.devFd, 0x21)).toBe(0);
    expect(setRegion(e.vmm, e.vmFd, 0, 0, 0x400_0000, e.ram, KVM_MEM_LOG_DIRTY_PAGES)).toBe(0);
    const syncs = e.host.chip.stats.syncs;
    expect(ctrl(e, KVM_DEV_XIVE_EQ_SYNC)).toBe(0);
    expect(e.host.chip.stats.syncs - syncs).toBe(2);
    const bm = e.vmm.userAlloc(1024 * 8);
    expect(
      e.vmm.ioctl(
        e.vmFd,
        KVM_GET_DIRTY_LOG,
        e.vmm.userStruct(encodeKvmDirtyLog({ slot: 0, dirtyBitmap: bm })),
      ),
    ).toBe(0);
    // EQs at gfn 16 and 17: byte 2, bits 0 and 1 (set_bit_le: a little-endian bitmap).
    expect([...e.vmm.getBytes(bm, 8)]).toEqual([0, 0, 3, 0, 0, 0, 0, 0]);
    expect(e.host.kvm.vms[0]!.stats.dirtyMarks).toBe(2);
  });
});

describe('GRP_SOURCE (kvmppc_xive_native_set_source())', () => {
  it('irq ≥ 0x100000 (and a u64 above 2^63) → -E2BIG; -EFAULT after the block is created; PQ 01; LSI flags stick', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 0x10_0000)).toBe(-E2BIG);
    expect(setAttrU64(e.vmm, e.devFd, KVM_DEV_XIVE_GRP_SOURCE, 2n ** 63n, 0n)).toBe(-E2BIG);
    expect(devAttr(e.vmm, e.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_SOURCE, 0x800, 0)).toBe(-EFAULT);
    // The block (0x800..0xbff) exists now: an uninitialised source in it gives -EINVAL, not -ENOENT.
    expect(configSource(e.vmm, e.devFd, 0x801, 6, 0, 1)).toBe(-EINVAL);
    expect(configSource(e.vmm, e.devFd, 0xc00, 6, 0, 1)).toBe(-ENOENT);
    expect(createSource(e.vmm, e.devFd, 0x800, KVM_XIVE_LEVEL_SENSITIVE | KVM_XIVE_LEVEL_ASSERTED)).toBe(0);
    expect(pq(e, 0x800)).toBe(1);
    const st = e.host.kvm.vms[0]!.devices[0]!.xive.irqState(0x800)!;
    expect([st.lsi, st.asserted]).toEqual([true, true]);
    expect(createSource(e.vmm, e.devFd, 0x800, 0n)).toBe(0);
    expect([st.lsi, st.asserted]).toEqual([true, true]);
  });

  it('-ENXIO when OPAL has no HW IPI left', () => {
    const e = makeVm({ nrCpus: 2, nrIpis: 8 });
    const rcs: number[] = [];
    for (let i = 0; i < 10; i++) rcs.push(createSource(e.vmm, e.devFd, i));
    expect(rcs).toContain(-ENXIO);
    expect(rcs.slice(rcs.indexOf(-ENXIO)).every((r) => r === -ENXIO)).toBe(true);
  });
});

describe('GRP_SOURCE_CONFIG (kvmppc_xive_native_set_source_config())', () => {
  it('-ENOENT no block, -EINVAL invalid, -EFAULT, prio 7 -EINVAL, unknown server -EINVAL', () => {
    const e = makeVm();
    expect(configSource(e.vmm, e.devFd, 5, 6, 0, 1)).toBe(-ENOENT);
    expect(createSource(e.vmm, e.devFd, 4)).toBe(0);
    expect(configSource(e.vmm, e.devFd, 5, 6, 0, 1)).toBe(-EINVAL);
    expect(devAttr(e.vmm, e.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_SOURCE_CONFIG, 4, 0)).toBe(-EFAULT);
    expect(configSource(e.vmm, e.devFd, 4, 7, 0, 1)).toBe(-EINVAL);
    expect(configSource(e.vmm, e.devFd, 4, 6, 9, 1)).toBe(-EINVAL);
    // Priority 0 is valid, but vCPU 0 has no priority-0 queue: nothing fits → -EBUSY.
    expect(configSource(e.vmm, e.devFd, 4, 0, 0, 1)).toBe(-EBUSY);
    expect(configSource(e.vmm, e.devFd, 4, 6, 0, 1)).toBe(0);
  });

  it('ESB PQ is not touched by SOURCE_CONFIG', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 4)).toBe(0);
    esbOp(e, 4, 0xf00);
    expect(configSource(e.vmm, e.devFd, 4, 6, 0, 1)).toBe(0);
    expect(pq(e, 4)).toBe(3);
  });
});

describe('GRP_EQ_CONFIG (kvmppc_xive_native_set_queue_config() / get_queue_config())', () => {
  it('set: -EFAULT before -ENOENT; prio 7; flags; qshift; alignment; no memslot; a PFNMAP page', () => {
    const e = makeVm();
    const p = e.vmm;
    expect(devAttr(p, e.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(9, 6), 0)).toBe(
      -EFAULT,
    );
    expect(setEq(p, e.devFd, 9, 6, { qshift: 16, qaddr: eqGpa(0) })).toBe(-ENOENT);
    expect(setEq(p, e.devFd, 0, 7, { qshift: 16, qaddr: eqGpa(0) })).toBe(-EINVAL);
    expect(setEq(p, e.devFd, 0, 5, { flags: 3, qshift: 16, qaddr: eqGpa(0) })).toBe(-EINVAL);
    expect(setEq(p, e.devFd, 0, 5, { flags: 0, qshift: 16, qaddr: eqGpa(0) })).toBe(-EINVAL);
    for (const q of [12, 21, 24])
      expect(setEq(p, e.devFd, 0, 5, { qshift: q, qaddr: 0x100_0000 })).toBe(-EINVAL);
    expect(setEq(p, e.devFd, 0, 5, { qshift: 16, qaddr: 0x30_1000 })).toBe(-EINVAL);
    expect(setEq(p, e.devFd, 0, 5, { qshift: 16, qaddr: 0x7000_0000 })).toBe(-EINVAL);
    expect(setEq(p, e.devFd, 0, 5, { qshift: 16, qaddr: ESB_GPA })).toBe(-EINVAL);
    expect(setEq(p, e.devFd, 0, 5, { qshift: 16, qaddr: 0x30_0000 })).toBe(0);
  });

  it('get: -ENOENT, -EINVAL; the configured EQ with live toggle/index; -EFAULT on a bad buffer', () => {
    const e = makeVm();
    liveSource(e, 0x30, 0, 0x31);
    for (let i = 0; i < 3; i++) {
      trigger(e, 0x30);
      esbOp(e, 0x30, 0xc00);
    }
    expect(getEq(e, 9, 6).rc).toBe(-ENOENT);
    expect(getEq(e, 0, 7).rc).toBe(-EINVAL);
    const g = getEq(e, 0, 6);
    expect(g.rc).toBe(0);
    expect(decodeKvmPpcXiveEq(g.bytes)).toEqual({
      flags: 1,
      qshift: 16,
      qaddr: BigInt(eqGpa(0)),
      qtoggle: 1,
      qindex: 3,
    });
    expect(getAttr(e.vmm, e.devFd, KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 6), 0)).toBe(-EFAULT);
  });

  it('qshift 0 resets without checking flags; the page is unpinned; a restore writes (toggle, index)', () => {
    const e = makeVm();
    const eqPfn = e.vmm.proc.mm.pgtable.pfn(e.ram / P + eqGpa(0) / P);
    expect(e.host.frames.pinCount(eqPfn)).toBe(1);
    expect(setEq(e.vmm, e.devFd, 0, 6, { flags: 0xdead, qshift: 0, qaddr: 0 })).toBe(0);
    expect(e.host.frames.pinCount(eqPfn)).toBe(0);
    expect(getEq(e, 0, 6, 0x5a).bytes.every((b) => b === 0x5a)).toBe(true);
    expect(setEq(e.vmm, e.devFd, 0, 6, { qshift: 16, qaddr: eqGpa(0), qtoggle: 0, qindex: 5 })).toBe(0);
    expect(decodeKvmPpcXiveEq(getEq(e, 0, 6).bytes)).toMatchObject({ qtoggle: 0, qindex: 5 });
  });
});

describe('GRP_SOURCE_SYNC (kvmppc_xive_native_sync_source())', () => {
  it('-ENOENT / -EINVAL / 0 with one source sync; *addr is ignored', () => {
    const e = makeVm();
    const sync = (irq: number): number =>
      devAttr(e.vmm, e.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_SOURCE_SYNC, irq, 0);
    expect(sync(3)).toBe(-ENOENT);
    expect(createSource(e.vmm, e.devFd, 2)).toBe(0);
    expect(sync(3)).toBe(-EINVAL);
    const s = e.host.chip.stats.syncs;
    expect(sync(2)).toBe(0);
    expect(e.host.chip.stats.syncs - s).toBe(1);
  });
});

describe('mmap and faults (kvmppc_xive_native_mmap(), xive_native_tima_fault(), xive_native_esb_fault())', () => {
  it('TIMA at pgoff 0 with ≤ 4 pages, ESB at pgoff 4 with ≤ 2^21 pages; anything else -EINVAL', () => {
    const e = makeVm();
    const m = (len: number, pgoff: number): number =>
      e.vmm.mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, e.devFd, pgoff * P);
    expect(m(4 * P, 0)).toBeGreaterThan(0);
    expect(m(P, 0)).toBeGreaterThan(0);
    expect(m(5 * P, 0)).toBe(-EINVAL);
    for (const off of [1, 2, 3, 5, 6]) expect(m(P, off)).toBe(-EINVAL);
    expect(m(2 ** 21 * P, 4)).toBeGreaterThan(0);
    expect(m((2 ** 21 + 1) * P, 4)).toBe(-EINVAL);
    expect(e.vmm.mmap(0, P, PROT_READ, MAP_SHARED, e.devFd, 4 * P + 0x1000)).toBe(-EINVAL);
  });

  it('TIMA: relative page 2 maps the OS view; 0, 1, 3 SIGBUS', () => {
    const e = makeVm();
    const w = new Word64();
    expect(e.vmm.load(e.tima + 0 * P + 0x10, 8, w)).toBe(SIGBUS);
    expect(e.vmm.load(e.tima + 1 * P + 0x10, 8, w)).toBe(SIGBUS);
    expect(e.vmm.load(e.tima + 2 * P + 0x10, 8, w)).toBe(0);
    expect(e.vmm.load(e.tima + 3 * P + 0x10, 8, w)).toBe(SIGBUS);
    expect(e.host.phys.ownerName(e.vmm.proc.mm.pgtable.pfn(e.tima / P + 2) * P)).toBe('p9.tima');
  });

  it('ESB: SIGBUS without a block or for an invalid source; even page = trigger, odd = EOI of the IPI', () => {
    const e = makeVm();
    const w = new Word64();
    expect(e.vmm.load(e.esb + 0x401 * P, 8, w)).toBe(SIGBUS);
    expect(createSource(e.vmm, e.devFd, 0x200)).toBe(0);
    expect(e.vmm.load(e.esb + (2 * 0x201 + 1) * P, 8, w)).toBe(SIGBUS);
    expect(e.vmm.load(e.esb + (2 * 0x200 + 1) * P + 0x800, 8, w)).toBe(0);
    expect(e.vmm.store(e.esb + 2 * 0x200 * P, 8, 0, 0)).toBe(0);
    const x = e.host.kvm.vms[0]!.devices[0]!.xive;
    const st = x.irqState(0x200)!;
    const pt = e.vmm.proc.mm.pgtable;
    expect(pt.pfn(e.esb / P + 2 * 0x200) * P).toBe(st.ipiData.trigPage);
    expect(pt.pfn(e.esb / P + 2 * 0x200 + 1) * P).toBe(st.ipiData.eoiPage);
    expect(x.stats.sigbus).toBe(2);
  });
});

/** Passthrough bind of vector 0 of a 1-vector MSI-X function in PHB 0 slot 0 to guest irq `l`. */
function bind(e: VmEnv, l: number): PciDevice {
  const p: HostProcess = e.vmm;
  const pdev = new PciDevice({ name: 'nic', msix: 1 });
  expect(e.host.phbs[0]!.plug(0, pdev)).toBe(true);
  const vfd = p.open(`/dev/vfio/devices/vfio${e.host.vfioBind(0, 0)}`);
  const efd = p.eventfd();
  const a = p.userAlloc(32);
  p.putU32(a, efd);
  p.putU32(a + 4, l);
  expect(p.ioctl(e.vmFd, KVM_IRQFD, a)).toBe(0);
  const s = p.userAlloc(24);
  p.putU32(s, 24);
  p.putU32(s + 4, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
  p.putU32(s + 8, VFIO_PCI_MSIX_IRQ_INDEX);
  p.putU32(s + 16, 1);
  p.putU32(s + 20, efd);
  expect(p.ioctl(vfd, VFIO_DEVICE_SET_IRQS, s)).toBe(0);
  return pdev;
}

describe('surprises of the merged device, through the syscalls', () => {
  it('1: priority 7 is invalid for SOURCE_CONFIG and EQ_CONFIG; 6 is the maximum', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 1)).toBe(0);
    expect(configSource(e.vmm, e.devFd, 1, 7, 0, 1)).toBe(-EINVAL);
    expect(configSource(e.vmm, e.devFd, 1, 6, 0, 1)).toBe(0);
    expect(setEq(e.vmm, e.devFd, 0, 7, { qshift: 16, qaddr: 0x30_0000 })).toBe(-EINVAL);
  });

  it('2: the SOURCE_CONFIG mask bit is honoured (EAS masked: a trigger queues nothing)', () => {
    const e = makeVm();
    liveSource(e, 1, 0, 5);
    expect(configSource(e.vmm, e.devFd, 1, 6, 0, 6, true)).toBe(0);
    trigger(e, 1);
    expect(eqEntry(e, 0, 0)).toBe(0);
    expect(pq(e, 1)).toBe(2);
  });

  it('3: only qshift 16 (and 0 for reset) is accepted', () => {
    const e = makeVm();
    for (const q of [12, 15, 17, 21, 24])
      expect(setEq(e.vmm, e.devFd, 0, 5, { qshift: q, qaddr: 0 })).toBe(-EINVAL);
    expect(setEq(e.vmm, e.devFd, 0, 5, { qshift: 16, qaddr: 0 })).toBe(0);
  });

  it('4: EQ flags must be exactly ALWAYS_NOTIFY', () => {
    const e = makeVm();
    for (const f of [0, 2, 3, 0x8000_0001])
      expect(setEq(e.vmm, e.devFd, 0, 5, { flags: f, qshift: 16, qaddr: 0 })).toBe(-EINVAL);
  });

  it('5: EQ_CONFIG get on an unconfigured queue returns 0 and writes nothing', () => {
    const e = makeVm();
    const g = getEq(e, 0, 3, 0x33);
    expect(g.rc).toBe(0);
    expect(g.bytes.every((b) => b === 0x33)).toBe(true);
  });

  it('6: SOURCE_CONFIG silently retargets to a vCPU with a queue; -EBUSY (not -ENXIO) when none has one', () => {
    const e = makeVm({ vcpus: 2, eqs: false });
    expect(setEq(e.vmm, e.devFd, 1, 6, { qshift: 16, qaddr: eqGpa(1) })).toBe(0);
    liveSource(e, 1, 0, 0x77);
    trigger(e, 1);
    expect(eqEntry(e, 1, 0)).toBe(0x8000_0077);
    expect(eqEntry(e, 0, 0)).toBe(0);
    expect(createSource(e.vmm, e.devFd, 2)).toBe(0);
    expect(configSource(e.vmm, e.devFd, 2, 5, 0, 1)).toBe(-EBUSY);
  });

  it('7: SOURCE_CONFIG with unchanged (server, prio, eisn) is a no-op whatever the mask flag says', () => {
    const e = makeVm();
    liveSource(e, 1, 0, 5);
    const cfgs = e.host.chip.stats.irqConfigs;
    expect(configSource(e.vmm, e.devFd, 1, 6, 0, 5, true)).toBe(0);
    expect(e.host.chip.stats.irqConfigs).toBe(cfgs);
    trigger(e, 1);
    expect(eqEntry(e, 0, 0)).toBe(0x8000_0005);
  });

  it('8: -ENOENT vs -EINVAL follows the 1024-source block', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 0x400)).toBe(0);
    expect(configSource(e.vmm, e.devFd, 0x7ff, 6, 0, 1)).toBe(-EINVAL);
    expect(configSource(e.vmm, e.devFd, 0x3ff, 6, 0, 1)).toBe(-ENOENT);
    expect(configSource(e.vmm, e.devFd, 0x800, 6, 0, 1)).toBe(-ENOENT);
  });

  it('9: GRP_SOURCE out of range is -E2BIG; re-initialising a live source turns it off (PQ 01)', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 0xfffff + 1)).toBe(-E2BIG);
    liveSource(e, 1, 0, 5);
    expect(pq(e, 1)).toBe(0);
    expect(createSource(e.vmm, e.devFd, 1)).toBe(0);
    expect(pq(e, 1)).toBe(1);
  });

  it('10: the END generation starts at 1 (get after n events: toggle 1, index n); (1, 0) skips the restore', () => {
    const e = makeVm();
    liveSource(e, 1, 0, 5);
    trigger(e, 1);
    expect(eqEntry(e, 0, 0) >>> 31).toBe(1);
    expect(decodeKvmPpcXiveEq(getEq(e, 0, 6).bytes)).toMatchObject({ qtoggle: 1, qindex: 1 });
    // Reconfiguring with the fresh (1, 0) does not restore: the hardware END keeps its index.
    expect(setEq(e.vmm, e.devFd, 0, 6, { qshift: 16, qaddr: eqGpa(0) })).toBe(0);
    expect(decodeKvmPpcXiveEq(getEq(e, 0, 6).bytes)).toMatchObject({ qtoggle: 1 });
  });

  it('11: VP_STATE is the raw TIMA QW1 w0/w1 with CPPR 0 after connect', () => {
    const e = makeVm();
    const val = e.vmm.userAlloc(16);
    const reg = e.vmm.userAlloc(16);
    e.vmm.putU64(reg, 0x1040_0000_0000_008dn);
    e.vmm.putU64(reg + 8, BigInt(val));
    expect(e.vmm.ioctl(e.vcpuFds[0]!, 0x8010_aeab, reg)).toBe(0);
    expect(e.vmm.getU64(val)).toBe(0x0000_0000_ff00_0000n);
  });

  it('12: mmap offsets are fixed; only the OS TIMA page maps (user page SIGBUS)', () => {
    const e = makeVm();
    const w = new Word64();
    expect(e.vmm.load(e.tima + 3 * P, 1, w)).toBe(SIGBUS);
    expect(e.vmm.mmap(0, P, PROT_READ, MAP_SHARED, e.devFd, 3 * P)).toBe(-EINVAL);
  });

  it('13/14: a bind zaps file pages 4+2i and 5+2i in every process mapping them; each refaults to the device', () => {
    const e = makeVm();
    const L = 0x1300;
    expect(createSource(e.vmm, e.devFd, L)).toBe(0);
    expect(createSource(e.vmm, e.devFd, L + 1)).toBe(0);
    const child = e.vmm.fork();
    assert(typeof child !== 'number', `fork: ${child}`);
    const w = new Word64();
    for (const p of [e.vmm, child]) {
      for (const irq of [L, L + 1]) expect(p.load(e.esb + (2 * irq + 1) * P + 0x800, 8, w)).toBe(0);
      expect(p.store(e.esb + 2 * L * P, 8, 0, 0)).toBe(0);
    }
    const present = (p: HostProcess, page: number): boolean =>
      (p.proc.mm.pgtable.flags(e.esb / P + page) & 1) === 1;
    bind(e, L);
    for (const p of [e.vmm, child]) {
      expect([present(p, 2 * L), present(p, 2 * L + 1), present(p, 2 * (L + 1) + 1)]).toEqual([
        false,
        false,
        true,
      ]);
      expect(p.load(e.esb + (2 * L + 1) * P + 0x800, 8, w)).toBe(0);
      expect(e.host.phbs[0]!.pfnInSlot(0, p.proc.mm.pgtable.pfn(e.esb / P + 2 * L + 1))).toBe(true);
    }
  });

  it('15: set_mapped programs the EAS with the LISN (state->number), not the guest’s EISN', () => {
    const e = makeVm();
    const L = 0x1300;
    liveSource(e, L, 0, 0x42);
    const pdev = bind(e, L);
    esbOp(e, L, 0xc00);
    pdev.setVectorMask(0, false);
    pdev.raiseMsi(0);
    expect(eqEntry(e, 0, 0)).toBe(0x8000_0000 + L);
  });

  it('16: SET_PQ_00 on a masked (PQ 01) source re-enables it — why the guest never EOIs a disabled irq', () => {
    const e = makeVm();
    liveSource(e, 1, 0, 5);
    esbOp(e, 1, 0xd00);
    trigger(e, 1);
    expect(eqEntry(e, 0, 0)).toBe(0);
    esbOp(e, 1, 0xc00);
    trigger(e, 1);
    expect(eqEntry(e, 0, 0)).toBe(0x8000_0005);
  });

  it('17: an LSI source (LEVEL_SENSITIVE) is created like any other; the flag is never cleared', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 9, KVM_XIVE_LEVEL_SENSITIVE)).toBe(0);
    expect(createSource(e.vmm, e.devFd, 9, 0n)).toBe(0);
    expect(e.host.kvm.vms[0]!.devices[0]!.xive.irqState(9)!.lsi).toBe(true);
    // The flags are bits 0 and 1 of the u64: the same bits of its high word are not flags.
    expect(
      createSource(e.vmm, e.devFd, 10, (KVM_XIVE_LEVEL_SENSITIVE | KVM_XIVE_LEVEL_ASSERTED) << 32n),
    ).toBe(0);
    const st = e.host.kvm.vms[0]!.devices[0]!.xive.irqState(10)!;
    expect([st.lsi, st.asserted]).toEqual([false, false]);
  });

  it('18: PQ 10 while stopped latches a trigger in Q; restoring 00 and re-triggering on 11 delivers it', () => {
    const e = makeVm();
    liveSource(e, 1, 0, 5);
    expect(esbOp(e, 1, 0xe00)).toBe(0);
    trigger(e, 1);
    expect(pq(e, 1)).toBe(3);
    expect(eqEntry(e, 0, 0)).toBe(0);
    expect(esbOp(e, 1, 0xc00)).toBe(3);
    trigger(e, 1);
    expect(eqEntry(e, 0, 0)).toBe(0x8000_0005);
  });

  it('19: KVM_CAP_PPC_IRQ_XIVE is 169 (168, an early header sync value, is not it)', () => {
    const e = makeVm();
    expect(e.vmm.ioctl(e.kvmFd, KVM_CHECK_EXTENSION, 169)).toBe(1);
    expect(e.vmm.ioctl(e.kvmFd, KVM_CHECK_EXTENSION, 168)).toBe(0);
  });

  it('20: SOURCE_SYNC syncs the source only; EQ_SYNC syncs source + queue of unmasked sources only', () => {
    const e = makeVm();
    liveSource(e, 1, 0, 5);
    expect(createSource(e.vmm, e.devFd, 2)).toBe(0);
    const s0 = e.host.chip.stats.syncs;
    expect(devAttr(e.vmm, e.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_SOURCE_SYNC, 1, 0)).toBe(0);
    expect(e.host.chip.stats.syncs - s0).toBe(1);
    expect(ctrl(e, KVM_DEV_XIVE_EQ_SYNC)).toBe(0);
    expect(e.host.chip.stats.syncs - s0).toBe(3);
  });
});

describe('guest view of the same device (KVM_RUN)', () => {
  it('the guest’s ESB and TIMA accesses go through its memslots to the same source and queue', () => {
    const e = makeVm();
    liveSource(e, 3, 0, 0x33);
    const g = run(e);
    const w = new Word64();
    g.store(TIMA_OS_GPA + 0x11, 1, 0, 0xff);
    g.load(mgmtGpa(3) + 0x800, 8, w);
    expect(w.lo & 3).toBe(0);
    g.store(trigGpa(3), 8, 0, 0);
    expect(g.externalInterrupt).toBe(true);
    g.load(eqGpa(0), 4, w);
    expect(w.lo >>> 0).toBe(0x8000_0033);
    expect(eqEntry(e, 0, 0)).toBe(0x8000_0033);
  });
});

describe('the review thread’s scenarios at the KVM boundary', () => {
  it('S16: release + re-create reuses the kept struct; after re-mmap, faults and zaps work again', () => {
    const e = makeVm();
    const vm = e.host.kvm.vms[0]!;
    const kept = vm.arch.xiveNative;
    expect(createSource(e.vmm, e.devFd, 0x1300)).toBe(0);
    const g = run(e);
    const w = new Word64();
    g.load(mgmtGpa(0x1300) + 0x800, 8, w);
    g.stop();
    // CAS reboot: QEMU unmaps, deletes the memslots, closes the device.
    expect(setRegion(e.vmm, e.vmFd, 1, 0, 0, 0)).toBe(0);
    expect(setRegion(e.vmm, e.vmFd, 2, 0, 0, 0)).toBe(0);
    expect(e.vmm.munmap(e.esb, 2 * 0x2000 * P)).toBe(0);
    expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(vm.arch.xive).toBe(null);
    expect(vm.pt.entriesPointingAt((pfn) => e.host.phys.ownerName(pfn * P) !== 'host.ram')).toEqual([]);
    // ... and creates it again.
    const cd = e.vmm.userStruct(new Uint8Array([0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect(e.vmm.ioctl(e.vmFd, 0xc00c_aee0, cd)).toBe(0);
    e.devFd = e.vmm.getU32(cd + 4);
    expect(vm.arch.xiveNative).toBe(kept);
    e.esb = e.vmm.mmap(0, 2 * 0x2000 * P, PROT_READ | PROT_WRITE, MAP_SHARED, e.devFd, 4 * P);
    e.tima = e.vmm.mmap(0, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, e.devFd, 0);
    expect(setRegion(e.vmm, e.vmFd, 1, ESB_GPA, 2 * 0x2000 * P, e.esb)).toBe(0);
    expect(setRegion(e.vmm, e.vmFd, 2, 0x0006_0302_0318_0000, 4 * P, e.tima)).toBe(0);
    expect(connect(e.vmm, e.vcpuFds[0]!, e.devFd, 0)).toBe(0);
    expect(setEq(e.vmm, e.devFd, 0, 6, { qshift: 16, qaddr: eqGpa(0) })).toBe(0);
    liveSource(e, 0x1300, 0, 0x13);
    const g2 = run(e);
    g2.store(trigGpa(0x1300), 8, 0, 0);
    g2.load(eqGpa(0), 4, w);
    expect(w.lo >>> 0).toBe(0x8000_0013);
    bind(e, 0x1300);
    expect(vm.pt.lookup(Math.floor(mgmtGpa(0x1300) / P), false)).toBe(-1);
    g2.load(mgmtGpa(0x1300) + 0x800, 8, w);
    expect(e.host.phbs[0]!.pfnInSlot(0, vm.pt.lookup(Math.floor(mgmtGpa(0x1300) / P), false))).toBe(true);
  });

  it('S23: however many irqs are passed through, the XIVE device costs exactly 2 memslots', () => {
    const e = makeVm();
    const vm = e.host.kvm.vms[0]!;
    expect(vm.stats.memslotsUsed).toBe(3); // RAM + ESB + TIMA
    const p = e.vmm;
    const pdev = new PciDevice({ name: 'nic', msix: 8 });
    expect(e.host.phbs[0]!.plug(1, pdev)).toBe(true);
    const vfd = p.open(`/dev/vfio/devices/vfio${e.host.vfioBind(0, 1)}`);
    const efds: number[] = [];
    for (let v = 0; v < 8; v++) {
      expect(createSource(p, e.devFd, 0x1300 + v)).toBe(0);
      const efd = p.eventfd();
      efds.push(efd);
      const a = p.userAlloc(32);
      p.putU32(a, efd);
      p.putU32(a + 4, 0x1300 + v);
      expect(p.ioctl(e.vmFd, KVM_IRQFD, a)).toBe(0);
    }
    const s = p.userAlloc(20 + 32);
    p.putU32(s, 52);
    p.putU32(s + 4, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
    p.putU32(s + 8, VFIO_PCI_MSIX_IRQ_INDEX);
    p.putU32(s + 16, 8);
    for (let v = 0; v < 8; v++) p.putU32(s + 20 + 4 * v, efds[v]!);
    expect(p.ioctl(vfd, VFIO_DEVICE_SET_IRQS, s)).toBe(0);
    expect(vm.devices[0]!.xive.stats.setMapped).toBe(8);
    expect(vm.stats.memslotsUsed).toBe(3);
    expect(vm.stats.memslotsPeak).toBe(3);
  });
});
