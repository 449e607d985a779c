import { describe, expect, it } from 'vitest';
import { setField32 } from '../../../../src/hw/bits.ts';
import { type AccessSize, NO_CPU, Word64 } from '../../../../src/hw/mmio.ts';
import {
  NVT_W0_VALID,
  NVT_W4_IPB,
  TM_CPPR,
  TM_IPB,
  TM_NSR,
  TM_PIPR,
  TM_QW1_OS,
  TM_QW1W2_VO,
  TM_QW2_HV_POOL,
  TM_QW2W2_VP,
  TM_QW3_HV_PHYS,
} from '../../../../src/hw/xive/regs.ts';
import { XiveTctx } from '../../../../src/hw/xive/tctx.ts';
import { XIVE_TM_SIZE, XiveTima } from '../../../../src/hw/xive/tima.ts';
import { Trace } from '../../../../src/sim/trace.ts';
import { FakeBackend } from './fake-backend.ts';

const HW = 0x00000;
const HV = 0x10000;
const OSP = 0x20000;
const USER = 0x30000;
const OS = TM_QW1_OS;

/** QEMU's guest errors for a TIMA load / store no view or operation accepts. */
const badLoads = (...addrs: number[]): string[] =>
  addrs.map((a) => `XIVE: invalid read access at TIMA @${a.toString(16)}`);
const badStores = (...addrs: number[]): string[] =>
  addrs.map((a) => `XIVE: invalid write access at TIMA @${a.toString(16)}`);

function setup() {
  const trace = new Trace();
  const be = new FakeBackend();
  const t0 = new XiveTctx(0, trace);
  const t1 = new XiveTctx(1, trace);
  const tima = new XiveTima([t0, t1], be, trace);
  // What the sPAPR machine does at reset: push VO | cam(0, 0x400 + vcpu).
  t0.setWord2(OS, TM_QW1W2_VO | 0x400);
  t1.setWord2(OS, TM_QW1W2_VO | 0x401);
  be.nvt(0, 0x400)[0] = NVT_W0_VALID;
  const lines: string[] = [];
  t0.onOsLine = (l) => lines.push(l ? 'raise' : 'lower');
  const out = new Word64();
  const ld = (off: number, size: AccessSize, cpu = 0): bigint => {
    tima.load(off, size, cpu, out);
    return out.toBigInt();
  };
  const st = (off: number, size: AccessSize, v: bigint, cpu = 0): void =>
    tima.store(off, size, Number(v >> 32n), Number(v & 0xffff_ffffn), cpu);
  return { trace, be, t0, t1, tima, lines, ld, st };
}

describe('XiveTima: raw views', () => {
  it('OS page after reset: lwz 0x10, 0x14, 0x18; ld 0x10; byte/half raw loads', () => {
    const { ld, trace } = setup();
    expect(ld(OSP + 0x10, 4)).toBe(0x0000_00ffn); // NSR CPPR IPB LSMFB
    expect(ld(OSP + 0x14, 4)).toBe(0xff00_00ffn); // ACK# INC (AGE hidden) PIPR
    expect(ld(OSP + 0x18, 4)).toBe(0xffff_ffffn); // W2 not readable from the OS page
    expect(ld(OSP + 0x10, 8)).toBe(0x0000_00ff_ff00_00ffn);
    expect(ld(OSP + 0x10, 1)).toBe(0xffn);
    expect(ld(OSP + 0x13, 1)).toBe(0xffn);
    expect(ld(OSP + 0x10, 2)).toBe(0xffffn);
    expect(trace.guestErrors).toEqual(badLoads(0x20018, 0x20010, 0x20013, 0x20010));
  });

  it('HV page shows W2 and AGE; the USER ring and the USER page are never raw-readable', () => {
    const { ld, trace } = setup();
    expect(ld(HV + 0x18, 4)).toBe(0x8000_0400n);
    expect(ld(HV + 0x14, 4)).toBe(0xff00_00ffn); // AGE still hidden (view 0) on HV
    expect(ld(HW + 0x38, 4)).toBe(0n);
    expect(ld(HV + 0x00, 4)).toBe(0xffff_ffffn);
    expect(ld(USER + 0x10, 4)).toBe(0xffff_ffffn);
    expect(trace.guestErrors).toEqual(badLoads(0x10000, 0x30010));
  });

  it('the view is per vCPU: cpu selects the thread context', () => {
    const { ld } = setup();
    expect(ld(HV + 0x18, 4, 1)).toBe(0x8000_0401n);
  });

  it('raw 4-byte store to OS+0x10 writes CPPR verbatim, no clamp, no notify', () => {
    const { st, ld, t0, lines } = setup();
    st(OSP + 0x812, 1, 4n); // IPB 0x08, PIPR 4; CPPR 0 → nothing
    st(OSP + 0x10, 4, 0x1122_3344n);
    expect(t0.regs[OS + TM_CPPR]).toBe(0x22);
    expect(t0.regs[OS + TM_NSR]).toBe(0);
    expect(t0.regs[OS + TM_IPB]).toBe(0x08);
    expect(ld(OSP + 0x10, 4)).toBe(0x0022_08ffn);
    expect(lines).toEqual([]);
  });

  it('HV raw 8-byte store writes NSR..INC but not AGE/PIPR; OS raw store to W2 is rejected', () => {
    const { st, t0, trace } = setup();
    st(HV + 0x10, 8, 0x0102_0304_0506_0708n);
    expect([...t0.regs.subarray(0x10, 0x18)]).toEqual([1, 2, 3, 4, 5, 6, 0xff, 0xff]);
    st(OSP + 0x18, 4, 0n);
    expect(t0.word2(OS)).toBe(0x8000_0400);
    expect(trace.guestErrors).toEqual(badStores(0x20018));
  });
});

