/**
 * A vCPU of a KVM VM: its ioctls (`KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE)`,
 * `KVM_GET/SET_ONE_REG(KVM_REG_PPC_VP_STATE)`) and its run: the guest executing on the vCPU's
 * host thread with the vCPU's XIVE context pushed in that thread's TIMA OS ring.
 *
 * Guest accesses go through the VM's partition-scoped tree to host frames (the access carries
 * the host thread as `cpu`, so a TIMA access reaches the pushed context); a gfn no memslot
 * covers exits to the VMM as MMIO; every hcall exits to the VMM (`KVM_EXIT_PAPR_HCALL`: in
 * native XIVE mode the H_INT_* calls are QEMU's, and no other hcall is modelled in the kernel).
 * An exit pulls the XIVE context, runs the VMM's handler synchronously, and pushes it again, as
 * QEMU's `kvm_cpu_exec` loop re-entering KVM_RUN does.
 */

import { type AccessSize, Word64 } from '../../hw/mmio.ts';
import type { XiveTctx } from '../../hw/xive/tctx.ts';
import { TRACE_KVM } from '../../sim/trace-sink.ts';
import { EBADF, EBUSY, EFAULT, EINVAL, EIO, ENXIO, EPERM } from '../errno.ts';
import { PAGE_SCALE, PAGE_SIZE } from '../mm/constants.ts';
import type { PhysFrames } from '../mm/phys-frames.ts';
import type { KvmUser, KvmVm } from './kvm.ts';
import { kvmDeviceFromFilp } from './kvm-device.ts';
import { KVM_PT_NO_SLOT, type PartitionTable } from './partition-table.ts';
import {
  decodeKvmEnableCap,
  decodeKvmOneReg,
  encodeVpState,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_ENABLE_CAP,
  KVM_ENABLE_CAP_SIZE,
  KVM_GET_ONE_REG,
  KVM_ONE_REG_SIZE,
  KVM_REG_PPC_VP_STATE,
  KVM_RUN,
  KVM_SET_ONE_REG,
  kvmRegSize,
  userPtr,
} from './uapi.ts';
import { KvmXiveNative } from './xive-native.ts';
import { KVMPPC_IRQ_DEFAULT } from './xive-native-uapi.ts';
import type { XiveVcpuArch } from './xive-state.ts';

/** The VMM's side of KVM_RUN exits (QEMU's `kvm_cpu_exec` switch). */
export interface KvmExitHandler {
  /** `KVM_EXIT_MMIO`: a load fills `data`; a store passes it. */
  mmio(gpa: number, size: AccessSize, isWrite: boolean, data: Word64): void;
  /** `KVM_EXIT_PAPR_HCALL`: returns R3, writes R4.. into `out`. */
  paprHcall(nr: number, args: readonly bigint[], out: bigint[]): number;
  /**
   * Optional: KVM_RUN failed with −errno (a guest access whose host-side fault failed, e.g. an
   * ESB page of an invalid source: SIGBUS → −EFAULT; QEMU aborts with "kvm run failed").
   */
  runFailed?(errno: number, gpa: number): void;
}

/** The guest's view of a vCPU in KVM_RUN (structurally a guest `GuestVcpu` minus `id`). */
export interface KvmGuestContext {
  load(gpa: number, size: AccessSize, out: Word64): void;
  store(gpa: number, size: AccessSize, hi: number, lo: number): void;
  hcall(opcode: number, args: readonly bigint[], out: bigint[]): number;
  /** The host thread's OS-ring external interrupt line while the context is pushed. */
  readonly externalInterrupt: boolean;
}

/** Per-vCPU counters. */
export class KvmVcpuStats {
  runs = 0;
  mmioExits = 0;
  hcallExits = 0;
  runFailures = 0;
}

/**
 * @remarks Models struct kvm_vcpu and arch/powerpc/kvm/powerpc.c:kvm_arch_vcpu_ioctl()
 * (+ kvm_vcpu_ioctl_enable_cap, kvm_vcpu_ioctl_get/set_one_reg) and book3s.c's ONE_REG cases.
 */
export class KvmVcpu {
  readonly vm: KvmVm;
  /** The id userspace chose (`vcpu_id`). */
  readonly vcpuId: number;
  /** Creation index (`vcpu_idx`). */
  readonly vcpuIdx: number;
  /** The host thread this vCPU prefers (vcpu_idx mod nrCpus). */
  readonly preferredCpu: number;
  /** The host hardware thread it runs (or last ran) on. */
  hostCpu: number;
  readonly arch: XiveVcpuArch;
  readonly stats: KvmVcpuStats;
  /** The run in progress (the vCPU thread inside KVM_RUN), or null. */
  run: KvmVcpuRun | null;

