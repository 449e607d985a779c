/**
 * Model-based fuzzing of the host API (fast-check `fc.commands`): a host, a VMM process set up as
 * QEMU sets up a VM with the in-kernel XIVE device, then random — often hostile — commands
 * through {@link HostProcess} only: spawn / fork / exit, open / close / eventfd, every KVM, KVM
 * device and VFIO ioctl with well-formed and malformed structs, mmap / munmap / mremap / mprotect
 * of the ESB and TIMA ranges, SCM_RIGHTS, user loads/stores, KVM_RUN with guest accesses whose
 * exit handlers stop the run, re-enter KVM_RUN or close the VM, and the host administrator's
 * VFIO hot-plug. After every command the invariants hold:
 * - no exception escapes the host (a kernel returns, it does not throw);
 * - every syscall returns ≥ 0 or a negative errno of `src/host/errno.ts` that may reach userspace
 *   (never ENOIOCTLCMD / ERESTARTSYS), every user access 0 or SIGSEGV / SIGBUS;
 * - a vCPU runs on at most one host thread, and a thread's run is its vCPU's current run;
 * - I1 routing (`routingViolations`) while the VMM's ESB mapping and memslot are as set up;
 * - I2 isolation (`isolationViolations`) for every empty PHB slot.
 */

import fc from 'fast-check';
import { isolationViolations, type PassthroughIrq, routingViolations } from '../../src/check/passthrough.ts';
import { ENOIOCTLCMD, ERESTARTSYS, errnoName } from '../../src/host/errno.ts';
import { createHost, type Host } from '../../src/host/host.ts';
import { KVM_IRQFD, KVM_IRQFD_FLAG_DEASSIGN, KVM_IRQFD_FLAG_RESAMPLE } from '../../src/host/kvm/irqfd.ts';
import type { KvmVm } from '../../src/host/kvm/kvm.ts';
import {
  encodeKvmCreateDevice,
  encodeKvmDeviceAttr,
  encodeKvmDirtyLog,
  encodeKvmEnableCap,
  encodeKvmOneReg,
  encodeKvmPpcXiveEq,
  encodeKvmUserspaceMemoryRegion,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XICS,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_GRP_CTRL,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE_SYNC,
  KVM_ENABLE_CAP,
  KVM_GET_API_VERSION,
  KVM_GET_DEVICE_ATTR,
  KVM_GET_DIRTY_LOG,
  KVM_GET_ONE_REG,
  KVM_GET_VCPU_MMAP_SIZE,
  KVM_HAS_DEVICE_ATTR,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_REG_PPC_VP_STATE,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_ONE_REG,
  KVM_SET_USER_MEMORY_REGION,
  kvmXiveEqId,
  kvmXiveSourceConfig,
} from '../../src/host/kvm/uapi.ts';
import type { KvmExitHandler, KvmVcpuRun } from '../../src/host/kvm/vcpu.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SIGBUS,
  SIGSEGV,
} from '../../src/host/mm/constants.ts';
import type { HostProcess } from '../../src/host/syscalls.ts';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_ESB_REGION_PGOFF,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../../src/host/vfio/vfio.ts';
import { type AccessSize, Word64 } from '../../src/hw/mmio.ts';
import { PciDevice } from '../../src/hw/phb.ts';
import { SPAPR_XIVE_TM_BASE, SPAPR_XIVE_VC_BASE } from '../../src/vmm/spapr-xive-layout.ts';

const P = 0x1_0000;
/** Guest RAM: slot 0 at gpa 0 (the EQs live here). */
const RAM_PAGES = 16;
/** Sources the VMM's ESB mapping covers (LISNs 0…NR_LISNS−1 are the ones fuzzed). */
const NR_LISNS = 32;
/** QEMU sPAPR's guest addresses of the ESB pages and the TIMA. */
const ESB_GPA = SPAPR_XIVE_VC_BASE;
const TIMA_GPA = SPAPR_XIVE_TM_BASE;
const VCPUS = 2;
const SLOTS = 2;
const MAX_VECTORS = 8;
const MAX_PROCS = 4;
/** Each process's scratch page for ioctl structs (fixed, so a fork inherits it). */
const SCRATCH = 0x7000_0000;

/** Counts of one fuzzing session. */
export class HostFuzzStats {
  /** Syscalls made (setup included), guest accesses and host-admin operations. */
  calls = 0;
  /** Result names: `ok` or the errno's name (`EINVAL`…). */
  readonly results = new Map<string, number>();
  /** Signals of user loads/stores (`SIGSEGV`, `SIGBUS`). */
  readonly signals = new Map<string, number>();
  /** Exceptions out of the host (must stay 0). */
  exceptions = 0;
  /** Invariant violations (must stay 0). */
  violations = 0;
  /** Command sequences run to completion. */
  sequences = 0;

  bump(m: Map<string, number>, k: string): void {
    m.set(k, (m.get(k) ?? 0) + 1);
  }
}

/** A run of a vCPU, with the exit handler that may turn hostile. */
interface RunRec {
  proc: HostProcess;
  fd: number;
  run: KvmVcpuRun;
  exits: FuzzExits;
}

/** What an exit handler does during the next exit (set by the guest access that causes it). */
type ExitAction = 'none' | 'stop' | 'stop-rerun' | 'rerun' | 'close-all' | 'exit-process';

