import { describe, expect, it } from 'vitest';
import { EBADF, EBUSY, EFAULT, EINVAL, EIO, ENODEV } from '../../../../src/host/errno.ts';
import {
  EventfdCtx,
  eventfdCreate,
  eventfdCtxFileget,
  eventfdFdgetFrom,
  KVM_IRQFD,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
  kvmppcXiveSetIrq,
} from '../../../../src/host/kvm/irqfd.ts';
import { fput } from '../../../../src/host/mm/file.ts';
import { vfioHotplug } from '../../../../src/host/vfio/hotplug.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import { LISN_BASE, makeEnv, type VfioEnv } from './env.ts';

const L = LISN_BASE;

function plug1(e: VfioEnv) {
  const a = vfioHotplug(e.vfio, e.irqfds, e.phb, 0, new PciDevice({ name: 'nic', msix: 1 }), [L]);
  if (typeof a === 'number') throw new Error(`hotplug ${a}`);
  return a;
}

describe('KVM_IRQFD (virt/kvm/eventfd.c on book3s HV)', () => {
  it('ioctl number in powerpc encoding', () => {
    expect(KVM_IRQFD).toBe(0x8020_ae76);
  });

  it('without bypass (kvm_irq_bypass=0): host handler → eventfd → irqfd → IPI trigger → guest EQ with the guest EISN', () => {
    const e = makeEnv({ kvmIrqBypass: false });
    e.guest.createSource(L);
    const a = plug1(e);
    expect(a.isBound(0)).toBe(false);
    // kvmppc_set_passthru_irq returned 1: the producer registration "fails" and is logged.
    expect(e.vfio.stats.producerFailures).toBe(1);
    expect(e.vfio.log).toEqual(['nic: irq bypass producer (token vector 0) registration fails: 1']);
    expect(e.irqfds.pimap).toBe(null);
    e.guest.sourceConfig(L, 0x77);
    expect(e.guest.unmask(L)).toBe(1); // the IPI page (PQ 01 → 00)
    a.pdev.raiseMsi(0);
    expect(e.guest.drain()).toEqual([0x77]);
    expect(e.vfio.stats.hostIrqs).toBe(1);
    expect(e.irqfds.stats.injected).toBe(1);
    expect(e.phb.slots[0]!.msiSource.getPq(0)).toBe(0); // the host EOI'd its own interrupt
    expect(e.host.pqOf(e.dev.irqState(L)!.ipiData)).toBe(2);
  });

  it('assign / deassign: flag and duplicate checks, pending count injected at assign, consumer registered', () => {
    const e = makeEnv();
    e.guest.createSource(L);
    e.guest.sourceConfig(L, 5);
    e.guest.unmask(L);
    const efd = new EventfdCtx();
    expect(e.irqfds.kvmIrqfd(efd, L, 4)).toBe(-EINVAL);
    expect(e.irqfds.kvmIrqfd(efd, L, KVM_IRQFD_FLAG_RESAMPLE)).toBe(-EINVAL);
    expect(e.irqfds.kvmIrqfd(-EBADF, L, 0)).toBe(-EBADF);
    efd.eventfdSignal(3);
    expect(e.irqfds.kvmIrqfd(efd, L, 0)).toBe(0);
    expect(e.guest.drain()).toEqual([5]);
    expect(efd.count).toBe(0);
    expect(e.irqfds.kvmIrqfd(efd, L + 1, 0)).toBe(-EBUSY);
    expect(e.bypass.consumers.length).toBe(1);
    expect(efd.waiterCount).toBe(1);
    expect(e.irqfds.kvmIrqfd(efd, L, KVM_IRQFD_FLAG_DEASSIGN)).toBe(0);
    expect([e.bypass.consumers.length, efd.waiterCount, e.irqfds.items.length]).toEqual([0, 0, 0]);
    efd.eventfdSignal(1);
    expect(e.irqfds.stats.injected).toBe(1);
  });

  it('the ioctl decodes struct kvm_irqfd from user memory; an eventfd file release shuts the irqfd down', () => {
    const e = makeEnv();
    const file = eventfdCreate(e.mh);
    const fd = e.vmm.installFd(file);
    const fdget = eventfdFdgetFrom((n) => e.vmm.fget(n));
    const argp = e.um.base + 0x200;
    e.um.putU32s(argp, [fd, L, 0, 0, 0, 0, 0, 0]);
    expect(e.irqfds.kvmIrqfdIoctl(argp, e.um, fdget)).toBe(0);
    expect(e.irqfds.irqfdOfGsi(L)?.eventfd).toBe(eventfdCtxFileget(file));
    e.um.putU32s(argp, [fd, L, 0, 0, 1, 0, 0, 0]);
    expect(e.irqfds.kvmIrqfdIoctl(argp, e.um, fdget)).toBe(-EINVAL); // pad must be zero
    e.um.putU32s(argp, [99, L, 0, 0, 0, 0, 0, 0]);
    expect(e.irqfds.kvmIrqfdIoctl(argp, e.um, fdget)).toBe(-EBADF);
    expect(e.irqfds.kvmIrqfdIoctl(8, e.um, fdget)).toBe(-EFAULT);
    expect(e.vmm.close(fd)).toBe(0); // last reference: eventfd_release → EPOLLHUP
    expect(e.irqfds.items.length).toBe(0);
    expect(e.bypass.consumers.length).toBe(0);
    const notEventfd = e.mh.anonInodeGetFile('x', { name: 'x' }, null);
    expect(eventfdCtxFileget(notEventfd)).toBe(-EINVAL);
    fput(notEventfd);
  });

  it('kvm_set_irq on XIVE: -ENODEV without device, -EINVAL for an unknown, invalid or passed-through source; level 0 only records', () => {
    const e = makeEnv();
    expect(kvmppcXiveSetIrq({ xive: null, xiveNative: null }, e.host, L, 1)).toBe(-ENODEV);
    expect(kvmppcXiveSetIrq(e.arch, e.host, 0x9_0000, 1)).toBe(-EINVAL);
    e.guest.createSource(L);
    expect(kvmppcXiveSetIrq(e.arch, e.host, L + 1, 1)).toBe(-EINVAL);
    const st = e.dev.irqState(L)!;
    const trig = e.chip.ipiSource.counter(st.ipiNumber - 0x10, 0);
    expect(kvmppcXiveSetIrq(e.arch, e.host, L, 0)).toBe(0);
    expect(e.chip.ipiSource.counter(st.ipiNumber - 0x10, 0)).toBe(trig);
    expect(kvmppcXiveSetIrq(e.arch, e.host, L, 1)).toBe(0);
    expect(e.chip.ipiSource.counter(st.ipiNumber - 0x10, 0)).toBe(trig + 1);
    plug1(e);
    expect(kvmppcXiveSetIrq(e.arch, e.host, L, 1)).toBe(-EINVAL);
  });
});

