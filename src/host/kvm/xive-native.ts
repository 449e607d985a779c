/**
 * The KVM XIVE native device (`KVM_DEV_TYPE_XIVE`): per-VM guest sources
 * each backed by a host HW IPI (or, when passed through, by a device's HW irq), targeting through
 * OPAL, event queues in pinned guest pages, vCPU presenters pushed into the physical thread's OS
 * ring, escalations, the mmap'd ESB/TIMA pages with their fault handlers, the zap of an irq's
 * ESB pages on passthrough switch, and `kvmppc_xive_set_mapped` / `clr_mapped`.
 *
 * A plain object that the later syscall/VM layer wraps:
 * - `KVM_CREATE_DEVICE` → {@link kvmppcXiveNativeCreate} (−EEXIST for a second device).
 * - `KVM_SET/GET/HAS_DEVICE_ATTR` → {@link KvmXiveNative.setAttr} / `getAttr` / `hasAttr` with the
 *   process's {@link UserMemory} (`attr.addr` is a user pointer).
 * - `KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE)` on a vCPU → `connectVcpu` after the syscall layer has
 *   checked the fd (−EBADF) and that it is a XIVE device (−EPERM).
 * - `KVM_GET/SET_ONE_REG(KVM_REG_PPC_VP_STATE)` → `getVp` / `setVp` (−ENXIO from book3s.c when
 *   the vCPU has no XIVE context is the caller's).
 * - vCPU run/exit → `pushVcpu(vcpu, hostCpu)` / `pullVcpu(vcpu)`; cede → `rearmEscalation`.
 * - `mmap` of the device fd → `mmap(file, vma)` (the `f_op.mmap` of mm's {@link FileOperations});
 *   the VMA's `ops` are this device's TIMA/ESB vm_ops (mm's {@link VmOperations}).
 * - last close → `release()`.
 * - irq bypass (VFIO) → `setMapped` / `clrMapped`.
 *
 * Latent bugs of the merged code are reproduced behind {@link XiveNativeFlags}; the defaults are
 * mainline's behaviour.
 */

import type { Word64 } from '../../hw/mmio.ts';
import { OPAL_SUCCESS, XiveQueueInfo, XiveQueueState } from '../../hw/xive/p9-chip.ts';
import { TM_QW1W2_VO, XIVE_ESB_SET_PQ_01, XIVE_TM_OS_PAGE } from '../../hw/xive/regs.ts';
import { TRACE_KVM } from '../../sim/trace-sink.ts';
import { AtomicStep, type EffectFormat, filePteObj, mustYield, pfnEffect, StepPool } from '../atomic-step.ts';
import {
  E2BIG,
  EBUSY,
  EDEADLK,
  EEXIST,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  ENOSPC,
  ENXIO,
  EPERM,
} from '../errno.ts';
import {
  PAGE_SCALE,
  PAGE_SIZE,
  VM_FAULT_NOPAGE,
  VM_FAULT_SIGBUS,
  VM_IO,
  VM_PFNMAP,
} from '../mm/constants.ts';
import { vmfInsertPfn } from '../mm/fault.ts';
import type { File } from '../mm/file.ts';
import type { UserMemory } from '../mm/uaccess.ts';
import type { Vma, VmFault, VmOperations } from '../mm/vma.ts';
import type { XiveIrqData } from '../xive/host-xive.ts';
import { KvmppcXive } from './xive.ts';
import { irqBackingObj, sbLockObj, XIVE_SOURCES } from './xive-footprint.ts';
import {
  decodeKvmPpcXiveEq,
  encodeKvmPpcXiveEq,
  KVM_DEV_XIVE_EQ_SYNC,
  KVM_DEV_XIVE_GRP_CTRL,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE_SYNC,
  KVM_DEV_XIVE_NR_SERVERS,
  KVM_DEV_XIVE_RESET,
  KVM_PPC_XIVE_EQ_SIZE,
  KVM_XIVE_EQ_ALWAYS_NOTIFY,
  KVM_XIVE_EQ_PRIORITY_MASK,
  KVM_XIVE_EQ_SERVER_MASK,
  KVM_XIVE_EQ_SERVER_SHIFT,
  KVM_XIVE_ESB_PAGE_OFFSET,
  KVM_XIVE_LEVEL_ASSERTED,
  KVM_XIVE_LEVEL_SENSITIVE,
  KVM_XIVE_SOURCE_EISN_MASK,
  KVM_XIVE_SOURCE_EISN_SHIFT,
  KVM_XIVE_SOURCE_MASKED_MASK,
  KVM_XIVE_SOURCE_PRIORITY_MASK,
  KVM_XIVE_SOURCE_SERVER_MASK,
  KVM_XIVE_SOURCE_SERVER_SHIFT,
  KVM_XIVE_TIMA_PAGE_OFFSET,
  KVMPPC_IRQ_DEFAULT,
  KVMPPC_IRQ_XIVE,
  KVMPPC_XICS_SRC_MASK,
  KVMPPC_XIVE_FIRST_IRQ,
  KVMPPC_XIVE_NR_IRQS,
  KVMPPC_XIVE_Q_COUNT,
  MASKED,
  XIVE_INVALID_VP,
} from './xive-native-uapi.ts';
import {
  type KvmArchXive,
  KvmppcXiveVcpu,
  type KvmXiveNativeOptions,
  type XiveIrqState,
  type XiveQ,
  type XiveSrcBlock,
  type XiveVcpuArch,
  xivePrioFromGuest,
} from './xive-state.ts';