class FuzzExits implements KvmExitHandler {
  action: ExitAction = 'none';
  rec: RunRec | null = null;
  private readonly w: World;
  constructor(w: World) {
    this.w = w;
  }
  mmio(_gpa: number, _size: AccessSize, isWrite: boolean, data: Word64): void {
    if (!isWrite) data.set(0x0bad_cafe, 0xdead_beef);
    this.act();
  }
  paprHcall(_nr: number, _args: readonly bigint[], out: bigint[]): number {
    out[0] = 0n;
    this.act();
    return 0;
  }
  runFailed(errno: number): void {
    this.w.result('KVM_RUN failure', errno < 0 ? errno : -errno);
    this.act();
  }
  private act(): void {
    const a = this.action;
    this.action = 'none';
    const r = this.rec;
    if (r === null || a === 'none') return;
    if (a === 'stop' || a === 'stop-rerun') r.run.stop();
    if (a === 'stop-rerun' || a === 'rerun') this.w.kvmRun(r.proc, r.fd);
    if (a === 'close-all')
      for (const fd of r.proc.proc.openFds()) this.w.sys('close', () => r.proc.close(fd));
    if (a === 'exit-process') this.w.exitProcess(r.proc);
  }
}

/** The fd kinds commands aim at. */
type FdKind = 'kvm' | 'vm' | 'vcpu' | 'dev' | 'vfio' | 'eventfd' | 'any';

/** File operations name → fd kind. */
const FD_KINDS: ReadonlyMap<string, FdKind> = new Map<string, FdKind>([
  ['kvm', 'kvm'],
  ['kvm-vm', 'vm'],
  ['kvm-vcpu', 'vcpu'],
  ['kvm-device', 'dev'],
  ['vfio-device', 'vfio'],
  ['eventfd', 'eventfd'],
]);

/** The real side: the host, its processes, the runs, and the state the set-up left. */
export class World {
  readonly host: Host;
  readonly stats: HostFuzzStats;
  readonly procs: HostProcess[] = [];
  readonly runs: RunRec[] = [];
  /** The VMM, and what its set-up created (the I1 check needs them intact). */
  readonly vmm: HostProcess;
  vmFd = -1;
  devFd = -1;
  vcpuFds: number[] = [];
  esb = -1;
  tima = -1;
  /** Sources the ESB mapping covers created by GRP_SOURCE (the I1 check looks at these). */
  readonly sources = new Set<number>();
  /** vfio number per slot (−1: not bound). */
  readonly vfioN: number[] = new Array<number>(SLOTS).fill(-1);
  /** Slots a function was unplugged from. */
  readonly departed = new Set<number>();
  readonly out = new Word64();

  constructor(stats: HostFuzzStats) {
    this.stats = stats;
    this.host = createHost({
      nrCpus: 4,
      ramFrames: 96,
      nrIpis: 256,
      maxMapCount: 64,
      nrOpen: 48,
      phbs: [{ slots: SLOTS, maxVectors: MAX_VECTORS }],
    });
    this.vmm = this.spawn();
    this.setUp();
  }

  /** A syscall: counted, its result checked and recorded. */
  sys(name: string, f: () => number): number {
    this.stats.calls++;
    const r = f();
    this.result(name, r);
    return r;
  }

  result(name: string, r: number): void {
    if (!Number.isInteger(r)) throw new Error(`${name} returned ${r}, not an integer`);
    if (r >= 0) {
      this.stats.bump(this.stats.results, 'ok');
      return;
    }
    const n = errnoName(r);
    if (n.startsWith('E?') || -r === ENOIOCTLCMD || -r === ERESTARTSYS)
      throw new Error(`${name} returned ${r} (${n}): not an errno userspace may see`);
    this.stats.bump(this.stats.results, n);
  }

  /** A user load/store: 0 or the signal. */
  access(name: string, f: () => number): void {
    this.stats.calls++;
    const r = f();
    if (r === 0) this.stats.bump(this.stats.results, 'ok');
    else if (r === SIGSEGV || r === SIGBUS)
      this.stats.bump(this.stats.signals, r === SIGSEGV ? 'SIGSEGV' : 'SIGBUS');
    else throw new Error(`${name} returned ${r}, neither 0 nor SIGSEGV/SIGBUS`);
  }

  spawn(): HostProcess {
    this.stats.calls++;
    const p = this.host.spawn();
    this.adopt(p);
    return p;
  }

