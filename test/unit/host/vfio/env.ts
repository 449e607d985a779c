/**
 * A host with a P9 chip, the host XIVE driver, a PHB, a KVM XIVE native device mmap'd by a VMM
 * process (ESB at page offset 4), one vCPU with a priority-6 EQ, irq bypass, KVM irqfds and
 * vfio-pci; plus a guest stand-in that reaches its ESB pages through the VMM's mapping (what
 * the guest reaches through the memslot) and consumes its EQ like the Linux guest.
 */

import { expect } from 'vitest';
import { KvmIrqfds } from '../../../../src/host/kvm/irqfd.ts';
import { KvmXiveNative, kvmppcXiveNativeCreate } from '../../../../src/host/kvm/xive-native.ts';
import type { XiveNativeFlags, XiveRecordMapping } from '../../../../src/host/kvm/xive-native-flags.ts';
import {
  encodeKvmPpcXiveEq,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  kvmXiveEqId,
  kvmXiveSourceConfig,
} from '../../../../src/host/kvm/xive-native-uapi.ts';
import type { KvmArchXive, KvmGuestMemory, XiveVcpuArch } from '../../../../src/host/kvm/xive-state.ts';
import { MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../../../src/host/mm/constants.ts';
import { FrameTable } from '../../../../src/host/mm/frames.ts';
import { MmHost } from '../../../../src/host/mm/mm-host.ts';
import type { Process } from '../../../../src/host/mm/process.ts';
import { type AssignedDevice, vfioHotplug } from '../../../../src/host/vfio/hotplug.ts';
import { IrqBypassManager } from '../../../../src/host/vfio/irq-bypass.ts';
import { VfioPci } from '../../../../src/host/vfio/vfio.ts';
import { HostXive } from '../../../../src/host/xive/host-xive.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { frameTableMap, PciDevice, Phb } from '../../../../src/hw/phb.ts';
import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import { P9_IPI_ESB_BASE, P9_TIMA_BASE, P9Chip } from '../../../../src/hw/xive/p9-chip.ts';
import { XIVE_TM_SIZE } from '../../../../src/hw/xive/tima.ts';
import { Trace } from '../../../../src/sim/trace.ts';
import { GUEST_HPA, GUEST_RAM, TestUserMemory } from '../kvm/xive-env.ts';

export const P = PAGE_SIZE;
/** Guest physical address of the vCPU's EQ (priority 6), 64 KiB = 16384 entries. */
export const EQ_GPA = 0x1_0000;
/** First guest LISN used for device vectors (QEMU's MSI range starts at 0x1300). */
export const LISN_BASE = 0x1300;

class TestGuestMemory implements KvmGuestMemory {
  gfnToPage(gpa: number): number {
    return gpa >= 0 && gpa < GUEST_RAM ? GUEST_HPA + Math.floor(gpa / P) * P : -1;
  }
  putPage(): void {}
  hostPageSize(gpa: number): number {
    return gpa >= 0 && gpa < GUEST_RAM ? P : 0;
  }
  markPageDirty(): void {}
}

export interface VfioEnv {
  trace: Trace;
  mem: PhysMem;
  chip: P9Chip;
  host: HostXive;
  frames: FrameTable;
  phb: Phb;
  mh: MmHost;
  vmm: Process;
  devFd: number;
  /** User address of the ESB mapping (file page offset 4). */
  esb: number;
  arch: KvmArchXive;
  dev: KvmXiveNative;
  vcpu: XiveVcpuArch;
  bypass: IrqBypassManager;
  irqfds: KvmIrqfds;
  vfio: VfioPci;
  um: TestUserMemory;
  out: Word64;
  guest: GuestStandIn;
}

export interface EnvOptions {
  flags?: Partial<XiveNativeFlags>;
  /** The designs' kernel seam (default: mainline). */
  recordMapping?: XiveRecordMapping | null;
  slots?: number;
  maxVectors?: number;
  kvmIrqBypass?: boolean;
}

export function makeEnv(opts: EnvOptions = {}): VfioEnv {
  const trace = new Trace();
  const mem = new PhysMem(trace);
  mem.addRam(GUEST_HPA, GUEST_RAM, 'guest.ram');
  const chip = new P9Chip({ nrCpus: 4, nrIpis: 0x2000 }, mem, trace);
  const host = new HostXive(chip, trace);
  // The memory manager's own frame registry reaches the same MMIO owners.
  const frames = new FrameTable({ ramBase: 0x1000_0000, ramFrames: 64 }, trace);
  frames.addMmio(P9_IPI_ESB_BASE, chip.ipiSource.esbSize, chip.ipiSource, 'p9.ipi-esb');
  frames.addMmio(P9_TIMA_BASE, XIVE_TM_SIZE, chip.tima, 'p9.tima');
  const phb = new Phb({ index: 0, slots: opts.slots ?? 2, maxVectors: opts.maxVectors ?? 64 }, chip, trace, [
    frameTableMap(frames),
  ]);
  const arch: KvmArchXive = { xive: null, xiveNative: null };
  const kvm = {};
  const dev = kvmppcXiveNativeCreate(arch, {
    kvm,
    lpid: 1,
    host,
    guestMem: new TestGuestMemory(),
    wake: () => {},
    flags: opts.flags ?? {},
    ...(opts.recordMapping ? { recordMapping: opts.recordMapping } : {}),
    trace,
  });
  if (!(dev instanceof KvmXiveNative)) throw new Error(`create failed ${dev}`);
  const mh = new MmHost(trace, { frames });
  const vmm = mh.spawn();
  const file = mh.anonInodeGetFile(
    'kvm-xive',
    { name: 'kvm-xive', mmap: (f, vma) => dev.mmap(f, vma), release: () => dev.release() },
    dev,
  );
  const devFd = vmm.installFd(file);
  const esb = vmm.mmap(0, 2 * (LISN_BASE + 0x400) * P, PROT_READ | PROT_WRITE, MAP_SHARED, devFd, 4 * P);
  expect(esb).toBeGreaterThan(0);
  const um = new TestUserMemory();
  const vcpu: XiveVcpuArch = { kvm, irqType: 0, xiveVcpu: null, ceded: false, irqPending: false };
  expect(dev.connectVcpu(vcpu, 0)).toBe(0);
  um.buf.set(
    encodeKvmPpcXiveEq({ flags: 1, qshift: 16, qaddr: BigInt(EQ_GPA), qtoggle: 1, qindex: 0 }),
    0x100,
  );
  expect(dev.setAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 6), um.base + 0x100, um)).toBe(0);
  const bypass = new IrqBypassManager();
  const irqfdOpts: ConstructorParameters<typeof KvmIrqfds>[0] = { arch, host, bypass, trace };
  if (opts.kvmIrqBypass !== undefined) irqfdOpts.kvmIrqBypass = opts.kvmIrqBypass;
  const irqfds = new KvmIrqfds(irqfdOpts);
  const vfio = new VfioPci(host, bypass, trace);
  const e = {
    trace,
    mem,
    chip,
    host,
    frames,
    phb,
    mh,
    vmm,
    devFd,
    esb,
    arch,
    dev,
    vcpu,
    bypass,
    irqfds,
    vfio,
    um,
    out: new Word64(),
  } as Omit<VfioEnv, 'guest'> as VfioEnv;
  e.guest = new GuestStandIn(e);
  return e;
}

