/**
 * A host process as userspace sees it: raw syscalls (a result ≥ 0 or −errno) on file
 * descriptors, ioctls with user pointers, mmap and friends, and loads/stores that return the
 * signal they raise. This is the only surface the VMM uses to reach the host kernel.
 *
 * Plus a few helpers a C program would get from libc or the stack: a scratch arena of user
 * memory ({@link HostProcess.userAlloc}) and big-endian accessors to it.
 */

import type { AccessSize, Word64 } from '../hw/mmio.ts';
import { EBADF, EFAULT, EIO, ENOENT, ENOMEM, ENOTTY } from './errno.ts';
import type { Host } from './host.ts';
import { eventfdCreate, eventfdCtxFileget, eventfdFdgetFrom } from './kvm/irqfd.ts';
import { type KvmUser, KvmVm } from './kvm/kvm.ts';
import { kvmDeviceFromFilp } from './kvm/kvm-device.ts';
import { userPtr } from './kvm/uapi.ts';
import type { KvmExitHandler, KvmGuestContext, KvmVcpuRun } from './kvm/vcpu.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from './mm/constants.ts';
import { fput } from './mm/file.ts';
import type { Process } from './mm/process.ts';
import { decodeU64, structView } from './mm/uaccess.ts';
import { VfioPciDevice, vfioDeviceFile, vfioPciIoctl } from './vfio/vfio.ts';

/** Size of each chunk of the user scratch arena. */
const ARENA_CHUNK = 16 * PAGE_SIZE;

/**
 * A userspace process.
 *
 * @remarks The syscall entry points model fs/ioctl.c:do_vfs_ioctl() → f_op->unlocked_ioctl,
 * fs/open.c (device nodes), fs/eventfd.c, and the mm syscalls of {@link Process}.
 */
export class HostProcess implements KvmUser {
  readonly host: Host;
  readonly proc: Process;
  readonly pid: number;
  private arenaNext: number;
  private arenaEnd: number;
  /** The {@link scratch} buffer: its address and length (0: none yet). */
  private scratchAddr: number;
  private scratchLen: number;
  /**
   * The bytes {@link putU32} / {@link putU64} copy out, reused: a fresh array per call would need
   * an ArrayBuffer (a malloc) for its DataView.
   */
  private readonly word8: Uint8Array;
  private readonly word4: Uint8Array;
  private readonly wordView: DataView;

  constructor(host: Host, proc: Process) {
    this.host = host;
    this.proc = proc;
    this.pid = proc.pid;
    this.arenaNext = 0;
    this.arenaEnd = 0;
    this.scratchAddr = 0;
    this.scratchLen = 0;
    this.word8 = new Uint8Array(8);
    this.word4 = this.word8.subarray(0, 4);
    this.wordView = new DataView(this.word8.buffer);
  }

  // ---- files ----

  /**
   * open(2) of a device node, O_RDWR: '/dev/kvm', '/dev/vfio/devices/vfioN' (N from
   * `Host.vfioBind`); any other path −ENOENT. The fd, or −errno (−EMFILE, −ENODEV for an
   * unplugged VFIO function).
   */
  open(path: string): number {
    if (path === '/dev/kvm') {
      const f = this.host.kvm.openChardev();
      const fd = this.proc.installFd(f);
      if (fd < 0) fput(f);
      return fd;
    }
    const m = /^\/dev\/vfio\/devices\/vfio(\d+)$/.exec(path);
    if (m) {
      const vdev = this.host.vfioDevice(Number(m[1]));
      if (vdev === null) return -ENOENT;
      const f = vfioDeviceFile(this.host.mm, vdev);
      if (typeof f === 'number') return f;
      const fd = this.proc.installFd(f);
      if (fd < 0) fput(f);
      return fd;
    }
    return -ENOENT;
  }

  /** close(2): 0 or −EBADF. The file's release runs when no fd and no mapping holds it. */
  close(fd: number): number {
    return this.proc.close(fd);
  }

  /** eventfd(0, 0): the fd or −EMFILE. */
  eventfd(): number {
    const f = eventfdCreate(this.host.mm);
    const fd = this.proc.installFd(f);
    if (fd < 0) fput(f);
    return fd;
  }