  constructor(vm: KvmVm, vcpuId: number, vcpuIdx: number, hostCpu: number) {
    this.vm = vm;
    this.vcpuId = vcpuId;
    this.vcpuIdx = vcpuIdx;
    this.preferredCpu = hostCpu;
    this.hostCpu = hostCpu;
    this.arch = { kvm: vm, irqType: KVMPPC_IRQ_DEFAULT, xiveVcpu: null, ceded: false, irqPending: false };
    this.stats = new KvmVcpuStats();
    this.run = null;
  }

  private xive(): KvmXiveNative | null {
    const x = this.vm.arch.xive;
    return x instanceof KvmXiveNative ? x : null;
  }

  /**
   * ioctl on the vCPU fd: −EIO from another mm or a dead VM; −EBUSY while the vCPU sits in
   * KVM_RUN outside an exit (decision: the kernel would block on `vcpu->mutex`); KVM_RUN itself
   * → −EINVAL (use `HostProcess.kvmRun`); unknown → −EINVAL (powerpc's default).
   */
  ioctl(user: KvmUser, cmd: number, arg: number): number {
    if (this.vm.mm !== user.proc.mm || this.vm.dead) return -EIO;
    if (this.run !== null && !this.run.inExit) return -EBUSY;
    switch (cmd) {
      case KVM_ENABLE_CAP:
        return this.enableCap(user, arg);
      case KVM_GET_ONE_REG:
        return this.oneReg(user, arg, false);
      case KVM_SET_ONE_REG:
        return this.oneReg(user, arg, true);
      case KVM_RUN:
        return -EINVAL;
      default:
        return -EINVAL;
    }
  }

  /**
   * `KVM_ENABLE_CAP` on the vCPU: copy (−EFAULT), flags ≠ 0 → −EINVAL; KVM_CAP_PPC_IRQ_XIVE:
   * args[0] not an open fd → −EBADF, not a KVM device → −EPERM, then the device's connect
   * (−EPERM other VM, −EBUSY, −EINVAL, −ENOSPC, −EEXIST…); other caps → −EINVAL.
   *
   * @remarks Models powerpc.c:kvm_vcpu_ioctl_enable_cap().
   */
  enableCap(user: KvmUser, argp: number): number {
    const b = user.copyFromUser(argp, KVM_ENABLE_CAP_SIZE);
    if (typeof b === 'number') return -EFAULT;
    const cap = decodeKvmEnableCap(b);
    if (cap.flags) return -EINVAL;
    if (cap.cap !== KVM_CAP_PPC_IRQ_XIVE) return -EINVAL;
    const fd = Number(BigInt.asIntN(32, cap.args[0]));
    const file = user.proc.fget(fd);
    if (file === null) return -EBADF;
    const dev = kvmDeviceFromFilp(file);
    if (dev === null) return -EPERM;
    return dev.xive.connectVcpu(this.arch, Number(BigInt.asUintN(32, cap.args[1])));
  }

  /**
   * `KVM_GET/SET_ONE_REG`: copy `struct kvm_one_reg` (−EFAULT); value wider than 16 bytes →
   * −EINVAL; KVM_REG_PPC_VP_STATE: no XIVE context → −ENXIO, else the device's get/set_vp;
   * any other id → −EINVAL. Get writes 16 bytes at `addr` (−EFAULT); set reads them first.
   *
   * @remarks Models powerpc.c:kvm_vcpu_ioctl_get/set_one_reg() + book3s.c:kvmppc_get/set_one_reg().
   */
  private oneReg(user: KvmUser, argp: number, set: boolean): number {
    const b = user.copyFromUser(argp, KVM_ONE_REG_SIZE);
    if (typeof b === 'number') return -EFAULT;
    const reg = decodeKvmOneReg(b);
    const size = kvmRegSize(reg.id);
    if (size > 16) return -EINVAL;
    const addr = userPtr(reg.addr);
    if (set) {
      const v = user.copyFromUser(addr, size);
      if (typeof v === 'number') return -EFAULT;
      if (reg.id !== KVM_REG_PPC_VP_STATE) return -EINVAL;
      const x = this.xive();
      if (this.arch.xiveVcpu === null || x === null) return -ENXIO;
      const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      return x.setVp(this.arch, dv.getUint32(0), dv.getUint32(4));
    }
    if (reg.id !== KVM_REG_PPC_VP_STATE) return -EINVAL;
    const x = this.xive();
    if (this.arch.xiveVcpu === null || x === null) return -ENXIO;
    const w = new Word64();
    const r = x.getVp(this.arch, w);
    if (r) return r;
    return user.copyToUser(addr, encodeVpState(w.hi, w.lo)) ? -EFAULT : 0;
  }

