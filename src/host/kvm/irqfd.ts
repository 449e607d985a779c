/**
 * KVM irqfd on a POWER9 (book3s HV, XIVE) host: an eventfd bound to a guest interrupt number
 * (GSI). On ppc the GSI *is* the guest interrupt source number (`kvm_irq_map_gsi` maps every gsi
 * to itself, QEMU's `kvm_gsi_direct_mapping`), and a signal is injected synchronously from the
 * eventfd wake-up (`kvm_arch_set_irq_inatomic` → `kvm_set_irq` → `kvmppc_xive_set_irq`), which
 * triggers the guest source's backing HW IPI through its trigger page.
 *
 * Each irqfd is also an irq bypass *consumer* whose token is its eventfd context: when VFIO
 * registers a producer with the same eventfd, `kvmppcIrqBypassAddProducerHv` →
 * `kvmppcSetPassthruIrq` → `kvmppc_xive_set_mapped(gsi, host hw irq)` re-points the guest source
 * at the device interrupt; `delProducer` undoes it through `kvmppc_xive_clr_mapped`. The
 * per-VM passthrough table (`kvm->arch.pimap`) is kept as the kernel keeps it: entries are never
 * freed, only invalidated (`r_hwirq = 0`) and reused for the same GSI.
 *
 * Also here, because nothing else in the model needs it yet: the eventfd itself
 * (`fs/eventfd.c`: a counter, a wait queue, EPOLLHUP on release).
 */

import { type TraceArgs, type TraceKindIn, traceEvent } from '../../sim/trace-events.ts';
import { TRACE_KVM, type TraceSink } from '../../sim/trace-sink.ts';
import { EAGAIN, EBADF, EBUSY, EFAULT, EINVAL, EIO, ENODEV } from '../errno.ts';
import { type File, type FileOperations, FMODE_RDWR } from '../mm/file.ts';
import type { MmHost } from '../mm/mm-host.ts';
import type { UserMemory } from '../mm/uaccess.ts';
import type { IrqBypassConsumer, IrqBypassManager, IrqBypassProducer } from '../vfio/irq-bypass.ts';
import type { HostXive } from '../xive/host-xive.ts';
import { KvmXiveNative } from './xive-native.ts';
import type { KvmArchXive } from './xive-state.ts';

// ---------------------------------------------------------------------------------------------
// ioctl encoding (powerpc: 13 size bits, 3 direction bits, NONE = 1, READ = 2, WRITE = 4)
// ---------------------------------------------------------------------------------------------

/** `_IOC` as on powerpc (`arch/powerpc/include/uapi/asm/ioctl.h`). */
export function ppcIoc(dir: number, type: number, nr: number, size: number): number {
  return (dir * 2 ** 29 + size * 2 ** 16 + type * 2 ** 8 + nr) >>> 0;
}
export const PPC_IOC_NONE = 1;
export const PPC_IOC_READ = 2;
export const PPC_IOC_WRITE = 4;

export const KVMIO = 0xae;
/** `sizeof(struct kvm_irqfd)`: fd, gsi, flags, resamplefd (u32 each) + 16 bytes of pad. */
export const KVM_IRQFD_SIZE = 32;
/** `_IOW(KVMIO, 0x76, struct kvm_irqfd)` on powerpc = 0x8020AE76. */
export const KVM_IRQFD = ppcIoc(PPC_IOC_WRITE, KVMIO, 0x76, KVM_IRQFD_SIZE);
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;
export const KVM_IRQFD_FLAG_RESAMPLE = 1 << 1;
/** `KVM_USERSPACE_IRQ_SOURCE_ID`. */
export const KVM_USERSPACE_IRQ_SOURCE_ID = 0;
/** `KVM_INTERRUPT_SET_LEVEL` / `KVM_INTERRUPT_UNSET` (asm/kvm.h, as u32). */
export const KVM_INTERRUPT_SET = -1 >>> 0;
export const KVM_INTERRUPT_UNSET = -2 >>> 0;
export const KVM_INTERRUPT_SET_LEVEL = -3 >>> 0;
/** `KVMPPC_PIRQ_MAPPED`: entries of the passthrough irq map. */
export const KVMPPC_PIRQ_MAPPED = 1024;