  private adopt(p: HostProcess): void {
    this.procs.push(p);
    this.sys('mmap', () =>
      p.mmap(SCRATCH, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
    );
  }

  fork(p: HostProcess): void {
    this.stats.calls++;
    // fork(2) returns the child or −errno (ENOMEM when private memory cannot be copied).
    const r: HostProcess | number = p.fork();
    if (typeof r === 'number') this.result('fork', r);
    else this.procs.push(r);
  }

  exitProcess(p: HostProcess): void {
    const i = this.procs.indexOf(p);
    if (i < 0) return;
    this.stats.calls++;
    this.procs.splice(i, 1);
    p.exit();
  }

  kvmRun(p: HostProcess, fd: number): void {
    this.stats.calls++;
    const exits = new FuzzExits(this);
    const r = p.kvmRun(fd, exits);
    if (typeof r === 'number') {
      this.result('kvmRun', r);
      return;
    }
    this.stats.bump(this.stats.results, 'ok');
    const rec = { proc: p, fd, run: r, exits };
    exits.rec = rec;
    this.runs.push(rec);
  }

  /** A struct in the process's scratch page: its address (a store there may fault: −EFAULT then). */
  struct(p: HostProcess, b: Uint8Array, off = 0): number {
    p.copyToUser(SCRATCH + off, b);
    return SCRATCH + off;
  }

  u64At(p: HostProcess, v: bigint, off: number): number {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v));
    return this.struct(p, b, off);
  }

  /** The set-up QEMU does: VM, RAM memslot, vCPUs, the XIVE device mapped and connected, EQs. */
  private setUp(): void {
    const p = this.vmm;
    const kvm = this.sys('open', () => p.open('/dev/kvm'));
    this.vmFd = this.sys('KVM_CREATE_VM', () => p.ioctl(kvm, KVM_CREATE_VM, 0));
    const ram = this.sys('mmap', () =>
      p.mmap(0, RAM_PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
    );
    this.setRegion(p, this.vmFd, 0, 0, 0, RAM_PAGES * P, ram);
    for (let i = 0; i < VCPUS; i++)
      this.vcpuFds.push(this.sys('KVM_CREATE_VCPU', () => p.ioctl(this.vmFd, KVM_CREATE_VCPU, i)));
    const cd = this.struct(p, encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    this.sys('KVM_CREATE_DEVICE', () => p.ioctl(this.vmFd, KVM_CREATE_DEVICE, cd));
    this.devFd = p.getU32(cd + 4);
    this.tima = this.sys('mmap', () => p.mmap(0, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, this.devFd, 0));
    this.esb = this.sys('mmap', () =>
      p.mmap(0, 2 * NR_LISNS * P, PROT_READ | PROT_WRITE, MAP_SHARED, this.devFd, 4 * P),
    );
    this.setRegion(p, this.vmFd, 1, 0, ESB_GPA, 2 * NR_LISNS * P, this.esb);
    this.setRegion(p, this.vmFd, 2, 0, TIMA_GPA, 4 * P, this.tima);
    this.vcpuFds.forEach((fd, i) => {
      const cap = this.struct(p, encodeKvmEnableCap({ cap: KVM_CAP_PPC_IRQ_XIVE, args: [this.devFd, i] }));
      this.sys('KVM_ENABLE_CAP', () => p.ioctl(fd, KVM_ENABLE_CAP, cap));
      this.setEq(p, this.devFd, i, 6, 16, BigInt(P * (1 + i)), 1);
    });
    if (this.host.kvm.vms.length !== 1 || this.vcpuFds.some((fd) => fd < 0) || this.esb < 0)
      throw new Error('fuzz set-up failed');
  }

  setRegion(
    p: HostProcess,
    vmFd: number,
    slot: number,
    flags: number,
    gpa: number,
    size: number,
    ua: number,
  ): number {
    const a = this.struct(
      p,
      encodeKvmUserspaceMemoryRegion({
        slot,
        flags,
        guestPhysAddr: BigInt(gpa),
        memorySize: BigInt(size),
        userspaceAddr: BigInt.asUintN(64, BigInt(ua)),
      }),
    );
    return this.sys('KVM_SET_USER_MEMORY_REGION', () => p.ioctl(vmFd, KVM_SET_USER_MEMORY_REGION, a));
  }

  setEq(
    p: HostProcess,
    fd: number,
    server: number,
    prio: number,
    qshift: number,
    qaddr: bigint,
    flags: number,
  ): number {
    const v = this.struct(p, encodeKvmPpcXiveEq({ flags, qshift, qaddr, qtoggle: 1, qindex: 0 }), 256);
    return this.devAttr(p, fd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(server, prio), v);
  }

  devAttr(
    p: HostProcess,
    fd: number,
    req: number,
    group: number,
    attr: bigint,
    addr: number | bigint,
  ): number {
    const a = this.struct(p, encodeKvmDeviceAttr({ group, attr, addr }));
    const r = this.sys('KVM_*_DEVICE_ATTR', () => p.ioctl(fd, req, a));
    // I1 looks at the sources the ESB memslot covers (a source above is created but unmapped).
    const covered = attr < BigInt(NR_LISNS);
    if (
      r === 0 &&
      req === KVM_SET_DEVICE_ATTR &&
      group === KVM_DEV_XIVE_GRP_SOURCE &&
      fd === this.devFd &&
      covered
    )
      this.sources.add(Number(attr));
    return r;
  }

  /** The process's fds of a kind (any fd when it has none of that kind). */
  fdsOf(p: HostProcess, kind: FdKind): number[] {
    const all = p.proc.openFds();
    if (kind === 'any') return all;
    const some = all.filter((fd) => this.kindOf(p, fd) === kind);
    return some.length > 0 ? some : all;
  }

  private kindOf(p: HostProcess, fd: number): FdKind {
    return FD_KINDS.get(p.proc.fget(fd)?.fOp.name ?? '') ?? 'any';
  }

  /** Every invariant; throws on the first broken one. */
  checkInvariants(): void {
    this.checkRunning();
    this.checkIsolation();
    this.checkRouting();
  }

  /** A vCPU is in KVM_RUN on at most one host thread, and each thread's run is its vCPU's run. */
  private checkRunning(): void {
    const seen = new Set<unknown>();
    this.host.kvm.runningOn.forEach((r, cpu) => {
      if (r === null) return;
      if (seen.has(r.vcpu)) throw new Error(`vCPU ${r.vcpu.vcpuId} in KVM_RUN on two host threads`);
      seen.add(r.vcpu);
      if (!r.running || r.vcpu.run !== r)
        throw new Error(`host thread ${cpu} holds a run its vCPU ${r.vcpu.vcpuId} no longer owns`);
    });
  }

  /** I2 for every slot a function has left: nothing maps its ESB pages. */
  private checkIsolation(): void {
    const phb = this.host.phbs[0]!;
    const ranges: (readonly [number, number])[] = [];
    for (const s of this.departed) if (phb.slots[s]!.device === null) ranges.push(...phb.slotPfnRanges(s));
    if (ranges.length === 0) return;
    const gone = (pfn: number): boolean => ranges.some(([a, b]) => pfn >= a && pfn < b);
    for (const vm of this.host.kvm.vms.length ? this.host.kvm.vms : [null]) {
      const v = isolationViolations(this.host, vm, gone, 'an unplugged function');
      if (v.length) throw new Error(`I2: ${v[0]}`);
    }
  }

  /** The set-up is intact: the VM, its XIVE device, the ESB mapping and its memslot as created. */
  private intactVm(): KvmVm | null {
    const vm = this.host.kvm.vms[0];
    if (vm === undefined || vm.dead || !this.procs.includes(this.vmm)) return null;
    const dev = this.vmm.proc.fget(this.devFd);
    if (dev === null || vm.devices[0] === undefined || dev.privateData !== vm.devices[0]) return null;
    const vma = this.vmm.proc.mm.vmas.find(this.esb);
    if (vma === null || vma.start !== this.esb || vma.end !== this.esb + 2 * NR_LISNS * P || vma.pgoff !== 4)
      return null;
    if (vma.file !== dev || (vma.flags & 3) !== 3) return null;
    const slot = vm.memslots.byIdOf(1);
    if (slot === null || slot.baseGfn !== ESB_GPA / P || slot.npages !== 2 * NR_LISNS) return null;
    if (slot.userspaceAddr !== this.esb || slot.flags !== 0) return null;
    return vm;
  }

  /** I1 on every created source, probed by vCPU 0 when it can enter KVM_RUN. */
  private checkRouting(): void {
    const vm = this.intactVm();
    if (vm === null || this.sources.size === 0) return;
    const fd = this.vcpuFds[0]!;
    const vcpu = vm.vcpus[0];
    if (vcpu === undefined || vcpu.run !== null || this.vmm.proc.fget(fd)?.privateData !== vcpu) return;
    const irqs: PassthroughIrq[] = [...this.sources].sort().map((lisn) => ({
      label: `girq ${lisn}`,
      lisn,
      mgmtGpa: ESB_GPA + (2 * lisn + 1) * P,
      retired: false,
    }));
    const run = this.vmm.kvmRun(fd, new FuzzExits(this));
    if (typeof run === 'number') return;
    const w = new Word64();
    const v = routingViolations(this.host, vm, irqs, (gpa) => {
      if (run.running && !run.inExit) run.load(gpa, 8, w);
    });
    run.stop();
    if (v.length) throw new Error(`I1: ${v[0]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

type Real = World;
type Model = object;

/** A command: pure data (so it prints as a repro), applied to the world. */
abstract class HostCommand<A extends object> implements fc.Command<Model, Real> {
  /** The command's choices (indices into what exists when it runs, sizes, flags). */
  readonly a: A;
  constructor(a: A) {
    this.a = a;
  }
  check(): boolean {
    return true;
  }
  run(_m: Model, w: Real): void {
    try {
      this.apply(w);
    } catch (e) {
      throw new Error(`exception in ${this}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    try {
      w.checkInvariants();
    } catch (e) {
      throw new Error(`invariant after ${this}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  abstract apply(w: Real): void;
  abstract toString(): string;
}

const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

class Spawn extends HostCommand<Record<string, never>> {
  apply(w: Real): void {
    if (w.procs.length < MAX_PROCS) w.spawn();
  }
  toString(): string {
    return 'spawn()';
  }
}

class Fork extends HostCommand<{ p: number }> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p !== undefined && w.procs.length < MAX_PROCS) w.fork(p);
  }
  toString(): string {
    return `fork(p${this.a.p})`;
  }
}

class Exit extends HostCommand<{ p: number }> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p !== undefined) w.exitProcess(p);
  }
  toString(): string {
    return `exit(p${this.a.p})`;
  }
}

class Open extends HostCommand<{ p: number; path: string }> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p !== undefined) w.sys('open', () => p.open(this.a.path));
  }
  toString(): string {
    return `open(p${this.a.p}, ${JSON.stringify(this.a.path)})`;
  }
}

class Close extends HostCommand<{ p: number; fd: number; raw: boolean }> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p === undefined) return;
    const fd = this.a.raw ? this.a.fd : (pick(p.proc.openFds(), this.a.fd) ?? this.a.fd);
    w.sys('close', () => p.close(fd));
  }
  toString(): string {
    return `close(p${this.a.p}, ${this.a.raw ? '' : 'fd#'}${this.a.fd})`;
  }
}

class Eventfd extends HostCommand<{ p: number; write: number; fd: number }> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p === undefined) return;
    if (this.a.write === 0) w.sys('eventfd', () => p.eventfd());
    else {
      const fd = pick(w.fdsOf(p, 'eventfd'), this.a.fd) ?? this.a.fd;
      w.sys('eventfd write', () => p.eventfdWrite(fd, this.a.write));
    }
  }
  toString(): string {
    return this.a.write === 0
      ? `eventfd(p${this.a.p})`
      : `eventfdWrite(p${this.a.p}, fd#${this.a.fd}, ${this.a.write})`;
  }
}

/** The ioctl requests fuzzed, with the fd kind each aims at. */
const IOCTLS: readonly [string, number, FdKind][] = [
  ['KVM_GET_API_VERSION', KVM_GET_API_VERSION, 'kvm'],
  ['KVM_CREATE_VM', KVM_CREATE_VM, 'kvm'],
  ['KVM_CHECK_EXTENSION', KVM_CHECK_EXTENSION, 'kvm'],
  ['KVM_GET_VCPU_MMAP_SIZE', KVM_GET_VCPU_MMAP_SIZE, 'kvm'],
  ['KVM_CREATE_VCPU', KVM_CREATE_VCPU, 'vm'],
  ['KVM_SET_USER_MEMORY_REGION', KVM_SET_USER_MEMORY_REGION, 'vm'],
  ['KVM_GET_DIRTY_LOG', KVM_GET_DIRTY_LOG, 'vm'],
  ['KVM_CREATE_DEVICE', KVM_CREATE_DEVICE, 'vm'],
  ['KVM_IRQFD', KVM_IRQFD, 'vm'],
  ['KVM_ENABLE_CAP', KVM_ENABLE_CAP, 'vm'],
  ['KVM_ENABLE_CAP', KVM_ENABLE_CAP, 'vcpu'],
  ['KVM_GET_ONE_REG', KVM_GET_ONE_REG, 'vcpu'],
  ['KVM_SET_ONE_REG', KVM_SET_ONE_REG, 'vcpu'],
  ['KVM_RUN', KVM_RUN, 'vcpu'],
  ['KVM_SET_DEVICE_ATTR', KVM_SET_DEVICE_ATTR, 'dev'],
  ['KVM_GET_DEVICE_ATTR', KVM_GET_DEVICE_ATTR, 'dev'],
  ['KVM_HAS_DEVICE_ATTR', KVM_HAS_DEVICE_ATTR, 'dev'],
  ['VFIO_DEVICE_GET_INFO', VFIO_DEVICE_GET_INFO, 'vfio'],
  ['VFIO_DEVICE_GET_IRQ_INFO', VFIO_DEVICE_GET_IRQ_INFO, 'vfio'],
  ['VFIO_DEVICE_SET_IRQS', VFIO_DEVICE_SET_IRQS, 'vfio'],
  ['VFIO_DEVICE_RESET', VFIO_DEVICE_RESET, 'vfio'],
  ['(random)', 0xc008_ae99, 'any'],
];

/** Small integers, boundary values and hostile ones. */
const wild = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 2, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 2 ** 31 - 1, 2 ** 32 - 1, 0x1000, 0x1fff, 0x2000) },
);

/** One ioctl with an argument built from `v` (struct fields, or a raw pointer when `raw`). */
class Ioctl extends HostCommand<{ p: number; fd: number; req: number; v: number[]; raw: boolean }> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p === undefined) return;
    const [name, req, kind] = IOCTLS[this.a.req % IOCTLS.length]!;
    const fd = pick(w.fdsOf(p, kind), this.a.fd) ?? this.a.fd;
    const v = (i: number): number => (this.a.v[i % this.a.v.length] ?? 0) >>> 0;
    if (this.a.raw) {
      w.sys(name, () => p.ioctl(fd, req, BigInt.asUintN(64, BigInt(v(0)))));
      return;
    }
    switch (req) {
      case KVM_CREATE_VM:
      case KVM_CHECK_EXTENSION:
      case KVM_CREATE_VCPU:
        w.sys(name, () => p.ioctl(fd, req, req === KVM_CREATE_VM ? v(0) % 4 : v(0)));
        return;
      case KVM_SET_USER_MEMORY_REGION: {
        const vmas = p.proc.mm.vmas.all();
        const vma = pick(vmas, v(3));
        const ua = vma ? vma.start + (v(4) % 4) * P : v(4) * P;
        const gpa = [0, ESB_GPA, TIMA_GPA, 0x100_0000, v(5) * P][v(2) % 5]!;
        const flags = [0, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, v(1)][v(1) % 4]!;
        w.setRegion(p, fd, v(0) % 8, flags, gpa, (1 + (v(6) % 8)) * P, ua);
        return;
      }
      case KVM_GET_DIRTY_LOG: {
        const a = w.struct(p, encodeKvmDirtyLog({ slot: v(0) % 5, dirtyBitmap: SCRATCH + 512 }));
        w.sys(name, () => p.ioctl(fd, req, a));
        return;
      }
      case KVM_CREATE_DEVICE: {
        const type = [KVM_DEV_TYPE_XIVE, KVM_DEV_TYPE_XICS, v(0)][v(0) % 3]!;
        const a = w.struct(p, encodeKvmCreateDevice({ type, flags: v(1) % 3 }));
        w.sys(name, () => p.ioctl(fd, req, a));
        return;
      }
      case KVM_IRQFD: {
        const b = new Uint8Array(32);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, pick(w.fdsOf(p, 'eventfd'), v(0)) ?? v(0));
        dv.setUint32(4, v(1) % NR_LISNS);
        dv.setUint32(8, [0, KVM_IRQFD_FLAG_DEASSIGN, KVM_IRQFD_FLAG_RESAMPLE, v(2)][v(2) % 4]! >>> 0);
        w.sys(name, () => p.ioctl(fd, req, w.struct(p, b)));
        return;
      }
      case KVM_ENABLE_CAP: {
        const dev = pick(w.fdsOf(p, 'dev'), v(1)) ?? v(1);
        const cap = v(0) % 3 === 0 ? v(0) : KVM_CAP_PPC_IRQ_XIVE;
        const a = w.struct(
          p,
          encodeKvmEnableCap({ cap, flags: v(3) % 5 === 0 ? 1 : 0, args: [dev, v(2) % 4] }),
        );
        w.sys(name, () => p.ioctl(fd, req, a));
        return;
      }
      case KVM_GET_ONE_REG:
      case KVM_SET_ONE_REG: {
        const id = v(0) % 4 === 0 ? BigInt.asUintN(64, BigInt(v(0)) << 32n) : KVM_REG_PPC_VP_STATE;
        w.u64At(p, BigInt(v(1)) << 32n, 512);
        w.u64At(p, BigInt(v(2)), 520);
        const a = w.struct(p, encodeKvmOneReg({ id, addr: v(3) % 6 === 0 ? v(3) : SCRATCH + 512 }));
        w.sys(name, () => p.ioctl(fd, req, a));
        return;
      }
      case KVM_SET_DEVICE_ATTR:
      case KVM_GET_DEVICE_ATTR:
      case KVM_HAS_DEVICE_ATTR:
        this.devAttr(w, p, fd, req, v);
        return;
      case VFIO_DEVICE_SET_IRQS: {
        const n = v(0) % (MAX_VECTORS + 2);
        const b = new Uint8Array(20 + 4 * n);
        const dv = new DataView(b.buffer);
        const data = [VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_BOOL][v(1) % 3]!;
        const action = [VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_UNMASK][
          v(2) % 3
        ]!;
        dv.setUint32(0, v(3) % 7 === 0 ? v(3) >>> 0 : b.length);
        dv.setUint32(4, data | action);
        dv.setUint32(8, v(4) % 4 === 0 ? v(4) % 6 : VFIO_PCI_MSIX_IRQ_INDEX);
        dv.setUint32(12, v(5) % 3);
        dv.setUint32(16, n);
        const efds = w.fdsOf(p, 'eventfd');
        for (let i = 0; i < n; i++) {
          const efd = data === VFIO_IRQ_SET_DATA_BOOL ? v(6 + i) & 1 : (pick(efds, v(6 + i)) ?? -1);
          dv.setUint32(20 + 4 * i, efd >>> 0);
        }
        w.sys(name, () => p.ioctl(fd, req, w.struct(p, b)));
        return;
      }
      default: {
        const b = new Uint8Array(16);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, v(0) % 3 === 0 ? 16 : v(0) >>> 0);
        dv.setUint32(8, v(1) % 6);
        w.sys(name, () => p.ioctl(fd, req, w.struct(p, b)));
      }
    }
  }

  private devAttr(w: Real, p: HostProcess, fd: number, req: number, v: (i: number) => number): void {
    const group = [
      KVM_DEV_XIVE_GRP_CTRL,
      KVM_DEV_XIVE_GRP_SOURCE,
      KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
      KVM_DEV_XIVE_GRP_EQ_CONFIG,
      KVM_DEV_XIVE_GRP_SOURCE_SYNC,
      v(0),
    ][v(0) % 6]!;
    const lisn = v(1) % 5 === 0 ? v(1) : v(1) % NR_LISNS;
    const addr = v(7) % 9 === 0 ? v(7) : SCRATCH + 256;
    if (group === KVM_DEV_XIVE_GRP_EQ_CONFIG) {
      const qshift = [0, 12, 16, 21, 24, v(3)][v(3) % 6]!;
      const qaddr = [P, 2 * P, (RAM_PAGES - 1) * P, RAM_PAGES * P, ESB_GPA, v(4)][v(4) % 6]!;
      const b = encodeKvmPpcXiveEq({
        flags: v(5) % 4 === 0 ? 0 : 1,
        qshift,
        qaddr: BigInt.asUintN(64, BigInt(qaddr)),
        qtoggle: v(6) & 1,
        qindex: v(6) % 3 === 0 ? v(6) : 0,
      });
      w.struct(p, b, 256);
      w.devAttr(p, fd, req, group, kvmXiveEqId(v(2) % (VCPUS + 1), v(1) % 9), addr);
      return;
    }
    let value = 0n;
    if (group === KVM_DEV_XIVE_GRP_SOURCE_CONFIG)
      value = kvmXiveSourceConfig(v(2) % 9, v(3) % (VCPUS + 1), v(4) % 3 === 0, v(5));
    else if (group === KVM_DEV_XIVE_GRP_SOURCE) value = BigInt(v(2) % 4);
    else if (group === KVM_DEV_XIVE_GRP_CTRL) value = BigInt(v(2));
    w.u64At(p, value, 256);
    const attr = group === KVM_DEV_XIVE_GRP_CTRL ? BigInt(v(1) % 5) : BigInt.asUintN(64, BigInt(lisn));
    w.devAttr(p, fd, req, group, attr, addr);
  }

  toString(): string {
    const [name, , kind] = IOCTLS[this.a.req % IOCTLS.length]!;
    return `ioctl(p${this.a.p}, ${kind}#${this.a.fd}, ${name}, ${this.a.raw ? 'raw ' : ''}[${this.a.v.join(', ')}])`;
  }
}

