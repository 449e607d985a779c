/**
 * The bench's scale cases, each in a fresh process (`bench/run.ts --case scale-kvm` /
 * `scale-emulated`): every source of the interrupt space created and configured, the whole ESB
 * range mapped, every source's EOI page touched once through the guest's own access path, then
 * {@link SCALE_INTERRUPTS} interrupts delivered round-robin over the sources (trigger store,
 * ACK_OS_REG load, SET_PQ_00 EOI load, CPPR store). Reports wall time and peak resident memory.
 *
 * Each case first runs once at 1/{@link WARM_UP} of its size, untimed, in the same process, as
 * every other figure of the bench is taken warm: V8 runs a path's first tens of thousands of
 * calls in its interpreter and baseline code while it compiles the optimised code (in a fresh
 * process, the first 16,384 `KVM_DEV_XIVE_GRP_SOURCE` calls take about 0.11 s, the next 16,384
 * about 0.01 s; about 0.2 s over the whole KVM case). The timed run then builds its own host and
 * VM from nothing, on fresh memory.
 */

import { XIVE_ESB_SET_PQ_00 } from '../src/guest/xive-regs.ts';
import { createHost } from '../src/host/host.ts';
import {
  encodeKvmCreateDevice,
  encodeKvmDeviceAttr,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_DEVICE_ATTR_SIZE,
  KVM_SET_DEVICE_ATTR,
  kvmXiveSourceConfig,
} from '../src/host/kvm/uapi.ts';
import type { KvmExitHandler } from '../src/host/kvm/vcpu.ts';
import { KVMPPC_XIVE_NR_IRQS } from '../src/host/kvm/xive-native-uapi.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../src/host/mm/constants.ts';
import type { HostProcess } from '../src/host/syscalls.ts';
import { Word64 } from '../src/hw/mmio.ts';
import { P9_MAX_IPIS } from '../src/hw/xive/p9-chip.ts';
import { NULL_TRACE } from '../src/sim/trace-sink.ts';
import { SPAPR_XIVE_NR_IRQS } from '../src/vmm/spapr-irq.ts';
import { ESB_BASE, esbMgmt, esbTrig, TIMA_BASE } from '../test/diff/qemu-driver.ts';
import { connect, setEq, setRegion } from '../test/unit/host/kvm/kvm-ioctls.ts';
import { ACK, CPPR, PRIO, QPAGE, QSIZE, queuedMachine } from './cases.ts';

/** Interrupts delivered after the set-up. */
export const SCALE_INTERRUPTS = 1_000_000;
/** The untimed warm-up run is the case at 1/WARM_UP of its sources and interrupts. */
const WARM_UP = 16;

const P = 0x1_0000;
/**
 * KVM counts the sources routed to each queue and refuses more than the queue's entries less 2
 * (`xive_try_pick_queue`: EBUSY); an EQ is at most one 64 KiB host page. So the interrupts go
 * round the first {@link KVM_ROUTED} sources, routed to vCPU 0's priority-6 queue (2^16 bytes,
 * as the emulated case's: both wrap many times, toggling their generation bit).
 */
const KVM_ROUTED = ((2 ** QSIZE) >> 2) - 2;

export interface ScaleResult {
  /** Sources created (the goal: all of the space). */
  sources: number;
  /** Why fewer than the whole space, or ''. */
  note: string;
  setupSeconds: number;
  deliverSeconds: number;
  /** Interrupts the ACKs saw presented (must be {@link SCALE_INTERRUPTS}). */
  delivered: number;
  maxRssMiB: number;
  /** Minor page faults the timed run took: the fresh memory it touched, a 4 KiB page each. */
  pageFaults: number;
}

/**
 * `KVM_SET_DEVICE_ATTR` of a u64, as QEMU's `kvm_device_access()` makes it: the value in a user
 * buffer, then a `struct kvm_device_attr` built on the stack (one user buffer reused per call,
 * written whole: flags 0, group, attr, the value's address).
 */
function attrSetter(p: HostProcess, devFd: number): (group: number, a: number, v: bigint | number) => number {
  const buf = p.userAlloc(8);
  const s = p.userAlloc(KVM_DEVICE_ATTR_SIZE);
  const bytes = encodeKvmDeviceAttr({ group: 0, attr: 0, addr: buf });
  const view = new DataView(bytes.buffer);
  return (group, a, v) => {
    p.putU64(buf, v);
    view.setUint32(4, group);
    view.setUint32(8, Math.floor(a / 2 ** 32));
    view.setUint32(12, a >>> 0);
    p.putBytes(s, bytes);
    return p.ioctl(devFd, KVM_SET_DEVICE_ATTR, s);
  };
}

function region(p: HostProcess, vmFd: number, slot: number, gpa: number, size: number, uaddr: number): void {
  const r = setRegion(p, vmFd, slot, gpa, size, uaddr);
  if (r !== 0) throw new Error(`KVM_SET_USER_MEMORY_REGION slot ${slot}: ${r}`);
}