  /**
   * write(2) of the 8-byte counter increment `n` to an eventfd (what a device's MSI does
   * through VFIO, or a test does by hand). 8, −EBADF, or −EINVAL (not an eventfd).
   */
  eventfdWrite(fd: number, n = 1): number {
    const f = this.proc.fget(fd);
    if (f === null) return -EBADF;
    const ctx = eventfdCtxFileget(f);
    if (typeof ctx === 'number') return ctx;
    const r = ctx.eventfdSignal(n);
    return r < 0 ? r : 8;
  }

  /**
   * ioctl(2). `arg` is an integer or a user pointer (a bigint is taken as u64). Dispatch by the
   * file: /dev/kvm, VM, vCPU, KVM device, VFIO device; a file without ioctls → −ENOTTY;
   * a bad fd → −EBADF.
   */
  ioctl(fd: number, request: number, arg: number | bigint): number {
    const file = this.proc.fget(fd);
    if (file === null) return -EBADF;
    const cmd = request >>> 0;
    const a = typeof arg === 'bigint' ? userPtr(BigInt.asUintN(64, arg)) : arg;
    const pd = file.privateData;
    if (pd === this.host.kvm) return this.host.kvm.devIoctl(this, cmd, a);
    const vm = KvmVm.vmOfFile(file);
    if (vm !== null) return vm.ioctl(this, cmd, a);
    const vcpu = KvmVm.vcpuOfFile(file);
    if (vcpu !== null) return vcpu.ioctl(this, cmd, a);
    const dev = kvmDeviceFromFilp(file);
    if (dev !== null) return dev.ioctl(this, cmd, a);
    if (pd instanceof VfioPciDevice) {
      return vfioPciIoctl(
        pd,
        cmd,
        a,
        this,
        eventfdFdgetFrom((n) => this.proc.fget(n)),
      );
    }
    if (file.fOp.unlockedIoctl) return file.fOp.unlockedIoctl(file, cmd, a);
    return -ENOTTY;
  }

  // ---- address space ----