/** mmap of a device file (TIMA, ESB, VFIO ESB region) or anonymous memory. */
class Mmap extends HostCommand<{
  p: number;
  fd: number;
  what: number;
  pages: number;
  prot: number;
  flags: number;
  at: number;
}> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p === undefined) return;
    const kinds: FdKind[] = ['dev', 'dev', 'vfio', 'any', 'any'];
    const kind = kinds[this.a.what % kinds.length]!;
    const offset = [0, 4 * P, VFIO_PCI_ESB_REGION_PGOFF * P, 0, this.a.at * P][this.a.what % 5]!;
    const fd = this.a.what % 5 === 3 ? -1 : (pick(w.fdsOf(p, kind), this.a.fd) ?? this.a.fd);
    const flags = [MAP_SHARED, MAP_PRIVATE, MAP_SHARED | MAP_FIXED, this.a.flags][this.a.flags % 4]!;
    const vma = pick(p.proc.mm.vmas.all(), this.a.at);
    const addr = flags & MAP_FIXED ? (vma?.start ?? this.a.at * P) : 0;
    const anon = fd < 0 ? MAP_ANONYMOUS : 0;
    w.sys('mmap', () => p.mmap(addr, this.a.pages * P, this.a.prot, flags | anon, fd, offset));
  }
  toString(): string {
    return `mmap(p${this.a.p}, fd#${this.a.fd}, what ${this.a.what}, ${this.a.pages} pages, prot ${this.a.prot}, flags ${this.a.flags}, at ${this.a.at})`;
  }
}