// ---------------------------------------------------------------------------------------------
// eventfd
// ---------------------------------------------------------------------------------------------

/** EPOLLIN / EPOLLHUP as passed to wait-queue callbacks. */
export const EPOLLIN = 0x1;
export const EPOLLHUP = 0x10;

/** A wait-queue entry on an eventfd (`wait_queue_entry_t` with its wake function). */
export type EventfdWaiter = (ctx: EventfdCtx, flags: number) => void;

/**
 * `struct eventfd_ctx`: a 64-bit counter (a number here; it never reaches 2^53 in a run) and a
 * wait queue.
 *
 * @remarks Models fs/eventfd.c.
 */
export class EventfdCtx {
  count: number;
  /** Signals ever made (eventfd_signal calls). */
  signals: number;
  /** Set once the file is released (EPOLLHUP sent). */
  hungUp: boolean;
  private readonly waiters: EventfdWaiter[];
  constructor(initval = 0) {
    this.count = initval;
    this.signals = 0;
    this.hungUp = false;
    this.waiters = [];
  }

  /** `eventfd_signal(ctx, n)`: add and wake the waiters with EPOLLIN. Returns n. */
  eventfdSignal(n = 1): number {
    this.count += n;
    this.signals++;
    // A waiter may remove itself while being woken: iterate over a copy.
    for (const w of this.waiters.slice()) w(this, EPOLLIN);
    return n;
  }

  /** `eventfd_ctx_do_read`: the counter, reset to 0. */
  doRead(): number {
    const c = this.count;
    this.count = 0;
    return c;
  }

  /** `read(2)` on a non-blocking eventfd: the counter, or −EAGAIN when 0. */
  read(): number {
    return this.count === 0 ? -EAGAIN : this.doRead();
  }

  /** `add_wait_queue` (through `vfs_poll`). */
  addWaiter(w: EventfdWaiter): void {
    this.waiters.push(w);
  }

