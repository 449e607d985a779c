/**
 * The KVM XIVE native device (`KVM_DEV_TYPE_XIVE`, kernel.md §1–§9, §15): per-VM guest sources
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
 * - irq bypass (VFIO) → `kvmppcXiveSetMapped` / `kvmppcXiveClrMapped`.
 *
 * Latent bugs of the merged code are reproduced behind {@link XiveNativeFlags}; the defaults are
 * mainline's behaviour.
 */

import { Word64 } from '../../hw/mmio.ts';
import { TRACE_KVM, type TraceSink } from '../../hw/trace-sink.ts';
import { OPAL_SUCCESS, XiveQueueInfo, XiveQueueState } from '../../hw/xive/p9-chip.ts';
import {
  TM_QW1_OS,
  TM_QW1W2_VO,
  TM_SPC_PULL_OS_CTX,
  TM_WORD2,
  XIVE_ESB_SET_PQ_00,
  XIVE_ESB_SET_PQ_01,
  XIVE_ESB_SET_PQ_10,
  XIVE_ESB_SET_PQ_11,
  XIVE_ESB_VAL_P,
  XIVE_ESB_VAL_Q,
  XIVE_TM_HV_PAGE,
  XIVE_TM_OS_PAGE,
} from '../../hw/xive/regs.ts';
import {
  E2BIG,
  EBUSY,
  EDEADLK,
  EEXIST,
  EFAULT,
  EINVAL,
  EIO,
  ENODEV,
  ENOENT,
  ENOSPC,
  ENXIO,
  EPERM,
} from '../errno.ts';
import { PAGE_SIZE, VM_FAULT_NOPAGE, VM_FAULT_SIGBUS, VM_IO, VM_PFNMAP } from '../mm/constants.ts';
import { vmfInsertPfn } from '../mm/fault.ts';
import type { File, FileMapping } from '../mm/file.ts';
import type { Vma, VmFault, VmOperations } from '../mm/vma.ts';
import { unmapMappingRange } from '../mm/zap.ts';
import { type HostXive, XIVE_IRQ_FLAG_NO_EOI, XiveIrqData } from './host-xive.ts';
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
  KVM_MAX_VCPU_IDS,
  KVM_MAX_VCPUS,
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
  KVMPPC_XICS_ICS_SHIFT,
  KVMPPC_XICS_IRQ_PER_ICS,
  KVMPPC_XICS_MAX_ICS_ID,
  KVMPPC_XICS_SRC_MASK,
  KVMPPC_XIVE_FIRST_IRQ,
  KVMPPC_XIVE_NR_IRQS,
  KVMPPC_XIVE_Q_COUNT,
  MASKED,
  MAX_SMT_THREADS,
  XIVE_INVALID_VP,
} from './xive-native-uapi.ts';

// ---------------------------------------------------------------------------------------------
// Interfaces the surrounding layers provide
// ---------------------------------------------------------------------------------------------

/**
 * The calling process's memory, as `get_user` / `copy_from_user` / `copy_to_user` see it.
 * Multi-byte values are big-endian (the model's user memory byte order).
 */
export interface UserMemory {
  /** `len` bytes at user address `addr`, or −EFAULT. */
  copyFromUser(addr: number, len: number): Uint8Array | number;
  /** 0 or −EFAULT (nothing is written on failure). */
  copyToUser(addr: number, bytes: Uint8Array): number;
}

/**
 * What the device needs from the memory manager: the device file's `address_space` zap.
 * `unmapMappingRange(pgoff, npages)` = `unmap_mapping_range(mapping, pgoff << PAGE_SHIFT,
 * npages << PAGE_SHIFT, even_cows = 1)`: remove every PTE, in every VMA of every process, that
 * maps file pages `[pgoff, pgoff + npages)`. {@link fileMappingZapper} adapts mm's
 * {@link FileMapping}.
 */
export interface XiveMapping {
  unmapMappingRange(pgoff: number, npages: number): void;
}

/**
 * The kernel seam of the passthrough-page designs (`src/designs/`): what the device records in
 * `xive->mapping` when its file is mmap'd, given the file, the new VMA, whether it maps the ESB
 * range, and what was recorded before. The record's `unmapMappingRange` is then how an irq's ESB
 * pages are re-pointed on bind/unbind. Mainline is {@link recordFileMapping}.
 */
export type XiveRecordMapping = (
  file: File,
  vma: Vma,
  esb: boolean,
  current: XiveMapping | null,
) => XiveMapping | null;

/**
 * Mainline: record the file's address_space at every mmap (TIMA or ESB), so a zap reaches every
 * VMA of every process mapping the file.
 *
 * @remarks Models the `xive->mapping = vma->vm_file->f_mapping` line of
 * book3s_xive_native.c:kvmppc_xive_native_mmap().
 */
export const recordFileMapping: XiveRecordMapping = (file) => fileMappingZapper(file.mapping);

/** The {@link XiveMapping} of an mm {@link FileMapping} (the device file's `f_mapping`). */
export function fileMappingZapper(fm: FileMapping): XiveMapping {
  return {
    unmapMappingRange(pgoff: number, npages: number): void {
      unmapMappingRange(fm, pgoff * PAGE_SIZE, npages * PAGE_SIZE, true);
    },
  };
}

/** Guest memory services of the VM (memslots), for the EQ pages. Addresses are numbers. */
export interface KvmGuestMemory {
  /**
   * `gfn_to_page`: host physical address of the host page backing guest physical `gpa`
   * (rounded down to the page), taking a reference; −1 if no memslot / not RAM.
   */
  gfnToPage(gpa: number): number;
  /** `put_page` of a page from {@link gfnToPage}. */
  putPage(hpa: number): void;
  /** `kvm_host_page_size`: size of the host page backing `gpa` (0 if none). */
  hostPageSize(gpa: number): number;
  /** `mark_page_dirty` of the page holding `gpa`. */
  markPageDirty(gpa: number): void;
}