  /**
   * Enter KVM_RUN on the preferred host thread, or (the host scheduler placing the vCPU
   * thread) the next free one. The XIVE context is pushed on that thread and the run returned.
   *
   * −EBUSY while this vCPU has a run (even from inside that run's exit handler). The kernel
   * serialises every vCPU ioctl on `vcpu->mutex`: a second KVM_RUN sleeps in
   * `mutex_lock_killable()` until the first returns to userspace, and fails (−EINTR) only on a
   * fatal signal. Here a run stands for the vCPU thread's whole KVM_RUN loop (QEMU's
   * `kvm_cpu_exec`, re-entering after each exit) and a caller cannot sleep, so the second entry
   * is refused instead of blocking forever. Once the run is stopped (the loop left, e.g. from an
   * exit handler), KVM_RUN may be entered again; the stopped run never touches the new one.
   *
   * −EBUSY too when every host thread runs a vCPU (decision: a context stays pushed for the
   * whole run, so a thread holds one vCPU at a time).
   *
   * @remarks Models kvm_main.c:kvm_vcpu_ioctl() (the `vcpu->mutex`) + powerpc.c:
   * kvm_arch_vcpu_ioctl_run().
   */
  enterRun(exits: KvmExitHandler): KvmVcpuRun | number {
    if (this.run !== null) return -EBUSY;
    const k = this.vm.kvm;
    let cpu = -1;
    for (let i = 0; i < k.nrCpus; i++) {
      const c = (this.preferredCpu + i) % k.nrCpus;
      if (k.runningOn[c] === null) {
        cpu = c;
        break;
      }
    }
    if (cpu < 0) return -EBUSY;
    this.hostCpu = cpu;
    const run = new KvmVcpuRun(this, exits);
    this.run = run;
    k.runningOn[this.hostCpu] = run;
    this.stats.runs++;
    run.enter();
    return run;
  }

  /** VM destruction: leave KVM_RUN, drop the XIVE context if still connected. */
  destroy(): void {
    this.run?.stop();
    const x = this.xive();
    if (x !== null) x.cleanupVcpu(this.arch);
  }
}

/** Entries of a run's translation cache, direct-mapped by gfn modulo this. */
const TLB_SIZE = 64;
const TLB_SCALE = 1 / TLB_SIZE;
/** The translation cache's spare slot: a fault's pfn, never a hit (its gfn stays −1). */
const TLB_SPARE = 1 + 3 * TLB_SIZE;

/**
 * The vCPU inside KVM_RUN: what the guest executes through. {@link stop} leaves KVM_RUN (the
 * VMM's vCPU thread returning from the loop: pause, migration, teardown).
 */
export class KvmVcpuRun implements KvmGuestContext {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly vcpu: KvmVcpu;
  declare readonly exits: KvmExitHandler;
  declare running: boolean;
  /** The VMM's exit handler is running (the context is pulled). */
  declare inExit: boolean;
  /** The last KVM_RUN failure (−errno), or 0. */
  declare lastError: number;
  declare private readonly tmp: Word64;
  /** The VM's partition-scoped tree, the host frames and the host thread: fixed for the run. */
  declare private readonly pt: PartitionTable;
  declare private readonly frames: PhysFrames;
  declare private readonly cpu: number;
  /** The host thread's context, whose OS ring holds this vCPU's while it is pushed. */
  declare private readonly tctx: XiveTctx;
  /**
   * The run's translation cache (what the hardware's TLB is to the partition-scoped tree), one
   * typed array: `tlb[0]` is the table's generation the entries were filled under, then per
   * slot (direct-mapped by gfn mod {@link TLB_SIZE}) the gfn (−1: empty), the pfn and 1 when a
   * write may use it. The table bumps its generation whenever a present entry changes or goes
   * (removal, write-protection, an insert over it), so a zap, an unmap or a memslot change
   * empties the cache before the very next access. A typed array only: an access writes no
   * field, so it may run on a world the explorer froze (see `check/explore/heap-snapshot.ts`).
   */
  declare private readonly tlb: Float64Array;
  /** {@link PartitionTable.generation}. */
  declare private readonly ptGen: Float64Array;