  /** `eventfd_ctx_remove_wait_queue`. */
  removeWaiter(w: EventfdWaiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  get waiterCount(): number {
    return this.waiters.length;
  }

  /** `eventfd_release`: wake everyone with EPOLLHUP. */
  hangup(): void {
    this.hungUp = true;
    for (const w of this.waiters.slice()) w(this, EPOLLHUP);
  }
}

const eventfdFops: FileOperations = {
  name: 'eventfd',
  release(_inode, file) {
    (file.privateData as EventfdCtx).hangup();
  },
};

/**
 * `eventfd(initval, flags)`: a new anon-inode file holding an {@link EventfdCtx} (one reference,
 * for the caller to install in an fd).
 *
 * @remarks Models fs/eventfd.c:do_eventfd().
 */
export function eventfdCreate(host: MmHost, initval = 0): File {
  return host.anonInodeGetFile('[eventfd]', eventfdFops, new EventfdCtx(initval), FMODE_RDWR);
}

/**
 * The eventfd context of a file, or −EINVAL if the file is not an eventfd.
 *
 * @remarks Models fs/eventfd.c:eventfd_ctx_fileget().
 */
export function eventfdCtxFileget(file: File): EventfdCtx | number {
  return file.fOp === eventfdFops ? (file.privateData as EventfdCtx) : -EINVAL;
}

/** Resolves a user fd to an eventfd context: the context, −EBADF, or −EINVAL (not an eventfd). */
export type EventfdFdget = (fd: number) => EventfdCtx | number;

/** An {@link EventfdFdget} over a file table lookup (`fget`). */
export function eventfdFdgetFrom(fget: (fd: number) => File | null): EventfdFdget {
  return (fd) => {
    const f = fd >= 0 ? fget(fd) : null;
    return f === null ? -EBADF : eventfdCtxFileget(f);
  };
}

// ---------------------------------------------------------------------------------------------
// kvm_set_irq on a XIVE host
// ---------------------------------------------------------------------------------------------

/**
 * Assert/trigger guest irq `irq`: −ENODEV without an interrupt device, −EINVAL for an unknown or
 * invalid source **or one that is passed through** (the device's own ESB is live then);
 * level 0 / UNSET only record the line level; otherwise store to the IPI's trigger page.
 *
 * @remarks Models book3s_xive.c:kvmppc_xive_set_irq() (reached through book3s.c:kvm_set_irq()).
 */
export function kvmppcXiveSetIrq(arch: KvmArchXive, host: HostXive, irq: number, level: number): number {
  const xive = arch.xive;
  if (!(xive instanceof KvmXiveNative)) return -ENODEV;
  const state = xive.irqState(irq);
  if (state === null || !state.valid) return -EINVAL;
  if (state.ptNumber !== 0) return -EINVAL;
  const lvl = level >>> 0;
  if ((lvl === 1 && state.lsi) || lvl === KVM_INTERRUPT_SET_LEVEL) state.asserted = true;
  else if (lvl === 0 || lvl === KVM_INTERRUPT_UNSET) {
    state.asserted = false;
    return 0;
  }
  host.trigger(state.ipiData);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Passthrough irq map (book3s_hv.c)
// ---------------------------------------------------------------------------------------------

/** `struct kvmppc_irq_map`. */
export class KvmppcIrqMap {
  /** Guest GSI. */
  vHwirq = 0;
  /** Host hardware irq, 0 = not mapped (invalidated). */
  rHwirq = 0;
  /** Host virq (`desc`). */
  hostIrq = 0;
}

/** `struct kvmppc_passthru_irqmap`: never shrinks during the VM's life. */
export class KvmppcPassthruIrqmap {
  nMapped = 0;
  readonly mapped: KvmppcIrqMap[];
  constructor() {
    this.mapped = [];
    for (let i = 0; i < KVMPPC_PIRQ_MAPPED; i++) this.mapped.push(new KvmppcIrqMap());
  }
}

// ---------------------------------------------------------------------------------------------
// irqfd
// ---------------------------------------------------------------------------------------------

/** Counters of each irqfd path running. */
export class KvmIrqfdStats {
  /** Wake-ups with EPOLLIN (signals consumed). */
  wakeups = 0;
  /** IPI triggers made by injection. */
  injected = 0;
  /** Injections refused by kvm_set_irq (−EINVAL: passed through, invalid; −ENODEV). */
  injectFailed = 0;
  /** Of those, refused because the source was passed through at that moment. */
  injectPassthrough = 0;
  /** set/clr_passthru calls and their failures. */
  setPassthru = 0;
  setPassthruFailed = 0;
  clrPassthru = 0;
  clrPassthruFailed = 0;
}

/**
 * `struct kvm_kernel_irqfd`.
 *
 * @remarks Models virt/kvm/eventfd.c.
 */
export class KvmKernelIrqfd {
  readonly vm: KvmIrqfds;
  readonly gsi: number;
  readonly eventfd: EventfdCtx;
  readonly consumer: IrqBypassConsumer;
  /** The connected VFIO producer, or null. */
  producer: IrqBypassProducer | null;
  /** Registered as a bypass consumer. */
  consumerRegistered: boolean;
  readonly wait: EventfdWaiter;
  constructor(vm: KvmIrqfds, gsi: number, eventfd: EventfdCtx) {
    this.vm = vm;
    this.gsi = gsi;
    this.eventfd = eventfd;
    this.producer = null;
    this.consumerRegistered = false;
    this.consumer = {
      token: eventfd,
      addProducer: (cons, prod) => vm.kvmArchIrqBypassAddProducer(this, cons, prod),
      delProducer: (cons, prod) => vm.kvmArchIrqBypassDelProducer(this, cons, prod),
      // kvm_arch_irq_bypass_stop/start are empty on ppc.
      stop: null,
      start: null,
    };
    this.wait = (_ctx, flags) => vm.irqfdWakeup(this, flags);
  }
}

/** Options of {@link KvmIrqfds}. */
export interface KvmIrqfdsOptions {
  arch: KvmArchXive;
  host: HostXive;
  bypass: IrqBypassManager;
  trace: TraceSink;
  /** `kvm_irq_bypass` module parameter of kvm-hv (default true). */
  kvmIrqBypass?: boolean;
}

/**
 * One VM's irqfds (`kvm->irqfds`) and passthrough map (`kvm->arch.pimap`).
 *
 * @remarks Models virt/kvm/eventfd.c (irqfd) and the book3s HV irq bypass glue
 * (arch/powerpc/kvm/book3s_hv.c: kvmppc_set_passthru_irq, kvmppc_clr_passthru_irq,
 * kvmppc_irq_bypass_add_producer_hv, kvmppc_irq_bypass_del_producer_hv).
 */
export class KvmIrqfds {
  readonly arch: KvmArchXive;
  readonly host: HostXive;
  readonly bypass: IrqBypassManager;
  readonly trace: TraceSink;
  kvmIrqBypass: boolean;
  readonly items: KvmKernelIrqfd[];
  /** `kvm->arch.pimap`, allocated on the first passthrough. */
  pimap: KvmppcPassthruIrqmap | null;
  readonly stats: KvmIrqfdStats;
  /** Failures the kernel only logs (pr_info / pr_warn), as text. */
  readonly log: string[];

  constructor(opts: KvmIrqfdsOptions) {
    this.arch = opts.arch;
    this.host = opts.host;
    this.bypass = opts.bypass;
    this.trace = opts.trace;
    this.kvmIrqBypass = opts.kvmIrqBypass ?? true;
    this.items = [];
    this.pimap = null;
    this.stats = new KvmIrqfdStats();
    this.log = [];
  }

  private emit<K extends TraceKindIn<typeof TRACE_KVM>>(kind: K, args: TraceArgs<K>): void {
    if (this.trace.mask & TRACE_KVM) traceEvent(this.trace, kind, args);
  }

  private pr(msg: string): void {
    if (this.log.length >= 256) this.log.shift();
    this.log.push(msg);
  }

  /**
   * `KVM_IRQFD` with the eventfd already resolved (`eventfd`: a context, or the −errno of the
   * fd lookup). 0 or −errno.
   *
   * @remarks Models virt/kvm/eventfd.c:kvm_irqfd().
   */
  kvmIrqfd(eventfd: EventfdCtx | number, gsi: number, flags: number): number {
    if (flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE)) return -EINVAL;
    if (flags & KVM_IRQFD_FLAG_DEASSIGN) return this.kvmIrqfdDeassign(eventfd, gsi);
    return this.kvmIrqfdAssign(eventfd, gsi, flags);
  }

  /**
   * `ioctl(vm_fd, KVM_IRQFD, argp)`: decode `struct kvm_irqfd` (big-endian user memory) and
   * resolve its fd.
   */
  kvmIrqfdIoctl(argp: number, mem: UserMemory, fdget: EventfdFdget): number {
    const b = mem.copyFromUser(argp, KVM_IRQFD_SIZE);
    if (typeof b === 'number') return -EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const fd = dv.getInt32(0);
    const gsi = dv.getUint32(4);
    const flags = dv.getUint32(8);
    for (let i = 16; i < KVM_IRQFD_SIZE; i++) if (b[i] !== 0) return -EINVAL;
    if (flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE)) return -EINVAL;
    return this.kvmIrqfd(fdget(fd), gsi, flags);
  }