describe('passthrough irq map (book3s_hv.c kvmppc_set/clr_passthru_irq)', () => {
  it('entries are reused per GSI, a mapped GSI refuses a second map, errors as the kernel returns them', () => {
    const e = makeEnv();
    e.guest.createSource(L);
    const a = plug1(e);
    const virq = a.vdev.ctx[0]!.irq;
    expect(e.irqfds.kvmppcSetPassthruIrq(virq, L)).toBe(-EINVAL); // already mapped
    expect(e.irqfds.kvmppcSetPassthruIrq(0x7fff, L)).toBe(-EIO); // no descriptor
    expect(e.irqfds.kvmppcClrPassthruIrq(virq, L + 9)).toBe(-ENODEV);
    expect(e.irqfds.kvmppcClrPassthruIrq(0x7fff, L)).toBe(-EIO);
    expect(e.irqfds.kvmppcClrPassthruIrq(virq, L)).toBe(0);
    expect(e.irqfds.passthruOf(L)).toBe(null);
    expect(e.irqfds.pimap!.nMapped).toBe(1);
    // set_mapped failing (no source for the GSI) still returns 0; the entry is left invalid.
    expect(e.irqfds.kvmppcSetPassthruIrq(virq, L + 0x800)).toBe(0);
    expect(e.irqfds.pimap!.nMapped).toBe(2);
    expect(e.irqfds.pimap!.mapped[1]!.rHwirq).toBe(0);
    expect(e.irqfds.log.at(-1)).toMatch(/kvmppc_xive_set_mapped \(gsi 6912, hw 0x1000000\) fails: -22/);
    e.irqfds.kvmIrqBypass = false;
    expect(e.irqfds.kvmppcSetPassthruIrq(virq, L)).toBe(1);
    expect(e.irqfds.kvmppcClrPassthruIrq(virq, L)).toBe(0);
  });
});
