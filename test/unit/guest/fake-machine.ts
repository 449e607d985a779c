/**
 * A small fake machine for the guest's unit tests: vCPUs that log every load, store and hcall,
 * sparse big-endian RAM, scripted ESB / TIMA load results and scripted hcall outputs.
 */

import type { GuestDeviceTree, GuestVcpu, LoadResult } from '../../../src/guest/platform.ts';

export const ESB_BASE = 0x0006_0100_0000_0000;
export const TIMA_OS = 0x0006_0302_0318_0000 + 2 * 0x1_0000;

export type Op =
  | { cpu: number; op: 'load'; addr: number; size: number }
  | { cpu: number; op: 'store'; addr: number; size: number; value: bigint }
  | { cpu: number; op: 'hcall'; opcode: number; args: bigint[] };

/** Per-source facts H_INT_GET_SOURCE_INFO reports. */
export interface FakeSource {
  flags: number;
}

export class FakeMachine {
  readonly log: Op[] = [];
  /** Record RAM stores in the log too (off: queue zeroing is 8192 stores). */
  logRam = false;
  readonly pages = new Map<number, Uint8Array>();
  readonly sources = new Map<number, FakeSource>();
  /** Value returned by an 8-byte ESB load at `addr` (default 0). */
  esbLoad: (addr: number) => number = () => 0;
  /** Values returned by ACK_OS_REG loads, in order (then 0). */
  readonly acks: number[] = [];
  /** H_INT_ESB load results, in order (then 0). */
  readonly hIntEsb: number[] = [];
  /** Return code of an hcall (default 0). */
  rc: (opcode: number, args: readonly bigint[]) => number = () => 0;
  readonly cpus: FakeVcpu[];

  constructor(nrCpus: number) {
    this.cpus = Array.from({ length: nrCpus }, (_, i) => new FakeVcpu(this, i));
  }

  dt(over: Partial<GuestDeviceTree> = {}): GuestDeviceTree {
    return {
      ramSize: 64 * 1024 * 1024,
      ramFree: 0x10_0000,
      timaOsPage: TIMA_OS,
      ipiRange: [0, this.cpus.length],
      eqSizes: [16],
      resIntPriorities: [7, 0xf8],
      devices: [],
      ...over,
    };
  }

  byte(addr: number): number {
    const p = Math.floor(addr / 65536);
    return this.pages.get(p)?.[addr - p * 65536] ?? 0;
  }

  setByte(addr: number, v: number): void {
    const p = Math.floor(addr / 65536);
    let pg = this.pages.get(p);
    if (!pg) {
      pg = new Uint8Array(65536);
      this.pages.set(p, pg);
    }
    pg[addr - p * 65536] = v & 0xff;
  }

  readBe(addr: number, size: number): bigint {
    let v = 0n;
    for (let i = 0; i < size; i++) v = (v << 8n) | BigInt(this.byte(addr + i));
    return v;
  }

  writeBe32(addr: number, v: number): void {
    for (let i = 0; i < 4; i++) this.setByte(addr + i, (v >>> (24 - 8 * i)) & 0xff);
  }

  /** Log entries other than RAM traffic. */
  io(): Op[] {
    return this.log.filter((o) => o.op === 'hcall' || o.addr >= ESB_BASE);
  }

  clear(): void {
    this.log.length = 0;
  }
}

export class FakeVcpu implements GuestVcpu {
  readonly id: number;
  externalInterrupt = false;
  private readonly m: FakeMachine;

  constructor(m: FakeMachine, id: number) {
    this.m = m;
    this.id = id;
  }

  load(addr: number, size: 1 | 2 | 4 | 8, out: LoadResult): void {
    let v: bigint;
    if (addr < ESB_BASE) {
      if (this.m.logRam) this.m.log.push({ cpu: this.id, op: 'load', addr, size });
      v = this.m.readBe(addr, size);
    } else {
      this.m.log.push({ cpu: this.id, op: 'load', addr, size });
      if (addr === TIMA_OS + 0x810) v = BigInt(this.m.acks.shift() ?? 0);
      else v = BigInt(this.m.esbLoad(addr));
    }
    out.hi = Number(v >> 32n);
    out.lo = Number(v & 0xffff_ffffn);
  }

  store(addr: number, size: 1 | 2 | 4 | 8, hi: number, lo: number): void {
    const value = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    if (addr < ESB_BASE) {
      if (this.m.logRam) this.m.log.push({ cpu: this.id, op: 'store', addr, size, value });
      for (let i = 0; i < size; i++)
        this.m.setByte(addr + i, Number((value >> BigInt(8 * (size - 1 - i))) & 0xffn));
      return;
    }
    this.m.log.push({ cpu: this.id, op: 'store', addr, size, value });
  }

  hcall(opcode: number, args: readonly bigint[], out: bigint[]): number {
    this.m.log.push({ cpu: this.id, op: 'hcall', opcode, args: [...args] });
    const rc = this.m.rc(opcode, args);
    if (rc !== 0) return rc;
    if (opcode === 0x3a8) {
      const lisn = Number(args[1]);
      const s = this.m.sources.get(lisn) ?? { flags: 0 };
      out[0] = BigInt(s.flags);
      if (s.flags & 0x8) {
        out[1] = 0xffff_ffff_ffff_ffffn;
        out[2] = 0xffff_ffff_ffff_ffffn;
      } else {
        out[1] = BigInt(ESB_BASE + lisn * 0x2_0000 + 0x1_0000);
        out[2] = BigInt(ESB_BASE + lisn * 0x2_0000);
      }
      out[3] = 16n;
    } else if (opcode === 0x3b4) {
      out[0] = 0x6_0100_4006_0000n;
      out[1] = 16n;
    } else if (opcode === 0x3c8) {
      out[0] = BigInt(this.m.hIntEsb.shift() ?? 0);
    }
    return 0;
  }
}

/** ESB management-page address of `lisn` + `off`. */
export const mgmt = (lisn: number, off: number): number => ESB_BASE + lisn * 0x2_0000 + 0x1_0000 + off;
/** Trigger-page address of `lisn`. */
export const trig = (lisn: number): number => ESB_BASE + lisn * 0x2_0000;
