/**
 * The KVM accelerator of the VMM: `/dev/kvm`, the VM, guest RAM as anonymous memory of the VMM
 * process registered through the KVM memory listener, and the vCPUs, each a vCPU thread sitting
 * in KVM_RUN whose exits (MMIO with no memslot, hcalls) are served by the machine.
 *
 * Everything goes through syscalls on the VMM's {@link HostProcess}: the accelerator never
 * reaches into the host's objects.
 */

import type { GuestVcpu, LoadResult } from '../guest/platform.ts';
import type { Host } from '../host/host.ts';
import {
  KVM_API_VERSION,
  KVM_CAP_NR_MEMSLOTS,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_GET_API_VERSION,
} from '../host/kvm/uapi.ts';
import type { KvmExitHandler, KvmGuestContext, KvmVcpuRun } from '../host/kvm/vcpu.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../host/mm/constants.ts';
import type { HostProcess } from '../host/syscalls.ts';
import { type AccessSize, Word64 } from '../hw/mmio.ts';
import type { XiveTctx } from '../hw/xive/tctx.ts';
import { traceEvent } from '../sim/trace-events.ts';
import { NULL_TRACE, TRACE_VMM, type TraceSink } from '../sim/trace-sink.ts';
import type { AddressSpace } from './address-space.ts';
import { KvmMemoryListener } from './kvm-memory-listener.ts';
import { MemoryRegion, type RamBacking } from './memory-region.ts';
import { SpaprCpu, type SpaprCpuHost } from './spapr-cpu.ts';

/** Guest RAM as the VMM reaches it: its own anonymous mapping, through its page tables. */
class ProcessRam implements RamBacking {
  private readonly proc: HostProcess;
  private readonly base: number;
  private readonly name: string;
  /** The load result (callers pass plain `{hi, lo}` records, the process fills a Word64). */
  private readonly w: Word64;
  constructor(proc: HostProcess, base: number, name: string) {
    this.proc = proc;
    this.base = base;
    this.name = name;
    this.w = new Word64();
  }
  load(offset: number, size: AccessSize, out: { hi: number; lo: number }): void {
    const sig = this.proc.load(this.base + offset, size, this.w);
    if (sig !== 0) throw new Error(`${this.name}: VMM load at +0x${offset.toString(16)} took signal ${sig}`);
    out.hi = this.w.hi;
    out.lo = this.w.lo;
  }
  store(offset: number, size: AccessSize, hi: number, lo: number): void {
    const sig = this.proc.store(this.base + offset, size, hi, lo);
    if (sig !== 0) throw new Error(`${this.name}: VMM store at +0x${offset.toString(16)} took signal ${sig}`);
  }
}

/**
 * The accelerator state (QEMU's `KVMState`): the VMM process, `/dev/kvm`, the VM fd, the
 * memory listener and the vCPU fds.
 *
 * @remarks Models accel/kvm/kvm-all.c:kvm_init() (open, API version, KVM_CREATE_VM,
 * KVM_CAP_NR_MEMSLOTS), kvm_memory_listener_register() and kvm_init_vcpu()
 * (KVM_CREATE_VCPU).
 */
export class KvmAccel {
  readonly host: Host;
  /** The VMM process. */
  readonly proc: HostProcess;
  readonly kvmFd: number;
  readonly vmFd: number;
  /** `KVM_CAP_NR_MEMSLOTS`. */
  readonly nrSlots: number;
  /** The listener on the system address space, once registered. */
  listener: KvmMemoryListener | null;
  readonly vcpuFds: number[];
  readonly trace: TraceSink;

