/**
 * The KVM XIVE state structs: per-VM source blocks and sources, per-vCPU queues and context, the
 * `struct kvm_vcpu_arch` / `struct kvm_arch` fields the device uses, the device's counters and
 * creation options, and the small inline helpers of the header.
 *
 * @remarks Models arch/powerpc/kvm/book3s_xive.h.
 */

import type { TraceSink } from '../../sim/trace-sink.ts';
import { type HostXive, XIVE_INVALID_TARGET, type XiveIrqData } from '../xive/host-xive.ts';
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

/** {@link XiveSrcBlock.bits}: the boolean fields of a source. */
const VALID = 0x01;
const IN_EOI = 0x02;
const OLD_P = 0x04;
const OLD_Q = 0x08;
const LSI = 0x10;
const ASSERTED = 0x20;
/** The IPI data's `saved_p` / `stale_p`. */
const IPI_SAVED_P = 0x40;
const IPI_STALE_P = 0x80;

const FRAME = 0x1000;
const U32 = 2 ** 32;

/** A page address of `ipi_data` from its frame number's two parts ({@link SrcFields.ipiEoiLo}). */
function pageOf(lo: number, hi: number): number {
  return (hi * U32 + lo) * FRAME;
}

/**
 * The frame number of a page address of `ipi_data`. Small enough for the JIT to inline into the
 * accessors (a value passed to a call it does not inline is boxed); the error is out of line.
 */
function frameOf(page: number): number {
  const f = page / FRAME;
  return f >= 0 && f < 2 ** 39 && f === Math.floor(f) ? f : badPage(page);
}

function badPage(page: number): never {
  throw new Error(`ipi_data: ESB page 0x${page.toString(16)} is not a 4 KiB page below 2^51`);
}

/**
 * A source block's sources, one typed array per field (a million sources as objects would cost
 * V8 two objects and two boxed doubles each, and seconds of garbage collection to create).
 * {@link XiveIrqState} and {@link XiveIrqData} views read and write them.
 */
class SrcFields {
  /** {@link VALID} … {@link IPI_STALE_P}. */
  readonly bits: Uint8Array;
  readonly ipiNumber: Int32Array;
  readonly ptNumber: Int32Array;
  /**
   * The host's data of the passthrough HW irq (an object of the host's) by source, where there
   * is one: few sources are passed through, and an array per block would cost 8 KiB of heap.
   */
  readonly ptData: Map<number, XiveIrqData>;
  readonly guestPriority: Uint8Array;
  readonly savedPriority: Uint8Array;
  readonly actServer: Int32Array;
  readonly actPriority: Uint8Array;
  readonly eisn: Uint32Array;
  /**
   * `ipi_data`: flags, ESB shift, target, EOI and trigger pages. Its `hw_irq` is `ipi_number`
   * (kvmppc_xive_native_set_source() populates `ipi_data` from `ipi_number`; neither changes
   * after). A page is kept as its 4 KiB frame number, the low 32 bits (`…Lo`) and the rest
   * (`…Hi`, below 2^7: an address is below 2^51): 5 bytes where an f64 address takes 8, as a
   * full VM's million sources would touch 6 MiB more.
   */
  readonly ipiFlags: Uint8Array;
  readonly ipiEsbShift: Uint8Array;
  readonly ipiTarget: Int32Array;
  readonly ipiEoiLo: Uint32Array;
  readonly ipiEoiHi: Uint8Array;
  readonly ipiTrigLo: Uint32Array;
  readonly ipiTrigHi: Uint8Array;

  constructor() {
    const n = KVMPPC_XICS_IRQ_PER_ICS;
    // One buffer for every field (an ArrayBuffer each would cost a malloc each).
    const buf = new ArrayBuffer(n * (7 * 4 + 8));
    let off = 0;
    const at = (bytes: number): number => {
      off += bytes * n;
      return off - bytes * n;
    };
    this.ipiEoiLo = new Uint32Array(buf, at(4), n);
    this.ipiTrigLo = new Uint32Array(buf, at(4), n);
    this.ipiNumber = new Int32Array(buf, at(4), n);
    this.ptNumber = new Int32Array(buf, at(4), n);
    this.actServer = new Int32Array(buf, at(4), n);
    this.ipiTarget = new Int32Array(buf, at(4), n).fill(XIVE_INVALID_TARGET);
    this.eisn = new Uint32Array(buf, at(4), n);
    this.bits = new Uint8Array(buf, at(1), n);
    this.guestPriority = new Uint8Array(buf, at(1), n).fill(MASKED);
    this.savedPriority = new Uint8Array(buf, at(1), n).fill(MASKED);
    this.actPriority = new Uint8Array(buf, at(1), n).fill(MASKED);
    this.ipiFlags = new Uint8Array(buf, at(1), n);
    this.ipiEsbShift = new Uint8Array(buf, at(1), n);
    this.ipiEoiHi = new Uint8Array(buf, at(1), n);
    this.ipiTrigHi = new Uint8Array(buf, at(1), n);
    this.ptData = new Map();
  }

