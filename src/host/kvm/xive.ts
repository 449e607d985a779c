/**
 * The XIVE-KVM code shared by the KVM XIVE devices: the `struct kvmppc_xive` of one VM with its
 * source blocks and locks, target selection, escalations, the vCPU push/pull of the OS context
 * on guest entry/exit, and passthrough (`kvmppc_xive_set_mapped` / `clr_mapped`). The native
 * device (`KvmXiveNative`, xive-native.ts) extends it with its attrs, queues, mmap and faults.
 *
 * @remarks Models arch/powerpc/kvm/book3s_xive.c (the parts the native device uses).
 */

import { Word64 } from '../../hw/mmio.ts';
import {
  TM_QW1_OS,
  TM_SPC_PULL_OS_CTX,
  TM_WORD2,
  XIVE_ESB_SET_PQ_00,
  XIVE_ESB_SET_PQ_01,
  XIVE_ESB_SET_PQ_10,
  XIVE_ESB_SET_PQ_11,
  XIVE_ESB_VAL_P,
  XIVE_ESB_VAL_Q,
  XIVE_TM_HV_PAGE,
} from '../../hw/xive/regs.ts';
import { type TraceArgs, type TraceKindIn, traceEvent } from '../../sim/trace-events.ts';
import { TRACE_KVM, type TraceSink } from '../../sim/trace-sink.ts';
import {
  AtomicStep,
  driveSteps,
  FILE_IMAP,
  filePteObj,
  MMU_NOTIFIERS,
  mustYield,
  type PlainTwin,
} from '../atomic-step.ts';
import { EBUSY, EDEADLK, EFAULT, EINVAL, EIO, ENODEV, ENXIO } from '../errno.ts';
import { RwSem } from '../mm/rwsem.ts';
import type { UserMemory } from '../mm/uaccess.ts';
import { structView } from '../mm/uaccess.ts';
import { type HostXive, XIVE_IRQ_FLAG_NO_EOI, type XiveIrqData } from '../xive/host-xive.ts';
import {
  HOST_IRQS,
  irqBackingObj,
  KVM_ARCH_XIVE,
  sbLockObj,
  XIVE_MAPPING,
  XIVE_MEMORY_LOCK,
  XIVE_SOURCES,
} from './xive-footprint.ts';
import {
  recordFileMapping,
  XIVE_NATIVE_MAINLINE,
  type XiveMapping,
  type XiveNativeFlags,
  type XiveRecordMapping,
} from './xive-native-flags.ts';
import {
  KVM_MAX_VCPU_IDS,
  KVM_MAX_VCPUS,
  KVMPPC_XICS_IRQ_PER_ICS,
  KVMPPC_XICS_MAX_ICS_ID,
  KVMPPC_XICS_SRC_MASK,
  MASKED,
  MAX_SMT_THREADS,
  XIVE_INVALID_VP,
} from './xive-native-uapi.ts';
import {
  type KvmArchXive,
  type KvmGuestMemory,
  type KvmppcXiveVcpu,
  type KvmXiveNativeOptions,
  type KvmXiveNativeStats,
  XIVE_Q_GAP,
  type XiveIrqState,
  XiveSrcBlock,
  type XiveVcpuArch,
} from './xive-state.ts';

/**
 * The objects of the `memory_lock` steps, shared: the ESB fault takes the lock for read on every
 * fault when {@link XiveNativeFlags.esbMemoryLock} is on (a step's lists are only read).
 */
const NO_OBJECTS: readonly string[] = Object.freeze([]);
const MEMORY_LOCK_OBJECTS: readonly string[] = Object.freeze([XIVE_MEMORY_LOCK]);

/**
 * The XIVE-KVM state of one VM and the code book3s_xive.c shares between the devices.
 *
 * @remarks Models book3s_xive.h:struct kvmppc_xive and the shared functions of
 * arch/powerpc/kvm/book3s_xive.c.
 */
