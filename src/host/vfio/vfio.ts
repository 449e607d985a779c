/**
 * The vfio-pci driver, MSI/MSI-X side: a {@link PciDevice} bound to vfio-pci, opened by a user
 * process, whose MSI vectors are enabled with `VFIO_DEVICE_SET_IRQS` (one eventfd per vector).
 * For each vector the driver requests the host irq with a handler that signals the vector's
 * eventfd, and registers an irq bypass producer whose token is that eventfd: if KVM has an irqfd
 * on the same eventfd, the pair connects and KVM maps the device interrupt straight into the
 * guest (`kvmppc_xive_set_mapped`). Unsetting a vector (or disabling MSIs, or releasing the
 * device) unregisters the producer first (→ `kvmppc_xive_clr_mapped`), then frees the irq.
 *
 * API: an object API ({@link VfioPci.bind} → {@link VfioPciDevice}: `open`, `setIrqs`,
 * `getIrqInfo`, `release`) plus {@link vfioPciIoctl}, which decodes the uapi structs from user
 * memory, and {@link vfioDeviceFile}, an mm `File` whose last close releases the device — for the
 * syscall layer to install as the device fd. INTx, ERR and REQ interrupts are not modelled
 * (−ENOTTY from SET_IRQS, as for an action the kernel has no handler for).
 *
 * @remarks Models drivers/vfio/pci/vfio_pci_intrs.c (MSI parts), vfio_pci_core.c (ioctl, enable,
 * disable) and vfio_main.c (vfio_set_irqs_validate_and_prepare).
 */

import type { PciDevice } from '../../hw/phb.ts';
import { type TraceArgs, type TraceKindIn, traceEvent } from '../../sim/trace-events.ts';
import { TRACE_KVM, type TraceSink } from '../../sim/trace-sink.ts';
import { EFAULT, EINVAL, ENODEV, ENOTTY } from '../errno.ts';
import { type EventfdCtx, type EventfdFdget, PPC_IOC_NONE, ppcIoc } from '../kvm/irqfd.ts';
import {
  PAGE_SCALE,
  PAGE_SIZE,
  VM_FAULT_NOPAGE,
  VM_FAULT_SIGBUS,
  VM_IO,
  VM_PFNMAP,
} from '../mm/constants.ts';
import { vmfInsertPfn } from '../mm/fault.ts';
import { type File, type FileMapping, FMODE_RDWR } from '../mm/file.ts';
import type { MmHost } from '../mm/mm-host.ts';
import type { UserMemory } from '../mm/uaccess.ts';
import type { Vma, VmFault, VmOperations } from '../mm/vma.ts';
import { unmapMappingPages } from '../mm/zap.ts';
import type { HostXive } from '../xive/host-xive.ts';
import type { IrqBypassManager, IrqBypassProducer } from './irq-bypass.ts';

// ---------------------------------------------------------------------------------------------
// uapi (include/uapi/linux/vfio.h); ioctl numbers in powerpc encoding (_IO: dir NONE = 1)
// ---------------------------------------------------------------------------------------------

export const VFIO_TYPE = 0x3b; // ';'
export const VFIO_BASE = 100;
/** `_IO(VFIO_TYPE, VFIO_BASE + 7)` = 0x20003B6B on powerpc. */
export const VFIO_DEVICE_GET_INFO = ppcIoc(PPC_IOC_NONE, VFIO_TYPE, VFIO_BASE + 7, 0);
export const VFIO_DEVICE_GET_IRQ_INFO = ppcIoc(PPC_IOC_NONE, VFIO_TYPE, VFIO_BASE + 9, 0);
export const VFIO_DEVICE_SET_IRQS = ppcIoc(PPC_IOC_NONE, VFIO_TYPE, VFIO_BASE + 10, 0);
export const VFIO_DEVICE_RESET = ppcIoc(PPC_IOC_NONE, VFIO_TYPE, VFIO_BASE + 11, 0);

export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;

export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
export const VFIO_IRQ_SET_DATA_TYPE_MASK =
  VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
export const VFIO_IRQ_SET_ACTION_TYPE_MASK =
  VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