/**
 * The XIVE part of `struct kvm_vcpu_arch` the device reads and writes. The VM layer owns the
 * object; `kvm` identifies the VM (connect fails with −EPERM across VMs).
 */
export interface XiveVcpuArch {
  readonly kvm: unknown;
  /** `vcpu->arch.irq_type` (KVMPPC_IRQ_*). */
  irqType: number;
  /** `vcpu->arch.xive_vcpu`. */
  xiveVcpu: KvmppcXiveVcpu | null;
  /** `vcpu->arch.ceded`: the vCPU is sleeping in H_CEDE. */
  ceded: boolean;
  /** `vcpu->arch.irq_pending`: set by the escalation handler. */
  irqPending: boolean;
}

/** `struct kvm_arch` fields the device creation uses. */
export interface KvmArchXive {
  /** `kvm->arch.xive`: the VM's interrupt device (XICS-on-XIVE or native), or null. */
  xive: unknown;
  /** `kvm->arch.xive_devices.native`: the kept struct, reused on re-creation. */
  xiveNative: KvmXiveNative | null;
}

/**
 * Latent bugs of the merged code, each reproducible; `false` gives a fixed variant. Mainline
 * values are in {@link XIVE_NATIVE_MAINLINE}.
 */
export interface XiveNativeFlags {
  /**
   * thread.md §6 / S10 [inferred]: the ESB (and TIMA) fault handler computes
   * `page_offset = vmf->pgoff − vma->vm_pgoff`, relative to the VMA, not to
   * `KVM_XIVE_ESB_PAGE_OFFSET`. After userspace splits an ESB VMA, faults in the tail resolve
   * the wrong irq while zaps still hit the right file pages. Mainline: true.
   */
  faultUsesVmaRelativePgoff: boolean;
  /**
   * thread.md §5 (fixed 28-May-2019, "fix page offset when clearing ESB pages") / S3: the zap
   * omits the ESB base (`2·irq` instead of `4 + 2·irq`), hitting TIMA pages for irq 0–1 and irq
   * n−2's ESB pages otherwise. Mainline (≥ 5.2 final): false.
   */
  zapOmitsEsbOffset: boolean;
  /**
   * thread.md §6 / S12 [inferred]: `set_mapped` zaps the guest ESB PTEs *before* publishing
   * `pt_number`/`pt_data`. With `false` it publishes first, then zaps. Mainline: true. (The
   * fault's own window is {@link faultSelectsOutsideLock}.)
   */
  bindZapsBeforePublish: boolean;
  /**
   * thread.md §6 [inferred]: the ESB fault handler runs `kvmppc_xive_select_irq()` before taking
   * `sb->lock`, so a bind can publish and zap between the selection and the insertion, leaving
   * the IPI page mapped. With `false` selection, page read and insertion happen under the lock.
   * Mainline: true.
   */
  faultSelectsOutsideLock: boolean;
  /**
   * kernel.md §9.3 / §15.15 [inference]: set/clr_mapped use the XICS-mode `guest_priority` /
   * `old_p` logic that native code never maintains: `xive_lock_and_mask` is a no-op returning
   * MASKED, set_mapped never EOIs the passthrough irq and clr_mapped always leaves the IPI at
   * PQ 10. With `false`: the priority is `act_priority` and the guest-visible PQ of the old
   * backing irq is carried over to the new one (00 → source EOI, else the same PQ). Mainline: true.
   */
  nativeSetMappedUsesXicsPq: boolean;
  /**
   * kernel.md §9.3 [inference]: set/clr_mapped program the EAS with `state->number` (the guest
   * LISN, XICS convention) as EISN instead of `state->eisn`. Mainline: true.
   */
  setMappedEisnIsStateNumber: boolean;
  /**
   * kernel.md §9.2 step 4 [inference]: when `irq_set_vcpu_affinity(host_irq, NULL)` fails,
   * clr_mapped returns with the source block's spinlock still held; every later user of that
   * block hangs (the model returns −EDEADLK / {@link XIVE_FAULT_HANG} and counts a hang).
   * With `false` the lock is released. Mainline: true.
   */
  clrMappedErrorKeepsLock: boolean;
}

/** Mainline (Linux ≥ 5.2 final) behaviour. */
export const XIVE_NATIVE_MAINLINE: Readonly<XiveNativeFlags> = Object.freeze({
  faultUsesVmaRelativePgoff: true,
  zapOmitsEsbOffset: false,
  bindZapsBeforePublish: true,
  faultSelectsOutsideLock: true,
  nativeSetMappedUsesXicsPq: true,
  setMappedEisnIsStateNumber: true,
  clrMappedErrorKeepsLock: true,
});

/** Fault handler result when the real kernel would spin forever on a held block lock. */
export const XIVE_FAULT_HANG = -0x1_0000;

/** `XIVE_Q_GAP`: queue slots kept free for safety. */
export const XIVE_Q_GAP = 2;

/** Step names yielded by the generator forms (interleaving explorers). */
export type XiveStep = 'affinity' | 'masked' | 'zapped' | 'published' | 'routed' | 'selected' | 'lock-wait';

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/**
 * One guest source.
 *
 * @remarks Models book3s_xive.h:struct kvmppc_xive_irq_state.
 */
export class XiveIrqState {
  readonly number: number;
  valid = false;
  /** Backing HW IPI (0 = none yet) and its data. */
  ipiNumber = 0;
  readonly ipiData: XiveIrqData;
  /** Passthrough HW irq (0 = none) and the host's data for it. */
  ptNumber = 0;
  ptData: XiveIrqData | null = null;
  /** XICS-mode fields; native code never writes guest_priority (kernel.md §9.3). */
  guestPriority = MASKED;
  savedPriority = MASKED;
  actServer = 0;
  actPriority = MASKED;
  inEoi = false;
  oldP = false;
  oldQ = false;
  lsi = false;
  asserted = false;
  eisn = 0;
  constructor(number: number) {
    this.number = number;
    this.ipiData = new XiveIrqData();
  }
}

