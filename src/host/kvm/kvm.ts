/**
 * The KVM module of the host kernel (book3s HV on POWER9 with XIVE): the `/dev/kvm` character
 * device, VMs (their fd, memslots, partition-scoped translations, MMU notifier on the creator's
 * mm, irqfds), KVM devices (the XIVE native device behind an anon-inode fd with its mmap), and
 * the vCPU fds (`vcpu.ts`).
 *
 * Every ioctl takes the calling process as a {@link KvmUser} (its memory for user pointers, its
 * fd table) and returns a result ≥ 0 or −errno, as the raw syscall does. Lifetimes follow the
 * kernel's: the VM lives while any of its fds (VM, vCPU, device) is open; a device file lives
 * while an fd or a mapping holds it, and its release runs the device's `release`.
 */

import { type TraceArgs, type TraceKindIn, traceEvent } from '../../sim/trace-events.ts';
import { TRACE_KVM, type TraceSink } from '../../sim/trace-sink.ts';
import { type AtomicStep, driveSteps, mustYield, pfnEffect } from '../atomic-step.ts';
import { EEXIST, EFAULT, EINVAL, EIO, ENODEV, ENOENT, ENOTTY } from '../errno.ts';
import { FAULT_FLAG_WRITE, PAGE_SCALE, PAGE_SIZE, VM_FAULT_ERROR } from '../mm/constants.ts';
import { FAULT_LOCK, FAULT_UNLOCK, FaultStep, faultVma, handleMmFault, stepFault } from '../mm/fault.ts';
import { File, type FileOperations, FMODE_RDWR, fput, type Inode } from '../mm/file.ts';
import type { Mm, MmuNotifier, MmuNotifierRange } from '../mm/mm.ts';
import type { MmHost } from '../mm/mm-host.ts';
import { PTE_WRITE } from '../mm/page-table.ts';
import type { PhysFrames } from '../mm/phys-frames.ts';
import type { Process } from '../mm/process.ts';
import type { UserMemory } from '../mm/uaccess.ts';
import type { IrqBypassManager } from '../vfio/irq-bypass.ts';
import type { HostXive } from '../xive/host-xive.ts';
import { eventfdFdgetFrom, KVM_IRQFD, KvmIrqfds } from './irqfd.ts';
import { KvmDevice, kvmDeviceFops } from './kvm-device.ts';
import { KVM_MR_DELETE, KVM_MR_MOVE, KvmMemslots } from './memslots.ts';
import {
  gfnPfnEffect,
  KVM_PT_NO_SLOT,
  PartitionFaultStep,
  PartitionTable,
  PT_INSTALL,
  PT_LOOK,
  PT_REREAD,
} from './partition-table.ts';
import {
  decodeKvmCreateDevice,
  decodeKvmDirtyLog,
  decodeKvmUserspaceMemoryRegion,
  encodeKvmCreateDevice,
  KVM_API_VERSION,
  KVM_CAP_CHECK_EXTENSION_VM,
  KVM_CAP_DEVICE_CTRL,
  KVM_CAP_ENABLE_CAP,
  KVM_CAP_IRQFD,
  KVM_CAP_MAX_VCPU_ID,
  KVM_CAP_MAX_VCPUS,
  KVM_CAP_NR_MEMSLOTS,
  KVM_CAP_NR_VCPUS,
  KVM_CAP_ONE_REG,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_CAP_PPC_PAPR,
  KVM_CAP_SYNC_MMU,
  KVM_CAP_USER_MEMORY,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_SIZE,
  KVM_CREATE_DEVICE_TEST,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
  KVM_DIRTY_LOG_SIZE,
  KVM_ENABLE_CAP,
  KVM_ENABLE_CAP_SIZE,
  KVM_GET_API_VERSION,
  KVM_GET_DIRTY_LOG,
  KVM_GET_VCPU_MMAP_SIZE,
  KVM_MAX_VCPU_IDS,
  KVM_MAX_VCPUS,
  KVM_SET_USER_MEMORY_REGION,
  KVM_USERSPACE_MEMORY_REGION_SIZE,
  KVM_VM_PPC_HV,
  userPtr,
} from './uapi.ts';
import { KvmVcpu, type KvmVcpuRun } from './vcpu.ts';
import { kvmppcXiveNativeCreate } from './xive-native.ts';
import type { XiveNativeFlags, XiveRecordMapping } from './xive-native-flags.ts';
import type { KvmArchXive, KvmGuestMemory, XiveVcpuArch } from './xive-state.ts';