  mmap(addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number {
    return this.proc.mmap(addr, length, prot, flags, fd, offset);
  }

  munmap(addr: number, length: number): number {
    return this.proc.munmap(addr, length);
  }

  mremap(oldAddr: number, oldSize: number, newSize: number, flags: number, newAddr?: number): number {
    return this.proc.mremap(oldAddr, oldSize, newSize, flags, newAddr ?? 0);
  }

  mprotect(addr: number, len: number, prot: number): number {
    return this.proc.mprotect(addr, len, prot);
  }

  /** fork(2): the child (a copy of the address space and of the fd table), or −ENOMEM. */
  fork(): HostProcess | number {
    const proc = this.proc.fork();
    if (typeof proc === 'number') return proc;
    const child = new HostProcess(this.host, proc);
    child.arenaNext = this.arenaNext;
    child.arenaEnd = this.arenaEnd;
    return child;
  }

  /** Pass `fd` to `to` over a unix socket (SCM_RIGHTS): the new fd in `to`, or −errno. */
  sendFd(to: HostProcess, fd: number): number {
    return this.proc.sendFd(to.proc, fd);
  }

  /** exit(2): the address space goes, then every fd. */
  exit(): void {
    this.proc.exit();
  }

  /** A user load: 0 with the value in `out`, or the signal raised (SIGSEGV / SIGBUS). */
  load(addr: number, size: AccessSize, out: Word64): number {
    return this.proc.load(addr, size, out);
  }

  /** A user store: 0, or SIGSEGV / SIGBUS. */
  store(addr: number, size: AccessSize, hi: number, lo: number): number {
    return this.proc.store(addr, size, hi, lo);
  }

  // ---- KVM_RUN ----

  /**
   * The vCPU thread entering KVM_RUN on `vcpuFd`: the context through which the guest executes,
   * or −errno: −EBADF (not a vCPU fd), −EIO (another process's VM), −EBUSY (already running,
   * or every host thread runs a vCPU). It runs on host thread vcpu_idx mod nrCpus, or the next
   * free one. The run lasts until `stop()` on the returned
   * {@link KvmVcpuRun}, the vCPU's VM dying, or its XIVE device being released.
   */
  kvmRun(vcpuFd: number, exits: KvmExitHandler): (KvmGuestContext & KvmVcpuRun) | number {
    const file = this.proc.fget(vcpuFd);
    if (file === null) return -EBADF;
    const vcpu = KvmVm.vcpuOfFile(file);
    if (vcpu === null) return -EBADF;
    if (vcpu.vm.mm !== this.proc.mm || vcpu.vm.dead) return -EIO;
    return vcpu.enterRun(exits);
  }

  // ---- user memory (UserMemory for the kernel side; helpers for the program) ----

  /** `copy_from_user` of `len` bytes: the bytes or −EFAULT. */
  copyFromUser(addr: number, len: number): Uint8Array | number {
    const b = new Uint8Array(len);
    return this.proc.copyFromUser(addr, b) ? -EFAULT : b;
  }

  copyFromUserTo(dst: Uint8Array, addr: number): number {
    return this.proc.copyFromUser(addr, dst) ? -EFAULT : 0;
  }

  /** `copy_to_user`: 0 or −EFAULT. */
  copyToUser(addr: number, bytes: Uint8Array): number {
    return this.proc.copyToUser(addr, bytes) ? -EFAULT : 0;
  }

  /**
   * The process's one reusable user buffer, at least `len` (and 512) bytes, valid until a call
   * asks for more: what a C program keeps on its stack for an ioctl's struct, without growing
   * the arena per call. A forked child starts without one.
   */
  scratch(len: number): number {
    if (this.scratchLen === 0 || this.scratchLen < len) {
      const n = Math.max(len, 512);
      this.scratchAddr = this.userAlloc(n);
      this.scratchLen = n;
    }
    return this.scratchAddr;
  }

  /**
   * `len` bytes of zeroed scratch user memory (8-byte aligned) from an arena of private
   * anonymous mappings. Throws when the process has no address space left (−ENOMEM).
   */
  userAlloc(len: number): number {
    const n = Math.max(8, Math.ceil(len / 8) * 8);
    if (this.arenaNext + n > this.arenaEnd) {
      const size = Math.max(ARENA_CHUNK, Math.ceil(n / PAGE_SIZE) * PAGE_SIZE);
      const a = this.proc.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (a < 0) throw new Error(`userAlloc: mmap failed (${a === -ENOMEM ? 'ENOMEM' : a})`);
      this.arenaNext = a;
      this.arenaEnd = a + size;
    }
    const p = this.arenaNext;
    this.arenaNext += n;
    return p;
  }

  private put(addr: number, b: Uint8Array): void {
    if (this.proc.copyToUser(addr, b)) throw new Error(`user write at 0x${addr.toString(16)} faulted`);
  }

  private get(addr: number, len: number): Uint8Array {
    const b = new Uint8Array(len);
    if (this.proc.copyFromUser(addr, b)) throw new Error(`user read at 0x${addr.toString(16)} faulted`);
    return b;
  }

  putU32(addr: number, v: number): void {
    this.wordView.setUint32(0, v >>> 0);
    this.put(addr, this.word4);
  }

  /** A u64 store: `v` a bigint (taken mod 2^64), or a non-negative safe integer. */
  putU64(addr: number, v: bigint | number): void {
    if (typeof v === 'number') {
      const hi = Math.floor(v / 2 ** 32);
      this.wordView.setUint32(0, hi);
      this.wordView.setUint32(4, v - hi * 2 ** 32);
    } else this.wordView.setBigUint64(0, BigInt.asUintN(64, v));
    this.put(addr, this.word8);
  }

  getU32(addr: number): number {
    return structView(this.get(addr, 4)).getUint32(0);
  }

  getU64(addr: number): bigint {
    return decodeU64(this.get(addr, 8));
  }

  putBytes(addr: number, b: Uint8Array): void {
    this.put(addr, b);
  }

  getBytes(addr: number, len: number): Uint8Array {
    return this.get(addr, len);
  }

  /** Scratch copy of `b` in user memory: its address (for passing a struct to an ioctl). */
  userStruct(b: Uint8Array): number {
    const p = this.userAlloc(b.length);
    this.put(p, b);
    return p;
  }
}