  flag(i: number, bit: number): boolean {
    return (this.bits[i]! & bit) !== 0;
  }

  setFlag(i: number, bit: number, on: boolean): void {
    this.bits[i] = on ? this.bits[i]! | bit : this.bits[i]! & ~bit;
  }

  /**
   * The data `kvmppc_xive_select_irq` picks for source `i` when it is passed through (a
   * `pt_number` and its `pt_data`); null when it picks `ipi_data`.
   */
  selectedPt(i: number): XiveIrqData | null {
    return this.ptNumber[i] !== 0 ? (this.ptData.get(i) ?? null) : null;
  }

  /** Store page address `v` of `ipi_data` in `lo[i]`, `hi[i]` (its frame number's two parts). */
  setPage(lo: Uint32Array, hi: Uint8Array, i: number, v: number): void {
    const f = frameOf(v);
    const h = Math.floor(f / U32);
    hi[i] = h;
    lo[i] = f - h * U32;
  }
}

/**
 * `ipi_data` of one guest source: a view of its block's fields, a {@link XiveIrqData} to the
 * host driver.
 */
class IpiData implements XiveIrqData {
  private readonly f: SrcFields;
  private readonly i: number;
  constructor(f: SrcFields, i: number) {
    this.f = f;
    this.i = i;
  }
  get flags(): number {
    return this.f.ipiFlags[this.i]!;
  }
  set flags(v: number) {
    this.f.ipiFlags[this.i] = v;
  }
  get eoiPage(): number {
    return pageOf(this.f.ipiEoiLo[this.i]!, this.f.ipiEoiHi[this.i]!);
  }
  set eoiPage(v: number) {
    this.f.setPage(this.f.ipiEoiLo, this.f.ipiEoiHi, this.i, v);
  }
  get trigPage(): number {
    return pageOf(this.f.ipiTrigLo[this.i]!, this.f.ipiTrigHi[this.i]!);
  }
  set trigPage(v: number) {
    this.f.setPage(this.f.ipiTrigLo, this.f.ipiTrigHi, this.i, v);
  }
  get esbShift(): number {
    return this.f.ipiEsbShift[this.i]!;
  }
  set esbShift(v: number) {
    this.f.ipiEsbShift[this.i] = v;
  }
  /** `ipi_data.hw_irq`: the source's `ipi_number` (the kernel fills one from the other). */
  get hwIrq(): number {
    return this.f.ipiNumber[this.i]!;
  }
  set hwIrq(v: number) {
    this.f.ipiNumber[this.i] = v;
  }
  get target(): number {
    return this.f.ipiTarget[this.i]!;
  }
  set target(v: number) {
    this.f.ipiTarget[this.i] = v;
  }
  get savedP(): boolean {
    return this.f.flag(this.i, IPI_SAVED_P);
  }
  set savedP(v: boolean) {
    this.f.setFlag(this.i, IPI_SAVED_P, v);
  }
  get staleP(): boolean {
    return this.f.flag(this.i, IPI_STALE_P);
  }
  set staleP(v: boolean) {
    this.f.setFlag(this.i, IPI_STALE_P, v);
  }
}

/**
 * One guest source: a view of its block's fields ({@link XiveSrcBlock.state}).
 *
 * @remarks Models book3s_xive.h:struct kvmppc_xive_irq_state.
 */