/** The calling process, as KVM's ioctls see it (`current`): its memory and its fd table. */
export interface KvmUser extends UserMemory {
  readonly proc: Process;
}

/** Configuration of the {@link Kvm} module. */
export interface KvmConfig {
  mm: MmHost;
  frames: PhysFrames;
  xive: HostXive;
  bypass: IrqBypassManager;
  trace: TraceSink;
  /** Host CPU threads (`num_online_cpus`). */
  nrCpus: number;
  /** `KVM_USER_MEM_SLOTS` (default 512). */
  maxMemslots?: number;
  /** Latent-bug flags of every XIVE device created. */
  xiveFlags?: Partial<XiveNativeFlags>;
  /** What every XIVE device records at mmap (the designs' kernel seam; default mainline). */
  xiveRecordMapping?: XiveRecordMapping;
}

/** A partition fault's step that cannot run: a lock held forever (−EFAULT). */
const lockHeldForever = (): number => -EFAULT;

/** Module-wide counters. */
export class KvmStats {
  vmsCreated = 0;
  vmsDestroyed = 0;
  vcpusCreated = 0;
  devicesCreated = 0;
  devicesReleased = 0;
}

const kvmChardevFops: FileOperations = { name: 'kvm' };

/**
 * The KVM module: `/dev/kvm`, the live VMs, and the host threads vCPUs run on.
 *
 * @remarks Models virt/kvm/kvm_main.c (kvm_dev_ioctl, kvm_create_vm, kvm_destroy_vm) with
 * arch/powerpc/kvm/powerpc.c + book3s_hv.c as the arch half.
 */
export class Kvm {
  readonly mm: MmHost;
  readonly frames: PhysFrames;
  readonly xive: HostXive;
  readonly bypass: IrqBypassManager;
  readonly trace: TraceSink;
  readonly nrCpus: number;
  readonly maxMemslots: number;
  xiveFlags: Partial<XiveNativeFlags>;
  xiveRecordMapping: XiveRecordMapping | null;
  readonly stats: KvmStats;
  /** Live VMs, in creation order. */
  readonly vms: KvmVm[];
  /** The vCPU run sitting in KVM_RUN on each host thread, or null. */
  readonly runningOn: (KvmVcpuRun | null)[];
  private readonly chardevInode: Inode;
  private nextLpid: number;

  constructor(cfg: KvmConfig) {
    this.mm = cfg.mm;
    this.frames = cfg.frames;
    this.xive = cfg.xive;
    this.bypass = cfg.bypass;
    this.trace = cfg.trace;
    this.nrCpus = cfg.nrCpus;
    this.maxMemslots = cfg.maxMemslots ?? 512;
    this.xiveFlags = cfg.xiveFlags ?? {};
    this.xiveRecordMapping = cfg.xiveRecordMapping ?? null;
    this.stats = new KvmStats();
    this.vms = [];
    this.runningOn = new Array<KvmVcpuRun | null>(cfg.nrCpus).fill(null);
    this.chardevInode = cfg.mm.newInode('kvm');
    this.nextLpid = 1;
  }

  emit<K extends TraceKindIn<typeof TRACE_KVM>>(kind: K, args: TraceArgs<K>): void {
    if (this.trace.mask & TRACE_KVM) traceEvent(this.trace, kind, args);
  }

  /** open("/dev/kvm"): a new file on the misc device's inode (one reference). */
  openChardev(): File {
    return new File('/dev/kvm', kvmChardevFops, this.chardevInode, FMODE_RDWR, this);
  }

  /**
   * ioctl on /dev/kvm. Unknown requests → −EINVAL (powerpc's `kvm_arch_dev_ioctl`).
   *
   * @remarks Models virt/kvm/kvm_main.c:kvm_dev_ioctl().
   */
  devIoctl(user: KvmUser, cmd: number, arg: number): number {
    switch (cmd) {
      case KVM_GET_API_VERSION:
        return arg !== 0 ? -EINVAL : KVM_API_VERSION;
      case KVM_CREATE_VM:
        return this.createVm(user, arg);
      case KVM_CHECK_EXTENSION:
        return this.checkExtension(null, arg);
      case KVM_GET_VCPU_MMAP_SIZE:
        // struct kvm_run + the coalesced MMIO ring page (CONFIG_KVM_MMIO).
        return arg !== 0 ? -EINVAL : 2 * PAGE_SIZE;
      default:
        return -EINVAL;
    }
  }