/** @remarks Models book3s_xive.h:struct kvmppc_xive_src_block. */
export class XiveSrcBlock {
  readonly id: number;
  /** `sb->lock` (an arch spinlock). */
  lockHeld = false;
  readonly irqState: XiveIrqState[];
  constructor(id: number) {
    this.id = id;
    this.irqState = [];
    for (let i = 0; i < KVMPPC_XICS_IRQ_PER_ICS; i++) {
      this.irqState.push(new XiveIrqState((id << KVMPPC_XICS_ICS_SHIFT) | i));
    }
  }
}

/** @remarks Models asm/xive.h:struct xive_q (KVM's view of one vCPU queue). */
export class XiveQ {
  /** Host physical address of the queue (pinned guest page + offset); 0 = not configured. */
  qpage = 0;
  /** The pinned page (for put_page), 0 = none. */
  pinnedPage = 0;
  msk = 0;
  idx = 0;
  toggle = 0;
  count = 0;
  guestQaddr = 0;
  guestQshift = 0;
  escIrq = 0;
  eoiPhys = 0;
}

/**
 * @remarks Models book3s_xive.h:struct kvmppc_xive_vcpu plus the `vcpu->arch.xive_*` fields
 * (saved state, CAM word, pushed, escalation).
 */
export class KvmppcXiveVcpu {
  readonly vcpu: XiveVcpuArch;
  readonly serverNum: number;
  readonly vpId: number;
  vpCam = 0;
  valid = false;
  readonly queues: XiveQ[];
  /** `esc_virq[prio]` (host virqs), 0 = none. */
  readonly escVirq: Int32Array;
  /** `vcpu->arch.xive_saved_state.w01` as [word0, word1] (big-endian TIMA QW1 bytes 0–7). */
  readonly savedW01: Uint32Array;
  /** `vcpu->arch.xive_cam_word` (host order), 0 = none. */
  camWord = 0;
  /** `vcpu->arch.xive_pushed`, and the physical thread it was pushed on. */
  pushed = false;
  hostCpu = -1;
  /** `vcpu->arch.xive_esc_on`. */
  escOn = false;
  /** `vcpu->arch.xive_esc_vaddr`: the escalation irq data (its EOI page), or null. */
  escData: XiveIrqData | null = null;
  constructor(vcpu: XiveVcpuArch, serverNum: number, vpId: number) {
    this.vcpu = vcpu;
    this.serverNum = serverNum;
    this.vpId = vpId;
    this.queues = [];
    for (let i = 0; i < KVMPPC_XIVE_Q_COUNT; i++) this.queues.push(new XiveQ());
    this.escVirq = new Int32Array(KVMPPC_XIVE_Q_COUNT);
    this.savedW01 = new Uint32Array(2);
  }
}

/** Counters: counts of each path running. */
export interface KvmXiveNativeStats {
  timaFaults: number;
  esbFaults: number;
  sigbus: number;
  zaps: number;
  setMapped: number;
  clrMapped: number;
  escalations: number;
  hangs: number;
  pushes: number;
  pulls: number;
}

/** Options of {@link kvmppcXiveNativeCreate}. */
export interface KvmXiveNativeOptions {
  /** VM identity (compared with `vcpu.kvm` at connect). */
  kvm: unknown;
  /** `kvm->arch.lpid` (escalation irq names). */
  lpid: number;
  host: HostXive;
  guestMem: KvmGuestMemory;
  /** `kvmppc_fast_vcpu_kick` of a ceded vCPU woken by its escalation. */
  wake: (vcpu: XiveVcpuArch) => void;
  /**
   * `kvm_for_each_vcpu` order (creation order). Defaults to the order vCPUs connected; the VM
   * layer should pass its own list (select_target's fallback walks it).
   */
  vcpus?: () => readonly XiveVcpuArch[];
  flags?: Partial<XiveNativeFlags>;
  /** What mmap records for the zap (the designs' kernel seam); default {@link recordFileMapping}. */
  recordMapping?: XiveRecordMapping;
  /** `kvm->arch.emul_smt_mode` (vCPU id packing), default 1. */
  emulSmtMode?: number;
  trace: TraceSink;
}

/** `xive_prio_from_guest`: 0..5 and 0xFF map to themselves, anything else to 6. */
export function xivePrioFromGuest(p: number): number {
  return p === 0xff || p < 6 ? p : 6;
}

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

const PAGE_SCALE = 2 ** -16;

/**
 * The KVM XIVE native device of one VM.
 *
 * @remarks Models arch/powerpc/kvm/book3s_xive_native.c (+ the shared parts of book3s_xive.c).
 */
export class KvmXiveNative {
  readonly arch: KvmArchXive;
  kvm: unknown;
  lpid: number;
  host: HostXive;
  guestMem: KvmGuestMemory;
  wake: (vcpu: XiveVcpuArch) => void;
  flags: XiveNativeFlags;
  trace: TraceSink;
  emulSmtMode: number;
  nrServers: number;
  vpBase: number;
  singleEscalation: boolean;
  readonly srcBlocks: (XiveSrcBlock | null)[];
  maxSbid: number;
  srcCount: number;
  /** `xive->mapping`: the device file's address_space (null until the first mmap). */
  mapping: XiveMapping | null;
  /** The kernel seam in use (see {@link XiveRecordMapping}). */
  recordMapping: XiveRecordMapping;
  released: boolean;
  readonly stats: KvmXiveNativeStats;
  /** The TIMA vm_ops (`xive_native_tima_vmops`). */
  readonly timaVmOps: VmOperations;
  /** The ESB vm_ops (`xive_native_esb_vmops`). */
  readonly esbVmOps: VmOperations;
  private vcpusOf: (() => readonly XiveVcpuArch[]) | null;
  private readonly connected: XiveVcpuArch[];
  private readonly word: Word64;
  private readonly qinfo: XiveQueueInfo;
  private readonly qstate: XiveQueueState;