export class XiveIrqState {
  readonly number: number;
  private readonly f: SrcFields;
  private readonly i: number;
  constructor(number: number, f: SrcFields, i: number) {
    this.number = number;
    this.f = f;
    this.i = i;
  }
  get valid(): boolean {
    return this.f.flag(this.i, VALID);
  }
  set valid(v: boolean) {
    this.f.setFlag(this.i, VALID, v);
  }
  /** Backing HW IPI (0 = none yet) and its data. */
  get ipiNumber(): number {
    return this.f.ipiNumber[this.i]!;
  }
  set ipiNumber(v: number) {
    this.f.ipiNumber[this.i] = v;
  }
  get ipiData(): XiveIrqData {
    return new IpiData(this.f, this.i);
  }
  /** Passthrough HW irq (0 = none) and the host's data for it. */
  get ptNumber(): number {
    return this.f.ptNumber[this.i]!;
  }
  set ptNumber(v: number) {
    this.f.ptNumber[this.i] = v;
  }
  get ptData(): XiveIrqData | null {
    return this.f.ptData.get(this.i) ?? null;
  }
  set ptData(v: XiveIrqData | null) {
    if (v === null) this.f.ptData.delete(this.i);
    else this.f.ptData.set(this.i, v);
  }
  /** `pt_data` when `pt_number` and `pt_data` are both set, else null (`ipi_data` is selected). */
  get selectedPtData(): XiveIrqData | null {
    return this.f.selectedPt(this.i);
  }
  /** XICS-mode fields; native code never writes guest_priority (book3s_xive_native.c has no writer). */
  get guestPriority(): number {
    return this.f.guestPriority[this.i]!;
  }
  set guestPriority(v: number) {
    this.f.guestPriority[this.i] = v;
  }
  get savedPriority(): number {
    return this.f.savedPriority[this.i]!;
  }
  set savedPriority(v: number) {
    this.f.savedPriority[this.i] = v;
  }
  get actServer(): number {
    return this.f.actServer[this.i]!;
  }
  set actServer(v: number) {
    this.f.actServer[this.i] = v;
  }
  get actPriority(): number {
    return this.f.actPriority[this.i]!;
  }
  set actPriority(v: number) {
    this.f.actPriority[this.i] = v;
  }
  get inEoi(): boolean {
    return this.f.flag(this.i, IN_EOI);
  }
  set inEoi(v: boolean) {
    this.f.setFlag(this.i, IN_EOI, v);
  }
  get oldP(): boolean {
    return this.f.flag(this.i, OLD_P);
  }
  set oldP(v: boolean) {
    this.f.setFlag(this.i, OLD_P, v);
  }
  get oldQ(): boolean {
    return this.f.flag(this.i, OLD_Q);
  }
  set oldQ(v: boolean) {
    this.f.setFlag(this.i, OLD_Q, v);
  }
  get lsi(): boolean {
    return this.f.flag(this.i, LSI);
  }
  set lsi(v: boolean) {
    this.f.setFlag(this.i, LSI, v);
  }
  get asserted(): boolean {
    return this.f.flag(this.i, ASSERTED);
  }
  set asserted(v: boolean) {
    this.f.setFlag(this.i, ASSERTED, v);
  }
  get eisn(): number {
    return this.f.eisn[this.i]!;
  }
  set eisn(v: number) {
    this.f.eisn[this.i] = v;
  }
}

/** @remarks Models book3s_xive.h:struct kvmppc_xive_src_block. */
export class XiveSrcBlock {
  readonly id: number;
  /** `sb->lock` (an arch spinlock). */
  lockHeld = false;
  /** The `irq_state[]` array, field by field. */
  private readonly fields: SrcFields;
  constructor(id: number) {
    this.id = id;
    this.fields = new SrcFields();
  }

  /** `irq_state[i]`, `i` < {@link KVMPPC_XICS_IRQ_PER_ICS}. */
  state(i: number): XiveIrqState {
    return new XiveIrqState((this.id << KVMPPC_XICS_ICS_SHIFT) | i, this.fields, i);
  }

  /** `irq_state[i].valid`, read without a view of the entry (the ESB fault's look-up). */
  valid(i: number): boolean {
    return this.fields.flag(i, VALID);
  }

  /**
   * The ESB fault's reads of `irq_state[i]`, without a view of the entry (two objects a fault,
   * a million at a full VM's set-up): its `pt_number`, the data `kvmppc_xive_select_irq` picks
   * when it is not `ipi_data` ({@link XiveIrqState.selectedPtData}), and `ipi_data`'s EOI (`odd`)
   * or trigger page.
   */
  ptNumber(i: number): number {
    return this.fields.ptNumber[i]!;
  }

  selectedPtData(i: number): XiveIrqData | null {
    return this.fields.selectedPt(i);
  }

  ipiPage(i: number, odd: boolean): number {
    const f = this.fields;
    return odd ? pageOf(f.ipiEoiLo[i]!, f.ipiEoiHi[i]!) : pageOf(f.ipiTrigLo[i]!, f.ipiTrigHi[i]!);
  }

  /** Every `irq_state[]` entry, in order. */
  *states(): Generator<XiveIrqState, void, void> {
    for (let i = 0; i < KVMPPC_XICS_IRQ_PER_ICS; i++) yield this.state(i);
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
