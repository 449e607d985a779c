import { describe, expect, test } from 'vitest';
import { Word64 } from '../../../src/hw/mmio.ts';
import { MBOX, MBOX_BENCH_MAX } from '../../../src/vmm/mailbox-cpu.ts';
import { QemuSystem } from '../../../src/vmm/qtest.ts';

const TIMA_OS = 0x0006_0302_0318_0000 + 0x2_0000;
const TIMA_HV = 0x0006_0302_0318_0000 + 0x1_0000;
const ESB = 0x0006_0100_0000_0000;
const trig = (l: number): bigint => BigInt(ESB + l * 0x2_0000);
const mgmt = (l: number): bigint => BigInt(ESB + l * 0x2_0000 + 0x1_0000);

function rig(startStopped = false) {
  const sys = new QemuSystem({ smp: 1, ramSize: 2 ** 28, bios: null, startStopped });
  const m = sys.machine;
  const w = new Word64();
  const ld = (a: number): bigint => {
    m.load(a, 8, w);
    return w.toBigInt();
  };
  const std = (a: number, v: bigint): void =>
    m.store(a, 8, Number(BigInt.asUintN(64, v) >> 32n), Number(v & 0xffff_ffffn));
  /** Post a command the way qtest does (in[], kind, then cmd) and let the mailbox serve it. */
  const post = (kind: number, ins: (number | bigint)[]): bigint[] => {
    ins.forEach((v, i) => {
      std(MBOX + 0x10 + 8 * i, BigInt.asUintN(64, BigInt(v)));
    });
    std(MBOX + 8, BigInt(kind));
    std(MBOX, 1n);
    sys.mailbox.poll();
    return Array.from({ length: 10 }, (_, i) => ld(MBOX + 0x60 + 8 * i));
  };
  const cas = (): void => {
    const v = Buffer.from(
      'ffff0000004e0000000000000f000003040200008000000000000017000000000000000000000000000000000000000000004000',
      'hex',
    );
    m.writeMemory(0x10000, new Uint8Array(v));
    expect(post(1, [0xf002, 0x10000, 0x100000, 0x100000])[0]).toBe(0n);
  };
  return { sys, m, ld, std, post, cas };
}