  constructor(arch: KvmArchXive, opts: KvmXiveNativeOptions) {
    this.arch = arch;
    this.kvm = opts.kvm;
    this.lpid = opts.lpid;
    this.host = opts.host;
    this.guestMem = opts.guestMem;
    this.wake = opts.wake;
    this.flags = { ...XIVE_NATIVE_MAINLINE, ...opts.flags };
    this.trace = opts.trace;
    this.emulSmtMode = opts.emulSmtMode ?? 1;
    this.nrServers = KVM_MAX_VCPUS;
    this.vpBase = XIVE_INVALID_VP;
    this.singleEscalation = true;
    this.srcBlocks = new Array<XiveSrcBlock | null>(KVMPPC_XICS_MAX_ICS_ID + 1).fill(null);
    this.maxSbid = 0;
    this.srcCount = 0;
    this.mapping = null;
    this.recordMapping = opts.recordMapping ?? recordFileMapping;
    this.released = false;
    this.stats = {
      timaFaults: 0,
      esbFaults: 0,
      sigbus: 0,
      zaps: 0,
      setMapped: 0,
      clrMapped: 0,
      escalations: 0,
      hangs: 0,
      pushes: 0,
      pulls: 0,
    };
    this.vcpusOf = opts.vcpus ?? null;
    this.connected = [];
    this.word = new Word64();
    this.qinfo = new XiveQueueInfo();
    this.qstate = new XiveQueueState();
    this.timaVmOps = {
      name: 'xive-native-tima',
      fault: (vmf: VmFault): number => this.vmFault(vmf, false),
    };
    this.esbVmOps = {
      name: 'xive-native-esb',
      fault: (vmf: VmFault): number => this.vmFault(vmf, true),
    };
  }

  /** Re-creation of the kept struct: back to the state of a fresh device. */
  reinit(opts: KvmXiveNativeOptions): void {
    this.kvm = opts.kvm;
    this.lpid = opts.lpid;
    this.host = opts.host;
    this.guestMem = opts.guestMem;
    this.wake = opts.wake;
    this.flags = { ...XIVE_NATIVE_MAINLINE, ...opts.flags };
    this.trace = opts.trace;
    this.emulSmtMode = opts.emulSmtMode ?? 1;
    this.vcpusOf = opts.vcpus ?? null;
    this.nrServers = KVM_MAX_VCPUS;
    this.vpBase = XIVE_INVALID_VP;
    this.srcBlocks.fill(null);
    this.maxSbid = 0;
    this.srcCount = 0;
    this.mapping = null;
    this.recordMapping = opts.recordMapping ?? recordFileMapping;
    this.released = false;
    this.connected.length = 0;
  }

  private allVcpus(): readonly XiveVcpuArch[] {
    return this.vcpusOf ? this.vcpusOf() : this.connected;
  }

  private emit(kind: string, a0: number, a1: number, a2: number, a3: number): void {
    if (this.trace.mask & TRACE_KVM) this.trace.emit(TRACE_KVM, kind, a0, a1, a2, a3);
  }

  // -------------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------------

  /**
   * The block of a guest irq (`irq` taken as u32); null if none or the block id is above 1023.
   *
   * @remarks Models book3s_xive.h:kvmppc_xive_find_source().
   */
  findSource(irq: number): XiveSrcBlock | null {
    const bid = Math.floor((irq >>> 0) / KVMPPC_XICS_IRQ_PER_ICS);
    if (bid > KVMPPC_XICS_MAX_ICS_ID) return null;
    return this.srcBlocks[bid]!;
  }

  /** The state of a guest irq, or null when its block does not exist. */
  irqState(irq: number): XiveIrqState | null {
    const sb = this.findSource(irq);
    return sb ? sb.irqState[(irq >>> 0) & KVMPPC_XICS_SRC_MASK]! : null;
  }

  /** @remarks Models book3s_xive.c:kvmppc_xive_create_src_block(). */
  private createSrcBlock(irq: number): XiveSrcBlock {
    const bid = Math.floor(irq / KVMPPC_XICS_IRQ_PER_ICS);
    let sb = this.srcBlocks[bid]!;
    if (!sb) {
      sb = new XiveSrcBlock(bid);
      this.srcBlocks[bid] = sb;
      if (bid > this.maxSbid) this.maxSbid = bid;
    }
    return sb;
  }

  /** Selected HW irq: passthrough if bound, else the IPI. @remarks Models kvmppc_xive_select_irq(). */
  private selectHw(state: XiveIrqState): number {
    return state.ptNumber ? state.ptNumber : state.ipiNumber;
  }

  private selectData(state: XiveIrqState): XiveIrqData {
    return state.ptNumber && state.ptData ? state.ptData : state.ipiData;
  }

  /** @remarks Models arch/powerpc/include/asm/kvm_book3s.h:kvmppc_pack_vcpu_id(). */
  packVcpuId(id: number): number {
    const blockOffsets = [0, 4, 2, 6, 1, 5, 3, 7];
    const stride = this.emulSmtMode;
    const block = Math.floor(id / KVM_MAX_VCPUS) * (MAX_SMT_THREADS / stride);
    if (block >= MAX_SMT_THREADS) return 0;
    const packed = (id % KVM_MAX_VCPUS) + blockOffsets[block]!;
    return packed >= KVM_MAX_VCPUS ? 0 : packed;
  }

  /** @remarks Models book3s_xive.h:kvmppc_xive_vp(). */
  vp(server: number): number {
    return this.vpBase + this.packVcpuId(server);
  }

  /** @remarks Models book3s_xive.c:kvmppc_xive_find_server(). */
  findServer(server: number): XiveVcpuArch | null {
    for (const v of this.allVcpus()) if (v.xiveVcpu && v.xiveVcpu.serverNum === server) return v;
    return null;
  }

  private lock(sb: XiveSrcBlock): boolean {
    if (sb.lockHeld) {
      // Only reachable after clr_mapped's error path kept the lock: the kernel spins forever.
      this.stats.hangs++;
      this.trace.guestError(`kvm-xive: source block ${sb.id} lock held forever (kernel hang)`);
      return false;
    }
    sb.lockHeld = true;
    return true;
  }