/** `VFIO_PCI_NUM_REGIONS` (BAR0..5, ROM, CONFIG, VGA). */
export const VFIO_PCI_NUM_REGIONS = 9;
/** `VFIO_PCI_OFFSET_SHIFT`: a region's offset in the device fd is `index << 40`. */
export const VFIO_PCI_OFFSET_SHIFT = 40;
/**
 * Model extension for the QEMU-remap options of the 2019 review of the KVM XIVE native device
 * (QEMU would need a mapping of the PHB's ESB pages, which VFIO does not expose): the first device-specific region index maps the function's MSI ESB pages, two
 * 64 KiB pages per vector (trigger, then EOI/management) — the layout of the KVM device's ESB
 * range. Mainline vfio-pci has no such region; `VFIO_DEVICE_GET_INFO` still reports the 9
 * standard regions, and only `mmap` reaches this one.
 */
export const VFIO_PCI_ESB_REGION_INDEX = VFIO_PCI_NUM_REGIONS;
/** First file page of the ESB region. */
export const VFIO_PCI_ESB_REGION_PGOFF = VFIO_PCI_ESB_REGION_INDEX * 2 ** (VFIO_PCI_OFFSET_SHIFT - 16);

/** `offsetofend(struct vfio_irq_set, count)`. */
export const VFIO_IRQ_SET_MINSZ = 20;
/** `sizeof(struct vfio_irq_info)`: argsz, flags, index, count. */
export const VFIO_IRQ_INFO_SIZE = 16;
/** `sizeof(struct vfio_device_info)` (v1: argsz, flags, num_regions, num_irqs). */
export const VFIO_DEVICE_INFO_SIZE = 16;

const U32_MAX = 0xffff_ffff;

// ---------------------------------------------------------------------------------------------
// Per-vector context
// ---------------------------------------------------------------------------------------------

/** `struct vfio_pci_irq_ctx` of one MSI vector. */
export class VfioPciIrqCtx {
  readonly vector: number;
  /** The eventfd signalled by the host handler, or null (vector unset). */
  trigger: EventfdCtx | null;
  name: string;
  /** Host virq (`pci_irq_vector`). */
  readonly irq: number;
  readonly producer: IrqBypassProducer;
  /** Host handler invocations (interrupts that reached the host for this vector). */
  hostIrqs: number;
  constructor(vector: number, irq: number) {
    this.vector = vector;
    this.trigger = null;
    this.name = '';
    this.irq = irq;
    this.producer = { token: null, irq, addConsumer: null, delConsumer: null, stop: null, start: null };
    this.hostIrqs = 0;
  }
}

/** Driver counters. */
export class VfioStats {
  msiEnables = 0;
  msiDisables = 0;
  vectorsSet = 0;
  vectorsUnset = 0;
  /** Producer registrations that failed (logged by the kernel, not fatal). */
  producerFailures = 0;
  hostIrqs = 0;
}

/** IRQ info reply. */
export interface VfioIrqInfo {
  flags: number;
  count: number;
}

/**
 * The vfio-pci driver instance (its registry of bound devices and its view of the host).
 */
export class VfioPci {
  readonly host: HostXive;
  readonly bypass: IrqBypassManager;
  readonly trace: TraceSink;
  readonly stats: VfioStats;
  readonly devices: VfioPciDevice[];
  /** Failures the kernel only logs. */
  readonly log: string[];

  constructor(host: HostXive, bypass: IrqBypassManager, trace: TraceSink) {
    this.host = host;
    this.bypass = bypass;
    this.trace = trace;
    this.stats = new VfioStats();
    this.devices = [];
    this.log = [];
  }

  /**
   * Bind a plugged PCI function to vfio-pci (driver probe). An already bound function returns
   * its existing instance (it stays bound until {@link unbind}, even once unplugged); −ENODEV for
   * a function that is not plugged.
   *
   * @remarks Models vfio_pci_core.c:vfio_pci_probe() (group and IOMMU set-up omitted).
   */
  bind(pdev: PciDevice): VfioPciDevice | number {
    for (const d of this.devices) if (d.pdev === pdev) return d;
    if (!pdev.plugged) return -ENODEV;
    const d = new VfioPciDevice(this, pdev);
    this.devices.push(d);
    return d;
  }