/** munmap / mremap / mprotect of part of an existing mapping (often the ESB or TIMA range). */
class Remap extends HostCommand<{
  p: number;
  op: number;
  vma: number;
  first: number;
  pages: number;
  arg: number;
}> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p === undefined) return;
    const vmas = p.proc.mm.vmas.all();
    // Aim at the ESB/TIMA mappings half of the time.
    const devVmas = vmas.filter((v) => v.start === w.esb || v.start === w.tima);
    const vma = pick(this.a.vma % 2 === 0 && devVmas.length ? devVmas : vmas, this.a.vma);
    const base = vma?.start ?? this.a.arg * P;
    const addr = base + this.a.first * P + (this.a.arg % 7 === 0 ? 0x1000 : 0);
    const len = this.a.pages * P;
    if (this.a.op % 3 === 0) w.sys('munmap', () => p.munmap(addr, len));
    else if (this.a.op % 3 === 1)
      w.sys('mprotect', () => p.mprotect(addr, len, [PROT_NONE, PROT_READ, 3][this.a.arg % 3]!));
    else {
      const flags = [0, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED][this.a.arg % 3]!;
      const to = flags & MREMAP_FIXED ? 0x5000_0000 + this.a.arg * P : 0;
      w.sys('mremap', () => p.mremap(addr, len, (1 + (this.a.arg % 6)) * P, flags, to));
    }
  }
  toString(): string {
    return `${['munmap', 'mprotect', 'mremap'][this.a.op % 3]}(p${this.a.p}, vma#${this.a.vma} +${this.a.first}, ${this.a.pages} pages, ${this.a.arg})`;
  }
}