  constructor(vcpu: KvmVcpu, exits: KvmExitHandler) {
    this.vcpu = vcpu;
    this.exits = exits;
    this.running = true;
    this.inExit = false;
    this.lastError = 0;
    this.tmp = new Word64();
    const k = vcpu.vm.kvm;
    this.pt = vcpu.vm.pt;
    this.frames = k.frames;
    this.cpu = vcpu.hostCpu;
    this.tctx = k.xive.chip.tctxs[vcpu.hostCpu]!;
    this.ptGen = this.pt.generation;
    this.tlb = new Float64Array(TLB_SPARE + 3).fill(-1);
  }

  /** Guest entry: push the XIVE context on the host thread. */
  enter(): void {
    const x = this.vcpu.vm.arch.xive;
    if (x instanceof KvmXiveNative) x.pushVcpu(this.vcpu.arch, this.cpu);
  }

  /** Guest exit: pull the XIVE context. */
  private leave(): void {
    const x = this.vcpu.vm.arch.xive;
    if (x instanceof KvmXiveNative) x.pullVcpu(this.vcpu.arch);
  }

  /** Leave KVM_RUN for good (the context is pulled, the host thread freed). */
  stop(): void {
    if (!this.running) return;
    if (!this.inExit) this.leave();
    this.running = false;
    if (this.vcpu.run === this) this.vcpu.run = null;
    const k = this.vcpu.vm.kvm;
    if (k.runningOn[this.cpu] === this) k.runningOn[this.cpu] = null;
  }

  private check(): void {
    if (!this.running || this.inExit) {
      throw new Error(`vCPU ${this.vcpu.vcpuId}: guest executing outside KVM_RUN`);
    }
  }

  get externalInterrupt(): boolean {
    return this.running && !this.inExit && this.tctx.osLine;
  }

  /** An exit to the VMM: pull, handler, push again unless the VMM stopped the run. */
  private exitToVmm(): void {
    this.leave();
    this.inExit = true;
  }

  /** Back from the VMM's handler: push again, unless the handler stopped this run. */
  private reenter(): void {
    this.inExit = false;
    if (this.running) this.enter();
  }

  /**
   * Resolve a gfn for an access: the cache slot `i` whose `tlb[i + 1]` holds the pfn, or
   * {@link KVM_PT_NO_SLOT}, or −errno. The translation cache first; on a miss the
   * partition-scoped tree (a hit there is cached), then the fault (its pfn in the spare slot,
   * uncached). A slot, not the pfn: a host MMIO pfn is past the JIT's small integers, and a
   * returned or passed pfn that a call does not inline is boxed (a heap number per access).
   */
  private translate(gfn: number, write: boolean): number {
    const tlb = this.tlb;
    const gen = this.ptGen[0]!;
    const i = 1 + 3 * (gfn - Math.floor(gfn * TLB_SCALE) * TLB_SIZE);
    if (tlb[0] !== gen) {
      tlb.fill(-1);
      tlb[0] = gen;
    } else if (tlb[i] === gfn && (!write || tlb[i + 2] === 1)) {
      return i;
    }
    if (!this.pt.lookupInto(gfn, write, tlb, i + 1)) {
      const r = this.vcpu.vm.partitionFault(gfn, write);
      if (r < 0) return r;
      tlb[TLB_SPARE + 1] = r;
      return TLB_SPARE;
    }
    tlb[i] = gfn;
    tlb[i + 2] = write ? 1 : 0;
    return i;
  }

  private fail(err: number, gpa: number): void {
    this.lastError = err;
    this.vcpu.stats.runFailures++;
    this.vcpu.vm.kvm.emit('kvm.run.fail', { vcpu: this.vcpu.vcpuId, errno: -err, gpa });
    this.exitToVmm();
    try {
      this.exits.runFailed?.(err, gpa);
    } finally {
      this.reenter();
    }
  }