  /**
   * Unbind (driver remove). The kernel waits for the user to release the device first; here a
   * device still open is released on the spot (what the user does when asked through the REQ
   * interrupt).
   *
   * @remarks Models vfio_pci_core.c:vfio_pci_remove().
   */
  unbind(vdev: VfioPciDevice): void {
    vdev.revokeEsbMappings();
    while (vdev.openCount > 0) vdev.close();
    const i = this.devices.indexOf(vdev);
    if (i >= 0) this.devices.splice(i, 1);
  }

  pr(msg: string): void {
    if (this.log.length >= 256) this.log.shift();
    this.log.push(msg);
  }
}

/**
 * A PCI function owned by vfio-pci.
 *
 * @remarks Models struct vfio_pci_core_device and its MSI paths.
 */
export class VfioPciDevice {
  readonly vfio: VfioPci;
  readonly pdev: PciDevice;
  /** `vdev->irq_type`: VFIO_PCI_NUM_IRQS = none. */
  irqType: number;
  /** `vdev->num_ctx`. */
  numCtx: number;
  ctx: VfioPciIrqCtx[];
  /** `vdev->msi_qmax` (MSI only). */
  msiQmax: number;
  openCount: number;
  /** The device file's address_space once its ESB region has been mmap'd (for the revoke). */
  esbMapping: FileMapping | null;
  /** Set by unbind: faults on the ESB region then raise SIGBUS. */
  removed: boolean;
  /** vm_ops of the ESB region. */
  readonly esbVmOps: VmOperations;

  constructor(vfio: VfioPci, pdev: PciDevice) {
    this.vfio = vfio;
    this.pdev = pdev;
    this.irqType = VFIO_PCI_NUM_IRQS;
    this.numCtx = 0;
    this.ctx = [];
    this.msiQmax = 0;
    this.openCount = 0;
    this.esbMapping = null;
    this.removed = false;
    this.esbVmOps = { name: 'vfio-pci-esb', fault: (vmf) => this.esbFault(vmf) };
  }

  /**
   * `f_op.mmap` of the device fd: only the ESB region ({@link VFIO_PCI_ESB_REGION_INDEX}), within
   * two pages per MSI-X vector; anything else −EINVAL.
   *
   * @remarks Models the shape of vfio_pci_core.c:vfio_pci_core_mmap() (region index from the
   * offset, size check, VM_IO | VM_PFNMAP, a fault handler as for BARs since 5.8).
   */
  mmap(file: File, vma: Vma): number {
    const first = vma.pgoff - VFIO_PCI_ESB_REGION_PGOFF;
    if (this.removed || first < 0 || first + vma.pages > 2 * this.pdev.msixCount) return -EINVAL;
    vma.ops = this.esbVmOps;
    vma.flags |= VM_IO | VM_PFNMAP;
    this.esbMapping = file.mapping;
    return 0;
  }

  /** Even page of vector v → its trigger page, odd → its EOI page; SIGBUS once gone. */
  private esbFault(vmf: VmFault): number {
    const page = vmf.pgoff - VFIO_PCI_ESB_REGION_PGOFF;
    const { pdev } = this;
    if (this.removed || pdev.phb === null || page < 0 || page >= 2 * pdev.msixCount) return VM_FAULT_SIGBUS;
    const addr = pdev.phb.msiTriggerPage(pdev.slot, page >> 1) + (page & 1) * PAGE_SIZE;
    vmfInsertPfn(vmf.vma, vmf.address, addr * PAGE_SCALE);
    return VM_FAULT_NOPAGE;
  }

  /**
   * Zap every user mapping of the ESB region and refuse later faults: nothing may reach the
   * function's pages once it leaves vfio-pci.
   *
   * @remarks Models vfio_pci_core.c:vfio_pci_zap_bars() on the remove path.
   */
  revokeEsbMappings(): void {
    this.removed = true;
    if (this.esbMapping !== null)
      unmapMappingPages(this.esbMapping, VFIO_PCI_ESB_REGION_PGOFF, 2 * this.pdev.msixCount, true);
  }

  private emit<K extends TraceKindIn<typeof TRACE_KVM>>(kind: K, args: TraceArgs<K>): void {
    const t = this.vfio.trace;
    if (t.mask & TRACE_KVM) traceEvent(t, kind, args);
  }