class SendFd extends HostCommand<{ from: number; to: number; fd: number }> {
  apply(w: Real): void {
    const a = pick(w.procs, this.a.from);
    const b = pick(w.procs, this.a.to);
    if (a === undefined || b === undefined) return;
    const fd = pick(a.proc.openFds(), this.a.fd) ?? this.a.fd;
    w.sys('sendmsg(SCM_RIGHTS)', () => a.sendFd(b, fd));
  }
  toString(): string {
    return `sendFd(p${this.a.from} → p${this.a.to}, fd#${this.a.fd})`;
  }
}

/** A user load or store in a mapping (page `page`, offset `off`). */
class UserAccess extends HostCommand<{
  p: number;
  vma: number;
  page: number;
  off: number;
  size: AccessSize;
  store: boolean;
}> {
  apply(w: Real): void {
    const p = pick(w.procs, this.a.p);
    if (p === undefined) return;
    const vma = pick(p.proc.mm.vmas.all(), this.a.vma);
    const addr = (vma?.start ?? 0x4000_0000) + this.a.page * P + this.a.off;
    if (this.a.store) w.access('store', () => p.store(addr, this.a.size, 0x1234, 0x5678_9abc));
    else w.access('load', () => p.load(addr, this.a.size, w.out));
  }
  toString(): string {
    return `${this.a.store ? 'store' : 'load'}(p${this.a.p}, vma#${this.a.vma} + ${hex(this.a.page * P + this.a.off)}, ${this.a.size})`;
  }
}

