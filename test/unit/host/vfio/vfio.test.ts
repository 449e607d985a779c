import { describe, expect, it } from 'vitest';
import { EBADF, EINVAL, ENODEV, ENOTTY } from '../../../../src/host/errno.ts';
import { EventfdCtx, eventfdCreate, eventfdFdgetFrom } from '../../../../src/host/kvm/irqfd.ts';
import { fput } from '../../../../src/host/mm/file.ts';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  type VfioPciDevice,
  vfioDeviceFile,
  vfioPciIoctl,
} from '../../../../src/host/vfio/vfio.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import { LISN_BASE, makeEnv, type VfioEnv } from './env.ts';

const TRIG_EFD = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;

function open(e: VfioEnv, cfg = { name: 'nic', msix: 8, msi: 4, lsis: 1 }): VfioPciDevice {
  const pdev = new PciDevice(cfg);
  expect(e.phb.plug(0, pdev)).toBe(true);
  const v = e.vfio.bind(pdev);
  if (typeof v === 'number') throw new Error(`bind ${v}`);
  expect(e.vfio.bind(pdev)).toBe(v);
  expect(v.open()).toBe(0);
  return v;
}

describe('vfio-pci uapi', () => {
  it('ioctl numbers in powerpc encoding (_IO: direction NONE = 1)', () => {
    expect([VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET]).toEqual(
      [0x2000_3b6b, 0x2000_3b6d, 0x2000_3b6e, 0x2000_3b6f],
    );
  });

  it('GET_IRQ_INFO counts and flags per index', () => {
    const e = makeEnv();
    const v = open(e);
    expect(v.getIrqInfo(VFIO_PCI_INTX_IRQ_INDEX)).toEqual({
      flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
      count: 1,
    });
    expect(v.getIrqInfo(VFIO_PCI_MSI_IRQ_INDEX)).toEqual({
      flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
      count: 4,
    });
    expect(v.getIrqInfo(VFIO_PCI_MSIX_IRQ_INDEX)).toEqual({
      flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
      count: 8,
    });
    expect(v.getIrqInfo(VFIO_PCI_NUM_IRQS)).toBe(-EINVAL);
  });

  it('SET_IRQS header checks (vfio_set_irqs_validate_and_prepare) and unsupported actions', () => {
    const e = makeEnv();
    const v = open(e);
    const fds = new Int32Array([0, 0]);
    const ok = (): EventfdCtx => new EventfdCtx();
    const get = (): EventfdCtx => ok();
    expect(v.setIrqs(19, TRIG_EFD, 2, 0, 1, fds, get)).toBe(-EINVAL); // argsz < 20
    expect(v.setIrqs(28, TRIG_EFD, 5, 0, 1, fds, get)).toBe(-EINVAL); // index
    expect(v.setIrqs(28, TRIG_EFD | 0x40, 2, 0, 1, fds, get)).toBe(-EINVAL); // unknown flag
    expect(v.setIrqs(28, TRIG_EFD, 2, 8, 1, fds, get)).toBe(-EINVAL); // start ≥ count
    expect(v.setIrqs(28, TRIG_EFD, 2, 7, 2, fds, get)).toBe(-EINVAL); // start + count > 8
    expect(v.setIrqs(28, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | 32, 2, 0, 1, fds, get)).toBe(
      -EINVAL,
    );
    expect(v.setIrqs(23, TRIG_EFD, 2, 0, 1, fds, get)).toBe(-EINVAL); // no room for one fd
    expect(v.setIrqs(28, TRIG_EFD, 0, 0, 1, fds, get)).toBe(-ENOTTY); // INTx not modelled
    expect(v.setIrqs(28, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_MASK, 2, 0, 1, fds, get)).toBe(
      -ENOTTY,
    );
    expect(v.irqType).toBe(VFIO_PCI_NUM_IRQS);
  });

  it('enable MSI-X, signal vectors with DATA_NONE / DATA_BOOL, refuse MSI meanwhile, disable', () => {
    const e = makeEnv({ kvmIrqBypass: false });
    const v = open(e);
    const efds = [new EventfdCtx(), new EventfdCtx(), new EventfdCtx()];
    expect(v.setIrqsEventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, efds)).toBe(0);
    expect([v.irqType, v.numCtx, v.pdev.msiMode, v.pdev.msiVectors]).toEqual([
      VFIO_PCI_MSIX_IRQ_INDEX,
      3,
      'msix',
      3,
    ]);
    expect(Array.from(v.pdev.vectorMasked.subarray(0, 3))).toEqual([0, 0, 0]);
    expect(v.ctx[1]!.name).toBe('vfio-msix[1](nic)');
    expect(e.host.irq(v.ctx[2]!.irq)!.data.hwIrq).toBe(e.phb.msiHwIrq(0, 2));
    expect(v.setIrqsEventfds(VFIO_PCI_MSI_IRQ_INDEX, 0, [new EventfdCtx()])).toBe(-EINVAL);
    expect(v.setIrqs(20, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 2, 0, 3, null, null)).toBe(0);
    expect(efds.map((x) => x.count)).toEqual([1, 1, 1]);
    const bools = new Uint8Array([0, 1]);
    expect(v.setIrqs(22, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 2, 1, 2, bools, null)).toBe(0);
    expect(efds.map((x) => x.count)).toEqual([1, 1, 2]);
    // A device MSI reaches the host handler, which signals the vector's eventfd.
    expect(v.pdev.raiseMsi(1)).toBe(true);
    expect([efds[1]!.count, v.ctx[1]!.hostIrqs]).toEqual([2, 1]);
    const virqs = v.ctx.map((c) => c.irq);
    expect(v.disableIrqs(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(0);
    expect([v.irqType, v.numCtx, v.pdev.msiMode]).toEqual([VFIO_PCI_NUM_IRQS, 0, null]);
    for (const q of virqs) expect(e.host.irq(q)).toBe(null);
    expect(v.pdev.raiseMsi(1)).toBe(false);
    expect([
      e.vfio.stats.msiEnables,
      e.vfio.stats.msiDisables,
      e.vfio.stats.vectorsSet,
      e.vfio.stats.vectorsUnset,
    ]).toEqual([1, 1, 3, 3]);
  });

  it('MSI: qmax = log2 of the vector count rounded up; a bad fd in the block unwinds the whole enable', () => {
    const e = makeEnv();
    const v = open(e);
    expect(
      v.setIrqsEventfds(VFIO_PCI_MSI_IRQ_INDEX, 0, [new EventfdCtx(), new EventfdCtx(), new EventfdCtx()]),
    ).toBe(0);
    expect(v.msiQmax).toBe(2);
    expect(v.disableIrqs(VFIO_PCI_MSI_IRQ_INDEX)).toBe(0);
    const fds = new Int32Array([0, 7]);
    const fdget = (fd: number): EventfdCtx | number => (fd === 0 ? new EventfdCtx() : -EBADF);
    expect(v.setIrqs(28, TRIG_EFD, VFIO_PCI_MSIX_IRQ_INDEX, 0, 2, fds, fdget)).toBe(-EBADF);
    expect([v.irqType, v.numCtx]).toEqual([VFIO_PCI_NUM_IRQS, 0]);
    expect(e.bypass.producers.length).toBe(0);
  });

  it('re-setting a bound vector with a new eventfd: clr_mapped for the old pairing, then no bypass without an irqfd', () => {
    const e = makeEnv();
    e.guest.createSource(LISN_BASE);
    const v = open(e);
    const efd = new EventfdCtx();
    expect(e.irqfds.kvmIrqfd(efd, LISN_BASE, 0)).toBe(0);
    expect(v.setIrqsEventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, [efd])).toBe(0);
    expect(e.dev.irqState(LISN_BASE)!.ptNumber).toBe(e.phb.msiHwIrq(0, 0));
    expect(v.setIrqsEventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, [new EventfdCtx()])).toBe(0);
    expect([e.dev.stats.setMapped, e.dev.stats.clrMapped]).toEqual([1, 1]);
    expect(e.dev.irqState(LISN_BASE)!.ptNumber).toBe(0);
    // Unset the vector alone (fd -1): the irq is freed, MSI-X stays enabled.
    expect(v.setIrqsEventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, [null])).toBe(0);
    expect([v.irqType, v.ctx[0]!.trigger]).toEqual([VFIO_PCI_MSIX_IRQ_INDEX, null]);
  });

  it('the uapi through user memory: GET_INFO, GET_IRQ_INFO, SET_IRQS with fds; the device file release disables', () => {
    const e = makeEnv();
    const pdev = new PciDevice({ name: 'nic', msix: 4 });
    e.phb.plug(0, pdev);
    const v = e.vfio.bind(pdev) as VfioPciDevice;
    const file = vfioDeviceFile(e.mh, v);
    if (typeof file === 'number') throw new Error('file');
    const fdget = eventfdFdgetFrom((n) => e.vmm.fget(n));
    const a = e.um.base + 0x400;
    e.um.putU32s(a, [16, 0, 0, 0]);
    expect(vfioPciIoctl(v, VFIO_DEVICE_GET_INFO, a, e.um, fdget)).toBe(0);
    expect([e.um.getU32(a + 4), e.um.getU32(a + 8), e.um.getU32(a + 12)]).toEqual([3, 9, 5]);
    e.um.putU32s(a, [16, 0, VFIO_PCI_MSIX_IRQ_INDEX, 0]);
    expect(vfioPciIoctl(v, VFIO_DEVICE_GET_IRQ_INFO, a, e.um, fdget)).toBe(0);
    expect([e.um.getU32(a + 4), e.um.getU32(a + 12)]).toEqual([
      VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
      4,
    ]);
    const efdFile = eventfdCreate(e.mh);
    const efd = e.vmm.installFd(efdFile);
    e.um.putU32s(a, [24, TRIG_EFD, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, efd]);
    expect(vfioPciIoctl(v, VFIO_DEVICE_SET_IRQS, a, e.um, fdget)).toBe(0);
    expect(v.numCtx).toBe(1);
    e.um.putU32s(a, [24, TRIG_EFD, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, 0xffff_ffff]);
    expect(vfioPciIoctl(v, VFIO_DEVICE_SET_IRQS, a, e.um, fdget)).toBe(0); // fd -1: unset
    expect(v.ctx[0]!.trigger).toBe(null);
    e.um.putU32s(a, [24, TRIG_EFD, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, 55]);
    expect(vfioPciIoctl(v, VFIO_DEVICE_SET_IRQS, a, e.um, fdget)).toBe(-EBADF);
    expect(vfioPciIoctl(v, 0x1234, a, e.um, fdget)).toBe(-ENOTTY);
    expect(v.openCount).toBe(1);
    fput(file);
    expect([v.openCount, v.irqType]).toEqual([0, VFIO_PCI_NUM_IRQS]);
    e.phb.unplug(0);
    expect(v.open()).toBe(-ENODEV);
    expect(e.vfio.bind(pdev)).toBe(v);
    e.vfio.unbind(v);
    expect(e.vfio.bind(pdev)).toBe(-ENODEV);
  });
});