  /**
   * `KVM_CHECK_EXTENSION`: 0 for an unknown capability.
   *
   * @remarks Models kvm_main.c:kvm_vm_ioctl_check_extension_generic() + powerpc.c:
   * kvm_vm_ioctl_check_extension() on an HV host with XIVE.
   */
  checkExtension(_vm: KvmVm | null, ext: number): number {
    switch (ext) {
      case KVM_CAP_USER_MEMORY:
      case KVM_CAP_SYNC_MMU:
      case KVM_CAP_IRQFD:
      case KVM_CAP_ENABLE_CAP:
      case KVM_CAP_PPC_PAPR:
      case KVM_CAP_ONE_REG:
      case KVM_CAP_DEVICE_CTRL:
      case KVM_CAP_CHECK_EXTENSION_VM:
      case KVM_CAP_PPC_IRQ_XIVE:
        return 1;
      case KVM_CAP_NR_VCPUS:
        return this.nrCpus;
      case KVM_CAP_MAX_VCPUS:
        return KVM_MAX_VCPUS;
      case KVM_CAP_MAX_VCPU_ID:
        return KVM_MAX_VCPU_IDS;
      case KVM_CAP_NR_MEMSLOTS:
        return this.maxMemslots;
      default:
        return 0;
    }
  }

  /**
   * `KVM_CREATE_VM(type)`: type 0 or KVM_VM_PPC_HV → an HV VM; PR (not loaded) or anything
   * else → −EINVAL. Returns the VM fd.
   *
   * @remarks Models kvm_main.c:kvm_dev_ioctl_create_vm() + powerpc.c:kvm_arch_init_vm().
   */
  createVm(user: KvmUser, type: number): number {
    if (type !== 0 && type !== KVM_VM_PPC_HV) return -EINVAL;
    const vm = new KvmVm(this, user.proc, this.nextLpid++);
    const file = this.mm.anonInodeGetFile('kvm-vm', vmFops, vm);
    const fd = user.proc.installFd(file);
    if (fd < 0) {
      fput(file); // releases the VM again
      return fd;
    }
    this.vms.push(vm);
    this.stats.vmsCreated++;
    this.emit('kvm.vm.create', { lpid: vm.lpid, pid: user.proc.pid });
    return fd;
  }

  /** @internal */
  vmDestroyed(vm: KvmVm): void {
    const i = this.vms.indexOf(vm);
    if (i >= 0) this.vms.splice(i, 1);
    this.stats.vmsDestroyed++;
    this.emit('kvm.vm.destroy', { lpid: vm.lpid });
  }
}

const vmFops: FileOperations = {
  name: 'kvm-vm',
  release(_inode, file) {
    (file.privateData as KvmVm).put();
  },
};

const vcpuFops: FileOperations = {
  name: 'kvm-vcpu',
  release(_inode, file) {
    (file.privateData as KvmVcpu).vm.put();
  },
};

/** Per-VM counters (counts of the paths running). */
export class KvmVmStats {
  private readonly vm: KvmVm;
  constructor(vm: KvmVm) {
    this.vm = vm;
  }
  get memslotsUsed(): number {
    return this.vm.memslots.used;
  }
  get memslotsPeak(): number {
    return this.vm.memslots.peak;
  }
  get partitionFaults(): number {
    return this.vm.pt.stats.faults;
  }
  get partitionFaultErrors(): number {
    return this.vm.pt.stats.faultErrors;
  }
  get partitionInvalidations(): number {
    return this.vm.pt.stats.invalidations;
  }
  mmioExits = 0;
  hcallExits = 0;
  /** `mark_page_dirty` calls that hit a slot with dirty logging. */
  dirtyMarks = 0;
  /** MMU notifier invalidations received. */
  notifierInvalidations = 0;
}