const EXIT_ACTIONS: readonly ExitAction[] = [
  'none',
  'none',
  'stop',
  'stop-rerun',
  'rerun',
  'close-all',
  'exit-process',
];

/** KVM_RUN on a vCPU fd, a guest access of a live run (with what its exit does), or a stop. */
class Guest extends HostCommand<{
  op: number;
  target: number;
  where: number;
  off: number;
  size: AccessSize;
  action: number;
}> {
  apply(w: Real): void {
    if (this.a.op === 0) {
      const p = pick(w.procs, this.a.target);
      if (p === undefined) return;
      const fd = pick(w.fdsOf(p, 'vcpu'), this.a.where) ?? this.a.where;
      w.kvmRun(p, fd);
      return;
    }
    const live = w.runs.filter((r) => r.run.running && !r.run.inExit);
    const r = pick(live, this.a.target);
    if (r === undefined) return;
    if (this.a.op === 1) {
      w.stats.calls++;
      r.run.stop();
      return;
    }
    r.exits.action = EXIT_ACTIONS[this.a.action % EXIT_ACTIONS.length]!;
    w.stats.calls++;
    if (this.a.op === 2) {
      r.run.hcall(0x3a8 + 4 * (this.a.where % 12), [BigInt(this.a.off), 0n, 0n], []);
      return;
    }
    const lisn = this.a.where % NR_LISNS;
    const bases = [
      ESB_GPA + 2 * lisn * P,
      ESB_GPA + (2 * lisn + 1) * P,
      TIMA_GPA + (this.a.where % 4) * P,
      P * (this.a.where % RAM_PAGES),
      0x2000_0000,
      // Page-crossing accesses.
      ESB_GPA + 2 * lisn * P - 4,
      P * (1 + (this.a.where % RAM_PAGES)) - 3,
    ];
    const base = bases[this.a.where % bases.length]!;
    const gpa = base + (this.a.where % bases.length >= 5 ? 0 : this.a.off);
    if (this.a.op === 3) r.run.load(gpa, this.a.size, w.out);
    else r.run.store(gpa, this.a.size, 0, this.a.off & 0xff);
  }
  toString(): string {
    const what = ['kvmRun', 'stop', 'hcall', 'guest load', 'guest store'][this.a.op];
    return `${what}(#${this.a.target}, where ${this.a.where}, off ${hex(this.a.off)}, size ${this.a.size}, exit ${EXIT_ACTIONS[this.a.action % EXIT_ACTIONS.length]})`;
  }
}

/** The host administrator and the devices: plug, bind, unbind, unplug, MSIs. */
class Admin extends HostCommand<{ op: number; slot: number; n: number }> {
  apply(w: Real): void {
    const phb = w.host.phbs[0]!;
    const s = this.a.slot % SLOTS;
    w.stats.calls++;
    switch (this.a.op) {
      case 0: {
        const dev = new PciDevice({ name: `fn${s}`, msix: 1 + (this.a.n % MAX_VECTORS) });
        phb.plug(s, dev);
        return;
      }
      case 1: {
        const n = w.host.vfioBind(0, s);
        w.result('vfio bind', n);
        if (n >= 0) w.vfioN[s] = n;
        return;
      }
      case 2: {
        if (w.vfioN[s]! >= 0) w.result('vfio unbind', w.host.vfioUnbind(w.vfioN[s]!));
        w.vfioN[s] = -1;
        if (phb.unplug(s) !== null) w.departed.add(s);
        return;
      }
      case 3:
        phb.slots[s]!.device?.raiseMsi(this.a.n % MAX_VECTORS);
        return;
      default:
        this.assign(w, s);
    }
  }

