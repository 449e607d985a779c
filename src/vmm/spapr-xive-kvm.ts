/**
 * The sPAPR XIVE controller backed by the in-kernel KVM XIVE device (`kernel-irqchip=on`):
 * connect / disconnect of the device, the ESB and TIMA pages mmap'd from the device fd and laid
 * over the emulated regions as RAM devices (one memslot each, so guest ESB and TIMA accesses
 * never exit), the hcalls' device-attribute side, device lines as ESB trigger stores, the VM
 * stop/run PQ handling, and the state sync used by migration.
 *
 * Every kernel interaction is a syscall on the VMM's process: `ioctl` with structs written into
 * user memory, `mmap` of the device fd, and loads/stores through the VMM's own page tables.
 *
 * What a guest can tell apart from the emulated controller (each pinned in a test):
 * - H_INT_ESB load-EOI on an LSI still asserted returns 0 (emulated: 1, the EOI re-forwarded);
 *   the re-delivery is the same. H_INT_GET_SOURCE_INFO is the same in both modes: QEMU 7.2
 *   forces H_INT_ESB for every LSI, emulated or not.
 * - An LSI line change is a trigger store on the IPI behind it, deasserts included: with PQ 00
 *   (e.g. a level raised while disabled, then dropped by the device) that delivers once.
 * - KVM refusals are H_HARDWARE: SET_QUEUE_CONFIG with a size other than 64 KiB or without
 *   ALWAYS_NOTIFY, SET_SOURCE_CONFIG to a priority whose queue is not configured.
 * - SET_SOURCE_CONFIG with MASK and an unchanged (server, prio, eisn) is a KVM no-op: QEMU's
 *   EAS says masked, events still flow.
 * - GET_QUEUE_CONFIG on a never-configured queue: QEMU asserts (here H_HARDWARE and a trace).
 * - The OS ring's LSMFB and AGE read 00 (KVM's initial w01 and its pull), ff emulated; `info
 *   pic` shows it, the guest does not read them.
 * - system_reset leaves the device as it is (connected, old targeting and PQs); a trigger while
 *   the VM is stopped is caught in the source's hardware Q, replayed by a resume of the same VM
 *   and lost by a migration.
 */

import {
  decodeKvmCreateDevice,
  decodeKvmPpcXiveEq,
  encodeKvmCreateDevice,
  encodeKvmDeviceAttr,
  encodeKvmEnableCap,
  encodeKvmOneReg,
  encodeKvmPpcXiveEq,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_SIZE,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_EQ_SYNC,
  KVM_DEV_XIVE_GRP_CTRL,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE_SYNC,
  KVM_DEV_XIVE_NR_SERVERS,
  KVM_DEV_XIVE_RESET,
  KVM_DEVICE_ATTR_SIZE,
  KVM_ENABLE_CAP,
  KVM_ENABLE_CAP_SIZE,
  KVM_GET_DEVICE_ATTR,
  KVM_GET_ONE_REG,
  KVM_HAS_DEVICE_ATTR,
  KVM_PPC_XIVE_EQ_SIZE,
  KVM_REG_PPC_VP_STATE,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_ONE_REG,
  KVM_XIVE_EQ_ALWAYS_NOTIFY,
  KVM_XIVE_ESB_PAGE_OFFSET,
  KVM_XIVE_LEVEL_ASSERTED,
  KVM_XIVE_LEVEL_SENSITIVE,
  KVM_XIVE_TIMA_PAGE_OFFSET,
  kvmXiveEqId,
  kvmXiveSourceConfig,
} from '../host/kvm/uapi.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../host/mm/constants.ts';
import { getField32, setField32 } from '../hw/bits.ts';
import { Word64 } from '../hw/mmio.ts';
import {
  EAS_END_DATA_LO,
  EAS_END_INDEX_HI,
  EAS_MASKED_LO,
  EAS_VALID_HI,
  END_W0_QSIZE,
  END_W0_UCOND_NOTIFY,
  END_W0_VALID,
  END_W1_GENERATION,
  END_W1_PAGE_OFF,
  END_W2_EQ_ADDR_HI,
  TM_QW1_OS,
  XIVE_ESB_GET,
  XIVE_ESB_LOAD_EOI,
  XIVE_ESB_OFF,
  XIVE_ESB_QUEUED,
  XIVE_ESB_RESET,
  XIVE_ESB_SET_PQ_00,
  XIVE_ESB_SET_PQ_10,
} from '../hw/xive/regs.ts';
import { traceEvent } from '../sim/trace-events.ts';
import { NULL_TRACE, TRACE_VMM, type TraceSink } from '../sim/trace-sink.ts';
import { MemoryRegion } from './memory-region.ts';
import {
  SPAPR_XIVE_ESB_SHIFT,
  SPAPR_XIVE_TM_SIZE,
  type SpaprXive,
  type SpaprXiveKvmBackend,
} from './spapr-xive.ts';