/** The irq range of GRP_SOURCE, as the bigints the attribute is compared with. */
const FIRST_IRQ = BigInt(KVMPPC_XIVE_FIRST_IRQ);
const NR_IRQS = BigInt(KVMPPC_XIVE_NR_IRQS);
/** The source flags as bits of the value's low word ({@link KvmXiveNative.readU64Low}). */
const LEVEL_SENSITIVE = Number(KVM_XIVE_LEVEL_SENSITIVE);
const LEVEL_ASSERTED = Number(KVM_XIVE_LEVEL_ASSERTED);

/** The kernel's copy of a u64 attribute value ({@link KvmXiveNative.readU64}), reused. */
const u64Bytes = new Uint8Array(8);
const u64View = new DataView(u64Bytes.buffer);

/** Fault handler result when the real kernel would spin forever on a held block lock. */
export const XIVE_FAULT_HANG = -0x1_0000;

/** Which step of the ESB fault an {@link EsbFaultStep} is. */
const ESB_SELECT = 0;
const ESB_READ = 1;
const ESB_INSERT = 2;

/** The effect `PTE → pfn 0x…`. */
const ptePfnEffect: EffectFormat = (pfn) => `PTE → pfn 0x${pfn.toString(16)}`;
/** The effect of the selection outside the lock: the passthrough HW irq `pt`, or (0) the IPI. */
const selectedEffect: EffectFormat = (pt) => `selected ${pt ? `hw 0x${pt.toString(16)}` : 'the IPI'}`;

/**
 * A step of the ESB fault: the source look-up (and the selection, when it runs outside the
 * lock), the page read under `sb->lock` (blocked while another path holds it), or
 * `vmf_insert_pfn` of file page `n`. Keeps the numbers its text is made of (see
 * {@link AtomicStep}).
 */
class EsbFaultStep extends AtomicStep {
  declare private kind: number;
  /** The guest irq (the file page for {@link ESB_INSERT}). */
  declare private n: number;
  /** The source block whose lock {@link ESB_READ} takes. */
  declare private sb: XiveSrcBlock | null;
  declare private outside: boolean;
  declare private odd: boolean;

  private constructor(kind: number, n: number, sb: XiveSrcBlock | null, outside: boolean, odd: boolean) {
    super();
    this.kind = kind;
    this.n = n;
    this.sb = sb;
    this.outside = outside;
    this.odd = odd;
  }

  /** A step of `kind` ({@link ESB_SELECT} …): new, or recycled under a sequential driver. */
  static of(kind: number, n: number, sb: XiveSrcBlock | null, outside: boolean, odd: boolean): EsbFaultStep {
    const s = esbFaultStepPool.take(kind);
    if (s === null) return esbFaultStepPool.keep(kind, new EsbFaultStep(kind, n, sb, outside, odd));
    s.n = n;
    s.sb = sb;
    s.outside = outside;
    s.odd = odd;
    return s;
  }

  protected override describe(): string {
    if (this.kind === ESB_SELECT)
      return `esb_fault(girq ${this.n}): find the source${this.outside ? ', kvmppc_xive_select_irq' : ''}`;
    if (this.kind === ESB_INSERT) return `vmf_insert_pfn(file page ${this.n})`;
    return `arch_spin_lock(sb${this.sb!.id}->lock), ${this.outside ? '' : 'kvmppc_xive_select_irq, '}read the ${this.odd ? 'EOI' : 'trigger'} page, arch_spin_unlock`;
  }

  protected override describeReads(): readonly string[] {
    if (this.kind === ESB_SELECT)
      return this.outside ? [XIVE_SOURCES, irqBackingObj(this.n)] : [XIVE_SOURCES];
    if (this.kind === ESB_READ) return this.outside ? [] : [irqBackingObj(this.n)];
    return [];
  }

  protected override describeWrites(): readonly string[] {
    if (this.kind === ESB_READ) return [sbLockObj(this.sb!.id)];
    return this.kind === ESB_INSERT ? [filePteObj(this.n)] : [];
  }

  override canRun(): boolean {
    return this.kind !== ESB_READ || !this.sb!.lockHeld;
  }
}

const esbFaultStepPool = new StepPool<EsbFaultStep>();

/**
 * Create the device, or −EEXIST if the VM already has an interrupt device. The kept struct of an
 * earlier device is reused (reset to its creation state).
 *
 * @remarks Models book3s_xive_native.c:kvmppc_xive_native_create() +
 * kvmppc_xive_get_device().
 */
export function kvmppcXiveNativeCreate(
  arch: KvmArchXive,
  opts: KvmXiveNativeOptions,
): KvmXiveNative | number {
  if (arch.xive) return -EEXIST;
  let x = arch.xiveNative;
  if (x === null) {
    x = new KvmXiveNative(arch, opts);
    arch.xiveNative = x;
  } else {
    x.reinit(opts);
  }
  arch.xive = x;
  return x;
}

/**
 * The KVM XIVE native device of one VM.
 *
 * @remarks Models arch/powerpc/kvm/book3s_xive_native.c.
 */
export class KvmXiveNative extends KvmppcXive {
  /** The TIMA vm_ops (`xive_native_tima_vmops`). */
  readonly timaVmOps: VmOperations;
  /** The ESB vm_ops (`xive_native_esb_vmops`). */
  readonly esbVmOps: VmOperations;
  private readonly qinfo: XiveQueueInfo;
  private readonly qstate: XiveQueueState;