  /** Open (a new device fd). −ENODEV once the function has been unplugged. */
  open(): number {
    if (!this.pdev.plugged) return -ENODEV;
    this.openCount++;
    return 0;
  }

  /**
   * Close one device fd; the last close disables interrupts (vfio_pci_disable → SET_IRQS
   * DATA_NONE | TRIGGER, count 0, on the active index).
   *
   * @remarks Models vfio_pci_core.c:vfio_pci_core_close_device() → vfio_pci_core_disable().
   */
  close(): void {
    if (this.openCount <= 0) return;
    if (--this.openCount === 0) {
      if (this.irqType !== VFIO_PCI_NUM_IRQS) {
        this.vfioPciSetIrqsIoctl(
          VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
          this.irqType,
          0,
          0,
          null,
        );
      }
    }
  }

  /**
   * Vector count of an irq index.
   *
   * @remarks Models vfio_pci_core.c:vfio_pci_get_irq_count().
   */
  vfioPciGetIrqCount(index: number): number {
    const p = this.pdev;
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        return p.lsiCount > 0 ? 1 : 0;
      case VFIO_PCI_MSI_IRQ_INDEX:
        return p.msiCount;
      case VFIO_PCI_MSIX_IRQ_INDEX:
        return p.msixCount;
      case VFIO_PCI_ERR_IRQ_INDEX:
        return 1;
      case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
      default:
        return 0;
    }
  }

  /** `VFIO_DEVICE_GET_IRQ_INFO`: −EINVAL for an index ≥ VFIO_PCI_NUM_IRQS. */
  getIrqInfo(index: number): VfioIrqInfo | number {
    if (!(index >= 0 && index < VFIO_PCI_NUM_IRQS)) return -EINVAL;
    let flags = VFIO_IRQ_INFO_EVENTFD;
    if (index === VFIO_PCI_INTX_IRQ_INDEX) flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    else flags |= VFIO_IRQ_INFO_NORESIZE;
    return { flags, count: this.vfioPciGetIrqCount(index) };
  }

  /**
   * `VFIO_DEVICE_SET_IRQS` after the header checks. `data`: null (DATA_NONE), the bools, or the
   * eventfd fds with the resolver of the calling process's fd table.
   *
   * @remarks Models vfio_pci_core.c (VFIO_DEVICE_SET_IRQS) → vfio_set_irqs_validate_and_prepare()
   * → vfio_pci_intrs.c:vfio_pci_set_irqs_ioctl().
   */
  setIrqs(
    argsz: number,
    flags: number,
    index: number,
    start: number,
    count: number,
    data: Uint8Array | Int32Array | null,
    fdget: EventfdFdget | null,
  ): number {
    const max = this.vfioPciGetIrqCount(index);
    const v = vfioSetIrqsValidateAndPrepare(argsz, flags, index, start, count, max, VFIO_PCI_NUM_IRQS);
    if (v < 0) return v;
    if (v > 0) {
      if (data === null || data.length < count) return -EFAULT;
    }
    return this.vfioPciSetIrqsIoctl(flags, index, start, count, v > 0 ? data : null, fdget);
  }

  /**
   * Object-API convenience: attach eventfd contexts (null = detach) to vectors
   * `start..start+ctxs.length-1` of `index` (MSI or MSI-X).
   */
  setIrqsEventfds(index: number, start: number, ctxs: readonly (EventfdCtx | null)[]): number {
    const fds = new Int32Array(ctxs.length);
    for (let i = 0; i < ctxs.length; i++) fds[i] = ctxs[i] ? i : -1;
    return this.setIrqs(
      VFIO_IRQ_SET_MINSZ + 4 * ctxs.length,
      VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
      index,
      start,
      ctxs.length,
      fds,
      (fd) => ctxs[fd] ?? -EINVAL,
    );
  }

  /** Object-API convenience: disable MSI / MSI-X (DATA_NONE | TRIGGER, count 0). */
  disableIrqs(index: number): number {
    return this.setIrqs(
      VFIO_IRQ_SET_MINSZ,
      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
      index,
      0,
      0,
      null,
      null,
    );
  }

  /** @remarks Models vfio_pci_intrs.c:vfio_pci_set_irqs_ioctl(). */
  vfioPciSetIrqsIoctl(
    flags: number,
    index: number,
    start: number,
    count: number,
    data: Uint8Array | Int32Array | null,
    fdget: EventfdFdget | null = null,
  ): number {
    const action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if (
      (index === VFIO_PCI_MSI_IRQ_INDEX || index === VFIO_PCI_MSIX_IRQ_INDEX) &&
      action === VFIO_IRQ_SET_ACTION_TRIGGER
    ) {
      return this.vfioPciSetMsiTrigger(index, start, count, flags, data, fdget);
    }
    // INTx, ERR and REQ handlers, and MSI mask/unmask (no handler in the kernel either).
    return -ENOTTY;
  }

  private irqIs(index: number): boolean {
    return this.irqType === index;
  }

  private isIrqNone(): boolean {
    return this.irqType === VFIO_PCI_NUM_IRQS;
  }

  /** @remarks Models vfio_pci_intrs.c:vfio_pci_set_msi_trigger(). */
  private vfioPciSetMsiTrigger(
    index: number,
    start: number,
    count: number,
    flags: number,
    data: Uint8Array | Int32Array | null,
    fdget: EventfdFdget | null,
  ): number {
    const msix = index === VFIO_PCI_MSIX_IRQ_INDEX;
    if (this.irqIs(index) && count === 0 && flags & VFIO_IRQ_SET_DATA_NONE) {
      this.vfioMsiDisable(msix);
      return 0;
    }
    if (!(this.irqIs(index) || this.isIrqNone())) return -EINVAL;
    if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
      const fds = data as Int32Array;
      if (this.irqIs(index)) return this.vfioMsiSetBlock(start, count, fds, msix, fdget);
      let ret = this.vfioMsiEnable(start + count, msix);
      if (ret) return ret;
      ret = this.vfioMsiSetBlock(start, count, fds, msix, fdget);
      if (ret) this.vfioMsiDisable(msix);
      return ret;
    }
    if (!this.irqIs(index) || start + count > this.numCtx) return -EINVAL;
    for (let i = start; i < start + count; i++) {
      const t = this.ctx[i]!.trigger;
      if (!t) continue;
      if (flags & VFIO_IRQ_SET_DATA_NONE) t.eventfdSignal(1);
      else if (flags & VFIO_IRQ_SET_DATA_BOOL && data !== null && data[i - start]) t.eventfdSignal(1);
    }
    return 0;
  }

  /**
   * Allocate `nvec` host vectors (one host virq per device hw irq) and switch the function to
   * MSI / MSI-X. −EINVAL if another irq type is active; −ENODEV if the function is gone; a
   * positive count if fewer vectors could be had.
   *
   * @remarks Models vfio_pci_intrs.c:vfio_msi_enable() (pci_alloc_irq_vectors on PowerNV:
   * pnv_setup_msi_irqs → irq_create_mapping of each PHB MSI).
   */
  private vfioMsiEnable(nvec: number, msix: boolean): number {
    if (!this.isIrqNone()) return -EINVAL;
    const p = this.pdev;
    const phb = p.phb;
    if (phb === null) return -ENODEV;
    const avail = p.maxVectors(msix ? 'msix' : 'msi');
    if (avail < nvec) return avail > 0 ? avail : -EINVAL;
    const host = this.vfio.host;
    const ctx: VfioPciIrqCtx[] = [];
    for (let v = 0; v < nvec; v++) {
      const virq = host.createMapping(phb.msiHwIrq(p.slot, v));
      if (virq === 0) {
        for (const c of ctx) host.disposeMapping(c.irq);
        return -ENODEV;
      }
      ctx.push(new VfioPciIrqCtx(v, virq));
    }
    p.setMsiEnabled(msix ? 'msix' : 'msi', nvec);
    this.ctx = ctx;
    this.numCtx = nvec;
    this.irqType = msix ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_MSI_IRQ_INDEX;
    if (!msix) this.msiQmax = 31 - Math.clz32(nvec * 2 - 1);
    this.vfio.stats.msiEnables++;
    this.emit('vfio.msi_enable', { slot: p.slot, nvec, msix: +msix });
    return 0;
  }

  /**
   * Unset every vector (bypass producers unregistered first, then the irqs freed), free the host
   * vectors and turn MSI off in the function.
   *
   * @remarks Models vfio_pci_intrs.c:vfio_msi_disable().
   */
  private vfioMsiDisable(msix: boolean): void {
    this.vfioMsiSetBlock(0, this.numCtx, null, msix, null);
    const host = this.vfio.host;
    for (const c of this.ctx) host.disposeMapping(c.irq);
    this.pdev.setMsiEnabled(null, 0);
    this.irqType = VFIO_PCI_NUM_IRQS;
    this.numCtx = 0;
    this.ctx = [];
    this.vfio.stats.msiDisables++;
    this.emit('vfio.msi_disable', { slot: this.pdev.slot, nvec: 0, msix: +msix });
  }

  /** @remarks Models vfio_pci_intrs.c:vfio_msi_set_block(). */
  private vfioMsiSetBlock(
    start: number,
    count: number,
    fds: Int32Array | null,
    msix: boolean,
    fdget: EventfdFdget | null,
  ): number {
    if (start >= this.numCtx || start + count > this.numCtx) return -EINVAL;
    let ret = 0;
    let j = start;
    for (let i = 0; i < count && !ret; i++, j++) {
      const fd = fds ? fds[i]! : -1;
      ret = this.vfioMsiSetVectorSignal(j, fd, msix, fdget);
    }
    if (ret) {
      for (--j; j >= start; j--) this.vfioMsiSetVectorSignal(j, -1, msix, null);
    }
    return ret;
  }

  /**
   * Detach the vector's current eventfd (bypass producer unregistered → KVM clr_mapped; then
   * free_irq), and attach `fd`'s eventfd if `fd ≥ 0` (request_irq with a handler signalling it,
   * then the bypass producer → KVM set_mapped if an irqfd waits on that eventfd).
   *
   * @remarks Models vfio_pci_intrs.c:vfio_msi_set_vector_signal().
   */
  private vfioMsiSetVectorSignal(
    vector: number,
    fd: number,
    msix: boolean,
    fdget: EventfdFdget | null,
  ): number {
    if (!(vector >= 0 && vector < this.numCtx)) return -EINVAL;
    const c = this.ctx[vector]!;
    const host = this.vfio.host;
    const irq = c.irq;
    if (c.trigger) {
      this.vfio.bypass.irqBypassUnregisterProducer(c.producer);
      host.freeIrq(irq);
      this.pdev.setVectorMask(vector, true);
      c.trigger = null;
      c.name = '';
      this.vfio.stats.vectorsUnset++;
    }
    if (fd < 0) return 0;
    const trigger = fdget ? fdget(fd) : -EINVAL;
    if (typeof trigger === 'number') return trigger;
    c.name = `vfio-msi${msix ? 'x' : ''}[${vector}](${this.pdev.name})`;
    const ret = host.requestIrq(
      irq,
      () => {
        c.hostIrqs++;
        this.vfio.stats.hostIrqs++;
        trigger.eventfdSignal(1);
      },
      c.name,
    );
    if (ret) return ret;
    // irq startup unmasks the vector in the function (pci_msi_unmask_irq).
    this.pdev.setVectorMask(vector, false);
    c.producer.token = trigger;
    const r = this.vfio.bypass.irqBypassRegisterProducer(c.producer);
    if (r) {
      this.vfio.stats.producerFailures++;
      this.vfio.pr(
        `${this.pdev.name}: irq bypass producer (token vector ${vector}) registration fails: ${r}`,
      );
      c.producer.token = null;
    }
    c.trigger = trigger;
    this.vfio.stats.vectorsSet++;
    this.emit('vfio.vector_set', { vector, irq, rc: r });
    return 0;
  }
}