/** Bytes of one source's ESB pages (trigger + management) and of one page, as constants. */
const ESB_PAIR = 2 ** SPAPR_XIVE_ESB_SHIFT;
const ESB_PAGE = ESB_PAIR / 2;

/** The syscalls the backend uses on the VMM's process (`HostProcess` satisfies this). */
export interface KvmXiveProcess {
  ioctl(fd: number, request: number, arg: number | bigint): number;
  mmap(addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number;
  munmap(addr: number, length: number): number;
  close(fd: number): number;
  load(addr: number, size: 1 | 2 | 4 | 8, out: Word64): number;
  store(addr: number, size: 1 | 2 | 4 | 8, hi: number, lo: number): number;
  userAlloc(len: number): number;
  putU32(addr: number, v: number): void;
  putU64(addr: number, v: bigint): void;
  getU32(addr: number): number;
  getU64(addr: number): bigint;
  putBytes(addr: number, b: Uint8Array): void;
  getBytes(addr: number, len: number): Uint8Array;
}

/** What the backend needs from the machine. */
export interface SpaprXiveKvmConfig {
  readonly xive: SpaprXive;
  readonly proc: KvmXiveProcess;
  readonly vmFd: number;
  /** `xive.esb`: the container the `xive.esb-kvm` RAM device overlays (priority 1). */
  readonly esbContainer: MemoryRegion;
  /** `xive.tima`: the emulated TIMA region the `xive.tima` RAM device overlays (priority 1). */
  readonly timaRegion: MemoryRegion;
  /** vCPU fd of each vCPU id (`KVM_ENABLE_CAP` and ONE_REG go there). */
  readonly vcpuFds: readonly number[];
  readonly trace?: TraceSink;
}

const hex = (n: number | bigint): string => n.toString(16);

/**
 * An MMIO view of a range of the VMM's own address space: what QEMU itself reads and writes
 * when it touches a RAM-device region (`ram_device_mem_ops`), through its page tables.
 */
class HostRangeOps {
  private readonly proc: KvmXiveProcess;
  private readonly base: number;
  /** Told when the VMM's own access takes a signal (QEMU would die of it). */
  private readonly onSignal: (sig: number, addr: number) => void;
  constructor(proc: KvmXiveProcess, base: number, onSignal: (sig: number, addr: number) => void) {
    this.proc = proc;
    this.base = base;
    this.onSignal = onSignal;
  }
  load(offset: number, size: 1 | 2 | 4 | 8, _cpu: number, out: Word64): void {
    const sig = this.proc.load(this.base + offset, size, out);
    if (sig !== 0) {
      out.setOnes();
      this.onSignal(sig, this.base + offset);
    }
  }
  store(offset: number, size: 1 | 2 | 4 | 8, hi: number, lo: number, _cpu: number): void {
    const sig = this.proc.store(this.base + offset, size, hi, lo);
    if (sig !== 0) this.onSignal(sig, this.base + offset);
  }
}

/**
 * The KVM side of a SpaprXive.
 *
 * @remarks Models hw/intc/spapr_xive_kvm.c (QEMU 7.2).
 */
export class SpaprXiveKvm implements SpaprXiveKvmBackend {
  /** The XIVE device fd, −1 when disconnected (`xive->fd`). */
  fd: number;
  /** Where the ESB pages are mapped in the VMM (`xsrc->esb_mmap`), 0 when not. */
  esbMmap: number;
  /** Where the TIMA pages are mapped in the VMM (`xive->tm_mmap`), 0 when not. */
  tmMmap: number;
  /** `xive.esb-kvm` while connected. */
  esbMr: MemoryRegion | null;
  /** The KVM `xive.tima` RAM device while connected. */
  timaMr: MemoryRegion | null;
  /** VM change-state handler registered (`xive->change`). */
  changeHandler: boolean;
  /** The last connect failure, QEMU's error text. */
  lastError: string | null;
  /** Attribute calls that failed (each became H_HARDWARE or a connect failure). */
  failures: number;
  /** vCPU ids connected to the device (`kvm_enabled_cpus`). */
  readonly enabledCpus: Set<number>;
  /**
   * Run `fn` on vCPU `cpu` with the vCPU out of KVM_RUN (QEMU's `run_on_cpu`, which kicks the
   * vCPU thread); set by the machine. Default: call `fn` as is.
   */
  runOnCpu: (cpu: number, fn: () => void) => void;
  /**
   * Called when QEMU's own access through the RAM-device overlays (qtest, DMA — not the guest,
   * which goes through the memslots) takes a signal, e.g. SIGBUS on the ESB page of a source KVM
   * does not know: QEMU has no handler for it and dies. Default: nothing (the access reads all
   * ones / is dropped).
   */
  onVmmSignal: ((sig: number, addr: number) => void) | null;
  /** Whether the VM runs (`runstate_is_running()`); set by the machine. */
  isRunning: () => boolean;
  private readonly xive: SpaprXive;
  private readonly proc: KvmXiveProcess;
  private readonly vmFd: number;
  private readonly esbContainer: MemoryRegion;
  private readonly timaRegion: MemoryRegion;
  private readonly vcpuFds: readonly number[];
  private readonly trace: TraceSink;
  /** User buffers: the ioctl struct, the attribute value (64 B: `struct kvm_ppc_xive_eq`). */
  private readonly attrBuf: number;
  private readonly valBuf: number;
  private readonly word: Word64;