  /** @remarks Models virt/kvm/eventfd.c:kvm_irqfd_assign(). */
  private kvmIrqfdAssign(eventfd: EventfdCtx | number, gsi: number, flags: number): number {
    if (typeof eventfd === 'number') return eventfd;
    // Level-triggered resampling (INTx through an irqfd) is not modelled.
    if (flags & KVM_IRQFD_FLAG_RESAMPLE) return -EINVAL;
    for (const t of this.items) if (t.eventfd === eventfd) return -EBUSY;
    const irqfd = new KvmKernelIrqfd(this, gsi, eventfd);
    this.items.push(irqfd);
    // vfs_poll: hook the wait queue; a count already pending injects now.
    eventfd.addWaiter(irqfd.wait);
    if (eventfd.count > 0) this.irqfdWakeup(irqfd, EPOLLIN);
    const ret = this.bypass.irqBypassRegisterConsumer(irqfd.consumer);
    if (ret) this.pr(`irq bypass consumer (token ${gsi}) registration fails: ${ret}`);
    else irqfd.consumerRegistered = true;
    this.emit('kvm.irqfd.assign', { gsi, ret });
    return 0;
  }

  /** @remarks Models virt/kvm/eventfd.c:kvm_irqfd_deassign() (+ the flushed shutdown work). */
  private kvmIrqfdDeassign(eventfd: EventfdCtx | number, gsi: number): number {
    if (typeof eventfd === 'number') return eventfd;
    for (const t of this.items.slice()) {
      if (t.eventfd === eventfd && t.gsi === gsi) this.irqfdShutdown(t);
    }
    return 0;
  }