/**
 * Header checks of SET_IRQS. Returns −EINVAL, or the size in bytes of each data element
 * (0 for DATA_NONE; then no data is read).
 *
 * @remarks Models vfio_main.c:vfio_set_irqs_validate_and_prepare().
 */
export function vfioSetIrqsValidateAndPrepare(
  argsz: number,
  flags: number,
  index: number,
  start: number,
  count: number,
  numIrqs: number,
  maxIrqType: number,
): number {
  if (
    argsz < VFIO_IRQ_SET_MINSZ ||
    index >= maxIrqType ||
    count >= U32_MAX - start ||
    (flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) !== 0
  ) {
    return -EINVAL;
  }
  if (start >= numIrqs || start + count > numIrqs) return -EINVAL;
  let size: number;
  switch (flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
      size = 0;
      break;
    case VFIO_IRQ_SET_DATA_BOOL:
      size = 1;
      break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
      size = 4;
      break;
    default:
      return -EINVAL;
  }
  if (size && argsz - VFIO_IRQ_SET_MINSZ < count * size) return -EINVAL;
  return size;
}

/**
 * `ioctl(device_fd, cmd, argp)` for the MSI paths: GET_INFO, GET_IRQ_INFO, SET_IRQS (structs
 * big-endian in user memory); anything else −ENOTTY.
 *
 * @remarks Models vfio_pci_core.c:vfio_pci_core_ioctl() (the interrupt subset).
 */