  constructor(cfg: SpaprXiveKvmConfig) {
    this.fd = -1;
    this.esbMmap = 0;
    this.tmMmap = 0;
    this.esbMr = null;
    this.timaMr = null;
    this.changeHandler = false;
    this.lastError = null;
    this.failures = 0;
    this.enabledCpus = new Set();
    this.runOnCpu = (_cpu, fn) => fn();
    this.isRunning = () => true;
    this.onVmmSignal = null;
    this.xive = cfg.xive;
    this.proc = cfg.proc;
    this.vmFd = cfg.vmFd;
    this.esbContainer = cfg.esbContainer;
    this.timaRegion = cfg.timaRegion;
    this.vcpuFds = cfg.vcpuFds;
    this.trace = cfg.trace ?? NULL_TRACE;
    this.attrBuf = this.proc.userAlloc(
      Math.max(KVM_ENABLE_CAP_SIZE, KVM_DEVICE_ATTR_SIZE, KVM_CREATE_DEVICE_SIZE),
    );
    this.valBuf = this.proc.userAlloc(KVM_PPC_XIVE_EQ_SIZE);
    this.word = new Word64();
  }

  private readonly vmmSignal = (sig: number, addr: number): void => {
    this.onVmmSignal?.(sig, addr);
  };

  /** `spapr_xive_in_kernel()`: the device is connected. */
  get inKernel(): boolean {
    return this.fd !== -1;
  }

  // -------------------------------------------------------------------------------------------
  // Device access
  // -------------------------------------------------------------------------------------------