  constructor(arch: KvmArchXive, opts: KvmXiveNativeOptions) {
    super(arch, opts);
    this.qinfo = new XiveQueueInfo();
    this.qstate = new XiveQueueState();
    this.timaVmOps = {
      name: 'xive-native-tima',
      fault: (vmf: VmFault): number => this.vmFault(vmf, false),
    };
    this.esbVmOps = {
      name: 'xive-native-esb',
      fault: (vmf: VmFault): number => this.vmFault(vmf, true),
      faultSteps: (vmf: VmFault): Generator<AtomicStep, number, void> =>
        this.esbFaultSteps(vmf.vma.pgoff, vmf.pgoff, vmf),
    };
  }

  /** `get_user` of a u64 (the attribute's value): the value or −EFAULT. */
  private readU64(mem: UserMemory, addr: number): bigint | number {
    if (mem.copyFromUserTo(u64Bytes, addr)) return -EFAULT;
    return u64View.getBigUint64(0);
  }

  /**
   * {@link readU64} where only the value's low 32 bits matter (the source flags): those bits
   * (≥ 0) or −EFAULT, with no bigint made per source.
   */
  private readU64Low(mem: UserMemory, addr: number): number {
    if (mem.copyFromUserTo(u64Bytes, addr)) return -EFAULT;
    return u64View.getUint32(4);
  }

  // -------------------------------------------------------------------------------------------
  // Device attributes
  // -------------------------------------------------------------------------------------------

  /**
   * `KVM_SET_DEVICE_ATTR`. `attr` is the u64 attribute, `addr` the user pointer of the value.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_set_attr().
   */
  setAttr(group: number, attr: bigint, addr: number, mem: UserMemory): number {
    switch (group) {
      case KVM_DEV_XIVE_GRP_CTRL:
        if (attr === BigInt(KVM_DEV_XIVE_RESET)) return this.reset();
        if (attr === BigInt(KVM_DEV_XIVE_EQ_SYNC)) return this.eqSync();
        if (attr === BigInt(KVM_DEV_XIVE_NR_SERVERS)) return this.setNrServers(addr, mem);
        break;
      case KVM_DEV_XIVE_GRP_SOURCE:
        return this.setSource(attr, addr, mem);
      case KVM_DEV_XIVE_GRP_SOURCE_CONFIG:
        return this.setSourceConfig(attr, addr, mem);
      case KVM_DEV_XIVE_GRP_EQ_CONFIG:
        return this.setQueueConfig(attr, addr, mem);
      case KVM_DEV_XIVE_GRP_SOURCE_SYNC:
        return this.syncSource(attr);
    }
    return -ENXIO;
  }

  /**
   * `KVM_GET_DEVICE_ATTR`: only EQ_CONFIG.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_get_attr().
   */
  getAttr(group: number, attr: bigint, addr: number, mem: UserMemory): number {
    if (group === KVM_DEV_XIVE_GRP_EQ_CONFIG) return this.getQueueConfig(attr, addr, mem);
    return -ENXIO;
  }

  /**
   * `KVM_HAS_DEVICE_ATTR`.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_has_attr().
   */
  hasAttr(group: number, attr: bigint): number {
    switch (group) {
      case KVM_DEV_XIVE_GRP_CTRL:
        if (
          attr === BigInt(KVM_DEV_XIVE_RESET) ||
          attr === BigInt(KVM_DEV_XIVE_EQ_SYNC) ||
          attr === BigInt(KVM_DEV_XIVE_NR_SERVERS)
        ) {
          return 0;
        }
        break;
      case KVM_DEV_XIVE_GRP_SOURCE:
      case KVM_DEV_XIVE_GRP_SOURCE_CONFIG:
      case KVM_DEV_XIVE_GRP_SOURCE_SYNC:
        if (attr >= BigInt(KVMPPC_XIVE_FIRST_IRQ) && attr < BigInt(KVMPPC_XIVE_NR_IRQS)) return 0;
        break;
      case KVM_DEV_XIVE_GRP_EQ_CONFIG:
        return 0;
    }
    return -ENXIO;
  }

  /**
   * GRP_SOURCE: create (or re-init) a source and mask it (IPI PQ 01, EAS masked).
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_set_source().
   */
  setSource(attr: bigint, addr: number, mem: UserMemory): number {
    // `irq` is a long: a u64 attribute above 2^63 is negative (one in range is itself: no
    // conversion, which would allocate a bigint per source).
    const irqL = attr >= FIRST_IRQ && attr < NR_IRQS ? attr : BigInt.asIntN(64, attr);
    if (irqL < FIRST_IRQ || irqL >= NR_IRQS) return -E2BIG;
    const irq = Number(irqL);
    // The block is created before the user read: a later -EFAULT leaves it behind.
    const sb = this.findSource(irq) ?? this.createSrcBlock(irq);
    const state = sb.state(irq & KVMPPC_XICS_SRC_MASK);
    const val = this.readU64Low(mem, addr);
    if (val < 0) return val;
    if (!this.lock(sb)) return -EDEADLK;
    try {
      // One view of `ipi_data` for the whole call (each read of the getter makes one).
      const xd = state.ipiData;
      if (!state.ipiNumber) {
        state.ipiNumber = this.host.allocIrq();
        if (state.ipiNumber === 0) return -ENXIO;
        this.host.populateIrqData(state.ipiNumber, xd);
      }
      if (val & LEVEL_SENSITIVE) {
        state.lsi = true;
        if (val & LEVEL_ASSERTED) state.asserted = true;
      }
      state.actServer = 0;
      state.actPriority = MASKED;
      this.host.esbRead(xd, XIVE_ESB_SET_PQ_01);
      this.host.configureIrq(state.ipiNumber, 0, MASKED, 0);
      if (!state.valid) this.srcCount++;
      state.valid = true;
      if (this.trace.mask & TRACE_KVM)
        this.emit('kvm.xive.source', { irq, ipiNumber: state.ipiNumber, pq: val & 3 });
      return 0;
    } finally {
      this.unlock(sb);
    }
  }