/**
 * One VM.
 *
 * @remarks Models struct kvm (+ kvm_arch of book3s HV): kvm_vm_ioctl(), the MMU notifier
 * (kvm_mmu_notifier_invalidate_range_start → kvm_unmap_gfn_range), memslot commit hooks
 * (kvm_arch_flush_shadow_memslot), kvm_destroy_vm().
 */
export class KvmVm implements MmuNotifier {
  readonly kvm: Kvm;
  readonly lpid: number;
  /** `kvm->mm`: the creator's address space (only it may issue ioctls). */
  readonly mm: Mm;
  /** The creator process (get_user_pages on `kvm->mm`). */
  readonly proc: Process;
  readonly memslots: KvmMemslots;
  readonly pt: PartitionTable;
  readonly arch: KvmArchXive;
  readonly vcpus: KvmVcpu[];
  /** `vcpu->arch` of every vCPU, for the XIVE device (kvm_for_each_vcpu). */
  readonly vcpuArchs: XiveVcpuArch[];
  readonly devices: KvmDevice[];
  readonly irqfds: KvmIrqfds;
  readonly guestMem: KvmGuestMemory;
  readonly stats: KvmVmStats;
  /** `kvm->mmu_notifier_count`: invalidations in progress. */
  mmuNotifierCount: number;
  /** `kvm->mmu_notifier_seq`: invalidations completed. */
  mmuNotifierSeq: number;
  /**
   * The partition-scoped fault checks `mmu_notifier_retry` before it installs an entry (always,
   * in the kernel). Off, it installs a pfn an invalidation may have revoked since it was read:
   * the window the check closes, for the interleaving explorer to show.
   */
  checkMmuNotifierRetry: boolean;
  /** `users_count`. */
  users: number;
  dead: boolean;

  constructor(kvm: Kvm, proc: Process, lpid: number) {
    this.kvm = kvm;
    this.lpid = lpid;
    this.mm = proc.mm;
    this.proc = proc;
    this.memslots = new KvmMemslots({ limit: kvm.maxMemslots, taskSize: kvm.mm.taskSize });
    this.pt = new PartitionTable();
    this.arch = { xive: null, xiveNative: null };
    this.vcpus = [];
    this.vcpuArchs = [];
    this.devices = [];
    this.irqfds = new KvmIrqfds({ arch: this.arch, host: kvm.xive, bypass: kvm.bypass, trace: kvm.trace });
    this.guestMem = new VmGuestMemory(this);
    this.stats = new KvmVmStats(this);
    this.mmuNotifierCount = 0;
    this.mmuNotifierSeq = 0;
    this.checkMmuNotifierRetry = true;
    this.users = 1;
    this.dead = false;
    this.mm.mmuNotifierRegister(this);
  }

  /** `kvm_get_kvm`. */
  get(): void {
    this.users++;
  }

  /** `kvm_put_kvm`: the last reference destroys the VM. */
  put(): void {
    if (--this.users > 0) return;
    this.destroy();
  }

  /**
   * @remarks Models kvm_main.c:kvm_destroy_vm(): irqfds released, MMU notifier unregistered
   * (which flushes the partition-scoped tree), vCPUs freed, memslots freed.
   */
  private destroy(): void {
    this.dead = true;
    for (const v of this.vcpus) v.run?.stop();
    this.irqfds.kvmIrqfdRelease();
    if (!this.mm.dead && this.mm.notifiers.includes(this)) this.mm.mmuNotifierUnregister(this);
    for (const v of this.vcpus) v.destroy();
    this.pt.clear();
    this.memslots.clear();
    this.kvm.vmDestroyed(this);
  }

  // ---- MMU notifier ----

  /** `kvm_mmu_notifier_invalidate_range_start` → `kvm_unmap_gfn_range` on every slot hit. */
  invalidateRangeStart(range: MmuNotifierRange): void {
    this.stats.notifierInvalidations++;
    this.mmuNotifierCount++;
    for (const s of this.memslots.all()) {
      const hvaStart = s.userspaceAddr;
      const hvaEnd = hvaStart + s.npages * PAGE_SIZE;
      const start = Math.max(range.start, hvaStart);
      const end = Math.min(range.end, hvaEnd);
      if (start >= end) continue;
      const g0 = s.baseGfn + Math.floor((start - hvaStart) * PAGE_SCALE);
      const g1 = s.baseGfn + Math.ceil((end - hvaStart) * PAGE_SCALE);
      this.unmapGfnRange(g0, g1);
    }
  }