const noExits: KvmExitHandler = {
  mmio(gpa) {
    throw new Error(`unexpected MMIO exit at 0x${gpa.toString(16)}`);
  },
  paprHcall(nr) {
    throw new Error(`unexpected hcall exit 0x${nr.toString(16)}`);
  },
};

function rssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function minorFaults(): number {
  return process.resourceUsage().minorPageFault;
}

/**
 * A VM on a modelled host, driven only through syscalls as a VMM would: the KVM XIVE device
 * with a source for every guest irq the device accepts (`KVM_DEV_XIVE_GRP_SOURCE` each, each a
 * HW IPI of the chip), the whole ESB range mmap'd and made a memslot, every source's EOI page
 * loaded once by the guest (SET_PQ_00: unmasks it).
 *
 * The device accepts irqs 0 … `KVMPPC_XIVE_NR_IRQS` − 1 (2^20); each source takes a HW IPI
 * (book3s_xive_native.c:kvmppc_xive_native_set_source() → xive_native_alloc_irq() →
 * `opal_xive_allocate_irq(OPAL_XIVE_ANY_CHIP)`). The model's host has one chip, which hands out
 * {@link P9_MAX_IPIS} = 2^20 − 16 (skiboot hw/xive.c: `XIVE_INT_COUNT` indices per chip from
 * `XIVE_INT_FIRST`), so the last 16 irqs fail with ENXIO: the true maximum on a one-chip P9
 * host. On two chips the allocation moves on to the second one and all 2^20 are backed.
 */
export function scaleKvm(): ScaleResult {
  kvmCase(KVMPPC_XIVE_NR_IRQS / WARM_UP, SCALE_INTERRUPTS / WARM_UP);
  return kvmCase(KVMPPC_XIVE_NR_IRQS, SCALE_INTERRUPTS);
}

/** {@link scaleKvm}'s case with up to `nrIrqs` sources and `interrupts` interrupts. */
function kvmCase(nrIrqs: number, interrupts: number): ScaleResult {
  const f0 = minorFaults();
  const t0 = performance.now();
  // Every KVM source is backed by a HW IPI of the host's one chip: all it can hand out.
  const host = createHost({ nrIpis: P9_MAX_IPIS, trace: NULL_TRACE });
  const p = host.spawn();
  const vmFd = p.ioctl(p.open('/dev/kvm'), KVM_CREATE_VM, 0);
  const ramSize = 0x400_0000;
  const ram = p.mmap(0, ramSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  region(p, vmFd, 0, 0, ramSize, ram);
  const vcpuFd = p.ioctl(vmFd, KVM_CREATE_VCPU, 0);
  const cd = p.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
  if (p.ioctl(vmFd, KVM_CREATE_DEVICE, cd) !== 0) throw new Error('KVM_CREATE_DEVICE failed');
  const devFd = p.getU32(cd + 4);
  const tima = p.mmap(0, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, devFd, 0);
  const esbLen = 2 * KVMPPC_XIVE_NR_IRQS * P;
  const esb = p.mmap(0, esbLen, PROT_READ | PROT_WRITE, MAP_SHARED, devFd, 4 * P);
  if (tima < 0 || esb < 0) throw new Error(`mmap of the device: TIMA ${tima}, ESB ${esb}`);
  region(p, vmFd, 1, ESB_BASE, esbLen, esb);
  region(p, vmFd, 2, TIMA_BASE, 4 * P, tima);
  if (connect(p, vcpuFd, devFd, 0) !== 0) throw new Error('KVM_CAP_PPC_IRQ_XIVE failed');
  if (setEq(p, devFd, 0, PRIO, { qshift: QSIZE, qaddr: QPAGE }) !== 0) throw new Error('EQ config failed');

  const attr = attrSetter(p, devFd);
  let sources = 0;
  let note = '';
  for (let irq = 0; irq < nrIrqs; irq++) {
    const rc = attr(KVM_DEV_XIVE_GRP_SOURCE, irq, 0);
    if (rc !== 0) {
      note =
        `KVM_DEV_XIVE_GRP_SOURCE ${irq} failed (errno ${-rc}): a one-chip host has ${P9_MAX_IPIS} HW IPIs ` +
        '(skiboot XIVE_INT_COUNT 2^20 interrupt numbers per chip, from XIVE_INT_FIRST 0x10)';
      break;
    }
    if (irq < KVM_ROUTED) {
      const rc2 = attr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, irq, kvmXiveSourceConfig(PRIO, 0, false, irq));
      if (rc2 !== 0) throw new Error(`KVM_DEV_XIVE_GRP_SOURCE_CONFIG ${irq}: ${rc2}`);
    }
    sources++;
  }
  const run = p.kvmRun(vcpuFd, noExits);
  if (typeof run === 'number') throw new Error(`KVM_RUN: ${run}`);
  const w = new Word64();
  for (let irq = 0; irq < sources; irq++) run.load(esbMgmt(irq) + XIVE_ESB_SET_PQ_00, 8, w);
  run.store(CPPR, 1, 0, 0xff);
  const t1 = performance.now();
  let delivered = 0;
  for (let k = 0, irq = 0; k < interrupts; k++) {
    run.store(esbTrig(irq), 8, 0, 0xff);
    run.load(ACK, 2, w);
    if (w.lo & 0x8000) delivered++;
    run.load(esbMgmt(irq) + XIVE_ESB_SET_PQ_00, 8, w);
    run.store(CPPR, 1, 0, 0xff);
    irq = irq + 1 === Math.min(sources, KVM_ROUTED) ? 0 : irq + 1;
  }
  const t2 = performance.now();
  return {
    sources,
    note,
    setupSeconds: (t1 - t0) / 1000,
    deliverSeconds: (t2 - t1) / 1000,
    delivered,
    maxRssMiB: rssMiB(),
    pageFaults: minorFaults() - f0,
  };
}

