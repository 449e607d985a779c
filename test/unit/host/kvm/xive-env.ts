import { KvmXiveNative, kvmppcXiveNativeCreate } from '../../../../src/host/kvm/xive-native.ts';
import type { XiveMapping, XiveNativeFlags } from '../../../../src/host/kvm/xive-native-flags.ts';
import { encodeKvmPpcXiveEq, type KvmPpcXiveEq } from '../../../../src/host/kvm/xive-native-uapi.ts';
import type { KvmArchXive, KvmGuestMemory, XiveVcpuArch } from '../../../../src/host/kvm/xive-state.ts';
import type { UserMemory } from '../../../../src/host/mm/uaccess.ts';
import { HostXive } from '../../../../src/host/xive/host-xive.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import { P9Chip } from '../../../../src/hw/xive/p9-chip.ts';
import { Trace } from '../../../../src/sim/trace.ts';

/** Host physical base of the guest's RAM (identity gpa → GUEST_HPA + gpa). */
export const GUEST_HPA = 0x0000_1000_0000_0000;
export const GUEST_RAM = 0x400_0000;

/** A process's memory: 64 KiB at user address 0x10000; anything else faults. */
export class TestUserMemory implements UserMemory {
  readonly base = 0x1_0000;
  readonly buf = new Uint8Array(0x1_0000);
  copyFromUser(addr: number, len: number): Uint8Array | number {
    if (addr < this.base || addr + len > this.base + this.buf.length) return -14;
    return this.buf.slice(addr - this.base, addr - this.base + len);
  }
  copyFromUserTo(dst: Uint8Array, addr: number): number {
    const b = this.copyFromUser(addr, dst.length);
    if (typeof b === 'number') return b;
    dst.set(b);
    return 0;
  }
  copyToUser(addr: number, bytes: Uint8Array): number {
    if (addr < this.base || addr + bytes.length > this.base + this.buf.length) return -14;
    this.buf.set(bytes, addr - this.base);
    return 0;
  }
  putU64(addr: number, v: bigint): number {
    new DataView(this.buf.buffer).setBigUint64(addr - this.base, BigInt.asUintN(64, v));
    return addr;
  }
  putU32(addr: number, v: number): number {
    new DataView(this.buf.buffer).setUint32(addr - this.base, v >>> 0);
    return addr;
  }
  putU32s(addr: number, words: number[]): number {
    for (const [i, w] of words.entries()) this.putU32(addr + 4 * i, w);
    return addr;
  }
  getU32(addr: number): number {
    return new DataView(this.buf.buffer).getUint32(addr - this.base);
  }
  putEq(addr: number, eq: KvmPpcXiveEq): number {
    this.buf.set(encodeKvmPpcXiveEq(eq), addr - this.base);
    return addr;
  }
}

/** Guest memory: identity into a RAM region of the host PhysMem, with pin counts. */
export class TestGuestMemory implements KvmGuestMemory {
  readonly pins = new Map<number, number>();
  readonly dirty: number[] = [];
  pageSize = 0x1_0000;
  gfnToPage(gpa: number): number {
    if (!(gpa >= 0 && gpa < GUEST_RAM)) return -1;
    const hpa = GUEST_HPA + Math.floor(gpa / 0x1_0000) * 0x1_0000;
    this.pins.set(hpa, (this.pins.get(hpa) ?? 0) + 1);
    return hpa;
  }
  putPage(hpa: number): void {
    const n = this.pins.get(hpa) ?? 0;
    if (n <= 0) throw new Error(`put_page of unpinned ${hpa.toString(16)}`);
    if (n === 1) this.pins.delete(hpa);
    else this.pins.set(hpa, n - 1);
  }
  hostPageSize(gpa: number): number {
    return gpa >= 0 && gpa < GUEST_RAM ? this.pageSize : 0;
  }
  markPageDirty(gpa: number): void {
    this.dirty.push(gpa);
  }
}

/** Records zaps as [pgoff, npages]. */
export class TestMapping implements XiveMapping {
  readonly zaps: [number, number][] = [];
  unmapMappingRange(pgoff: number, npages: number): void {
    this.zaps.push([pgoff, npages]);
  }
}

export function makeVcpu(kvm: unknown): XiveVcpuArch {
  return { kvm, irqType: 0, xiveVcpu: null, ceded: false, irqPending: false };
}

export interface XiveEnv {
  trace: Trace;
  mem: PhysMem;
  chip: P9Chip;
  host: HostXive;
  arch: KvmArchXive;
  kvm: object;
  dev: KvmXiveNative;
  um: TestUserMemory;
  gm: TestGuestMemory;
  woken: XiveVcpuArch[];
  out: Word64;
}

export function makeEnv(
  opts: { nrCpus?: number; nrIpis?: number; nrVps?: number; flags?: Partial<XiveNativeFlags> } = {},
): XiveEnv {
  const trace = new Trace();
  const mem = new PhysMem(trace);
  mem.addRam(GUEST_HPA, GUEST_RAM, 'guest.ram');
  const chipCfg: { nrCpus: number; nrIpis?: number; nrVps?: number } = { nrCpus: opts.nrCpus ?? 4 };
  if (opts.nrIpis !== undefined) chipCfg.nrIpis = opts.nrIpis;
  if (opts.nrVps !== undefined) chipCfg.nrVps = opts.nrVps;
  const chip = new P9Chip(chipCfg, mem, trace);
  const host = new HostXive(chip, trace);
  const arch: KvmArchXive = { xive: null, xiveNative: null };
  const kvm = {};
  const gm = new TestGuestMemory();
  const woken: XiveVcpuArch[] = [];
  const dev = kvmppcXiveNativeCreate(arch, {
    kvm,
    lpid: 1,
    host,
    guestMem: gm,
    wake: (v) => woken.push(v),
    flags: opts.flags ?? {},
    trace,
  });
  if (!(dev instanceof KvmXiveNative)) throw new Error(`create failed ${dev}`);
  return { trace, mem, chip, host, arch, kvm, dev, um: new TestUserMemory(), gm, woken, out: new Word64() };
}