  /**
   * Remove the partition-scoped entries of gfns `[start, end)`.
   *
   * @remarks Models arch/powerpc/kvm/book3s.c:kvm_unmap_gfn_range()
   */
  private unmapGfnRange(start: number, end: number): void {
    const entries = this.pt.unmapRange(start, end);
    if (this.kvm.trace.mask & TRACE_KVM)
      this.kvm.emit('kvm.pt.invalidate', { lpid: this.lpid, startGfn: start, endGfn: end, entries });
  }

  /** `kvm_mmu_notifier_invalidate_range_end`: the invalidation is over (`mmu_notifier_seq++`). */
  invalidateRangeEnd(_range: MmuNotifierRange): void {
    this.mmuNotifierSeq++;
    this.mmuNotifierCount--;
  }

  /** `kvm_mmu_notifier_release`: the mm is going away; flush everything. */
  release(_mm: Mm): void {
    this.pt.clear();
  }

  // ---- partition-scoped faults ----

  /**
   * A guest access missed the partition-scoped tree: find the memslot (none → {@link
   * KVM_PT_NO_SLOT}: emulated MMIO), resolve its hva through the VMM's page tables (faulting,
   * incl. the device's `vm_ops.fault`), install the entry. Returns the pfn or −errno (−EFAULT:
   * the host fault failed, e.g. SIGBUS from the XIVE ESB handler; KVM_RUN would fail).
   * Writable when the access writes, or when the host PTE is already writable and the slot does
   * not log dirty pages. A write to a dirty-logged slot marks the page dirty.
   *
   * @remarks Models book3s_64_mmu_radix.c:kvmppc_book3s_radix_page_fault() →
   * kvmppc_book3s_instantiate_page() (__gfn_to_pfn_memslot → hva_to_pfn).
   */
  partitionFault(gfn: number, write: boolean): number {
    return driveSteps(this.partitionFaultSteps(gfn, write), lockHeldForever);
  }