  private unlock(sb: XiveSrcBlock): void {
    sb.lockHeld = false;
  }

  private readU64(mem: UserMemory, addr: number): bigint | number {
    const b = mem.copyFromUser(addr, 8);
    if (typeof b === 'number') return -EFAULT;
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
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
   * GRP_CTRL / NR_SERVERS: u32 at `addr`.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_set_nr_servers().
   */
  setNrServers(addr: number, mem: UserMemory): number {
    const b = mem.copyFromUser(addr, 4);
    if (typeof b === 'number') return -EFAULT;
    const n = new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
    if (n === 0 || n > KVM_MAX_VCPU_IDS) return -EINVAL;
    if (this.vpBase !== XIVE_INVALID_VP) return -EBUSY;
    // Higher vCPU ids are packed, so at most KVM_MAX_VCPUS VPs are needed.
    this.nrServers = Math.min(n, KVM_MAX_VCPUS);
    return 0;
  }

  /**
   * GRP_SOURCE: create (or re-init) a source and mask it (IPI PQ 01, EAS masked).
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_set_source().
   */
  setSource(attr: bigint, addr: number, mem: UserMemory): number {
    // `irq` is a long: a u64 attribute above 2^63 is negative.
    const irqL = BigInt.asIntN(64, attr);
    if (irqL < BigInt(KVMPPC_XIVE_FIRST_IRQ) || irqL >= BigInt(KVMPPC_XIVE_NR_IRQS)) return -E2BIG;
    const irq = Number(irqL);
    // The block is created before the user read: a later -EFAULT leaves it behind.
    const sb = this.findSource(irq) ?? this.createSrcBlock(irq);
    const state = sb.irqState[irq & KVMPPC_XICS_SRC_MASK]!;
    const val = this.readU64(mem, addr);
    if (typeof val === 'number') return val;
    if (!this.lock(sb)) return -EDEADLK;
    try {
      if (!state.ipiNumber) {
        state.ipiNumber = this.host.allocIrq();
        if (state.ipiNumber === 0) return -ENXIO;
        this.host.populateIrqData(state.ipiNumber, state.ipiData);
      }
      if (val & KVM_XIVE_LEVEL_SENSITIVE) {
        state.lsi = true;
        if (val & KVM_XIVE_LEVEL_ASSERTED) state.asserted = true;
      }
      state.actServer = 0;
      state.actPriority = MASKED;
      this.host.esbRead(state.ipiData, XIVE_ESB_SET_PQ_01);
      this.host.configureIrq(state.ipiNumber, 0, MASKED, 0);
      if (!state.valid) this.srcCount++;
      state.valid = true;
      this.emit('kvm.xive.source', irq, state.ipiNumber, Number(val & 3n), 0);
      return 0;
    } finally {
      this.unlock(sb);
    }
  }

  /**
   * @remarks Models book3s_xive.c:xive_try_pick_queue().
   */
  private tryPickQueue(v: XiveVcpuArch, prio: number): number {
    const xc = v.xiveVcpu;
    if (!xc?.valid) return -ENXIO;
    const q = xc.queues[prio]!;
    if (!q.qpage) return -ENXIO;
    const max = q.msk + 1 - XIVE_Q_GAP;
    if (q.count >= max) return -EBUSY;
    q.count++;
    return 0;
  }

  /**
   * Returns the chosen server (≥ 0) or −errno: −EINVAL if no vCPU has `server`, −EBUSY if no
   * queue has room anywhere (it silently falls back to any vCPU in order).
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_select_target().
   */
  selectTarget(server: number, prio: number): number {
    const v = this.findServer(server);
    if (!v) return -EINVAL;
    if (this.tryPickQueue(v, prio) === 0) return server;
    for (const o of this.allVcpus()) {
      if (!o.xiveVcpu) continue;
      if (this.tryPickQueue(o, prio) === 0) return o.xiveVcpu.serverNum;
    }
    return -EBUSY;
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
    const state = sb.irqState[irq & KVMPPC_XICS_SRC_MASK]!;
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
      // No-op when unchanged, whatever the mask flag says (gotcha §15.7).
      if (state.actServer === server && state.actPriority === priority && state.eisn === eisn) return 0;
      const hw = this.selectHw(state);
      if (priority !== MASKED && !masked) {
        const target = this.selectTarget(server, priority);
        if (target < 0) return target;
        state.actPriority = priority;
        state.actServer = target;
        state.eisn = eisn;
        this.emit('kvm.xive.source_config', state.number, target, priority, eisn);
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
    const state = sb.irqState[irq & KVMPPC_XICS_SRC_MASK]!;
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
    this.emit('kvm.xive.eq_config', server, priority, qaddr, eq.qshift);
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
   * GRP_EQ_CONFIG get: an unconfigured queue returns 0 and writes nothing (gotcha §15.5).
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

  /** Mask one source: IPI PQ 01 + EAS masked, and the passthrough irq too. */
  private maskSourceHw(state: XiveIrqState): void {
    this.host.esbRead(state.ipiData, XIVE_ESB_SET_PQ_01);
    this.host.configureIrq(state.ipiNumber, 0, MASKED, 0);
    if (state.ptNumber && state.ptData) {
      this.host.esbRead(state.ptData, XIVE_ESB_SET_PQ_01);
      this.host.configureIrq(state.ptNumber, 0, MASKED, 0);
    }
  }

  /** @remarks Models book3s_xive.c:kvmppc_xive_disable_vcpu_interrupts(). */
  private disableVcpuInterrupts(xc: KvmppcXiveVcpu): void {
    for (let i = 0; i <= this.maxSbid; i++) {
      const sb = this.srcBlocks[i];
      if (!sb) continue;
      if (!this.lock(sb)) continue;
      for (const state of sb.irqState) {
        if (!state.valid || state.actPriority === MASKED || state.actServer !== xc.serverNum) continue;
        state.actPriority = MASKED;
        this.maskSourceHw(state);
      }
      this.unlock(sb);
    }
    if (xc.escOn && xc.escData) {
      this.host.esbRead(xc.escData, XIVE_ESB_SET_PQ_01);
      xc.escOn = false;
    }
    // Clear the escalation pointers (fix of 26-Apr-2019).
    xc.escData = null;
  }

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
      for (const state of sb.irqState) {
        if (!state.valid || state.actPriority === MASKED) continue;
        state.eisn = 0;
        state.actServer = 0;
        state.actPriority = MASKED;
        this.maskSourceHw(state);
      }
      this.unlock(sb);
    }
    this.emit('kvm.xive.reset', 0, 0, 0, 0);
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
      for (const state of sb.irqState) {
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
  // Escalation
  // -------------------------------------------------------------------------------------------

  /**
   * Hook the queue's escalation irq to {@link xiveEscIrq}; in single-escalation mode mask it
   * (PQ 01), remember its ESB for push/cede, and mark it NO_EOI.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_attach_escalation().
   */
  private attachEscalation(xc: KvmppcXiveVcpu, prio: number): number {
    if (xc.escVirq[prio]) return 0;
    const q = xc.queues[prio]!;
    const virq = this.host.createMapping(q.escIrq);
    if (!virq) return -EIO;
    xc.escVirq[prio] = virq;
    const name = this.singleEscalation
      ? `kvm-${this.lpid}-${xc.serverNum}`
      : `kvm-${this.lpid}-${xc.serverNum}-${prio}`;
    const rc = this.host.requestIrq(virq, () => this.xiveEscIrq(xc.vcpu), name);
    if (rc) {
      this.host.disposeMapping(virq);
      xc.escVirq[prio] = 0;
      return rc;
    }
    if (this.singleEscalation) {
      const d = this.host.irq(virq)!;
      this.host.esbRead(d.data, XIVE_ESB_SET_PQ_01);
      xc.escData = d.data;
      d.data.flags |= XIVE_IRQ_FLAG_NO_EOI;
    }
    return 0;
  }

  private freeEscalation(xc: KvmppcXiveVcpu, prio: number): void {
    const virq = xc.escVirq[prio]!;
    if (!virq) return;
    this.host.freeIrq(virq);
    this.host.disposeMapping(virq);
    xc.escVirq[prio] = 0;
  }

  /**
   * The escalation handler: the vCPU has something pending; kick it if it is ceded.
   *
   * @remarks Models book3s_xive.c:xive_esc_irq().
   */
  xiveEscIrq(vcpu: XiveVcpuArch): void {
    this.stats.escalations++;
    vcpu.irqPending = true;
    if (vcpu.ceded) this.wake(vcpu);
    const xc = vcpu.xiveVcpu;
    if (xc) xc.escOn = false;
    this.emit('kvm.xive.escalation', xc ? xc.serverNum : -1, +vcpu.ceded, 0, 0);
  }

  /**
   * Before a cede: arm the escalation (PQ 00, esc_on) or, if one is still pending, set PQ 10 and
   * return false (abort the cede).
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_rearm_escalation().
   */
  rearmEscalation(vcpu: XiveVcpuArch): boolean {
    const xc = vcpu.xiveVcpu;
    if (!xc?.escData) return true;
    if (xc.escOn) {
      this.host.esbRead(xc.escData, XIVE_ESB_SET_PQ_10);
      return false;
    }
    xc.escOn = true;
    this.host.esbRead(xc.escData, XIVE_ESB_SET_PQ_00);
    return true;
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
      this.emit('kvm.xive.connect', s, vpId, cam, 0);
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

  /**
   * Guest entry on physical thread `hostCpu`: write the saved QW1 w0/w1 and the CAM word (push:
   * the hardware resends the NVT backlog) through the HV TIMA page; mask the escalation if on.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_push_vcpu().
   */
  pushVcpu(vcpu: XiveVcpuArch, hostCpu: number): void {
    const xc = vcpu.xiveVcpu;
    if (!xc?.camWord) return;
    const mem = this.host.chip.mem;
    const hv = this.host.chip.timaPageAddr(XIVE_TM_HV_PAGE);
    mem.store(hv + TM_QW1_OS, 8, xc.savedW01[0]!, xc.savedW01[1]!, hostCpu);
    mem.store(hv + TM_QW1_OS + TM_WORD2, 4, 0, xc.camWord, hostCpu);
    xc.pushed = true;
    xc.hostCpu = hostCpu;
    vcpu.irqPending = false;
    this.stats.pushes++;
    if (xc.escOn && xc.escData) {
      const pq = this.host.esbRead(xc.escData, XIVE_ESB_SET_PQ_01);
      // P set: an escalation is on its way; its handler clears esc_on.
      if ((pq & XIVE_ESB_VAL_P) === 0) xc.escOn = false;
    }
  }

  /**
   * Guest exit: pull the OS context (invalidate), read QW1 w0/w1 back, LSMFB 0, ACK_CNT 0xFF.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_pull_vcpu().
   */
  pullVcpu(vcpu: XiveVcpuArch): void {
    const xc = vcpu.xiveVcpu;
    if (!xc?.pushed) return;
    const mem = this.host.chip.mem;
    const hv = this.host.chip.timaPageAddr(XIVE_TM_HV_PAGE);
    mem.load(hv + TM_SPC_PULL_OS_CTX, 4, this.word, xc.hostCpu);
    mem.load(hv + TM_QW1_OS, 8, this.word, xc.hostCpu);
    // Bytes: NSR CPPR IPB LSMFB | ACK INC AGE PIPR. LSMFB := 0, ACK_CNT := 0xFF.
    xc.savedW01[0] = (this.word.hi & 0xffff_ff00) >>> 0;
    xc.savedW01[1] = ((this.word.lo & 0x00ff_ffff) | 0xff00_0000) >>> 0;
    xc.pushed = false;
    xc.hostCpu = -1;
    this.stats.pulls++;
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
      for (const state of sb.irqState) {
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
    this.emit('kvm.xive.release', 0, 0, 0, 0);
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
    const r = esb
      ? this.xiveNativeEsbFault(vmf.vma.pgoff, vmf.pgoff)
      : this.xiveNativeTimaFault(vmf.vma.pgoff, vmf.pgoff);
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
  xiveNativeTimaFault(vmaPgoff: number, pgoff: number): number {
    this.stats.timaFaults++;
    const off = this.flags.faultUsesVmaRelativePgoff ? pgoff - vmaPgoff : pgoff - KVM_XIVE_TIMA_PAGE_OFFSET;
    if (off === XIVE_TM_OS_PAGE) return this.host.chip.timaPageAddr(XIVE_TM_OS_PAGE) * PAGE_SCALE;
    this.stats.sigbus++;
    return -VM_FAULT_SIGBUS;
  }

  /**
   * ESB fault: irq = page_offset / 2; even page → trigger page, odd → EOI page of the HW irq
   * currently backing the guest irq. No block, invalid source (Nov-2020 fix) or no such page →
   * SIGBUS. Returns the pfn, −VM_FAULT_SIGBUS, or {@link XIVE_FAULT_HANG}.
   *
   * @remarks Models book3s_xive_native.c:xive_native_esb_fault().
   */
  xiveNativeEsbFault(vmaPgoff: number, pgoff: number): number {
    const g = this.xiveNativeEsbFaultSteps(vmaPgoff, pgoff);
    for (;;) {
      const r = g.next();
      if (r.done) return r.value;
      if (r.value === 'lock-wait') {
        this.stats.hangs++;
        return XIVE_FAULT_HANG;
      }
    }
  }

  /**
   * {@link xiveNativeEsbFault} as atomic steps: with {@link XiveNativeFlags.faultSelectsOutsideLock}
   * it yields `'selected'` between `kvmppc_xive_select_irq()` and the locked page read; it yields
   * `'lock-wait'` while the block lock is held by someone else. The returned pfn is what the
   * handler inserts (with no further yield).
   */
  *xiveNativeEsbFaultSteps(vmaPgoff: number, pgoff: number): Generator<XiveStep, number, void> {
    this.stats.esbFaults++;
    const pageOffset = this.flags.faultUsesVmaRelativePgoff
      ? pgoff - vmaPgoff
      : pgoff - KVM_XIVE_ESB_PAGE_OFFSET;
    const irq = Math.floor(pageOffset / 2);
    const odd = pageOffset % 2 === 1;
    const sb = pageOffset < 0 ? null : this.findSource(irq);
    if (!sb) {
      this.stats.sigbus++;
      return -VM_FAULT_SIGBUS;
    }
    const state = sb.irqState[irq & KVMPPC_XICS_SRC_MASK]!;
    if (!state.valid) {
      this.stats.sigbus++;
      return -VM_FAULT_SIGBUS;
    }
    let xd = this.selectData(state);
    if (this.flags.faultSelectsOutsideLock) yield 'selected';
    while (sb.lockHeld) yield 'lock-wait';
    sb.lockHeld = true;
    if (!this.flags.faultSelectsOutsideLock) xd = this.selectData(state);
    const page = odd ? xd.eoiPage : xd.trigPage;
    sb.lockHeld = false;
    if (page === 0) {
      this.trace.guestError(`kvm-xive: ESB page ${odd ? 'EOI' : 'trigger'} of irq ${irq} is 0 (WARN)`);
      this.stats.sigbus++;
      return -VM_FAULT_SIGBUS;
    }
    this.emit('kvm.xive.esb_fault', irq, +odd, page * PAGE_SCALE, 0);
    return page * PAGE_SCALE;
  }

  /**
   * Zap the guest ESB PTEs of `irq`: file pages 4+2·irq and 5+2·irq (2·irq, 2·irq+1 with
   * {@link XiveNativeFlags.zapOmitsEsbOffset}) in every mapping of the device file. Nothing
   * before the first mmap. −EINVAL for irq ≥ 2^20.
   *
   * @remarks Models book3s_xive_native.c:kvmppc_xive_native_reset_mapped().
   */
  kvmppcXiveNativeResetMapped(irq: number): number {
    if (irq >= KVMPPC_XIVE_NR_IRQS) return -EINVAL;
    if (this.mapping) {
      const base = this.flags.zapOmitsEsbOffset ? 0 : KVM_XIVE_ESB_PAGE_OFFSET;
      this.stats.zaps++;
      this.emit('kvm.xive.zap', irq, base + 2 * irq, 2, 0);
      this.mapping.unmapMappingRange(base + 2 * irq, 2);
    }
    return 0;
  }

  // -------------------------------------------------------------------------------------------
  // Passthrough (book3s_xive.c)
  // -------------------------------------------------------------------------------------------

  /**
   * Take the block lock and mask. Mainline: the XICS logic on `guest_priority` (always MASKED in
   * native mode → no PQ change). Fixed variant: `act_priority`, no PQ change here (the caller
   * carries the PQ over).
   *
   * @remarks Models book3s_xive.c:xive_lock_and_mask().
   */
  private lockAndMask(sb: XiveSrcBlock, state: XiveIrqState): number {
    sb.lockHeld = true;
    if (!this.flags.nativeSetMappedUsesXicsPq) return state.actPriority;
    const old = state.guestPriority;
    state.guestPriority = MASKED;
    if (old === MASKED) return old;
    const xd = this.selectData(state);
    const val = this.host.esbRead(xd, XIVE_ESB_SET_PQ_10);
    state.oldP = (val & XIVE_ESB_VAL_P) !== 0;
    state.oldQ = (val & XIVE_ESB_VAL_Q) !== 0;
    this.host.syncSource(this.selectHw(state));
    return old;
  }

  /** The EISN programmed by set/clr_mapped. */
  private mappedEisn(state: XiveIrqState): number {
    return this.flags.setMappedEisnIsStateNumber ? state.number : state.eisn;
  }

  private routeMapped(hw: number, state: XiveIrqState): void {
    this.host.configureIrq(hw, this.vp(state.actServer), state.actPriority, this.mappedEisn(state));
  }

  /**
   * Bind guest irq `guestIrq` to host HW irq `hostHwIrq` (irq bypass). 0 or −errno.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_set_mapped().
   */
  kvmppcXiveSetMapped(guestIrq: number, hostHwIrq: number): number {
    return this.drive(this.kvmppcXiveSetMappedSteps(guestIrq, hostHwIrq));
  }

  /**
   * Unbind. 0 or −errno.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_clr_mapped().
   */
  kvmppcXiveClrMapped(guestIrq: number, hostHwIrq: number): number {
    return this.drive(this.kvmppcXiveClrMappedSteps(guestIrq, hostHwIrq));
  }

  private drive(g: Generator<XiveStep, number, void>): number {
    for (;;) {
      const r = g.next();
      if (r.done) return r.value;
      if (r.value === 'lock-wait') {
        this.stats.hangs++;
        return -EDEADLK;
      }
    }
  }

  /**
   * {@link kvmppcXiveSetMapped} as atomic steps. Yields `'affinity'` (host side done),
   * `'masked'` (block locked, IPI off), then `'zapped'` and `'published'` in mainline order
   * (reversed with `bindZapsBeforePublish: false`), then `'routed'`; the block lock is held from
   * `'masked'` to the end.
   */
  *kvmppcXiveSetMappedSteps(guestIrq: number, hostHwIrq: number): Generator<XiveStep, number, void> {
    if (this.arch.xive !== this) return -ENODEV;
    const sb = this.findSource(guestIrq);
    if (!sb) return -EINVAL;
    const state = sb.irqState[(guestIrq >>> 0) & KVMPPC_XICS_SRC_MASK]!;
    const host = this.host;
    this.stats.setMapped++;
    const rc = host.irqSetVcpuAffinity(hostHwIrq, true);
    if (rc) return rc;
    yield 'affinity';
    while (sb.lockHeld) yield 'lock-wait';
    const prio = this.lockAndMask(sb, state);
    // Turn the IPI hard off.
    const ipiPq = host.esbRead(state.ipiData, XIVE_ESB_SET_PQ_01);
    yield 'masked';
    const ptData = host.irqOfHw(hostHwIrq)?.data ?? null;
    const publish = (): void => {
      state.ptNumber = hostHwIrq;
      state.ptData = ptData;
    };
    if (this.flags.bindZapsBeforePublish) {
      this.kvmppcXiveNativeResetMapped(guestIrq);
      yield 'zapped';
      publish();
      yield 'published';
    } else {
      publish();
      yield 'published';
      this.kvmppcXiveNativeResetMapped(guestIrq);
      yield 'zapped';
    }
    this.routeMapped(hostHwIrq, state);
    if (ptData) {
      if (this.flags.nativeSetMappedUsesXicsPq) {
        if (prio !== MASKED && !state.oldP) host.sourceEoi(ptData);
      } else if (prio !== MASKED) {
        // Carry the guest-visible PQ of the IPI over to the device source.
        if (ipiPq === 0) host.sourceEoi(ptData);
        else host.esbRead(ptData, XIVE_ESB_SET_PQ_00 + (ipiPq << 8));
      }
    }
    state.oldP = false;
    state.oldQ = false;
    if (this.flags.nativeSetMappedUsesXicsPq) state.guestPriority = prio;
    this.unlock(sb);
    this.emit('kvm.xive.set_mapped', guestIrq, hostHwIrq, prio, 0);
    yield 'routed';
    return 0;
  }

  /**
   * {@link kvmppcXiveClrMapped} as atomic steps (`'masked'`, `'affinity'`, `'published'`,
   * `'zapped'`, `'routed'`).
   */
  *kvmppcXiveClrMappedSteps(guestIrq: number, hostHwIrq: number): Generator<XiveStep, number, void> {
    if (this.arch.xive !== this) return -ENODEV;
    const sb = this.findSource(guestIrq);
    if (!sb) return -EINVAL;
    const state = sb.irqState[(guestIrq >>> 0) & KVMPPC_XICS_SRC_MASK]!;
    const host = this.host;
    this.stats.clrMapped++;
    while (sb.lockHeld) yield 'lock-wait';
    const prio = this.lockAndMask(sb, state);
    let ptPq = 0;
    if (this.flags.nativeSetMappedUsesXicsPq) {
      // Pending: force a resend on the host side so the host driver does not lose it.
      if (state.oldP && state.ptData) host.esbRead(state.ptData, XIVE_ESB_SET_PQ_11);
    } else if (state.ptData) {
      ptPq = host.esbRead(state.ptData, XIVE_ESB_SET_PQ_01);
      if (ptPq & XIVE_ESB_VAL_P) host.esbRead(state.ptData, XIVE_ESB_SET_PQ_11);
    }
    yield 'masked';
    const rc = host.irqSetVcpuAffinity(hostHwIrq, false);
    if (rc) {
      if (!this.flags.clrMappedErrorKeepsLock) this.unlock(sb);
      return rc;
    }
    yield 'affinity';
    state.ptNumber = 0;
    state.ptData = null;
    yield 'published';
    this.kvmppcXiveNativeResetMapped(guestIrq);
    yield 'zapped';
    this.routeMapped(state.ipiNumber, state);
    if (this.flags.nativeSetMappedUsesXicsPq) {
      host.esbRead(state.ipiData, prio === MASKED || state.oldP ? XIVE_ESB_SET_PQ_10 : XIVE_ESB_SET_PQ_00);
      state.guestPriority = prio;
    } else {
      host.esbRead(state.ipiData, prio === MASKED ? XIVE_ESB_SET_PQ_01 : XIVE_ESB_SET_PQ_00 + (ptPq << 8));
    }
    this.unlock(sb);
    this.emit('kvm.xive.clr_mapped', guestIrq, hostHwIrq, prio, 0);
    yield 'routed';
    return 0;
  }
}