  /**
   * GRP_SOURCE_CONFIG.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_set_source_config() and
   * kvmppc_xive_native_update_source_config().
   */
  setSourceConfig(attr: bigint, addr: number, mem: UserMemory): number {
    const irq = Number(attr & 0xffff_ffffn);
    const sb = this.findSource(irq);
    if (!sb) return -ENOENT;
    const state = sb.state(irq & KVMPPC_XICS_SRC_MASK);
    if (!state.valid) return -EINVAL;
    const cfg = this.readU64(mem, addr);
    if (typeof cfg === 'number') return cfg;
    const priority = Number(cfg & KVM_XIVE_SOURCE_PRIORITY_MASK);
    const server = Number((cfg & KVM_XIVE_SOURCE_SERVER_MASK) >> KVM_XIVE_SOURCE_SERVER_SHIFT);
    const masked = (cfg & KVM_XIVE_SOURCE_MASKED_MASK) !== 0n;
    const eisn = Number((cfg & KVM_XIVE_SOURCE_EISN_MASK) >> KVM_XIVE_SOURCE_EISN_SHIFT);
    if (priority !== xivePrioFromGuest(priority)) return -EINVAL;
    return this.updateSourceConfig(sb, state, priority, server, masked, eisn);
  }

  private updateSourceConfig(
    sb: XiveSrcBlock,
    state: XiveIrqState,
    priority: number,
    server: number,
    masked: boolean,
    eisn: number,
  ): number {
    if (!this.lock(sb)) return -EDEADLK;
    try {
      // No-op when unchanged, whatever the mask flag says (kvmppc_xive_native_update_source_config()).
      if (state.actServer === server && state.actPriority === priority && state.eisn === eisn) return 0;
      const hw = this.selectHw(state);
      if (priority !== MASKED && !masked) {
        const target = this.selectTarget(server, priority);
        if (target < 0) return target;
        state.actPriority = priority;
        state.actServer = target;
        state.eisn = eisn;
        this.emit('kvm.xive.source_config', { irq: state.number, target, priority, eisn });
        return this.host.configureIrq(hw, this.vp(target), priority, eisn);
      }
      state.actPriority = MASKED;
      state.actServer = 0;
      state.eisn = 0;
      return this.host.configureIrq(hw, 0, MASKED, 0);
    } finally {
      this.unlock(sb);
    }
  }

  /**
   * GRP_SOURCE_SYNC: sync the selected HW irq's source (not its queue).
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_sync_source().
   */
  syncSource(attr: bigint): number {
    const irq = Number(attr & 0xffff_ffffn);
    const sb = this.findSource(irq);
    if (!sb) return -ENOENT;
    const state = sb.state(irq & KVMPPC_XICS_SRC_MASK);
    if (!this.lock(sb)) return -EDEADLK;
    let rc = -EINVAL;
    if (state.valid) {
      this.host.syncSource(this.selectHw(state));
      rc = 0;
    }
    this.unlock(sb);
    return rc;
  }

  /**
   * GRP_EQ_CONFIG set.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_set_queue_config().
   */
  setQueueConfig(attr: bigint, addr: number, mem: UserMemory): number {
    const priority = Number(attr & KVM_XIVE_EQ_PRIORITY_MASK);
    const server = Number((attr & KVM_XIVE_EQ_SERVER_MASK) >> KVM_XIVE_EQ_SERVER_SHIFT);
    const bytes = mem.copyFromUser(addr, KVM_PPC_XIVE_EQ_SIZE);
    if (typeof bytes === 'number') return -EFAULT;
    const eq = decodeKvmPpcXiveEq(bytes);
    const v = this.findServer(server);
    if (!v) return -ENOENT;
    const xc = v.xiveVcpu!;
    if (priority !== xivePrioFromGuest(priority)) return -EINVAL;
    const q = xc.queues[priority]!;
    // Reset: flags are not checked (fix of 20-May-2019, vCPU hot-unplug).
    if (eq.qshift === 0) {
      q.guestQaddr = 0;
      q.guestQshift = 0;
      const rc = this.host.configureQueue(xc.vpId, priority, 0, 0, true, this.qinfo);
      if (rc) return rc;
      this.releaseQueuePage(q);
      return 0;
    }
    if (eq.flags !== KVM_XIVE_EQ_ALWAYS_NOTIFY) return -EINVAL;
    // xive_native_validate_queue_size(): only 0 and 16 (12, 21 and 24 are listed but rejected).
    if (eq.qshift !== 16) return -EINVAL;
    const qsize = 2 ** eq.qshift;
    if (eq.qaddr % BigInt(qsize) !== 0n) return -EINVAL;
    const qaddr = Number(eq.qaddr);
    const page = this.guestMem.gfnToPage(qaddr);
    if (page < 0) return -EINVAL;
    if (qsize > this.guestMem.hostPageSize(qaddr)) {
      this.guestMem.putPage(page);
      return -EINVAL;
    }
    const hostQ = page + (qaddr % PAGE_SIZE);
    q.guestQaddr = qaddr;
    q.guestQshift = eq.qshift;
    const rc = this.host.configureQueue(xc.vpId, priority, hostQ, eq.qshift, true, this.qinfo);
    if (rc) {
      this.guestMem.putPage(page);
      return rc;
    }
    // Newer kernels release the previously pinned page on success.
    this.releaseQueuePage(q);
    q.qpage = hostQ;
    q.pinnedPage = page;
    q.msk = 2 ** (eq.qshift - 2) - 1;
    q.idx = 0;
    q.toggle = 0;
    q.escIrq = this.qinfo.escIrq;
    q.eoiPhys = this.qinfo.qeoiPage;
    // Restore the queue state only when it is not a fresh END (generation 1, index 0).
    if (eq.qtoggle !== 1 || eq.qindex !== 0) {
      if (this.host.chip.setQueueState(xc.vpId, priority, eq.qtoggle, eq.qindex) !== OPAL_SUCCESS) {
        this.cleanupQueue(xc, priority);
        return -EIO;
      }
    }
    const erc = this.attachEscalation(xc, priority);
    if (erc) {
      this.cleanupQueue(xc, priority);
      return erc;
    }
    this.emit('kvm.xive.eq_config', { server, priority, qaddr, qshift: eq.qshift });
    return 0;
  }