  /**
   * {@link partitionFault} as atomic steps: read `mmu_notifier_seq` and resolve the hva through
   * the VMM's page table (faulting it in with the VMA's own steps when no PTE is present); then,
   * under `kvm->mmu_lock`, `mmu_notifier_retry` (an invalidation since the read: start over)
   * and the install.
   */
  *partitionFaultSteps(gfn: number, write: boolean): Generator<AtomicStep, number, void> {
    const slot = this.memslots.lookup(gfn);
    if (slot === null) return KVM_PT_NO_SLOT;
    const hva = slot.gfnToHva(gfn);
    const vpn = Math.floor(hva * PAGE_SCALE);
    const v0 = this.mm.vmas.lookup(hva);
    const pgoff = v0?.file ? v0.pgoffOf(hva) : -1;
    for (;;) {
      const look = PartitionFaultStep.of(PT_LOOK, this.lpid, gfn, this.mm.pid, vpn, pgoff);
      if (mustYield(look)) yield look;
      if (this.mm.dead) {
        this.pt.stats.faultErrors++;
        return -EFAULT;
      }
      const seq = this.mmuNotifierSeq;
      let pfn: number;
      const vma = this.mm.vmas.lookup(hva);
      const present = this.mm.pgtable.pfn(vpn);
      const usable = present >= 0 && (!write || (this.mm.pgtable.flags(vpn) & PTE_WRITE) !== 0);
      let faulted = false;
      if (usable || !vma?.ops?.faultSteps) {
        // hva_to_pfn in one step: a present PTE, or a fault path with no steps of its own.
        pfn = usable ? present : this.proc.hvaToPfn(hva, write);
      } else {
        // The VMA's fault can race (the XIVE ESB pages): hva_to_pfn() faults it in step by step,
        // under its own mmap_read_lock: vma_lookup, follow_pte, and on a miss fixup_user_fault()
        // → handle_mm_fault() → the VMA's fault. (Here, not in a generator this one delegates
        // to: that level cost a full VM's million ESB faults about 50 ms.)
        look.effect = 'no host PTE: fault it in (hva_to_pfn)';
        faulted = true;
        const flags = write ? FAULT_FLAG_WRITE : 0;
        const lock = FaultStep.of(FAULT_LOCK, this.mm, 'hva_to_pfn', hva, pgoff);
        if (mustYield(lock)) yield lock;
        this.mm.mmapLock.downRead();
        const fv = faultVma(this.mm, hva, flags, lock);
        let r: number;
        if (typeof fv === 'number') r = fv;
        else if (fv.ops?.faultSteps) r = yield* fv.ops.faultSteps(stepFault(this.mm, fv, hva, flags));
        // A VMA mapped there since the look, with no step-wise fault: fault it in under the lock.
        else r = handleMmFault(this.mm, fv, hva, flags);
        const unlock = FaultStep.of(FAULT_UNLOCK, this.mm, 'hva_to_pfn', hva, pgoff);
        if (mustYield(unlock)) yield unlock;
        this.mm.mmapLock.upRead();
        const reread = PartitionFaultStep.of(PT_REREAD, this.lpid, gfn, this.mm.pid, vpn, pgoff);
        if (mustYield(reread)) yield reread;
        pfn = r & VM_FAULT_ERROR ? -EFAULT : this.mm.pgtable.pfn(vpn);
        if (pfn < 0) pfn = -EFAULT;
      }
      if (pfn < 0) {
        this.pt.stats.faultErrors++;
        this.kvm.emit('kvm.pt.fault_error', { lpid: this.lpid, gfn, errno: -pfn });
        look.effect = `hva_to_pfn: ${pfn}`;
        return pfn;
      }
      if (!faulted) look.explain(pfnEffect, pfn);
      const ins = PartitionFaultStep.of(PT_INSTALL, this.lpid, gfn, this.mm.pid, vpn, pgoff);
      if (mustYield(ins)) yield ins;
      if (this.checkMmuNotifierRetry && (this.mmuNotifierCount > 0 || this.mmuNotifierSeq !== seq)) {
        ins.effect = 'invalidated since the read: retry';
        continue;
      }
      let writable = write;
      if (!write && slot.dirtyBitmap === null) {
        writable = (this.mm.pgtable.flags(vpn) & PTE_WRITE) !== 0;
      }
      if (write && slot.dirtyBitmap !== null) slot.dirtyBitmap[gfn - slot.baseGfn] = 1;
      this.pt.insert(gfn, pfn, writable);
      if (this.kvm.trace.mask & TRACE_KVM)
        this.kvm.emit('kvm.pt.insert', { lpid: this.lpid, gfn, pfn, writable: +writable });
      ins.explain(gfnPfnEffect, gfn, pfn);
      return pfn;
    }
  }

  // ---- ioctls ----

  /**
   * ioctl on the VM fd: −EIO from another mm or a dead VM; unknown → −ENOTTY (book3s HV's
   * `arch_vm_ioctl`).
   *
   * @remarks Models kvm_main.c:kvm_vm_ioctl() + powerpc.c:kvm_arch_vm_ioctl().
   */
  ioctl(user: KvmUser, cmd: number, arg: number): number {
    if (this.mm !== user.proc.mm || this.dead) return -EIO;
    switch (cmd) {
      case KVM_CREATE_VCPU:
        return this.createVcpu(user, arg);
      case KVM_SET_USER_MEMORY_REGION: {
        const b = user.copyFromUser(arg, KVM_USERSPACE_MEMORY_REGION_SIZE);
        if (typeof b === 'number') return -EFAULT;
        return this.setUserMemoryRegion(decodeKvmUserspaceMemoryRegion(b));
      }
      case KVM_GET_DIRTY_LOG:
        return this.getDirtyLog(user, arg);
      case KVM_CHECK_EXTENSION:
        return this.kvm.checkExtension(this, arg);
      case KVM_CREATE_DEVICE:
        return this.createDeviceIoctl(user, arg);
      case KVM_IRQFD:
        return this.irqfds.kvmIrqfdIoctl(
          arg,
          user,
          eventfdFdgetFrom((fd) => user.proc.fget(fd)),
        );
      case KVM_ENABLE_CAP: {
        // No VM-wide capability of book3s HV is modelled.
        const b = user.copyFromUser(arg, KVM_ENABLE_CAP_SIZE);
        return typeof b === 'number' ? -EFAULT : -EINVAL;
      }
      default:
        return -ENOTTY;
    }
  }

