/**
 * The KVM XIVE state structs: per-VM source blocks and sources, per-vCPU queues and context, the
 * `struct kvm_vcpu_arch` / `struct kvm_arch` fields the device uses, the device's counters and
 * creation options, and the small inline helpers of the header.
 *
 * @remarks Models arch/powerpc/kvm/book3s_xive.h.
 */

import type { TraceSink } from '../../sim/trace-sink.ts';
import { type HostXive, XiveIrqData } from '../xive/host-xive.ts';
import type { KvmXiveNative } from './xive-native.ts';
import type { XiveNativeFlags, XiveRecordMapping } from './xive-native-flags.ts';
import {
  KVMPPC_XICS_ICS_SHIFT,
  KVMPPC_XICS_IRQ_PER_ICS,
  KVMPPC_XIVE_Q_COUNT,
  MASKED,
} from './xive-native-uapi.ts';

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

/** `XIVE_Q_GAP`: queue slots kept free for safety. */
export const XIVE_Q_GAP = 2;

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
  /** XICS-mode fields; native code never writes guest_priority (book3s_xive_native.c has no writer). */
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