  private releaseQueuePage(q: XiveQ): void {
    if (q.pinnedPage) {
      this.guestMem.putPage(q.pinnedPage);
      q.pinnedPage = 0;
    }
    q.qpage = 0;
  }

  /** @remarks Models book3s_xive_native.c:kvmppc_xive_native_cleanup_queue(). */
  private cleanupQueue(xc: KvmppcXiveVcpu, prio: number): void {
    this.host.disableQueue(xc.vpId, prio);
    this.releaseQueuePage(xc.queues[prio]!);
  }

  /**
   * GRP_EQ_CONFIG get: an unconfigured queue returns 0 and writes nothing.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_get_queue_config().
   */
  getQueueConfig(attr: bigint, addr: number, mem: UserMemory): number {
    const priority = Number(attr & KVM_XIVE_EQ_PRIORITY_MASK);
    const server = Number((attr & KVM_XIVE_EQ_SERVER_MASK) >> KVM_XIVE_EQ_SERVER_SHIFT);
    const v = this.findServer(server);
    if (!v) return -ENOENT;
    const xc = v.xiveVcpu!;
    if (priority !== xivePrioFromGuest(priority)) return -EINVAL;
    const q = xc.queues[priority]!;
    if (!q.qpage) return 0;
    const chip = this.host.chip;
    if (chip.getQueueInfo(xc.vpId, priority, this.qinfo) !== OPAL_SUCCESS) return -EIO;
    if (chip.getQueueState(xc.vpId, priority, this.qstate) !== OPAL_SUCCESS) return -EIO;
    const bytes = encodeKvmPpcXiveEq({
      flags: this.qinfo.qflags & 0x2 ? KVM_XIVE_EQ_ALWAYS_NOTIFY : 0,
      qshift: q.guestQshift,
      qaddr: BigInt(q.guestQaddr),
      qtoggle: this.qstate.toggle,
      qindex: this.qstate.index,
    });
    return mem.copyToUser(addr, bytes) === 0 ? 0 : -EFAULT;
  }

  // -------------------------------------------------------------------------------------------
  // CTRL: RESET and EQ_SYNC
  // -------------------------------------------------------------------------------------------

  /**
   * CTRL / RESET: every connected vCPU's sources masked, escalations freed, queues cleaned;
   * every targeted source masked with PQ 01 (sources stay valid; already masked ones untouched).
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_reset().
   */
  reset(): number {
    for (const v of this.allVcpus()) {
      const xc = v.xiveVcpu;
      if (!xc) continue;
      this.disableVcpuInterrupts(xc);
      for (let prio = 0; prio < KVMPPC_XIVE_Q_COUNT; prio++) {
        if (prio === 7 && this.singleEscalation) break;
        this.freeEscalation(xc, prio);
        this.cleanupQueue(xc, prio);
      }
    }
    for (let i = 0; i <= this.maxSbid; i++) {
      const sb = this.srcBlocks[i];
      if (!sb || !this.lock(sb)) continue;
      for (const state of sb.states()) {
        if (!state.valid || state.actPriority === MASKED) continue;
        state.eisn = 0;
        state.actServer = 0;
        state.actPriority = MASKED;
        this.maskSourceHw(state);
      }
      this.unlock(sb);
    }
    this.emit('kvm.xive.reset', {});
    return 0;
  }

  /**
   * CTRL / EQ_SYNC: sync source and queue of every targeted source, then dirty one gfn per
   * configured queue.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_eq_sync().
   */
  eqSync(): number {
    for (let i = 0; i <= this.maxSbid; i++) {
      const sb = this.srcBlocks[i];
      if (!sb || !this.lock(sb)) continue;
      for (const state of sb.states()) {
        if (!state.valid || state.actPriority === MASKED) continue;
        const hw = this.selectHw(state);
        this.host.syncSource(hw);
        this.host.syncQueue(hw);
      }
      this.unlock(sb);
    }
    for (const v of this.allVcpus()) {
      const xc = v.xiveVcpu;
      if (!xc) continue;
      for (const q of xc.queues) if (q.qpage) this.guestMem.markPageDirty(q.guestQaddr);
    }
    return 0;
  }

  // -------------------------------------------------------------------------------------------
  // vCPU connect, VP state, push/pull, cleanup
  // -------------------------------------------------------------------------------------------