  /** The MMIO exit of an access no memslot covers (`KVM_EXIT_MMIO`); `data` in or out. */
  private mmioExit(gpa: number, size: AccessSize, write: boolean, data: Word64): void {
    this.vcpu.stats.mmioExits++;
    this.vcpu.vm.stats.mmioExits++;
    const k = this.vcpu.vm.kvm;
    if (k.trace.mask & TRACE_KVM)
      k.emit('kvm.exit.mmio', { vcpu: this.vcpu.vcpuId, gpa, size, write: +write });
    this.exitToVmm();
    try {
      this.exits.mmio(gpa, size, write, data);
    } finally {
      this.reenter();
    }
  }

  load(gpa: number, size: AccessSize, out: Word64): void {
    this.check();
    const gfn = Math.floor(gpa * PAGE_SCALE);
    const off = gpa - gfn * PAGE_SIZE;
    if (off + size > PAGE_SIZE) {
      this.crossingLoad(gpa, size, out);
      return;
    }
    const slot = this.translate(gfn, false);
    if (slot > 0) this.frames.load(this.tlb[slot + 1]!, off, size, this.cpu, out);
    else this.loadNoFrame(gpa, size, slot, out);
  }

  /**
   * {@link load} of a gfn with no frame (`pfn` < 0): the MMIO exit, or a failed run (out of the
   * access path's line: it stays small enough for the JIT to inline).
   */
  private loadNoFrame(gpa: number, size: AccessSize, pfn: number, out: Word64): void {
    if (pfn === KVM_PT_NO_SLOT) {
      this.mmioExit(gpa, size, false, out);
    } else {
      out.setOnes();
      this.fail(pfn, gpa);
    }
  }

  store(gpa: number, size: AccessSize, hi: number, lo: number): void {
    this.check();
    const gfn = Math.floor(gpa * PAGE_SCALE);
    const off = gpa - gfn * PAGE_SIZE;
    if (off + size > PAGE_SIZE) {
      this.crossingStore(gpa, size, hi, lo);
      return;
    }
    const slot = this.translate(gfn, true);
    if (slot > 0) this.frames.store(this.tlb[slot + 1]!, off, size, hi, lo, this.cpu);
    else this.storeNoFrame(gpa, size, slot, hi, lo);
  }

  /** {@link store} of a gfn with no frame, as {@link loadNoFrame}. */
  private storeNoFrame(gpa: number, size: AccessSize, pfn: number, hi: number, lo: number): void {
    if (pfn === KVM_PT_NO_SLOT) this.mmioExit(gpa, size, true, this.tmp.set(hi, lo));
    else this.fail(pfn, gpa);
  }

  /**
   * A page-crossing access, byte by byte (guests do not issue these for MMIO). When a byte's
   * exit handler ended the run (stopped it, or closed the VM's fds), the rest of the access is
   * abandoned, as an instruction interrupted by the vCPU leaving the guest: `out` is not
   * written and no further byte is accessed.
   */
  private crossingLoad(gpa: number, size: AccessSize, out: Word64): void {
    let hi = 0;
    let lo = 0;
    const w = new Word64();
    for (let k = 0; k < size; k++) {
      if (!this.running) return;
      this.load(gpa + k, 1, w);
      hi = ((hi << 8) | (lo >>> 24)) >>> 0;
      lo = ((lo << 8) | (w.lo & 0xff)) >>> 0;
    }
    if (size < 8) hi = 0;
    out.set(hi, lo);
  }

  /** As {@link crossingLoad}: the bytes before the run ended are stored, the rest abandoned. */
  private crossingStore(gpa: number, size: AccessSize, hi: number, lo: number): void {
    for (let k = 0; k < size; k++) {
      if (!this.running) return;
      const shift = 8 * (size - 1 - k);
      const byte = shift >= 32 ? (hi >>> (shift - 32)) & 0xff : (lo >>> shift) & 0xff;
      this.store(gpa + k, 1, 0, byte);
    }
  }

  /** `sc 1`: every hcall exits to the VMM (`KVM_EXIT_PAPR_HCALL`). */
  hcall(opcode: number, args: readonly bigint[], out: bigint[]): number {
    this.check();
    this.vcpu.stats.hcallExits++;
    this.vcpu.vm.stats.hcallExits++;
    const k = this.vcpu.vm.kvm;
    if (k.trace.mask & TRACE_KVM) k.emit('kvm.exit.hcall', { vcpu: this.vcpu.vcpuId, opcode });
    this.exitToVmm();
    try {
      return this.exits.paprHcall(opcode, args, out);
    } finally {
      this.reenter();
    }
  }
}