export abstract class KvmppcXive {
  readonly arch: KvmArchXive;
  kvm!: unknown;
  lpid!: number;
  host!: HostXive;
  guestMem!: KvmGuestMemory;
  wake!: (vcpu: XiveVcpuArch) => void;
  flags!: XiveNativeFlags;
  trace!: TraceSink;
  emulSmtMode!: number;
  nrServers!: number;
  vpBase!: number;
  singleEscalation: boolean;
  readonly srcBlocks: (XiveSrcBlock | null)[];
  maxSbid!: number;
  srcCount!: number;
  /** `xive->mapping`: the device file's address_space (null until the first mmap). */
  mapping!: XiveMapping | null;
  /** The kernel seam in use (see {@link XiveRecordMapping}). */
  recordMapping!: XiveRecordMapping;
  released!: boolean;
  /** `xive->memory_lock`, used only with {@link XiveNativeFlags.esbMemoryLock}. */
  readonly memoryLock: RwSem;
  readonly stats: KvmXiveNativeStats;
  private vcpusOf!: (() => readonly XiveVcpuArch[]) | null;
  protected readonly connected: XiveVcpuArch[];
  protected readonly word: Word64;

  constructor(arch: KvmArchXive, opts: KvmXiveNativeOptions) {
    this.arch = arch;
    this.singleEscalation = true;
    this.memoryLock = new RwSem('xive->memory_lock');
    this.srcBlocks = new Array<XiveSrcBlock | null>(KVMPPC_XICS_MAX_ICS_ID + 1).fill(null);
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
    this.connected = [];
    this.word = new Word64();
    this.reinit(opts);
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

  protected allVcpus(): readonly XiveVcpuArch[] {
    return this.vcpusOf ? this.vcpusOf() : this.connected;
  }

  protected emit<K extends TraceKindIn<typeof TRACE_KVM>>(kind: K, args: TraceArgs<K>): void {
    if (this.trace.mask & TRACE_KVM) traceEvent(this.trace, kind, args);
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
    return sb ? sb.state((irq >>> 0) & KVMPPC_XICS_SRC_MASK) : null;
  }

  /** @remarks Models book3s_xive.c:kvmppc_xive_create_src_block(). */
  protected createSrcBlock(irq: number): XiveSrcBlock {
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
  protected selectHw(state: XiveIrqState): number {
    return state.ptNumber ? state.ptNumber : state.ipiNumber;
  }

  protected selectData(state: XiveIrqState): XiveIrqData {
    return state.selectedPtData ?? state.ipiData;
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

  protected lock(sb: XiveSrcBlock): boolean {
    if (sb.lockHeld) {
      // Only reachable after clr_mapped's error path kept the lock: the kernel spins forever.
      this.stats.hangs++;
      this.trace.guestError(`kvm-xive: source block ${sb.id} lock held forever (kernel hang)`);
      return false;
    }
    sb.lockHeld = true;
    return true;
  }

  protected unlock(sb: XiveSrcBlock): void {
    sb.lockHeld = false;
  }

  /**
   * GRP_CTRL / NR_SERVERS: u32 at `addr`.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_set_nr_servers().
   */
  setNrServers(addr: number, mem: UserMemory): number {
    const b = mem.copyFromUser(addr, 4);
    if (typeof b === 'number') return -EFAULT;
    const n = structView(b).getUint32(0);
    if (n === 0 || n > KVM_MAX_VCPU_IDS) return -EINVAL;
    if (this.vpBase !== XIVE_INVALID_VP) return -EBUSY;
    // Higher vCPU ids are packed, so at most KVM_MAX_VCPUS VPs are needed.
    this.nrServers = Math.min(n, KVM_MAX_VCPUS);
    return 0;
  }

  /**
   * @remarks Models book3s_xive.c:xive_try_pick_queue().
   */
  protected tryPickQueue(v: XiveVcpuArch, prio: number): number {
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

  /** Mask one source: IPI PQ 01 + EAS masked, and the passthrough irq too. */
  protected maskSourceHw(state: XiveIrqState): void {
    this.host.esbRead(state.ipiData, XIVE_ESB_SET_PQ_01);
    this.host.configureIrq(state.ipiNumber, 0, MASKED, 0);
    if (state.ptNumber && state.ptData) {
      this.host.esbRead(state.ptData, XIVE_ESB_SET_PQ_01);
      this.host.configureIrq(state.ptNumber, 0, MASKED, 0);
    }
  }

  /** @remarks Models book3s_xive.c:kvmppc_xive_disable_vcpu_interrupts(). */
  protected disableVcpuInterrupts(xc: KvmppcXiveVcpu): void {
    for (let i = 0; i <= this.maxSbid; i++) {
      const sb = this.srcBlocks[i];
      if (!sb) continue;
      if (!this.lock(sb)) continue;
      for (const state of sb.states()) {
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

  // -------------------------------------------------------------------------------------------
  // Escalation
  // -------------------------------------------------------------------------------------------

  /**
   * Hook the queue's escalation irq to {@link escIrq}; in single-escalation mode mask it
   * (PQ 01), remember its ESB for push/cede, and mark it NO_EOI.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_attach_escalation().
   */
  protected attachEscalation(xc: KvmppcXiveVcpu, prio: number): number {
    if (xc.escVirq[prio]) return 0;
    const q = xc.queues[prio]!;
    const virq = this.host.createMapping(q.escIrq);
    if (!virq) return -EIO;
    xc.escVirq[prio] = virq;
    const name = this.singleEscalation
      ? `kvm-${this.lpid}-${xc.serverNum}`
      : `kvm-${this.lpid}-${xc.serverNum}-${prio}`;
    const rc = this.host.requestIrq(virq, () => this.escIrq(xc.vcpu), name);
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

  protected freeEscalation(xc: KvmppcXiveVcpu, prio: number): void {
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
  escIrq(vcpu: XiveVcpuArch): void {
    this.stats.escalations++;
    vcpu.irqPending = true;
    if (vcpu.ceded) this.wake(vcpu);
    const xc = vcpu.xiveVcpu;
    if (xc) xc.escOn = false;
    this.emit('kvm.xive.escalation', { server: xc ? xc.serverNum : -1, ceded: +vcpu.ceded });
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
  // Passthrough (book3s_xive.c)
  // -------------------------------------------------------------------------------------------

  /**
   * Take the block lock and mask. Mainline: the XICS logic on `guest_priority` (always MASKED in
   * native mode → no PQ change). Fixed variant: `act_priority`, no PQ change here (the caller
   * carries the PQ over).
   *
   * @remarks Models book3s_xive.c:xive_lock_and_mask().
   */
  protected lockAndMask(sb: XiveSrcBlock, state: XiveIrqState): number {
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
  protected mappedEisn(state: XiveIrqState): number {
    return this.flags.setMappedEisnIsStateNumber ? state.number : state.eisn;
  }

  protected routeMapped(hw: number, state: XiveIrqState): void {
    this.host.configureIrq(hw, this.vp(state.actServer), state.actPriority, this.mappedEisn(state));
  }

  /**
   * Bind guest irq `guestIrq` to host HW irq `hostHwIrq` (irq bypass). 0 or −errno.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_set_mapped().
   */
  setMapped(guestIrq: number, hostHwIrq: number): number {
    return this.drive(this.setMappedSteps(guestIrq, hostHwIrq), -EDEADLK);
  }

  /**
   * Unbind. 0 or −errno.
   *
   * @remarks Models book3s_xive.c:kvmppc_xive_clr_mapped().
   */
  clrMapped(guestIrq: number, hostHwIrq: number): number {
    return this.drive(this.clrMappedSteps(guestIrq, hostHwIrq), -EDEADLK);
  }

  /**
   * Run a step generator to its end, as the sequential call does. A step that cannot run is a
   * lock nobody will drop (clr_mapped's error path kept the block lock): the real kernel spins
   * there forever; count a hang and return `hang`. `self` and `a` … `d`: a plain twin's receiver
   * and arguments ({@link driveSteps}).
   */
  protected drive(
    g: Generator<AtomicStep, number, void> | PlainTwin<number>,
    hang: number,
    self?: unknown,
    a?: unknown,
    b?: unknown,
    c?: unknown,
    d?: unknown,
  ): number {
    return driveSteps(
      g,
      (step) => {
        this.stats.hangs++;
        this.trace.guestError(`kvm-xive: "${step.label}" waits forever (kernel hang)`);
        return hang;
      },
      self,
      a,
      b,
      c,
      d,
    );
  }

  /**
   * `down_read` / `down_write(&xive->memory_lock)` as a step, blocked while the lock cannot be
   * taken ({@link XiveNativeFlags.esbMemoryLock}: the ESB fault reads, set/clr_mapped write). A
   * generator of its own: the fault's, run a million times at the scale of a full VM, keeps no
   * register for the steps of a configuration that is off by default.
   */
  protected *memoryLockDownSteps(write: boolean): Generator<AtomicStep, void, void> {
    const ml = this.memoryLock;
    const down = new AtomicStep(
      write ? 'down_write(xive->memory_lock)' : 'down_read(xive->memory_lock)',
      NO_OBJECTS,
      MEMORY_LOCK_OBJECTS,
      write ? () => ml.canWrite : () => ml.canRead,
    );
    if (mustYield(down)) yield down;
    if (write) ml.downWrite();
    else ml.downRead();
  }

  /** `up_read` / `up_write(&xive->memory_lock)` as a step. */
  protected *memoryLockUpSteps(write: boolean): Generator<AtomicStep, void, void> {
    const up = new AtomicStep(
      write ? 'up_write(xive->memory_lock)' : 'up_read(xive->memory_lock)',
      NO_OBJECTS,
      MEMORY_LOCK_OBJECTS,
    );
    if (mustYield(up)) yield up;
    if (write) this.memoryLock.upWrite();
    else this.memoryLock.upRead();
  }

  /** `xive_lock_and_mask` as a step: blocked while another path holds `sb->lock`. */
  private maskStep(sb: XiveSrcBlock, what: string): AtomicStep {
    return new AtomicStep(
      `xive_lock_and_mask: arch_spin_lock(sb${sb.id}->lock), ${what}`,
      [],
      [sbLockObj(sb.id)],
      () => !sb.lockHeld,
    );
  }

  /**
   * `xive->ops->reset_mapped(kvm, guest_irq)`: the zap of the irq's ESB pages, as the recorded
   * mapping's own steps when it has them ({@link mappingZap}), else as one step.
   */
  private *resetMappedSteps(irq: number): Generator<AtomicStep, void, void> {
    const fine = this.mappingZap(irq);
    if (fine !== null) {
      yield* fine;
      return;
    }
    const pages = this.esbPages(irq);
    const st = new AtomicStep(
      `reset_mapped(girq ${irq}): unmap_mapping_range of file pages ${pages.join(', ')}`,
      [XIVE_MAPPING, FILE_IMAP],
      [...pages.map(filePteObj), MMU_NOTIFIERS],
    );
    if (mustYield(st)) yield st;
    const zaps = this.stats.zaps;
    this.resetMapped(irq);
    st.effect =
      this.stats.zaps > zaps ? 'their PTEs removed in every mapping' : 'no mapping recorded: nothing zapped';
  }

  /** Publishing (or forgetting) the backing HW irq as a step. */
  private *publishSteps(
    state: XiveIrqState,
    hw: number,
    data: XiveIrqData | null,
  ): Generator<AtomicStep, void, void> {
    const st = new AtomicStep(
      hw
        ? `publish pt_number/pt_data (girq ${state.number} → hw 0x${hw.toString(16)})`
        : `forget pt_number/pt_data of girq ${state.number}`,
      [],
      [irqBackingObj(state.number)],
    );
    if (mustYield(st)) yield st;
    state.ptNumber = hw;
    state.ptData = data;
    st.effect = hw
      ? `girq ${state.number} is backed by hw 0x${hw.toString(16)}`
      : `girq ${state.number} is backed by its IPI`;
  }

  /**
   * The look-up set_mapped and clr_mapped open with: this device still the VM's, and the source
   * block and state of `guestIrq`; else −ENODEV or −EINVAL, noted on `step`.
   *
   * @remarks The prologue of book3s_xive.c:kvmppc_xive_set_mapped() and
   * kvmppc_xive_clr_mapped() (`kvm->arch.xive`, then kvmppc_xive_find_source()).
   */
  private mappedSource(
    step: AtomicStep,
    guestIrq: number,
  ): { sb: XiveSrcBlock; state: XiveIrqState } | number {
    if (this.arch.xive !== this) {
      step.effect = 'no device: -ENODEV';
      return -ENODEV;
    }
    const sb = this.findSource(guestIrq);
    if (!sb) {
      step.effect = 'no source block: -EINVAL';
      return -EINVAL;
    }
    return { sb, state: sb.state((guestIrq >>> 0) & KVMPPC_XICS_SRC_MASK) };
  }

  /**
   * {@link setMapped} as atomic steps: the device and source look-up with
   * `irq_set_vcpu_affinity`; `xive_lock_and_mask` with the IPI turned off (the block lock is held
   * from here to the last step); `reset_mapped` and the publication of `pt_number`/`pt_data`, in
   * mainline order (reversed with {@link XiveNativeFlags.bindZapsBeforePublish} false); the
   * routing and the unlock. With {@link XiveNativeFlags.esbMemoryLock}, `memory_lock` is held for
   * write around the locked part.
   */
  *setMappedSteps(guestIrq: number, hostHwIrq: number): Generator<AtomicStep, number, void> {
    const start = new AtomicStep(
      `set_mapped(girq ${guestIrq}, hw 0x${hostHwIrq.toString(16)}): find the device and the source, irq_set_vcpu_affinity`,
      [KVM_ARCH_XIVE, XIVE_SOURCES],
      [HOST_IRQS],
    );
    if (mustYield(start)) yield start;
    const found = this.mappedSource(start, guestIrq);
    if (typeof found === 'number') return found;
    const { sb, state } = found;
    const host = this.host;
    this.stats.setMapped++;
    const rc = host.irqSetVcpuAffinity(hostHwIrq, true);
    if (rc) {
      start.effect = `irq_set_vcpu_affinity: ${rc}`;
      return rc;
    }
    start.effect = `hw 0x${hostHwIrq.toString(16)} forwarded`;
    const ml = this.flags.esbMemoryLock;
    if (ml) yield* this.memoryLockDownSteps(true);
    const mask = this.maskStep(sb, 'IPI SET_PQ_01');
    if (mustYield(mask)) yield mask;
    const prio = this.lockAndMask(sb, state);
    // Turn the IPI hard off.
    const ipiPq = host.esbRead(state.ipiData, XIVE_ESB_SET_PQ_01);
    const ptData = host.irqOfHw(hostHwIrq)?.data ?? null;
    if (this.flags.bindZapsBeforePublish) {
      yield* this.resetMappedSteps(guestIrq);
      yield* this.publishSteps(state, hostHwIrq, ptData);
    } else {
      yield* this.publishSteps(state, hostHwIrq, ptData);
      yield* this.resetMappedSteps(guestIrq);
    }
    const unlock = new AtomicStep(
      `route hw 0x${hostHwIrq.toString(16)}, arch_spin_unlock(sb${sb.id}->lock)`,
      [],
      [sbLockObj(sb.id)],
    );
    if (mustYield(unlock)) yield unlock;
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
    this.emit('kvm.xive.set_mapped', { guestIrq, hostHwIrq, prio });
    if (ml) yield* this.memoryLockUpSteps(true);
    return 0;
  }

  /**
   * {@link clrMapped} as atomic steps: the look-up; `xive_lock_and_mask` on the passthrough irq;
   * `irq_set_vcpu_affinity(host_irq, NULL)` (on failure mainline returns with the block lock
   * held: {@link XiveNativeFlags.clrMappedErrorKeepsLock}); forgetting `pt_number`/`pt_data`;
   * `reset_mapped`; the IPI re-routed and the unlock.
   */
  *clrMappedSteps(guestIrq: number, hostHwIrq: number): Generator<AtomicStep, number, void> {
    const start = new AtomicStep(
      `clr_mapped(girq ${guestIrq}, hw 0x${hostHwIrq.toString(16)}): find the device and the source`,
      [KVM_ARCH_XIVE, XIVE_SOURCES],
      [],
    );
    if (mustYield(start)) yield start;
    const found = this.mappedSource(start, guestIrq);
    if (typeof found === 'number') return found;
    const { sb, state } = found;
    const host = this.host;
    this.stats.clrMapped++;
    const ml = this.flags.esbMemoryLock;
    if (ml) yield* this.memoryLockDownSteps(true);
    const mask = this.maskStep(sb, 'mask the passthrough irq');
    if (mustYield(mask)) yield mask;
    const prio = this.lockAndMask(sb, state);
    let ptPq = 0;
    if (this.flags.nativeSetMappedUsesXicsPq) {
      // Pending: force a resend on the host side so the host driver does not lose it.
      if (state.oldP && state.ptData) host.esbRead(state.ptData, XIVE_ESB_SET_PQ_11);
    } else if (state.ptData) {
      ptPq = host.esbRead(state.ptData, XIVE_ESB_SET_PQ_01);
      if (ptPq & XIVE_ESB_VAL_P) host.esbRead(state.ptData, XIVE_ESB_SET_PQ_11);
    }
    const aff = new AtomicStep(
      `irq_set_vcpu_affinity(hw 0x${hostHwIrq.toString(16)}, NULL)`,
      [],
      [HOST_IRQS],
    );
    if (mustYield(aff)) yield aff;
    const rc = host.irqSetVcpuAffinity(hostHwIrq, false);
    if (rc) {
      if (this.flags.clrMappedErrorKeepsLock) {
        aff.effect = `${rc}: return with sb${sb.id}->lock still held`;
        return rc;
      }
      this.unlock(sb);
      aff.effect = `${rc}: unlock and return`;
      if (ml) yield* this.memoryLockUpSteps(true);
      return rc;
    }
    yield* this.publishSteps(state, 0, null);
    yield* this.resetMappedSteps(guestIrq);
    const unlock = new AtomicStep(
      `re-route the IPI, arch_spin_unlock(sb${sb.id}->lock)`,
      [],
      [sbLockObj(sb.id)],
    );
    if (mustYield(unlock)) yield unlock;
    this.routeMapped(state.ipiNumber, state);
    if (this.flags.nativeSetMappedUsesXicsPq) {
      host.esbRead(state.ipiData, prio === MASKED || state.oldP ? XIVE_ESB_SET_PQ_10 : XIVE_ESB_SET_PQ_00);
      state.guestPriority = prio;
    } else {
      host.esbRead(state.ipiData, prio === MASKED ? XIVE_ESB_SET_PQ_01 : XIVE_ESB_SET_PQ_00 + (ptPq << 8));
    }
    this.unlock(sb);
    this.emit('kvm.xive.clr_mapped', { guestIrq, hostHwIrq, prio });
    if (ml) yield* this.memoryLockUpSteps(true);
    return 0;
  }

  /** {@link resetMapped} as the mapping's zap steps, or null when it has none (one step). */
  protected mappingZap(_irq: number): Generator<AtomicStep, void, void> | null {
    return null;
  }

  /** The device-file pages of `irq`'s ESB pages that {@link resetMapped} zaps (none by default). */
  protected esbPages(_irq: number): number[] {
    return [];
  }

  /**
   * Zap the guest ESB PTEs of `irq` in every mapping of the device file.
   *
   * @remarks Models book3s_xive.h:struct kvmppc_xive_ops.reset_mapped, which set/clr_mapped call.
   */
  abstract resetMapped(irq: number): number;
}