  /**
   * `KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE)`, args {fd, server}: the syscall layer resolves the fd
   * (−EBADF) and checks it is a XIVE device (−EPERM). Then: other VM → −EPERM; vCPU already
   * connected → −EBUSY; packed id ≥ nr_servers → −EINVAL; VP block allocation → −ENOSPC; VP in
   * use → −EEXIST; OPAL enable → −EIO.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_connect_vcpu() and
   * book3s_xive.c:kvmppc_xive_compute_vp_id().
   */
  connectVcpu(vcpu: XiveVcpuArch, server: number): number {
    if (this.released || vcpu.kvm !== this.kvm) return -EPERM;
    if (vcpu.irqType !== KVMPPC_IRQ_DEFAULT) return -EBUSY;
    const s = server >>> 0;
    if (this.packVcpuId(s) >= this.nrServers) return -EINVAL;
    if (this.vpBase === XIVE_INVALID_VP) {
      const base = this.host.allocVpBlock(this.nrServers);
      if (base < 0) return -ENOSPC;
      this.vpBase = base;
    }
    const vpId = this.vp(s);
    for (const o of this.allVcpus()) if (o.xiveVcpu && o.xiveVcpu.vpId === vpId) return -EEXIST;
    const xc = new KvmppcXiveVcpu(vcpu, s, vpId);
    vcpu.xiveVcpu = xc;
    xc.valid = true;
    vcpu.irqType = KVMPPC_IRQ_XIVE;
    const cam = this.host.chip.getVpCam(vpId);
    let rc = cam < 0 ? -EIO : this.host.enableVp(vpId, this.singleEscalation);
    if (rc === 0) {
      xc.vpCam = cam;
      // CPPR 0 (nothing delivered until the guest opens it), ACK_CNT 0xFF.
      xc.savedW01[0] = 0x0000_0000;
      xc.savedW01[1] = 0xff00_0000;
      xc.camWord = (cam | TM_QW1W2_VO) >>> 0;
      if (!this.connected.includes(vcpu)) this.connected.push(vcpu);
      this.emit('kvm.xive.connect', { server: s, vpId, cam });
    } else {
      this.cleanupVcpu(vcpu);
      rc = rc || -EIO;
    }
    return rc;
  }

  /**
   * Tear down a vCPU's XIVE context.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_cleanup_vcpu().
   */
  cleanupVcpu(vcpu: XiveVcpuArch): void {
    if (vcpu.irqType !== KVMPPC_IRQ_XIVE) return;
    const xc = vcpu.xiveVcpu;
    if (!xc) return;
    xc.valid = false;
    this.disableVcpuInterrupts(xc);
    for (let i = 0; i < KVMPPC_XIVE_Q_COUNT; i++) this.freeEscalation(xc, i);
    this.host.disableVp(xc.vpId);
    xc.camWord = 0;
    for (let i = 0; i < KVMPPC_XIVE_Q_COUNT; i++) this.cleanupQueue(xc, i);
    vcpu.xiveVcpu = null;
    vcpu.irqType = KVMPPC_IRQ_DEFAULT;
    const k = this.connected.indexOf(vcpu);
    if (k >= 0) this.connected.splice(k, 1);
  }

  /**
   * `KVM_GET_ONE_REG(KVM_REG_PPC_VP_STATE)`: word 0 of the u128 into `out` (hi = TIMA QW1 word0,
   * lo = word1, as the raw big-endian doubleword), with the NVT IPB backup OR-ed in.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_get_vp().
   */
  getVp(vcpu: XiveVcpuArch, out: Word64): number {
    if (vcpu.irqType !== KVMPPC_IRQ_XIVE) return -EPERM;
    const xc = vcpu.xiveVcpu;
    if (!xc) return -ENOENT;
    if (this.host.chip.getVpState(xc.vpId, this.word) !== OPAL_SUCCESS) return -EIO;
    out.set((xc.savedW01[0]! | (this.word.hi & 0x0000_ff00)) >>> 0, xc.savedW01[1]!);
    return 0;
  }

  /**
   * `KVM_SET_ONE_REG(KVM_REG_PPC_VP_STATE)`.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_set_vp().
   */
  setVp(vcpu: XiveVcpuArch, hi: number, lo: number): number {
    if (vcpu.irqType !== KVMPPC_IRQ_XIVE) return -EPERM;
    const xc = vcpu.xiveVcpu;
    if (!xc || this.released) return -ENOENT;
    if (xc.pushed) return -EBUSY;
    xc.savedW01[0] = hi >>> 0;
    xc.savedW01[1] = lo >>> 0;
    return 0;
  }

  // -------------------------------------------------------------------------------------------
  // Release
  // -------------------------------------------------------------------------------------------

  /**
   * Last close of the device fd (no mapping can exist then): forget the mapping, clean up every
   * vCPU, `kvm->arch.xive = NULL` (later set/clr_mapped → −ENODEV), free the sources (IPIs
   * masked and freed; a passthrough irq masked but its host data kept) and the VP block. The
   * struct is kept for reuse.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_release().
   */
  release(): void {
    this.mapping = null;
    for (const v of this.allVcpus().slice()) this.cleanupVcpu(v);
    if (this.arch.xive === this) this.arch.xive = null;
    for (let i = 0; i <= this.maxSbid; i++) {
      const sb = this.srcBlocks[i];
      if (!sb) continue;
      for (const state of sb.states()) {
        if (!state.valid) continue;
        this.host.esbRead(state.ipiData, XIVE_ESB_SET_PQ_01);
        this.host.configureIrq(state.ipiNumber, 0, MASKED, 0);
        this.host.freeHwIrq(state.ipiNumber);
        if (state.ptNumber && state.ptData) {
          this.host.esbRead(state.ptData, XIVE_ESB_SET_PQ_01);
          this.host.configureIrq(state.ptNumber, 0, MASKED, 0);
        }
        state.valid = false;
      }
      this.srcBlocks[i] = null;
    }
    if (this.vpBase !== XIVE_INVALID_VP) this.host.freeVpBlock(this.vpBase);
    this.vpBase = XIVE_INVALID_VP;
    this.released = true;
    this.emit('kvm.xive.release', {});
  }