  /** @remarks Models virt/kvm/eventfd.c:irqfd_shutdown(). */
  private irqfdShutdown(irqfd: KvmKernelIrqfd): void {
    const i = this.items.indexOf(irqfd);
    if (i < 0) return;
    this.items.splice(i, 1);
    irqfd.eventfd.removeWaiter(irqfd.wait);
    if (irqfd.consumerRegistered) {
      this.bypass.irqBypassUnregisterConsumer(irqfd.consumer);
      irqfd.consumerRegistered = false;
    }
    this.emit('kvm.irqfd.shutdown', { gsi: irqfd.gsi });
  }

  /**
   * The eventfd woke us: EPOLLIN consumes the count and injects (synchronously on ppc:
   * `kvm_arch_set_irq_inatomic` never returns −EWOULDBLOCK there); EPOLLHUP (the eventfd file
   * was released) deactivates the irqfd.
   *
   * @remarks Models virt/kvm/eventfd.c:irqfd_wakeup().
   */
  irqfdWakeup(irqfd: KvmKernelIrqfd, flags: number): void {
    if (flags & EPOLLIN) {
      irqfd.eventfd.doRead();
      this.stats.wakeups++;
      const rc = kvmppcXiveSetIrq(this.arch, this.host, irqfd.gsi, 1);
      if (rc === 0) this.stats.injected++;
      else {
        this.stats.injectFailed++;
        const st = this.arch.xive instanceof KvmXiveNative ? this.arch.xive.irqState(irqfd.gsi) : null;
        if (st?.ptNumber) this.stats.injectPassthrough++;
      }
      this.emit('kvm.irqfd.inject', { gsi: irqfd.gsi, rc });
    }
    if (flags & EPOLLHUP) this.irqfdShutdown(irqfd);
  }

  /** Every irqfd, shut down (VM destroy). @remarks Models virt/kvm/eventfd.c:kvm_irqfd_release(). */
  kvmIrqfdRelease(): void {
    for (const t of this.items.slice()) this.irqfdShutdown(t);
  }

  /** The irqfd bound to `gsi`, if any. */
  irqfdOfGsi(gsi: number): KvmKernelIrqfd | null {
    for (const t of this.items) if (t.gsi === gsi) return t;
    return null;
  }

  // -------------------------------------------------------------------------------------------
  // irq bypass consumer callbacks
  // -------------------------------------------------------------------------------------------

  /** @remarks Models book3s_hv.c:kvmppc_irq_bypass_add_producer_hv(). */
  kvmArchIrqBypassAddProducer(
    irqfd: KvmKernelIrqfd,
    _cons: IrqBypassConsumer,
    prod: IrqBypassProducer,
  ): number {
    irqfd.producer = prod;
    const ret = this.kvmppcSetPassthruIrq(prod.irq, irqfd.gsi);
    if (ret) this.pr(`kvmppc_set_passthru_irq (irq ${prod.irq}, gsi ${irqfd.gsi}) fails: ${ret}`);
    return ret;
  }

  /** @remarks Models book3s_hv.c:kvmppc_irq_bypass_del_producer_hv(). */
  kvmArchIrqBypassDelProducer(
    irqfd: KvmKernelIrqfd,
    _cons: IrqBypassConsumer,
    prod: IrqBypassProducer,
  ): void {
    irqfd.producer = null;
    const ret = this.kvmppcClrPassthruIrq(prod.irq, irqfd.gsi);
    if (ret) this.pr(`kvmppc_clr_passthru_irq (irq ${prod.irq}, gsi ${irqfd.gsi}) fails: ${ret}`);
  }