describe('XiveTima: special operations', () => {
  it('CPPR byte store clamps 9 → 0xFF and notifies', () => {
    const { st, t0, lines } = setup();
    st(OSP + 0x812, 1, 4n);
    expect(lines).toEqual([]);
    st(OSP + 0x11, 1, 9n);
    expect(t0.regs[OS + TM_CPPR]).toBe(0xff);
    expect(t0.regs[OS + TM_NSR]).toBe(0x80);
    expect(lines).toEqual(['raise']);
  });

  it('SET_OS_PENDING (byte at 0x812, value 4): IPB 0x08, PIPR 4, notify only when PIPR < CPPR', () => {
    const { st, t0, lines, ld } = setup();
    st(OSP + 0x11, 1, 4n); // CPPR 4
    st(OSP + 0x812, 1, 4n);
    expect([t0.regs[OS + TM_IPB], t0.regs[OS + TM_PIPR], t0.regs[OS + TM_NSR]]).toEqual([0x08, 4, 0]);
    expect(lines).toEqual([]);
    st(OSP + 0x11, 1, 0xffn);
    expect(lines).toEqual(['raise']);
    expect(ld(OSP + 0x10, 4)).toBe(0x80ff_08ffn);
  });

  it('ACK_OS_REG: 0x8003 with prio 3 pending and CPPR 0xFF (line lowered); 0x0002 with nothing pending', () => {
    const { st, ld, t0, lines } = setup();
    st(OSP + 0x11, 1, 0xffn);
    t0.ipbUpdate(OS, 3);
    expect(lines).toEqual(['raise']);
    expect(ld(OSP + 0x810, 2)).toBe(0x8003n);
    expect(lines).toEqual(['raise', 'lower']);
    expect(ld(OSP + 0x10, 4)).toBe(0x0003_00ffn);
    st(OSP + 0x11, 1, 2n);
    expect(ld(OSP + 0x810, 2)).toBe(0x0002n);
    expect(t0.regs[OS + TM_CPPR]).toBe(2);
    // wrong size → guest error, all-ones
    expect(ld(OSP + 0x810, 4)).toBe(0xffff_ffffn);
  });

  it('PULL_OS_CTX from the HV page (4 and 8 bytes) returns W2 in host order, clears VO, lowers the line', () => {
    const { st, ld, t0, lines, trace } = setup();
    st(OSP + 0x11, 1, 0xffn);
    t0.ipbUpdate(OS, 3);
    expect(ld(OSP + 0x818, 4)).toBe(0xffff_ffffn); // HV-only op
    expect(trace.guestErrors).toEqual(badLoads(0x20818));
    expect(ld(HV + 0x818, 4)).toBe(0x8000_0400n);
    expect(t0.word2(OS)).toBe(0x0000_0400);
    expect(lines).toEqual(['raise', 'lower']);
    expect(ld(HV + 0x818, 8)).toBe(0x0000_0400n);
    expect(trace.guestErrors.at(-1)).toBe('XIVE: pulling invalid NVT 0/400 !?');
    // HW page may use HV ops
    t0.setWord2(OS, TM_QW1W2_VO | 0x400);
    expect(ld(HW + 0x818, 8)).toBe(0x8000_0400n);
  });

  it('push OS ctx (4-byte HV store at 0x18) pulls the NVT backlog IPB and notifies', () => {
    const { st, ld, t0, be, lines } = setup();
    st(OSP + 0x11, 1, 0xffn);
    ld(HV + 0x818, 4);
    const nvt = be.nvt(0, 0x400);
    nvt[4] = setField32(NVT_W4_IPB, 0x0000_0011, 0x14); // prio 3 and 5 backlogged
    st(HV + 0x18, 4, BigInt(TM_QW1W2_VO | 0x400));
    expect(t0.word2(OS)).toBe(0x8000_0400);
    expect([t0.regs[OS + TM_IPB], t0.regs[OS + TM_PIPR], t0.regs[OS + TM_NSR]]).toEqual([0x14, 3, 0x80]);
    expect(nvt[4]).toBe(0x0000_0011);
    expect(be.nvtWrites).toEqual([[0, 0x400, 4]]);
    expect(lines).toEqual(['raise']);
  });

  it('push without VO only writes W2; an unknown NVT is a guest error', () => {
    const { st, t0, be, trace } = setup();
    st(HV + 0x18, 4, 0x401n);
    expect(t0.word2(OS)).toBe(0x401);
    expect(be.nvtWrites).toEqual([]);
    st(HV + 0x18, 4, BigInt(TM_QW1W2_VO | 0x555));
    expect(t0.word2(OS)).toBe(0x8000_0555);
    expect(trace.guestErrors).toEqual(['XIVE: invalid NVT 0/555']);
    // from the OS page the push op does not exist and the raw view forbids W2
    st(OSP + 0x18, 4, 0n);
    expect(t0.word2(OS)).toBe(0x8000_0555);
  });

  it('HV CPPR, ACK_HV_REG, VT push/poll, PULL_POOL_CTX', () => {
    const { st, ld, t0 } = setup();
    const hv: boolean[] = [];
    t0.onHvLine = (l) => hv.push(l);
    st(HV + 0x31, 1, 0xffn);
    t0.ipbUpdate(TM_QW3_HV_PHYS, 2);
    expect(hv).toEqual([true]);
    expect(ld(HV + 0x830, 2)).toBe(0x8002n);
    expect(hv).toEqual([true, false]);
    expect(t0.regs[TM_QW3_HV_PHYS + TM_CPPR]).toBe(2);
    expect(ld(OSP + 0x830, 2)).toBe(0xffffn);
    st(HV + 0x38, 1, 0x80n);
    expect(ld(HV + 0x38, 1)).toBe(0x80n);
    expect(t0.regs[0x38]).toBe(0x80);
    t0.setWord2(TM_QW2_HV_POOL, TM_QW2W2_VP | 0x123);
    expect(ld(HV + 0x828, 4)).toBe(0x8000_0123n);
    expect(t0.word2(TM_QW2_HV_POOL)).toBe(0x123);
  });

  it('0x800+ offsets without an op, and USER-page use of OS ops, are guest errors', () => {
    const { st, ld, trace, t0 } = setup();
    expect(ld(OSP + 0x800, 1)).toBe(0xffn);
    expect(ld(USER + 0x810, 2)).toBe(0xffffn);
    st(USER + 0x11, 1, 5n);
    st(OSP + 0xc10, 1, 0n);
    expect(t0.regs[OS + TM_CPPR]).toBe(0);
    expect(trace.guestErrors).toEqual([...badLoads(0x20800, 0x30810), ...badStores(0x30011, 0x20c10)]);
  });

  it('no vCPU (qtest) or an unknown cpu: guest error, all-ones, nothing changes', () => {
    const { ld, st, trace, t0 } = setup();
    expect(ld(OSP + 0x10, 4, NO_CPU)).toBe(0xffff_ffffn);
    st(OSP + 0x11, 1, 5n, NO_CPU);
    expect(ld(OSP + 0x10, 8, 7)).toBe(0xffff_ffff_ffff_ffffn);
    expect(ld(XIVE_TM_SIZE, 4)).toBe(0xffff_ffffn);
    expect(t0.regs[OS + TM_CPPR]).toBe(0);
    expect(trace.guestErrors).toEqual([
      'XIVE: TIMA access @20010 without a thread context (cpu -1)',
      'XIVE: TIMA access @20011 without a thread context (cpu -1)',
      'XIVE: TIMA access @20010 without a thread context (cpu 7)',
      'XIVE: invalid TIMA access @40000',
    ]);
  });
});