  /** `KVM_SET_USER_MEMORY_REGION` (decoded): 0 or −errno; deleted/moved ranges are flushed. */
  setUserMemoryRegion(mem: Parameters<KvmMemslots['set']>[0]): number {
    const r = this.memslots.set(mem);
    if (typeof r === 'number') return r;
    if ((r.change === KVM_MR_DELETE || r.change === KVM_MR_MOVE) && r.old !== null) {
      this.unmapGfnRange(r.old.baseGfn, r.old.baseGfn + r.old.npages);
    }
    if (r.change >= 0) {
      this.kvm.emit('kvm.memslot', {
        lpid: this.lpid,
        slot: mem.slot,
        change: r.change,
        used: this.memslots.used,
      });
      const s = r.slot ?? r.old!;
      this.kvm.emit('kvm.memslot.range', {
        slot: mem.slot,
        baseGfn: s.baseGfn,
        npages: s.npages,
        hva: s.userspaceAddr,
      });
    }
    return 0;
  }

  /**
   * `KVM_GET_DIRTY_LOG`: copy the slot's bitmap to user memory, clear it, and write-protect the
   * slot's entries again. The bitmap is little-endian whatever the host's byte order: page i is
   * bit i % 8 of byte i / 8, in a buffer rounded up to whole 64-bit longs. Bad slot id → −EINVAL;
   * no slot or no dirty logging → −ENOENT.
   *
   * @remarks Models kvm_main.c:kvm_vm_ioctl_get_dirty_log() (get-and-clear, no manual protect);
   * the bits are set by kvm_main.c:mark_page_dirty_in_slot() with `set_bit_le()`, and QEMU reads
   * them with `cpu_physical_memory_set_dirty_lebitmap()`.
   */
  private getDirtyLog(user: KvmUser, argp: number): number {
    const b = user.copyFromUser(argp, KVM_DIRTY_LOG_SIZE);
    if (typeof b === 'number') return -EFAULT;
    const log = decodeKvmDirtyLog(b);
    const id = log.slot & 0xffff;
    if (log.slot >>> 16 !== 0 || id >= this.memslots.limit) return -EINVAL;
    const slot = this.memslots.byIdOf(id);
    if (slot === null || slot.dirtyBitmap === null) return -ENOENT;
    const bytes = new Uint8Array(Math.ceil(slot.npages / 64) * 8);
    for (let i = 0; i < slot.npages; i++) {
      if (slot.dirtyBitmap[i]) bytes[i >>> 3]! |= 1 << (i & 7);
    }
    if (user.copyToUser(userPtr(log.dirtyBitmap), bytes)) return -EFAULT;
    slot.dirtyBitmap.fill(0);
    this.pt.writeProtectRange(slot.baseGfn, slot.endGfn);
    return 0;
  }

  /**
   * `KVM_CREATE_VCPU(id)`: id ≥ KVM_MAX_VCPU_IDS or too many vCPUs → −EINVAL, id in use →
   * −EEXIST. Returns the vCPU fd ("kvm-vcpu:<id>").
   *
   * @remarks Models kvm_main.c:kvm_vm_ioctl_create_vcpu().
   */
  createVcpu(user: KvmUser, id: number): number {
    if (!(id >= 0 && id < KVM_MAX_VCPU_IDS)) return -EINVAL;
    if (this.vcpus.length >= KVM_MAX_VCPUS) return -EINVAL;
    for (const v of this.vcpus) if (v.vcpuId === id) return -EEXIST;
    const idx = this.vcpus.length;
    const vcpu = new KvmVcpu(this, id, idx, idx % this.kvm.nrCpus);
    this.get();
    const file = this.kvm.mm.anonInodeGetFile(`kvm-vcpu:${id}`, vcpuFops, vcpu);
    const fd = user.proc.installFd(file);
    if (fd < 0) {
      fput(file); // drops the VM reference again
      return fd;
    }
    this.vcpus.push(vcpu);
    this.vcpuArchs.push(vcpu.arch);
    this.kvm.stats.vcpusCreated++;
    return fd;
  }