  /**
   * Map host virq `hostIrq` to guest `guestGsi`: 1 (!) when bypass is off, −EIO for no irq
   * descriptor, −ENOENT for an irq that is not a XIVE irq, −EINVAL if the GSI is already mapped,
   * −EAGAIN when the table is full; otherwise 0 — **even when set_mapped failed**, in which case
   * the entry is left invalid (`r_hwirq = 0`), as the kernel does.
   *
   * @remarks Models book3s_hv.c:kvmppc_set_passthru_irq() (Linux ≥ 5.2 with xics_on_xive()).
   */
  kvmppcSetPassthruIrq(hostIrq: number, guestGsi: number): number {
    if (!this.kvmIrqBypass) return 1;
    this.stats.setPassthru++;
    const desc = this.host.irq(hostIrq);
    if (desc === null) {
      this.stats.setPassthruFailed++;
      return -EIO;
    }
    if (this.pimap === null) this.pimap = new KvmppcPassthruIrqmap();
    const pimap = this.pimap;
    // Every host irq of the model is a XIVE irq, so the chip check (−ENOENT) always passes.
    let i = 0;
    for (; i < pimap.nMapped; i++) {
      if (guestGsi === pimap.mapped[i]!.vHwirq) {
        if (pimap.mapped[i]!.rHwirq) {
          this.stats.setPassthruFailed++;
          return -EINVAL;
        }
        break;
      }
    }
    if (i === KVMPPC_PIRQ_MAPPED) {
      this.stats.setPassthruFailed++;
      return -EAGAIN;
    }
    const m = pimap.mapped[i]!;
    m.vHwirq = guestGsi;
    m.hostIrq = hostIrq;
    m.rHwirq = desc.data.hwIrq;
    if (i === pimap.nMapped) pimap.nMapped++;
    const xive = this.arch.xive;
    const rc = xive instanceof KvmXiveNative ? xive.setMapped(guestGsi, desc.data.hwIrq) : -ENODEV;
    if (rc) {
      m.rHwirq = 0;
      this.stats.setPassthruFailed++;
      this.pr(`kvmppc_xive_set_mapped (gsi ${guestGsi}, hw 0x${desc.data.hwIrq.toString(16)}) fails: ${rc}`);
    }
    this.emit('kvm.passthru.set', { guestGsi, hostIrq, hwIrq: desc.data.hwIrq, rc });
    return 0;
  }

  /**
   * Unmap: 0 when bypass is off or no map exists yet, −EIO for no descriptor, −ENODEV when the GSI
   * was never mapped; otherwise clr_mapped's result (the entry is invalidated either way).
   *
   * @remarks Models book3s_hv.c:kvmppc_clr_passthru_irq().
   */
  kvmppcClrPassthruIrq(hostIrq: number, guestGsi: number): number {
    if (!this.kvmIrqBypass) return 0;
    this.stats.clrPassthru++;
    if (this.host.irq(hostIrq) === null) {
      this.stats.clrPassthruFailed++;
      return -EIO;
    }
    const pimap = this.pimap;
    if (pimap === null) return 0;
    let i = 0;
    for (; i < pimap.nMapped; i++) if (guestGsi === pimap.mapped[i]!.vHwirq) break;
    if (i === pimap.nMapped) {
      this.stats.clrPassthruFailed++;
      return -ENODEV;
    }
    const m = pimap.mapped[i]!;
    const xive = this.arch.xive;
    // The kernel passes the recorded descriptor; its hw irq is the one set_mapped bound.
    const hw = this.host.irq(m.hostIrq)?.data.hwIrq ?? 0;
    const rc = xive instanceof KvmXiveNative ? xive.clrMapped(guestGsi, hw) : -ENODEV;
    m.rHwirq = 0;
    if (rc) this.stats.clrPassthruFailed++;
    this.emit('kvm.passthru.clr', { guestGsi, hostIrq, hwIrq: hw, rc });
    return rc;
  }

  /** The live map entry of `gsi` (r_hwirq ≠ 0), or null. */
  passthruOf(gsi: number): KvmppcIrqMap | null {
    const p = this.pimap;
    if (p === null) return null;
    for (let i = 0; i < p.nMapped; i++) {
      const m = p.mapped[i]!;
      if (m.vHwirq === gsi && m.rHwirq !== 0) return m;
    }
    return null;
  }
}