  /**
   * `KVM_SET_DEVICE_ATTR` / `KVM_GET_DEVICE_ATTR` with `addr` = `valuePtr` (0 = NULL).
   *
   * @remarks Models accel/kvm/kvm-all.c:kvm_device_access().
   */
  deviceAccess(group: number, attr: bigint | number, valuePtr: number, write: boolean): number {
    this.proc.putBytes(this.attrBuf, encodeKvmDeviceAttr({ group, attr, addr: valuePtr }));
    const rc = this.proc.ioctl(this.fd, write ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, this.attrBuf);
    if (rc < 0) {
      this.failures++;
      this.trace.guestError(
        `KVM_${write ? 'SET' : 'GET'}_DEVICE_ATTR failed: Group ${group} attr 0x${hex(attr)}: errno ${-rc}`,
      );
    }
    return rc;
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_device_check_attr(). */
  private checkAttr(group: number, attr: number): boolean {
    this.proc.putBytes(this.attrBuf, encodeKvmDeviceAttr({ group, attr, addr: 0 }));
    return this.proc.ioctl(this.fd, KVM_HAS_DEVICE_ATTR, this.attrBuf) === 0;
  }

  // -------------------------------------------------------------------------------------------
  // Connect / disconnect
  // -------------------------------------------------------------------------------------------

  /**
   * Create the device, tell it the number of servers, map the ESB and TIMA pages and overlay
   * them at priority 1, connect every vCPU, declare every valid source. Returns 0, or −1 with
   * {@link lastError} set (everything done so far undone).
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_connect().
   */
  connect(nrServers: number): number {
    if (this.fd !== -1) return 0; // reboot in XIVE-only mode: already connected
    if (this.proc.ioctl(this.vmFd, KVM_CHECK_EXTENSION, KVM_CAP_PPC_IRQ_XIVE) <= 0) {
      this.lastError = 'IRQ_XIVE capability must be present for KVM';
      return -1;
    }
    this.proc.putBytes(this.attrBuf, encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    const rc = this.proc.ioctl(this.vmFd, KVM_CREATE_DEVICE, this.attrBuf);
    if (rc < 0) {
      this.lastError = `XIVE: error creating KVM device: errno ${-rc}`;
      return -1;
    }
    this.fd = decodeKvmCreateDevice(this.proc.getBytes(this.attrBuf, KVM_CREATE_DEVICE_SIZE)).fd;

    if (this.checkAttr(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS)) {
      this.proc.putU32(this.valBuf, nrServers);
      const r = this.deviceAccess(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS, this.valBuf, true);
      if (r < 0) return this.connectFailed(`KVM_DEV_XIVE_NR_SERVERS: errno ${-r}`);
    }

    // 1. Source ESB pages: one RAM device over the whole window, above `xive.esb-emulated`.
    const esbLen = this.xive.nrIrqs * 2 ** SPAPR_XIVE_ESB_SHIFT;
    const esb = this.mmap(KVM_XIVE_ESB_PAGE_OFFSET, esbLen);
    if (esb < 0) return this.connectFailed(`XIVE: unable to set memory mapping: errno ${-esb}`);
    this.esbMmap = esb;
    this.esbMr = MemoryRegion.ramDevice(
      'xive.esb-kvm',
      esbLen,
      esb,
      new HostRangeOps(this.proc, esb, this.vmmSignal),
    );
    this.esbContainer.addSubregionOverlap(0, this.esbMr, 1);

    // 2. END ESB pages: no KVM support (they stay emulated and disabled).
    // 3. TIMA pages.
    const tima = this.mmap(KVM_XIVE_TIMA_PAGE_OFFSET, SPAPR_XIVE_TM_SIZE);
    if (tima < 0) return this.connectFailed(`XIVE: unable to set memory mapping: errno ${-tima}`);
    this.tmMmap = tima;
    this.timaMr = MemoryRegion.ramDevice(
      'xive.tima',
      SPAPR_XIVE_TM_SIZE,
      tima,
      new HostRangeOps(this.proc, tima, this.vmmSignal),
    );
    this.timaRegion.addSubregionOverlap(0, this.timaMr, 1);

    this.changeHandler = true;

    // Connect the presenters of the initial vCPUs.
    for (let cpu = 0; cpu < this.vcpuFds.length; cpu++) {
      const r = this.cpuConnect(cpu);
      if (r < 0) {
        const hint = r === -28 ? ` (Try -smp maxcpus=N with N < ${this.vcpuFds.length})` : '';
        return this.connectFailed(`XIVE: unable to connect CPU${cpu} to KVM device: errno ${-r}${hint}`);
      }
    }

    // Update the KVM sources.
    const r = this.sourceReset();
    if (r < 0) return this.connectFailed(`KVM_DEV_XIVE_GRP_SOURCE: errno ${-r}`);
    if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.kvm.connect', { fd: this.fd, nrServers });
    return 0;
  }

  private connectFailed(msg: string): number {
    this.lastError = `KVM XIVE: ${msg}`;
    this.disconnect();
    return -1;
  }

  /** @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_mmap() (page shift hard-coded to 16). */
  private mmap(pgoff: number, len: number): number {
    return this.proc.mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, pgoff * 2 ** 16);
  }

  /**
   * Remove the overlays, unmap, close the fd (the kernel releases the device and detaches the
   * vCPU presenters), forget the connected vCPUs and the change-state handler.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_disconnect().
   */
  disconnect(): void {
    if (this.fd === -1) throw new Error('kvmppc_xive_disconnect: assertion failed: xive->fd != -1');
    if (this.esbMmap !== 0) {
      if (this.esbMr !== null) this.esbContainer.delSubregion(this.esbMr);
      this.esbMr = null;
      this.proc.munmap(this.esbMmap, this.xive.nrIrqs * 2 ** SPAPR_XIVE_ESB_SHIFT);
      this.esbMmap = 0;
    }
    if (this.tmMmap !== 0) {
      if (this.timaMr !== null) this.timaRegion.delSubregion(this.timaMr);
      this.timaMr = null;
      this.proc.munmap(this.tmMmap, SPAPR_XIVE_TM_SIZE);
      this.tmMmap = 0;
    }
    this.proc.close(this.fd);
    this.fd = -1;
    this.enabledCpus.clear();
    this.changeHandler = false;
    if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.kvm.disconnect', {});
  }

  /**
   * `KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE, {fd, vcpu_id})` on the vCPU fd, once per vCPU.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_cpu_connect().
   */
  cpuConnect(cpu: number): number {
    if (this.enabledCpus.has(cpu)) return 0;
    const vcpuFd = this.vcpuFds[cpu];
    if (vcpuFd === undefined) throw new Error(`kvmppc_xive_cpu_connect: no vCPU ${cpu}`);
    this.proc.putBytes(this.attrBuf, encodeKvmEnableCap({ cap: KVM_CAP_PPC_IRQ_XIVE, args: [this.fd, cpu] }));
    const rc = this.proc.ioctl(vcpuFd, KVM_ENABLE_CAP, this.attrBuf);
    if (rc < 0) return rc;
    this.enabledCpus.add(cpu);
    return 0;
  }

  // -------------------------------------------------------------------------------------------
  // Sources
  // -------------------------------------------------------------------------------------------

  /**
   * Declare a source to KVM (`GRP_SOURCE`: LSI and its level); KVM masks it (PQ 01).
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_source_reset_one().
   */
  sourceResetOne(lisn: number): number {
    const src = this.xive.source;
    let state = 0n;
    if (src.isLsi(lisn)) {
      state |= KVM_XIVE_LEVEL_SENSITIVE;
      if (src.isAsserted(lisn)) state |= KVM_XIVE_LEVEL_ASSERTED;
    }
    this.proc.putU64(this.valBuf, state);
    return this.deviceAccess(KVM_DEV_XIVE_GRP_SOURCE, lisn, this.valBuf, true);
  }

  /** @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_source_reset(): every valid LISN. */
  sourceReset(): number {
    const eat = this.xive.eat;
    for (let i = 0; i < this.xive.nrIrqs; i++) {
      if ((eat[i * 2]! & EAS_VALID_HI) === 0) continue;
      const rc = this.sourceResetOne(i);
      if (rc < 0) return rc;
    }
    return 0;
  }

  /**
   * `GRP_SOURCE_CONFIG` from an EAS: server and priority from the END index, the masked bit,
   * the EISN.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_set_source_config().
   */
  setSourceConfig(lisn: number, easHi: number, easLo: number): number {
    if ((easHi & EAS_VALID_HI) === 0)
      throw new Error('kvmppc_xive_set_source_config: assertion failed: EAS valid');
    const endIdx = getField32(EAS_END_INDEX_HI, easHi);
    const masked = (easLo & EAS_MASKED_LO) !== 0;
    const eisn = getField32(EAS_END_DATA_LO, easLo);
    const v = kvmXiveSourceConfig(endIdx & 7, endIdx >>> 3, masked, eisn);
    this.proc.putU64(this.valBuf, v);
    return this.deviceAccess(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, lisn, this.valBuf, true);
  }

  /** @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_sync_source(). */
  syncSource(lisn: number): number {
    return this.deviceAccess(KVM_DEV_XIVE_GRP_SOURCE_SYNC, lisn, 0, true);
  }

  /** @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_reset() (`KVM_DEV_XIVE_RESET`). */
  reset(): number {
    return this.deviceAccess(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_RESET, 0, true);
  }

  // -------------------------------------------------------------------------------------------
  // ESB accesses by the VMM (through its mapping of the device)
  // -------------------------------------------------------------------------------------------

  /**
   * An 8-byte big-endian access at the management page of `lisn` + `offset`. Returns 0, or the
   * signal the VMM took (the value is then all ones).
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:xive_esb_rw().
   */
  private esbAccess(
    lisn: number,
    offset: number,
    hi: number,
    lo: number,
    write: boolean,
    out: Word64,
  ): number {
    const addr = this.esbMmap + lisn * ESB_PAIR + ESB_PAGE + offset;
    if (write) {
      out.setOnes();
      return this.proc.store(addr, 8, hi, lo);
    }
    const sig = this.proc.load(addr, 8, out);
    if (sig !== 0) out.setOnes();
    return sig;
  }

  /** @remarks Models hw/intc/spapr_xive_kvm.c:xive_esb_read() (the low 2 bits: PQ). */
  private esbRead(lisn: number, offset: number): number {
    const w = this.word;
    this.esbAccess(lisn, offset, 0, 0, false, w);
    return w.lo & 3;
  }

  /**
   * Trigger: a store of 0 at offset 0 of the management page (the trigger-capable half of a
   * full-function page).
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_esb_trigger().
   */
  esbTrigger(lisn: number): void {
    this.esbAccess(lisn, 0, 0, 0, true, this.word);
  }

  /**
   * H_INT_ESB under KVM. A load-EOI on an LSI is SET_PQ_00 and, if QEMU's source still has the
   * line asserted, a trigger; it returns 0. Returns 0 or the VMM's signal (H_HARDWARE).
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_esb_rw().
   */
  esbRw(lisn: number, offset: number, hi: number, lo: number, write: boolean, out: Word64): number {
    if (write) return this.esbAccess(lisn, offset, hi, lo, true, out);
    const src = this.xive.source;
    if (src.isLsi(lisn) && offset === XIVE_ESB_LOAD_EOI) {
      this.esbRead(lisn, XIVE_ESB_SET_PQ_00);
      if (src.isAsserted(lisn)) this.esbTrigger(lisn);
      out.set(0, 0);
      return 0;
    }
    return this.esbAccess(lisn, offset, 0, 0, false, out);
  }

  /**
   * A device line: MSI level 0 is ignored; an LSI records its level in QEMU's source. Then a
   * trigger store, whatever the LSI level (a deassert triggers too).
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_source_set_irq().
   */
  setIrq(lisn: number, level: number): void {
    const src = this.xive.source;
    if (!src.isLsi(lisn)) {
      if (!level) return;
    } else {
      src.setAsserted(lisn, level !== 0);
    }
    this.esbTrigger(lisn);
  }

  // -------------------------------------------------------------------------------------------
  // Queues
  // -------------------------------------------------------------------------------------------

  /**
   * `GRP_EQ_CONFIG` set from an END: flags (ALWAYS_NOTIFY iff the END's n bit), and for a valid
   * END qshift/qaddr/toggle/index; an invalid END resets the queue (qshift 0, qaddr 0).
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_set_queue_config().
   */
  setQueueConfig(endIdx: number, end: Uint32Array): number {
    const valid = (end[0]! & END_W0_VALID) !== 0;
    const eq = {
      flags: end[0]! & END_W0_UCOND_NOTIFY ? KVM_XIVE_EQ_ALWAYS_NOTIFY : 0,
      qshift: valid ? getField32(END_W0_QSIZE, end[0]!) + 12 : 0,
      qaddr: valid ? BigInt((end[2]! & END_W2_EQ_ADDR_HI) * 2 ** 32 + end[3]!) : 0n,
      qtoggle: valid ? getField32(END_W1_GENERATION, end[1]!) : 0,
      qindex: valid ? getField32(END_W1_PAGE_OFF, end[1]!) : 0,
    };
    this.proc.putBytes(this.valBuf, encodeKvmPpcXiveEq(eq));
    return this.deviceAccess(
      KVM_DEV_XIVE_GRP_EQ_CONFIG,
      kvmXiveEqId(endIdx >>> 3, endIdx & 7),
      this.valBuf,
      true,
    );
  }

  /**
   * `GRP_EQ_CONFIG` get: only the hardware toggle and index are taken, into END w1 (which loses
   * its other bits, as QEMU rebuilds the word). The buffer starts zeroed (QEMU's `= { 0 }`), so
   * a queue KVM has not configured reads as toggle 0, index 0. QEMU asserts the END is valid;
   * here an invalid END is refused (−EINVAL, traced) instead of aborting.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_get_queue_config().
   */
  getQueueConfig(endIdx: number, end: Uint32Array): number {
    if ((end[0]! & END_W0_VALID) === 0) {
      this.trace.guestError(`kvmppc_xive_get_queue_config: assertion failed: END ${endIdx} valid`);
      return -22;
    }
    this.proc.putBytes(this.valBuf, new Uint8Array(KVM_PPC_XIVE_EQ_SIZE));
    const rc = this.deviceAccess(
      KVM_DEV_XIVE_GRP_EQ_CONFIG,
      kvmXiveEqId(endIdx >>> 3, endIdx & 7),
      this.valBuf,
      false,
    );
    if (rc < 0) return rc;
    const eq = decodeKvmPpcXiveEq(this.proc.getBytes(this.valBuf, KVM_PPC_XIVE_EQ_SIZE));
    end[1] = (setField32(END_W1_GENERATION, 0, eq.qtoggle) | setField32(END_W1_PAGE_OFF, 0, eq.qindex)) >>> 0;
    return 0;
  }

  /** Refresh every valid END from KVM. @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_get_queues(). */
  getQueues(): number {
    const endt = this.xive.endt;
    for (let i = 0; i < this.xive.nrEnds; i++) {
      if ((endt[i * 8]! & END_W0_VALID) === 0) continue;
      const rc = this.getQueueConfig(i, endt.subarray(i * 8, i * 8 + 8));
      if (rc < 0) return rc;
    }
    return 0;
  }

  // -------------------------------------------------------------------------------------------
  // Thread contexts
  // -------------------------------------------------------------------------------------------

  /**
   * ONE_REG get of `KVM_REG_PPC_VP_STATE` into the emulated thread context's OS ring words 0–1.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_cpu_get_state().
   */
  cpuGetState(cpu: number): number {
    const valAddr = this.valBuf;
    this.proc.putBytes(valAddr, new Uint8Array(16));
    this.proc.putBytes(this.attrBuf, encodeKvmOneReg({ id: KVM_REG_PPC_VP_STATE, addr: valAddr }));
    const rc = this.proc.ioctl(this.vcpuFd(cpu), KVM_GET_ONE_REG, this.attrBuf);
    if (rc !== 0) return rc;
    const b = this.proc.getBytes(valAddr, 8);
    this.xive.tctxs[cpu]!.regs.set(b, TM_QW1_OS);
    return 0;
  }

  /**
   * ONE_REG set of `KVM_REG_PPC_VP_STATE` from the emulated thread context's OS ring words 0–1.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_cpu_set_state().
   */
  cpuSetState(cpu: number): number {
    const valAddr = this.valBuf;
    const b = new Uint8Array(16);
    b.set(this.xive.tctxs[cpu]!.regs.subarray(TM_QW1_OS, TM_QW1_OS + 8), 0);
    this.proc.putBytes(valAddr, b);
    this.proc.putBytes(this.attrBuf, encodeKvmOneReg({ id: KVM_REG_PPC_VP_STATE, addr: valAddr }));
    return this.proc.ioctl(this.vcpuFd(cpu), KVM_SET_ONE_REG, this.attrBuf);
  }

  private vcpuFd(cpu: number): number {
    const fd = this.vcpuFds[cpu];
    if (fd === undefined) throw new Error(`SpaprXiveKvm: no vCPU ${cpu}`);
    return fd;
  }

  // -------------------------------------------------------------------------------------------
  // VM state changes and migration
  // -------------------------------------------------------------------------------------------

  /**
   * VM stop: every valid source not OFF is set PENDING (a trigger while stopped lands in Q),
   * its previous PQ saved in QEMU's source; then EQ_SYNC. VM run: every valid source gets its
   * saved PQ back with a `SET_PQ_<pq>` load, and a trigger if it was RESET but came back QUEUED.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_change_state_handler().
   */
  changeState(running: boolean): number {
    if (!this.changeHandler) return 0;
    const src = this.xive.source;
    const eat = this.xive.eat;
    if (running) {
      for (let i = 0; i < this.xive.nrIrqs; i++) {
        if ((eat[i * 2]! & EAS_VALID_HI) === 0) continue;
        const pq = src.getPq(i);
        const oldPq = this.esbRead(i, XIVE_ESB_SET_PQ_00 + pq * 0x100);
        if (pq === XIVE_ESB_RESET && oldPq === XIVE_ESB_QUEUED) this.esbTrigger(i);
      }
      if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.kvm.run', {});
      return 0;
    }
    for (let i = 0; i < this.xive.nrIrqs; i++) {
      if ((eat[i * 2]! & EAS_VALID_HI) === 0) continue;
      let pq = this.esbRead(i, XIVE_ESB_GET);
      if (pq !== XIVE_ESB_OFF) pq = this.esbRead(i, XIVE_ESB_SET_PQ_10);
      src.setPq(i, pq);
    }
    if (this.trace.mask & TRACE_VMM) traceEvent(this.trace, 'xive.kvm.stop', {});
    return this.deviceAccess(KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_EQ_SYNC, 0, true);
  }

  /**
   * Pull KVM state into the QEMU model (monitor, pre-save): PQs (only while running: when
   * stopped the saved PQs are the truth), then every valid END's toggle/index.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_synchronize_state() and
   * kvmppc_xive_source_get_state().
   */
  synchronizeState(running: boolean): number {
    if (running) {
      const eat = this.xive.eat;
      for (let i = 0; i < this.xive.nrIrqs; i++) {
        if ((eat[i * 2]! & EAS_VALID_HI) === 0) continue;
        this.xive.source.setPq(i, this.esbRead(i, XIVE_ESB_GET));
      }
    }
    return this.getQueues();
  }

  /**
   * `info pic` under KVM: each vCPU's OS ring from VP_STATE (on that vCPU, out of KVM_RUN), then
   * the sources' PQs (while running) and the ENDs' toggle/index. Failures are reported as QEMU
   * does (`error_report_err`) and the stale copy is printed.
   *
   * @remarks Models hw/intc/xive.c:xive_tctx_pic_print_info() → kvmppc_xive_cpu_synchronize_state()
   * and hw/intc/spapr_xive.c:spapr_xive_pic_print_info() → kvmppc_xive_synchronize_state().
   */
  synchronizeForMonitor(): void {
    for (let cpu = 0; cpu < this.vcpuFds.length; cpu++) {
      this.runOnCpu(cpu, () => {
        const rc = this.cpuGetState(cpu);
        if (rc < 0) this.trace.guestError(`XIVE: could not capture KVM state of CPU ${cpu}: errno ${-rc}`);
      });
    }
    const rc = this.synchronizeState(this.isRunning());
    if (rc < 0) this.trace.guestError(`XIVE: could not synchronize the KVM state: errno ${-rc}`);
  }

  /** @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_pre_save(). */
  preSave(): number {
    return this.getQueues();
  }

  /**
   * After an incoming migration: valid ENDs first (targeting depends on them), then each valid
   * source declared and configured, then every vCPU's OS ring. PQs follow at the next run.
   *
   * @remarks Models hw/intc/spapr_xive_kvm.c:kvmppc_xive_post_load().
   */
  postLoad(): number {
    if (this.fd === -1) throw new Error('kvmppc_xive_post_load: assertion failed: xive->fd != -1');
    const { endt, eat } = this.xive;
    for (let i = 0; i < this.xive.nrEnds; i++) {
      if ((endt[i * 8]! & END_W0_VALID) === 0) continue;
      const rc = this.setQueueConfig(i, endt.subarray(i * 8, i * 8 + 8));
      if (rc < 0) return rc;
    }
    for (let i = 0; i < this.xive.nrIrqs; i++) {
      if ((eat[i * 2]! & EAS_VALID_HI) === 0) continue;
      let rc = this.sourceResetOne(i);
      if (rc < 0) return rc;
      rc = this.setSourceConfig(i, eat[i * 2]!, eat[i * 2 + 1]!);
      if (rc < 0) return rc;
    }
    for (let cpu = 0; cpu < this.vcpuFds.length; cpu++) {
      const rc = this.cpuSetState(cpu);
      if (rc < 0) return rc;
    }
    return 0;
  }
}