  constructor(host: Host, trace: TraceSink = NULL_TRACE) {
    this.host = host;
    this.trace = trace;
    this.proc = host.spawn();
    this.kvmFd = this.proc.open('/dev/kvm');
    if (this.kvmFd < 0) throw new Error(`Could not access KVM kernel module: errno ${-this.kvmFd}`);
    const ver = this.proc.ioctl(this.kvmFd, KVM_GET_API_VERSION, 0);
    if (ver !== KVM_API_VERSION) throw new Error(`kvm version not supported (${ver})`);
    this.vmFd = this.proc.ioctl(this.kvmFd, KVM_CREATE_VM, 0);
    if (this.vmFd < 0) throw new Error(`ioctl(KVM_CREATE_VM) failed: errno ${-this.vmFd}`);
    const slots = this.proc.ioctl(this.vmFd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    // QEMU: "If we don't have the NR_MEMSLOTS capability, assume 32".
    this.nrSlots = slots > 0 ? slots : 32;
    this.listener = null;
    this.vcpuFds = [];
  }

  /**
   * Guest RAM: an anonymous private mapping of the VMM (`qemu_ram_alloc` → `qemu_anon_ram_alloc`)
   * wrapped as a RAM region whose VMM accesses go through the process's page tables.
   *
   * @remarks Models softmmu/physmem.c:qemu_ram_alloc() / util/oslib-posix.c:qemu_anon_ram_alloc().
   */
  allocRam(name: string, size: number): MemoryRegion {
    const hva = this.proc.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (hva < 0) throw new Error(`cannot set up guest memory '${name}': errno ${-hva}`);
    return MemoryRegion.ramBacked(name, size, hva, new ProcessRam(this.proc, hva, name));
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_memory_listener_register() on address_space_memory. */
  listen(as: AddressSpace): KvmMemoryListener {
    if (this.listener !== null) throw new Error('KVM memory listener already registered');
    const l = new KvmMemoryListener(this.proc, this.vmFd, { nrSlots: this.nrSlots });
    this.listener = l;
    as.addListener(l);
    return l;
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_init_vcpu() (KVM_CREATE_VCPU with the vCPU id). */
  createVcpu(id: number): number {
    const fd = this.proc.ioctl(this.vmFd, KVM_CREATE_VCPU, id);
    if (fd < 0) throw new Error(`kvm_init_vcpu: kvm_get_vcpu failed (${id}): errno ${-fd}`);
    this.vcpuFds[id] = fd;
    return fd;
  }
}

/** What a KVM vCPU serves on exits: the machine's system address space and hcall dispatch. */
export interface KvmCpuMachine extends SpaprCpuHost {
  readonly sysmem: AddressSpace;
}

/**
 * A sPAPR vCPU under KVM: the guest executes through the vCPU's KVM_RUN context (partition-
 * scoped translation, the context pushed on a host thread); exits are served here, as QEMU's
 * `kvm_cpu_exec` loop does, by dispatching MMIO into the system address space (tagged with this
 * vCPU, QEMU's `current_cpu`) and hcalls into the machine.
 *
 * The emulated thread context {@link SpaprCpu.tctx} stays (QEMU keeps its XiveTCTX for
 * migration and `info pic`), but the external-interrupt line is the host thread's OS ring
 * while the context is pushed. `raises`/`lowers` are not counted under KVM (no edge callback).
 *
 * @remarks Models accel/kvm/kvm-all.c:kvm_cpu_exec() (KVM_EXIT_MMIO → address_space_rw,
 * KVM_EXIT_PAPR_HCALL → kvm_arch_handle_exit → spapr_hypercall).
 */
export class SpaprKvmCpu extends SpaprCpu implements GuestVcpu {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly vcpuFd: number;
  /** The KVM_RUN context, null while the vCPU is stopped. */
  declare run: (KvmGuestContext & KvmVcpuRun) | null;
  /** KVM_RUN failures (QEMU aborts with "kvm run failed"): the last errno and gpa. */
  declare runFailures: { errno: number; gpa: number }[];
  declare private readonly proc: HostProcess;
  declare private readonly exits: KvmExitHandler;
  declare private readonly kw: Word64;

  constructor(id: number, tctx: XiveTctx, machine: KvmCpuMachine, accel: KvmAccel, trace: TraceSink) {
    super(id, machine.sysmem, tctx, machine, trace);
    this.vcpuFd = accel.createVcpu(id);
    this.proc = accel.proc;
    this.run = null;
    this.runFailures = [];
    this.kw = new Word64();
    const sysmem = machine.sysmem;
    this.exits = {
      mmio: (gpa, size, isWrite, data) => {
        if (isWrite) sysmem.store(gpa, size, data.hi, data.lo, id);
        else sysmem.load(gpa, size, id, data);
      },
      paprHcall: (nr, args, out) => machine.hcall(id, nr, args, out),
      runFailed: (errno, gpa) => {
        this.runFailures.push({ errno, gpa });
        if (trace.mask & TRACE_VMM) traceEvent(trace, 'kvm.run_failed', { vcpu: id, errno });
      },
    };
  }

  /** Enter KVM_RUN (the vCPU thread resumes). */
  start(): void {
    if (this.run !== null) return;
    const r = this.proc.kvmRun(this.vcpuFd, this.exits);
    if (typeof r === 'number') throw new Error(`vCPU ${this.id}: KVM_RUN failed: errno ${-r}`);
    this.run = r;
  }

  /** Leave KVM_RUN (pause_all_vcpus). */
  stop(): void {
    if (this.run === null) return;
    this.run.stop();
    this.run = null;
  }

  private ctx(): KvmGuestContext {
    const r = this.run;
    if (r === null) throw new Error(`vCPU ${this.id} is stopped: the guest cannot execute`);
    return r;
  }

  override get externalInterrupt(): boolean {
    return this.run?.externalInterrupt ?? false;
  }

  override load(addr: number, size: AccessSize, out: LoadResult): void {
    const w = this.kw;
    this.ctx().load(addr, size, w);
    out.hi = w.hi;
    out.lo = w.lo;
  }

  override store(addr: number, size: AccessSize, hi: number, lo: number): void {
    this.ctx().store(addr, size, hi >>> 0, lo >>> 0);
  }

  override hcall(opcode: number, args: readonly bigint[], out: bigint[]): number {
    return this.ctx().hcall(opcode, args, out);
  }
}