describe('MailboxCpu (stub.S protocol at 0x8000)', () => {
  test('nop: cmd cleared, counter at +0xB0 bumped, outs untouched', () => {
    const { ld, post, sys } = rig();
    post(0, []);
    post(0, []);
    expect(ld(MBOX)).toBe(0n);
    expect(ld(MBOX + 0xb0)).toBe(2n);
    expect(sys.mailbox.completed).toBe(2);
    // An unknown kind falls through to done, as the stub's compare chain does.
    post(77, [1, 2]);
    expect(ld(MBOX + 0xb0)).toBe(3n);
  });

  test('hcall: R3 = rc, R4..R12 keep their inputs unless the hcall writes them', () => {
    const { post, cas } = rig();
    // Before CAS every H_INT_* is H_FUNCTION; the argument registers survive.
    expect(post(1, [0x3a8, 0, 0x1200, 7, 8, 9, 10, 11, 12, 13])).toEqual([
      0xffff_ffff_ffff_fffen,
      0n,
      0x1200n,
      7n,
      8n,
      9n,
      10n,
      11n,
      12n,
      13n,
    ]);
    cas();
    // GET_SOURCE_INFO(LSI 0x1200): flags 0xC, mgmt/trig -1, shift 16; R8.. untouched.
    expect(post(1, [0x3a8, 0, 0x1200, 7, 8, 9, 10, 11, 12, 13])).toEqual([
      0n,
      0xcn,
      0xffff_ffff_ffff_ffffn,
      0xffff_ffff_ffff_ffffn,
      16n,
      9n,
      10n,
      11n,
      12n,
      13n,
    ]);
    // An opcode wider than 32 bits is no hcall.
    expect(post(1, [0x1_0000_03a8n, 0, 0])[0]).toBe(0xffff_ffff_ffff_fffen);
  });

  test('loads and stores of 1/2/4/8 bytes go through vCPU 0 (TIMA views, special ops)', () => {
    const { post, ld, cas } = rig();
    cas();
    // OS page: lwz +0x10 = NSR|CPPR|IPB|LSMFB, ld = both words, W2 hidden (-1).
    expect(post(8, [TIMA_OS + 0x10])[0]).toBe(0xffn);
    expect(post(2, [TIMA_OS + 0x10])[0]).toBe(0x0000_00ff_ff00_00ffn);
    expect(post(8, [TIMA_OS + 0x18])[0]).toBe(0xffff_ffffn);
    expect(post(8, [TIMA_HV + 0x18])[0]).toBe(0x8000_0400n);
    // SET_OS_PENDING(4) by stb, CPPR by stb, ACK by lhz.
    post(5, [TIMA_OS + 0x812, 4]);
    post(5, [TIMA_OS + 0x11, 0x1ff]);
    expect(post(8, [TIMA_OS + 0x10])[0]).toBe(0x80ff_08ffn);
    expect(post(6, [TIMA_OS + 0x810])[0]).toBe(0x8004n);
    // std / sth / stw into RAM, read back by the model.
    post(3, [0x9000, 0x1122_3344_5566_7788n]);
    post(7, [0x9000, 0xabcd]);
    post(9, [0x9004, 0xdead_beef]);
    expect(ld(0x9000)).toBe(0xabcd_3344_dead_beefn);
    expect(post(4, [0x9001])[0]).toBe(0xcdn);
    // The top 4 EA bits are ignored in real mode.
    expect(post(8, [0xf000_0000_0000_9004n])[0]).toBe(0xdead_beefn);
  });

  test('misaligned accesses: stores byte by byte, loads as two aligned loads (TCG softmmu)', () => {
    const { post, ld, cas } = rig();
    cas();
    post(5, [TIMA_OS + 0x11, 7]);
    // stw of 2 at OS+0x812: byte stores 00 00 00 02 at 0x812..0x815 — the first is SET_OS_PENDING(0).
    post(9, [TIMA_OS + 0x812, 2]);
    expect(post(8, [TIMA_OS + 0x10])[0]).toBe(0x8007_80ffn);
    post(3, [0x9000, 0x0102_0304_0506_0708n]);
    post(3, [0x9008, 0x090a_0b0c_0d0e_0f10n]);
    expect(post(8, [0x9006])[0]).toBe(0x0708_090an);
    expect(post(2, [0x9003])[0]).toBe(0x0405_0607_0809_0a0bn);
    post(7, [0x9001, 0xeeff]);
    expect(ld(0x9000)).toBe(0x01ee_ff04_0506_0708n);
  });

  test('kind 10 mode 0: count × ld A, out[0] = last value', () => {
    const { post, sys } = rig();
    const before = sys.mailbox.accesses;
    expect(post(10, [1000, mgmt(0) + 0x800n, 0, 0, 0, 0])[0]).toBe(1n);
    expect(sys.mailbox.accesses - before).toBe(1000);
  });

  test('kind 10 mode 1: count interrupt cycles (trigger, ACK, EOI, CPPR), every event queued', () => {
    const { post, m, cas } = rig();
    cas();
    m.writeMemory(0x20_0000, new Uint8Array(0x1000));
    expect(post(1, [0x3b8, 1, 0, 3, 0x20_0000, 12])[0]).toBe(0n);
    expect(post(1, [0x3ac, 2, 0x1000, 0, 3, 0x42])[0]).toBe(0n);
    post(2, [mgmt(0x1000) + 0xc00n]);
    post(5, [TIMA_OS + 0x11, 0xff]);
    const ackAddr = BigInt(TIMA_OS + 0x810);
    const eoi = mgmt(0x1000) + 0xc00n;
    const cppr = BigInt(TIMA_OS + 0x11);
    expect(post(10, [100, trig(0x1000), ackAddr, eoi, cppr, 1])[0]).toBe(2n);
    const cpu = m.cpus[0]!;
    expect([cpu.raises, cpu.lowers]).toEqual([100, 100]);
    expect(m.sysmem.loadBe32(0x20_0000 + 99 * 4)).toBe(0x8000_0042);
    expect(m.sysmem.loadBe32(0x20_0000 + 100 * 4)).toBe(0);
    expect(MBOX_BENCH_MAX).toBe(2 ** 40);
  });

  test('-S: nothing is served until started; system_reset restarts the stub (cmd and counter zeroed)', () => {
    const { sys, std, ld } = rig(true);
    std(MBOX + 8, 0n);
    std(MBOX, 1n);
    sys.mailbox.poll();
    expect(ld(MBOX)).toBe(1n);
    sys.cont();
    expect(ld(MBOX)).toBe(0n);
    expect(ld(MBOX + 0xb0)).toBe(0n);
    std(MBOX, 1n);
    sys.mailbox.poll();
    expect(ld(MBOX + 0xb0)).toBe(1n);
    std(MBOX + 0xb0, 0x99n);
    sys.systemReset();
    expect(ld(MBOX + 0xb0)).toBe(0n);
  });
});

describe('MailboxCpu.halted (the vCPU stops at an access, as after a KVM_RUN failure)', () => {
  test('the command is abandoned at the access: cmd stays set, no result, no counter bump; start() serves again', () => {
    const { sys, ld, std, post } = rig();
    let accesses = 0;
    let stopAt = -1;
    sys.mailbox.halted = () => {
      accesses++;
      return accesses === stopAt;
    };
    post(0, []);
    const before = accesses;
    // kind 2 (ld): cmd, kind, in[0], in[1] are read, then the load itself — halt there.
    stopAt = before + 5;
    std(MBOX + 0x60, 0x5555n);
    expect(post(2, [0x100000])[0]).toBe(0x5555n);
    expect(ld(MBOX)).toBe(1n);
    expect(ld(MBOX + 0xb0)).toBe(1n);
    expect(sys.mailbox.running).toBe(false);
    expect(sys.mailbox.poll()).toBe(false);
    // A restart (system_reset + cont) zeroes cmd and the counter and serves again.
    stopAt = -1;
    sys.mailbox.start();
    expect(ld(MBOX)).toBe(0n);
    post(0, []);
    expect(ld(MBOX + 0xb0)).toBe(1n);
  });
});