/**
 * The guest's view: its ESB pages (through the VMM's mapping of the device file) and its EQ,
 * consumed like the Linux guest (generation bit vs toggle).
 */
export class GuestStandIn {
  readonly e: VfioEnv;
  idx = 0;
  toggle = 0;
  /** EISNs received, in order. */
  readonly received: number[] = [];
  constructor(e: VfioEnv) {
    this.e = e;
  }

  /** GRP_SOURCE (QEMU claiming the LISN). */
  createSource(lisn: number): number {
    const { e } = this;
    return e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE, BigInt(lisn), e.um.putU64(e.um.base, 0n), e.um);
  }

  /** H_INT_SET_SOURCE_CONFIG → GRP_SOURCE_CONFIG (prio 6 on server 0, or masked). */
  sourceConfig(lisn: number, eisn: number, masked = false): number {
    const { e } = this;
    // A masked EAS keeps a valid priority field (set_source_config rejects 7 and 0xff).
    e.um.putU64(e.um.base, kvmXiveSourceConfig(6, 0, masked, eisn));
    return e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, BigInt(lisn), e.um.base, e.um);
  }

  /** An 8-byte load on the LISN's EOI/management page at `off`; returns the low byte. */
  esbLoad(lisn: number, off: number): number {
    const { e } = this;
    const r = e.vmm.load(e.esb + (2 * lisn + 1) * P + off, 8, e.out);
    expect(r).toBe(0);
    return e.out.lo & 0xff;
  }

  /** A store to the LISN's trigger page. */
  esbTrigger(lisn: number): void {
    const { e } = this;
    expect(e.vmm.store(e.esb + 2 * lisn * P, 8, 0, 0)).toBe(0);
  }

  /** Linux guest EOI of an MSI: SET_PQ_00, and a re-trigger if Q was set. */
  eoi(lisn: number): void {
    if (this.esbLoad(lisn, 0xc00) & 1) this.esbTrigger(lisn);
  }

  /** Unmask (Linux: SET_PQ_00 when not saved_p). */
  unmask(lisn: number): number {
    return this.esbLoad(lisn, 0xc00);
  }

  /** Mask (SET_PQ_01). */
  mask(lisn: number): number {
    return this.esbLoad(lisn, 0xd00);
  }

  /** Drain the EQ: every new EISN, in order. */
  drain(): number[] {
    const { e } = this;
    const got: number[] = [];
    for (;;) {
      const w = e.mem.loadBe32(GUEST_HPA + EQ_GPA + this.idx * 4);
      if (w >>> 31 === this.toggle) break;
      got.push(w & 0x7fff_ffff);
      this.idx = (this.idx + 1) & 0x3fff;
      if (this.idx === 0) this.toggle ^= 1;
    }
    this.received.push(...got);
    return got;
  }
}

/** Every present PTE, in every live process, whose pfn lies in a slot's ESB frames. */
export function stalePtes(e: VfioEnv, slot: number): { pid: number; vpn: number; pfn: number }[] {
  const bad: { pid: number; vpn: number; pfn: number }[] = [];
  for (const p of e.mh.processes) {
    p.mm.pgtable.scan(0, Number.MAX_SAFE_INTEGER, (vpn, pfn) => {
      if (e.phb.pfnInSlot(slot, pfn)) bad.push({ pid: p.pid, vpn, pfn });
    });
  }
  return bad;
}

/** Hot-plug a function with one MSI-X vector per guest LISN in `gsis` into `slot`. */
export function plugAt(e: VfioEnv, gsis: number[], slot = 0): AssignedDevice {
  const pdev = new PciDevice({ name: `d${slot}`, msix: gsis.length });
  const a = vfioHotplug(e.vfio, e.irqfds, e.phb, slot, pdev, gsis);
  if (typeof a === 'number') throw new Error(`hotplug ${a}`);
  return a;
}