  // -------------------------------------------------------------------------------------------
  // mmap and faults
  // -------------------------------------------------------------------------------------------

  /**
   * The mmap parameter check: TIMA at page offset 0 with ≤ 4 pages, ESB at page offset 4 with
   * ≤ 2^21 pages, else −EINVAL. Returns 0 for TIMA, 1 for ESB, or −EINVAL.
   *
   * @remarks Models the checks of book3s_xive_native.c:kvmppc_xive_native_mmap().
   */
  mmapCheck(pgoff: number, npages: number): number {
    if (pgoff === KVM_XIVE_TIMA_PAGE_OFFSET) return npages > 4 ? -EINVAL : 0;
    if (pgoff === KVM_XIVE_ESB_PAGE_OFFSET) return npages > KVMPPC_XIVE_NR_IRQS * 2 ? -EINVAL : 1;
    return -EINVAL;
  }

  /**
   * `f_op.mmap` of the device file: check, install the TIMA or ESB vm_ops, VM_IO | VM_PFNMAP,
   * and record the file's address_space in `xive->mapping` (unlocked, as mainline).
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_mmap().
   */
  mmap(file: File, vma: Vma): number {
    const k = this.mmapCheck(vma.pgoff, vma.pages);
    if (k < 0) return k;
    vma.ops = k === 0 ? this.timaVmOps : this.esbVmOps;
    vma.flags |= VM_IO | VM_PFNMAP;
    this.mapping = this.recordMapping(file, vma, k === 1, this.mapping);
    return 0;
  }

  /** mm's `vm_ops->fault` → the handlers, inserting the pfn themselves (VM_FAULT_NOPAGE). */
  private vmFault(vmf: VmFault, esb: boolean): number {
    if (esb) return this.drive(this.esbFaultSteps(vmf.vma.pgoff, vmf.pgoff, vmf), VM_FAULT_SIGBUS);
    const r = this.timaFault(vmf.vma.pgoff, vmf.pgoff);
    if (r < 0) return VM_FAULT_SIGBUS;
    vmfInsertPfn(vmf.vma, vmf.address, r);
    return VM_FAULT_NOPAGE;
  }

  /**
   * TIMA fault: only the OS page (relative page 2) maps, to the physical TIMA OS page; 0, 1
   * (HW, HV), 3 (USER) and beyond → SIGBUS. Returns the pfn or −VM_FAULT_SIGBUS.
   *
   * @remarks Models book3s_xive_native.c:xive_native_tima_fault().
   */
  timaFault(vmaPgoff: number, pgoff: number): number {
    this.stats.timaFaults++;
    const off = this.flags.faultUsesVmaRelativePgoff ? pgoff - vmaPgoff : pgoff - KVM_XIVE_TIMA_PAGE_OFFSET;
    if (off === XIVE_TM_OS_PAGE) return this.host.chip.timaPageAddr(XIVE_TM_OS_PAGE) * PAGE_SCALE;
    this.stats.sigbus++;
    return -VM_FAULT_SIGBUS;
  }

  /**
   * ESB fault: irq = page_offset / 2; even page → trigger page, odd → EOI page of the HW irq
   * currently backing the guest irq. No block, invalid source (Nov-2020 fix) or no such page →
   * SIGBUS. Returns the pfn (not inserted: the caller's `vmf` is absent), −VM_FAULT_SIGBUS, or
   * {@link XIVE_FAULT_HANG}.
   *
   * @remarks Models book3s_xive_native.c:xive_native_esb_fault().
   */
  esbFault(vmaPgoff: number, pgoff: number): number {
    return this.drive(this.esbFaultSteps(vmaPgoff, pgoff, null), XIVE_FAULT_HANG);
  }