  /** What QEMU's vfio-pci does: open, an eventfd + KVM_IRQFD per vector, SET_IRQS. */
  private assign(w: Real, s: number): void {
    const p = w.vmm;
    if (!w.procs.includes(p) || w.vfioN[s]! < 0) return;
    const vfd = w.sys('open', () => p.open(`/dev/vfio/devices/vfio${w.vfioN[s]}`));
    const n = 1 + (this.a.n % 3);
    const efds: number[] = [];
    for (let i = 0; i < n; i++) {
      const efd = w.sys('eventfd', () => p.eventfd());
      efds.push(efd);
      const b = new Uint8Array(32);
      new DataView(b.buffer).setUint32(0, efd >>> 0);
      new DataView(b.buffer).setUint32(4, (this.a.n + i) % NR_LISNS);
      w.sys('KVM_IRQFD', () => p.ioctl(w.vmFd, KVM_IRQFD, w.struct(p, b)));
    }
    const b = new Uint8Array(20 + 4 * n);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, b.length);
    dv.setUint32(4, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
    dv.setUint32(8, VFIO_PCI_MSIX_IRQ_INDEX);
    dv.setUint32(16, n);
    efds.forEach((e, i) => {
      dv.setUint32(20 + 4 * i, e >>> 0);
    });
    w.sys('VFIO_DEVICE_SET_IRQS', () => p.ioctl(vfd, VFIO_DEVICE_SET_IRQS, w.struct(p, b)));
  }

  toString(): string {
    return `${['plug', 'vfio bind', 'unbind+unplug', 'raise MSI', 'assign'][this.a.op]}(slot ${this.a.slot}, ${this.a.n})`;
  }
}

const proc = fc.nat({ max: MAX_PROCS * 3 });
const small = fc.nat({ max: 40 });
const size = fc.constantFrom<AccessSize>(1, 2, 4, 8);

/** The command arbitraries, weighted towards the XIVE device and the guest. */
export const hostCommands: fc.Arbitrary<fc.Command<Model, Real>>[] = [
  fc.constant(new Spawn({})),
  fc.record({ p: proc }).map((a) => new Fork(a)),
  fc.record({ p: proc }).map((a) => new Exit(a)),
  fc
    .record({
      p: proc,
      path: fc.constantFrom(
        '/dev/kvm',
        '/dev/vfio/devices/vfio0',
        '/dev/vfio/devices/vfio1',
        '/dev/vfio/devices/vfio7',
        '/dev/null',
      ),
    })
    .map((a) => new Open(a)),
  fc.record({ p: proc, fd: wild, raw: fc.boolean() }).map((a) => new Close(a)),
  fc.record({ p: proc, write: fc.nat({ max: 3 }), fd: small }).map((a) => new Eventfd(a)),
  ...[1, 2, 3].map(() =>
    fc
      .record({
        p: proc,
        fd: small,
        req: fc.nat({ max: IOCTLS.length * 4 }),
        v: fc.array(wild, { minLength: 1, maxLength: 12 }),
        raw: fc.nat({ max: 9 }).map((n) => n === 0),
      })
      .map((a) => new Ioctl(a)),
  ),
  fc
    .record({
      p: proc,
      fd: small,
      what: fc.nat({ max: 9 }),
      pages: fc.integer({ min: 1, max: 2 * NR_LISNS + 8 }),
      prot: fc.nat({ max: 7 }),
      flags: fc.nat({ max: 7 }),
      at: small,
    })
    .map((a) => new Mmap(a)),
  ...[1, 2].map(() =>
    fc
      .record({
        p: proc,
        op: fc.nat({ max: 2 }),
        vma: small,
        first: fc.nat({ max: 2 * NR_LISNS }),
        pages: fc.integer({ min: 0, max: 8 }),
        arg: small,
      })
      .map((a) => new Remap(a)),
  ),
  fc.record({ from: proc, to: proc, fd: small }).map((a) => new SendFd(a)),
  fc
    .record({
      p: proc,
      vma: small,
      page: fc.nat({ max: 2 * NR_LISNS }),
      off: fc.constantFrom(0, 0x400, 0x800, 0xc00, 0xd00, 0xfff8),
      size,
      store: fc.boolean(),
    })
    .map((a) => new UserAccess(a)),
  ...[1, 2, 3].map(() =>
    fc
      .record({
        op: fc.nat({ max: 4 }),
        target: small,
        where: fc.nat({ max: 200 }),
        off: fc.constantFrom(0, 0x400, 0x800, 0xc00, 0xd00, 0xe00, 0xf00, 0x10, 0x830, 0xfffc),
        size,
        action: fc.nat({ max: 20 }),
      })
      .map((a) => new Guest(a)),
  ),
  fc.record({ op: fc.nat({ max: 4 }), slot: fc.nat({ max: 3 }), n: small }).map((a) => new Admin(a)),
];

export interface HostFuzzOptions {
  seed: number;
  /** Command sequences (fast-check runs). */
  runs: number;
  /** Commands per sequence at most. */
  maxCommands: number;
  /** fast-check replay path of a failure (with the seed), to re-run just it. */
  path?: string;
}

export interface HostFuzzResult {
  stats: HostFuzzStats;
  /** null, or the shrunk failing sequence with its seed and replay path. */
  failure: string | null;
}

/** Run the host-API fuzzer. */
export function fuzzHostApi(o: HostFuzzOptions): HostFuzzResult {
  const stats = new HostFuzzStats();
  // Shrinking re-runs sequences: only the runs before the first failure are counted.
  let counting = true;
  const prop = fc.property(fc.commands(hostCommands, { maxCommands: o.maxCommands, size: 'max' }), (cmds) => {
    const world = new World(counting ? stats : new HostFuzzStats());
    try {
      fc.modelRun(() => ({ model: {}, real: world }), cmds);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (counting) {
        if (msg.startsWith('exception')) stats.exceptions++;
        else stats.violations++;
      }
      counting = false;
      throw e;
    }
    if (counting) stats.sequences++;
  });
  const params: fc.Parameters<[Iterable<fc.Command<Model, Real>>]> = { seed: o.seed, numRuns: o.runs };
  if (o.path !== undefined) params.path = o.path;
  const d = fc.check(prop, params);
  if (!d.failed) return { stats, failure: null };
  const err = d.errorInstance instanceof Error ? d.errorInstance.message : String(d.errorInstance);
  return { stats, failure: `${err}\n${fc.defaultReportMessage(d) ?? ''}` };
}