  /**
   * `KVM_CREATE_DEVICE`: copy the struct (−EFAULT), unknown type → −ENODEV, TEST flag → 0,
   * a second interrupt device → −EEXIST (the XIVE create), fd through an anon inode
   * ("kvm-xive-native"), written back into the struct (−EFAULT).
   *
   * @remarks Models kvm_main.c:kvm_ioctl_create_device() + book3s_xive_native.c:
   * kvmppc_xive_native_create().
   */
  private createDeviceIoctl(user: KvmUser, argp: number): number {
    const b = user.copyFromUser(argp, KVM_CREATE_DEVICE_SIZE);
    if (typeof b === 'number') return -EFAULT;
    const cd = decodeKvmCreateDevice(b);
    if (cd.type !== KVM_DEV_TYPE_XIVE) return -ENODEV;
    if (cd.flags & KVM_CREATE_DEVICE_TEST) return 0;
    const x = kvmppcXiveNativeCreate(this.arch, {
      kvm: this,
      lpid: this.lpid,
      host: this.kvm.xive,
      guestMem: this.guestMem,
      wake: () => {},
      vcpus: () => this.vcpuArchs,
      flags: this.kvm.xiveFlags,
      ...(this.kvm.xiveRecordMapping !== null ? { recordMapping: this.kvm.xiveRecordMapping } : {}),
      trace: this.kvm.trace,
    });
    if (typeof x === 'number') return x;
    const dev = new KvmDevice(this, cd.type, x);
    this.devices.push(dev);
    this.get();
    this.kvm.stats.devicesCreated++;
    const file = this.kvm.mm.anonInodeGetFile('kvm-xive-native', kvmDeviceFops, dev);
    const fd = user.proc.installFd(file);
    if (fd < 0) {
      fput(file); // the device's release, then the VM reference
      return fd;
    }
    if (user.copyToUser(argp, encodeKvmCreateDevice({ type: cd.type, fd, flags: cd.flags }))) {
      // The fd stays installed, as in the kernel (userspace leaks it).
      return -EFAULT;
    }
    return 0;
  }

  /** The vCPU object behind a file, if it is one of this VM's vCPU fds. */
  static vcpuOfFile(file: File): KvmVcpu | null {
    return file.fOp === vcpuFops ? (file.privateData as KvmVcpu) : null;
  }

  /** The VM behind a VM fd's file, or null. */
  static vmOfFile(file: File): KvmVm | null {
    return file.fOp === vmFops ? (file.privateData as KvmVm) : null;
  }
}

/**
 * The VM's guest memory services for the XIVE device (EQ pages): memslot → hva → pfn through
 * the creator's mm, pinned in the frame pool.
 *
 * @remarks Models kvm_main.c: gfn_to_page() (pins), put_page(), kvm_host_page_size(),
 * mark_page_dirty().
 */
class VmGuestMemory implements KvmGuestMemory {
  private readonly vm: KvmVm;
  constructor(vm: KvmVm) {
    this.vm = vm;
  }
  /** −1 when no memslot covers gpa, the hva does not resolve, or the page is not RAM (PFNMAP). */
  gfnToPage(gpa: number): number {
    const vm = this.vm;
    const gfn = Math.floor(gpa * PAGE_SCALE);
    const slot = vm.memslots.lookup(gfn);
    if (slot === null || vm.mm.dead) return -1;
    const pfn = vm.proc.hvaToPfn(slot.gfnToHva(gfn), true);
    if (pfn < 0 || !vm.kvm.frames.isRam(pfn)) return -1;
    vm.kvm.frames.pin(pfn);
    return pfn * PAGE_SIZE;
  }
  putPage(hpa: number): void {
    this.vm.kvm.frames.unpin(Math.floor(hpa * PAGE_SCALE));
  }
  /** Host pages are 64 KiB everywhere (no huge pages); the kernel returns PAGE_SIZE even with no slot. */
  hostPageSize(_gpa: number): number {
    return PAGE_SIZE;
  }
  markPageDirty(gpa: number): void {
    const gfn = Math.floor(gpa * PAGE_SCALE);
    const slot = this.vm.memslots.lookup(gfn);
    if (slot?.dirtyBitmap) {
      slot.dirtyBitmap[gfn - slot.baseGfn] = 1;
      this.vm.stats.dirtyMarks++;
    }
  }
}