export function vfioPciIoctl(
  vdev: VfioPciDevice,
  cmd: number,
  argp: number,
  mem: UserMemory,
  fdget: EventfdFdget,
): number {
  if (cmd === VFIO_DEVICE_GET_INFO) {
    const b = mem.copyFromUser(argp, VFIO_DEVICE_INFO_SIZE);
    if (typeof b === 'number') return -EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (dv.getUint32(0) < VFIO_DEVICE_INFO_SIZE) return -EINVAL;
    dv.setUint32(4, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    dv.setUint32(8, VFIO_PCI_NUM_REGIONS);
    dv.setUint32(12, VFIO_PCI_NUM_IRQS);
    return mem.copyToUser(argp, b) ? -EFAULT : 0;
  }
  if (cmd === VFIO_DEVICE_GET_IRQ_INFO) {
    const b = mem.copyFromUser(argp, VFIO_IRQ_INFO_SIZE);
    if (typeof b === 'number') return -EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (dv.getUint32(0) < VFIO_IRQ_INFO_SIZE) return -EINVAL;
    const info = vdev.getIrqInfo(dv.getUint32(8));
    if (typeof info === 'number') return info;
    dv.setUint32(4, info.flags);
    dv.setUint32(12, info.count);
    return mem.copyToUser(argp, b) ? -EFAULT : 0;
  }
  if (cmd === VFIO_DEVICE_SET_IRQS) {
    const h = mem.copyFromUser(argp, VFIO_IRQ_SET_MINSZ);
    if (typeof h === 'number') return -EFAULT;
    const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
    const argsz = dv.getUint32(0);
    const flags = dv.getUint32(4);
    const index = dv.getUint32(8);
    const start = dv.getUint32(12);
    const count = dv.getUint32(16);
    const size = vfioSetIrqsValidateAndPrepare(
      argsz,
      flags,
      index,
      start,
      count,
      vdev.vfioPciGetIrqCount(index),
      VFIO_PCI_NUM_IRQS,
    );
    if (size < 0) return size;
    let data: Uint8Array | Int32Array | null = null;
    if (size > 0) {
      const raw = mem.copyFromUser(argp + VFIO_IRQ_SET_MINSZ, count * size);
      if (typeof raw === 'number') return -EFAULT;
      if (size === 1) data = raw;
      else {
        const rv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        const fds = new Int32Array(count);
        for (let i = 0; i < count; i++) fds[i] = rv.getInt32(4 * i);
        data = fds;
      }
    }
    return vdev.vfioPciSetIrqsIoctl(flags, index, start, count, data, fdget);
  }
  return -ENOTTY;
}

/**
 * The device fd's file (`vfio-device`): its last reference closes the device. The syscall layer
 * routes `ioctl` on it to {@link vfioPciIoctl} with the caller's memory and fd table.
 */
export function vfioDeviceFile(host: MmHost, vdev: VfioPciDevice): File | number {
  const r = vdev.open();
  if (r) return r;
  return host.anonInodeGetFile(
    '[vfio-device]',
    {
      name: 'vfio-device',
      mmap: (f, vma) => vdev.mmap(f, vma),
      release: () => vdev.close(),
    },
    vdev,
    FMODE_RDWR,
  );
}