  /**
   * The ESB fault as atomic steps: the source look-up and `kvmppc_xive_select_irq` (before the
   * lock with {@link XiveNativeFlags.faultSelectsOutsideLock}); the page read under `sb->lock`
   * (blocked while another path holds it); `vmf_insert_pfn` after the unlock, when `vmf` is
   * given. With {@link XiveNativeFlags.esbMemoryLock}, `memory_lock` is held for read from
   * before the selection to after the insertion. Returns the pfn or −VM_FAULT_SIGBUS; with a
   * `vmf` (the `vm_ops.fault` itself, in this generator rather than a wrapper delegating to it: a
   * level of generators costs each fault a generator object and a resume, and each step the
   * explorer is handed a resume), VM_FAULT_NOPAGE (inserted) or VM_FAULT_SIGBUS.
   */
  *esbFaultSteps(vmaPgoff: number, pgoff: number, vmf: VmFault | null): Generator<AtomicStep, number, void> {
    const ml = this.flags.esbMemoryLock;
    if (ml) yield* this.memoryLockDownSteps(false);
    // The look-up, selection and locked page read, in this generator rather than one it
    // delegates to (see above: a level costs every fault).
    const pageOffset = this.flags.faultUsesVmaRelativePgoff
      ? pgoff - vmaPgoff
      : pgoff - KVM_XIVE_ESB_PAGE_OFFSET;
    const irq = Math.floor(pageOffset / 2);
    const odd = pageOffset % 2 === 1;
    const outside = this.flags.faultSelectsOutsideLock;
    const sel = EsbFaultStep.of(ESB_SELECT, irq, null, outside, odd);
    if (mustYield(sel)) yield sel;
    const sb = this.esbFaultSource(sel, pageOffset, irq);
    let pfn = -VM_FAULT_SIGBUS;
    if (sb !== null) {
      // The source's entry read in place, not through views (see XiveSrcBlock.ipiPage). The
      // selection outside the lock: the passthrough irq's data, or null for ipi_data.
      const i = irq & KVMPPC_XICS_SRC_MASK;
      const xd = outside ? sb.selectedPtData(i) : undefined;
      if (outside) sel.explain(selectedEffect, sb.ptNumber(i));
      const rd = EsbFaultStep.of(ESB_READ, irq, sb, outside, odd);
      if (mustYield(rd)) yield rd;
      pfn = this.esbFaultRead(rd, sb, i, xd, irq, odd);
    }
    if (pfn >= 0 && vmf !== null) {
      const ins = EsbFaultStep.of(ESB_INSERT, pgoff, null, false, false);
      if (mustYield(ins)) yield ins;
      vmfInsertPfn(vmf.vma, vmf.address, pfn);
      ins.explain(ptePfnEffect, pfn);
    }
    if (ml) yield* this.memoryLockUpSteps(false);
    if (vmf === null) return pfn;
    return pfn < 0 ? VM_FAULT_SIGBUS : VM_FAULT_NOPAGE;
  }

  /** The ESB fault's look-up (step `sel`): the source block of a valid source, or null (SIGBUS). */
  private esbFaultSource(sel: AtomicStep, pageOffset: number, irq: number): XiveSrcBlock | null {
    this.stats.esbFaults++;
    const sb = pageOffset < 0 ? null : this.findSource(irq);
    if (sb?.valid(irq & KVMPPC_XICS_SRC_MASK)) return sb;
    sel.effect = sb === null ? 'no source block: SIGBUS' : 'source not valid: SIGBUS';
    this.stats.sigbus++;
    return null;
  }

  /**
   * The ESB fault's page read under `sb->lock` (step `rd`) for source `i` of `sb`, from the data
   * selected outside the lock (`selected`: the passthrough irq's, or null for `ipi_data`), or
   * selecting it now (undefined): the pfn or −VM_FAULT_SIGBUS.
   */
  private esbFaultRead(
    rd: AtomicStep,
    sb: XiveSrcBlock,
    i: number,
    selected: XiveIrqData | null | undefined,
    irq: number,
    odd: boolean,
  ): number {
    sb.lockHeld = true;
    const xd = selected === undefined ? sb.selectedPtData(i) : selected;
    const page = xd === null ? sb.ipiPage(i, odd) : odd ? xd.eoiPage : xd.trigPage;
    sb.lockHeld = false;
    rd.explain(pfnEffect, page * PAGE_SCALE);
    if (page === 0) {
      this.trace.guestError(`kvm-xive: ESB page ${odd ? 'EOI' : 'trigger'} of irq ${irq} is 0 (WARN)`);
      this.stats.sigbus++;
      return -VM_FAULT_SIGBUS;
    }
    if (this.trace.mask & TRACE_KVM)
      this.emit('kvm.xive.esb_fault', { irq, odd: +odd, pfn: page * PAGE_SCALE });
    return page * PAGE_SCALE;
  }

  /**
   * Zap the guest ESB PTEs of `irq`: file pages 4+2·irq and 5+2·irq (2·irq, 2·irq+1 with
   * {@link XiveNativeFlags.zapOmitsEsbOffset}) in every mapping of the device file. Nothing
   * before the first mmap. −EINVAL for irq ≥ 2^20.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_reset_mapped().
   */
  protected override esbPages(irq: number): number[] {
    const base = (this.flags.zapOmitsEsbOffset ? 0 : KVM_XIVE_ESB_PAGE_OFFSET) + 2 * irq;
    return [base, base + 1];
  }

  /**
   * {@link resetMapped} as steps when the recorded mapping zaps step by step (the file's
   * address_space: `i_mmap_lock_read`, a PTE-lock section per VMA). `xive->mapping_lock` is
   * folded into them: every caller holds `kvm->lock`, which release takes too.
   */
  protected override mappingZap(irq: number): Generator<AtomicStep, void, void> | null {
    const m = this.mapping;
    if (irq >= KVMPPC_XIVE_NR_IRQS || m?.unmapMappingRangeSteps === undefined) return null;
    const base = (this.flags.zapOmitsEsbOffset ? 0 : KVM_XIVE_ESB_PAGE_OFFSET) + 2 * irq;
    this.stats.zaps++;
    this.emit('kvm.xive.zap', { irq, pgoff: base, npages: 2 });
    return m.unmapMappingRangeSteps(base, 2, `reset_mapped(girq ${irq}): `);
  }

  resetMapped(irq: number): number {
    if (irq >= KVMPPC_XIVE_NR_IRQS) return -EINVAL;
    if (this.mapping) {
      const base = this.flags.zapOmitsEsbOffset ? 0 : KVM_XIVE_ESB_PAGE_OFFSET;
      this.stats.zaps++;
      this.emit('kvm.xive.zap', { irq, pgoff: base + 2 * irq, npages: 2 });
      this.mapping.unmapMappingRange(base + 2 * irq, 2);
    }
    return 0;
  }
}