/**
 * The emulated machine at QEMU's number of sPAPR XIVE sources (`SPAPR_XIVE_NR_IRQS`, fixed by
 * the machine): every LISN claimed, configured to vCPU 0 with H_INT_SET_SOURCE_CONFIG and its
 * EOI page loaded once by vCPU 0.
 */
export function scaleEmulated(): ScaleResult {
  emulatedCase(SPAPR_XIVE_NR_IRQS / WARM_UP, SCALE_INTERRUPTS / WARM_UP);
  return emulatedCase(SPAPR_XIVE_NR_IRQS, SCALE_INTERRUPTS);
}

/** {@link scaleEmulated}'s case with the first `sources` LISNs and `interrupts` interrupts. */
function emulatedCase(sources: number, interrupts: number): ScaleResult {
  const f0 = minorFaults();
  const t0 = performance.now();
  const { m, configSource } = queuedMachine();
  const cpu = m.cpus[0]!;
  const w = new Word64();
  // Interrupts go round the MSIs (the machine's own LSIs are claimed and configured too).
  const msis: number[] = [];
  for (let lisn = 0; lisn < sources; lisn++) {
    m.xive.claimIrq(lisn, false);
    if (!m.xive.source.isLsi(lisn)) msis.push(lisn);
    configSource(lisn, lisn);
    cpu.load(esbMgmt(lisn) + XIVE_ESB_SET_PQ_00, 8, w);
  }
  cpu.store(CPPR, 1, 0, 0xff);
  const t1 = performance.now();
  let delivered = 0;
  for (let k = 0, j = 0; k < interrupts; k++) {
    const lisn = msis[j]!;
    cpu.store(esbTrig(lisn), 8, 0, 0xff);
    cpu.load(ACK, 2, w);
    if (w.lo & 0x8000) delivered++;
    cpu.load(esbMgmt(lisn) + XIVE_ESB_SET_PQ_00, 8, w);
    cpu.store(CPPR, 1, 0, 0xff);
    j = j + 1 === msis.length ? 0 : j + 1;
  }
  const t2 = performance.now();
  return {
    sources,
    note: '',
    setupSeconds: (t1 - t0) / 1000,
    deliverSeconds: (t2 - t1) / 1000,
    delivered,
    maxRssMiB: rssMiB(),
    pageFaults: minorFaults() - f0,
  };
}

/** {@link freshMemory}'s result. */
export interface FreshMemory {
  seconds: number;
  pageFaults: number;
}

/** {@link freshMemory}'s size: about what the KVM scale case's timed run touches. */
export const FRESH_MIB = 100;
/** {@link freshMemory}'s buffers: the size of a KVM source block's fields (1024 sources × 36 bytes). */
const FRESH_BUFFER = 36 * 1024;

/**
 * The machine's cost of fresh memory, the scale cases' largest cost outside the model:
 * {@link FRESH_MIB} MiB of new `ArrayBuffer`s of a source block's size, a byte written in each
 * 4 KiB page (each write a page fault), kept alive to the end. QEMU's kind-10 loops touch a few
 * pages, so they do not show this cost; on a VM it is far above bare metal's (the host faults
 * the guest's page in too) and swings with the host's load.
 */
export function freshMemory(): FreshMemory {
  const keep: Uint8Array[] = [];
  const f0 = minorFaults();
  const t0 = performance.now();
  for (let n = 0; n < (FRESH_MIB * 2 ** 20) / FRESH_BUFFER; n++) {
    const b = new Uint8Array(FRESH_BUFFER);
    for (let i = 0; i < b.length; i += 4096) b[i] = 1;
    keep.push(b);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, pageFaults: minorFaults() - f0 };
}
