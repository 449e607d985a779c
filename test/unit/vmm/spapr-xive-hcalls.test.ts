import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NO_CPU } from '../../../src/hw/mmio.ts';
import { SpaprXive } from '../../../src/vmm/spapr-xive.ts';
import {
  H_FUNCTION,
  H_HARDWARE,
  H_INT_ESB,
  H_INT_GET_OS_REPORTING_LINE,
  H_INT_GET_QUEUE_CONFIG,
  H_INT_GET_QUEUE_INFO,
  H_INT_GET_SOURCE_CONFIG,
  H_INT_GET_SOURCE_INFO,
  H_INT_RESET,
  H_INT_SET_OS_REPORTING_LINE,
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  H_INT_SYNC,
  H_P2,
  H_P3,
  H_P4,
  H_P5,
  H_PARAMETER,
  H_SUCCESS,
  isSpaprXiveHcall,
  SPAPR_XIVE_END_ALWAYS_NOTIFY,
  SPAPR_XIVE_END_DEBUG,
  SPAPR_XIVE_ESB_STORE,
  SPAPR_XIVE_SRC_H_INT_ESB,
  SPAPR_XIVE_SRC_LSI,
  SPAPR_XIVE_SRC_MASK,
  SPAPR_XIVE_SRC_SET_EISN,
  SPAPR_XIVE_SRC_STORE_EOI,
  SPAPR_XIVE_SRC_TRIGGER,
  spaprXiveHcall,
} from '../../../src/vmm/spapr-xive-hcalls.ts';
import { FakeDma, RecTrace } from './spapr-xive-env.ts';

const M1 = 0xffff_ffff_ffff_ffffn;
const EQ = 0x20_0000n;
const OPCODES = [
  H_INT_GET_SOURCE_INFO,
  H_INT_SET_SOURCE_CONFIG,
  H_INT_GET_SOURCE_CONFIG,
  H_INT_GET_QUEUE_INFO,
  H_INT_SET_QUEUE_CONFIG,
  H_INT_GET_QUEUE_CONFIG,
  H_INT_SET_OS_REPORTING_LINE,
  H_INT_GET_OS_REPORTING_LINE,
  H_INT_ESB,
  H_INT_SYNC,
  H_INT_RESET,
];

/** A 1-vCPU machine as the oracle's: 0x2000 LISNs, IPI 0, 0x1000, 0x1001 MSIs, 0x1200 LSI. */
function setup(cas = true) {
  const dma = new FakeDma(0x40_0000);
  const trace = new RecTrace();
  const xive = new SpaprXive({ nrIrqs: 0x2000, nrServers: 1, hvPrio: 7 }, dma, trace);
  for (const l of [0, 0x1000, 0x1001]) xive.claimIrq(l, false);
  xive.claimIrq(0x1200, true);
  xive.exploitation = cas;
  const out: bigint[] = [];
  const call = (op: number, ...args: bigint[]): number => xive.hcall(0, op, args, out);
  return { dma, trace, xive, out, call };
}

describe('constants', () => {
  it('have the hvcall.h / spapr_xive.c values', () => {
    expect(OPCODES).toEqual([0x3a8, 0x3ac, 0x3b0, 0x3b4, 0x3b8, 0x3bc, 0x3c0, 0x3c4, 0x3c8, 0x3cc, 0x3d0]);
    expect([H_SUCCESS, H_HARDWARE, H_FUNCTION, H_PARAMETER, H_P2, H_P3, H_P4, H_P5]).toEqual([
      0, -1, -2, -4, -55, -56, -57, -58,
    ]);
    expect([
      SPAPR_XIVE_SRC_H_INT_ESB,
      SPAPR_XIVE_SRC_LSI,
      SPAPR_XIVE_SRC_TRIGGER,
      SPAPR_XIVE_SRC_STORE_EOI,
    ]).toEqual([8n, 4n, 2n, 1n]);
    expect([SPAPR_XIVE_SRC_SET_EISN, SPAPR_XIVE_SRC_MASK, SPAPR_XIVE_END_ALWAYS_NOTIFY]).toEqual([
      2n,
      1n,
      1n,
    ]);
    expect([SPAPR_XIVE_END_DEBUG, SPAPR_XIVE_ESB_STORE]).toEqual([1n, 1n]);
    expect(OPCODES.every(isSpaprXiveHcall)).toBe(true);
    expect([0x3a4, 0x3d4, 0x3a9].some(isSpaprXiveHcall)).toBe(false);
  });
});

describe('H_FUNCTION gate', () => {
  it('every H_INT_* returns H_FUNCTION before CAS (observed GET_SOURCE_INFO(0): -2)', () => {
    const { call } = setup(false);
    for (const op of OPCODES) expect(call(op, 0n, 0n, 0n, 0n, 0n)).toBe(H_FUNCTION);
  });

  it('OS reporting line hcalls stay H_FUNCTION after CAS; other opcodes too', () => {
    const { call, xive } = setup();
    expect(call(H_INT_SET_OS_REPORTING_LINE, 0n, 0x1000n)).toBe(H_FUNCTION);
    expect(call(H_INT_GET_OS_REPORTING_LINE, 0n, 0n, 0n)).toBe(H_FUNCTION);
    expect(call(0x3d4, 0n)).toBe(H_FUNCTION);
    expect(spaprXiveHcall(xive, 0, 0xf002, [], [])).toBe(H_FUNCTION);
  });

  it('out mirrors the registers: inputs stay where nothing is written', () => {
    const { call, out } = setup();
    expect(call(H_INT_GET_SOURCE_INFO, 1n, 0n)).toBe(H_PARAMETER);
    expect(out).toEqual([1n, 0n]);
    expect(call(H_INT_GET_SOURCE_INFO, 0n, -1n)).toBe(H_P2);
    expect(out).toEqual([0n, M1]);
  });
});

describe('H_INT_GET_SOURCE_INFO', () => {
  it('MSI: flags 0, mgmt and trigger pages, shift 16 (observed)', () => {
    const { call, out } = setup();
    expect(call(H_INT_GET_SOURCE_INFO, 0n, 0n)).toBe(H_SUCCESS);
    expect(out).toEqual([0n, 0x6010000010000n, 0x6010000000000n, 16n]);
    expect(call(H_INT_GET_SOURCE_INFO, 0n, 0x1001n)).toBe(H_SUCCESS);
    expect(out).toEqual([0n, 0x6010020030000n, 0x6010020020000n, 16n]);
  });

  it('LSI: flags 0xC (H_INT_ESB | LSI), −1, −1, shift 16 (observed)', () => {
    const { call, out } = setup();
    expect(call(H_INT_GET_SOURCE_INFO, 0n, 0x1200n)).toBe(H_SUCCESS);
    expect(out).toEqual([0xcn, M1, M1, 16n]);
  });

  it('errors: bad flags -4, unclaimed -55, lisn ≥ nr_irqs -55 (observed)', () => {
    const { call, trace } = setup();
    expect(call(H_INT_GET_SOURCE_INFO, 1n, 0n)).toBe(H_PARAMETER);
    expect(call(H_INT_GET_SOURCE_INFO, 1n, 5n)).toBe(H_PARAMETER); // flags first
    expect(call(H_INT_GET_SOURCE_INFO, 0n, 5n)).toBe(H_P2);
    expect(call(H_INT_GET_SOURCE_INFO, 0n, 0x1fffn)).toBe(H_P2);
    expect(call(H_INT_GET_SOURCE_INFO, 0n, 0x2000n)).toBe(H_P2);
    expect(call(H_INT_GET_SOURCE_INFO, 0n, 1n << 63n)).toBe(H_P2);
    expect(trace.errors).toEqual([
      'XIVE: Invalid LISN 5',
      'XIVE: Invalid LISN 1fff',
      'XIVE: Unknown LISN 2000',
      'XIVE: Unknown LISN 8000000000000000',
    ]);
  });
});

describe('H_INT_SET_QUEUE_CONFIG / GET_QUEUE_INFO / GET_QUEUE_CONFIG', () => {
  it('configures the END: V|Q|N|qsize 4, gen 1, index 0, NVT 0x400, prio 3', () => {
    const { call, xive, dma } = setup();
    dma.mem.fill(0xaa, 0x20_0000, 0x20_0010);
    expect(call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n)).toBe(H_SUCCESS);
    expect(Array.from(xive.endt.subarray(24, 32))).toEqual([
      0xe004_0000, 0x0040_0000, 0, 0x20_0000, 0, 0, 0x400, 0x0003_0000,
    ]);
    expect(dma.loadBe32(0x20_0000)).toBe(0xaaaa_aaaa); // the guest zeroes its queue, not us
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 6n, 0x7_0000_0000n + 0x1000n, 12n)).toBe(H_P4); // not RAM
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 6n, 0x3f_f000n, 12n)).toBe(H_SUCCESS);
    expect(xive.endt[6 * 8]).toBe(0xc000_0000); // no N, qsize 0
  });

  it('GET_QUEUE_INFO: END ESB page 0x6010040060000, shift 16 (observed); 0 without a queue', () => {
    const { call, out } = setup();
    expect(call(H_INT_GET_QUEUE_INFO, 0n, 0n, 3n)).toBe(H_SUCCESS);
    expect(out).toEqual([0x6010040060000n, 0n, 3n]);
    call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n);
    expect(call(H_INT_GET_QUEUE_INFO, 0n, 0n, 3n)).toBe(H_SUCCESS);
    expect(out).toEqual([0x6010040060000n, 16n, 3n]);
    expect(call(H_INT_GET_QUEUE_INFO, 0n, 0n, 0n)).toBe(H_SUCCESS);
    expect(out[0]).toBe(0x6010040000000n);
  });

  it('GET_QUEUE_CONFIG: debug flags 0x4000000000000001 (observed), plain 0x1, unset zeros', () => {
    const { call, out } = setup();
    expect(call(H_INT_GET_QUEUE_CONFIG, 0n, 0n, 3n)).toBe(H_SUCCESS);
    expect(out).toEqual([0n, 0n, 0n, 0n]);
    call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n);
    expect(call(H_INT_GET_QUEUE_CONFIG, SPAPR_XIVE_END_DEBUG, 0n, 3n)).toBe(H_SUCCESS);
    expect(out).toEqual([0x4000_0000_0000_0001n, EQ, 16n, 0n]);
    expect(call(H_INT_GET_QUEUE_CONFIG, 0n, 0n, 3n)).toBe(H_SUCCESS);
    expect(out).toEqual([1n, EQ, 16n, 0n]);
  });

  it('GET_QUEUE_CONFIG(debug) reports the index and generation after a queue wrap', () => {
    const { call, out, xive, dma } = setup();
    call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, EQ, 12n); // 4K: 1024 entries, no N
    call(H_INT_SET_SOURCE_CONFIG, 2n, 0x1000n, 0n, 3n, 0x42n);
    xive.source.setPq(0x1000, 0);
    for (let i = 0; i < 1030; i++) {
      xive.source.store(0x1000 * 0x2_0000, 8, 0, 0, NO_CPU);
      xive.source.setPq(0x1000, 0);
    }
    expect(dma.loadBe32(0x20_0000 + 5 * 4)).toBe(0x42);
    expect(dma.loadBe32(0x20_0000 + 6 * 4)).toBe(0x8000_0042);
    expect(call(H_INT_GET_QUEUE_CONFIG, 1n, 0n, 3n)).toBe(H_SUCCESS);
    expect(out).toEqual([0n, EQ, 12n, 6n]);
  });

  it('qsize 0 resets the END (queueing off, ESBs off)', () => {
    const { call, out, xive } = setup();
    call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n);
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, 0n, 0n)).toBe(H_SUCCESS);
    expect(Array.from(xive.endt.subarray(24, 32))).toEqual([0, 0x5000_0000, 0, 0, 0, 0, 0, 0]);
    call(H_INT_GET_QUEUE_CONFIG, 1n, 0n, 3n);
    expect(out).toEqual([0n, 0n, 0n, 0n]);
  });

  it('SET_QUEUE_CONFIG errors, in order: flags, prio (P3), target (P2), alignment/RAM (P4), size (P5)', () => {
    const { call, xive, trace } = setup();
    const before = Array.from(xive.endt);
    expect(call(H_INT_SET_QUEUE_CONFIG, 2n, 1n, 7n, 1n, 13n)).toBe(H_PARAMETER);
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 1n, 7n, 1n, 13n)).toBe(H_P3); // prio before target
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 7n, EQ, 16n)).toBe(H_P3); // observed -56
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 0xffn, EQ, 16n)).toBe(H_P3);
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 1n, 3n, 1n, 13n)).toBe(H_P2); // target before size
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 1n, 3n, EQ, 16n)).toBe(H_P2); // observed -55
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, EQ + 0x1000n, 16n)).toBe(H_P4); // observed -57
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, 0x3f_0000n, 21n)).toBe(H_P4); // 2M alignment
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, 0x3f_0000n, 16n)).toBe(H_SUCCESS);
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, 0x40_0000n, 16n)).toBe(H_P4); // beyond RAM
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, 0x20_0000n, 24n)).toBe(H_P4); // 16M not aligned
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, 0n, 24n)).toBe(H_P4); // 16M aligned, not all RAM
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, EQ, 13n)).toBe(H_P5); // observed -58
    expect(call(H_INT_SET_QUEUE_CONFIG, 0n, 0n, 3n, EQ + 1n, 17n)).toBe(H_P5); // size before alignment
    expect(trace.errors).toContain('XIVE: priority 7 is reserved');
    expect(trace.errors).toContain('XIVE: EQ @0x201000 is not naturally aligned with 10000');
    expect(trace.errors).toContain('XIVE: failed to map EQ @0x400000');
    expect(trace.errors).toContain('XIVE: invalid EQ size d');
    before.splice(24, 8, 0xc004_0000, 0x0040_0000, 0, 0x3f_0000, 0, 0, 0x400, 0x0003_0000);
    expect(Array.from(xive.endt)).toEqual(before); // only the one successful call changed anything
  });

  it('GET_QUEUE_INFO / GET_QUEUE_CONFIG errors: flags, prio (P3), target (P2)', () => {
    const { call } = setup();
    expect(call(H_INT_GET_QUEUE_INFO, 1n, 1n, 7n)).toBe(H_PARAMETER);
    expect(call(H_INT_GET_QUEUE_INFO, 0n, 1n, 7n)).toBe(H_P3);
    expect(call(H_INT_GET_QUEUE_INFO, 0n, 1n, 6n)).toBe(H_P2);
    expect(call(H_INT_GET_QUEUE_CONFIG, 2n, 1n, 7n)).toBe(H_PARAMETER);
    expect(call(H_INT_GET_QUEUE_CONFIG, 0n, 1n, 7n)).toBe(H_P3);
    expect(call(H_INT_GET_QUEUE_CONFIG, 1n, 1n, 6n)).toBe(H_P2);
  });

  it('priority is a uint8 in QEMU: 0x103 means 3, 0x1ff is reserved', () => {
    const { call, xive } = setup();
    expect(call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 0x103n, EQ, 16n)).toBe(H_SUCCESS);
    expect(xive.endt[3 * 8 + 7]).toBe(0x0003_0000);
    expect(call(H_INT_GET_QUEUE_INFO, 0n, 0n, 0x1ffn)).toBe(H_P3);
    expect(call(H_INT_GET_QUEUE_INFO, 0n, 0x1_0000_0000n, 3n)).toBe(H_SUCCESS); // target is an int
  });
});

describe('H_INT_SET_SOURCE_CONFIG / GET_SOURCE_CONFIG', () => {
  it('routes to END (vcpu << 3) + prio with the EISN; GET reads it back (observed 0/3/0x1234)', () => {
    const { call, out, xive } = setup();
    expect(call(H_INT_SET_SOURCE_CONFIG, SPAPR_XIVE_SRC_SET_EISN, 0n, 0n, 3n, 0x1234n)).toBe(H_SUCCESS);
    expect([xive.eat[0], xive.eat[1]]).toEqual([0x8000_0003, 0x1234]);
    call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n);
    expect(call(H_INT_GET_SOURCE_CONFIG, 0n, 0n)).toBe(H_SUCCESS);
    expect(out).toEqual([0n, 3n, 0x1234n]);
  });

  it('MASK flag: prio reported 0xFF, EISN and target kept; no SET_EISN keeps the EISN', () => {
    const { call, out, xive } = setup();
    call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n);
    call(H_INT_SET_SOURCE_CONFIG, 2n, 0x1000n, 0n, 3n, 0xfedc_ba98n); // EISN is 31 bits
    expect(xive.eat[0x2001]).toBe(0x7edc_ba98);
    expect(call(H_INT_SET_SOURCE_CONFIG, SPAPR_XIVE_SRC_MASK, 0x1000n, 0n, 3n, 0n)).toBe(H_SUCCESS);
    expect(xive.eat[0x2001]).toBe(0xfedc_ba98);
    call(H_INT_GET_SOURCE_CONFIG, 0n, 0x1000n);
    expect(out).toEqual([0n, 0xffn, 0x7edc_ba98n]);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0x1000n, 0n, 3n, 5n)).toBe(H_SUCCESS); // unmask
    call(H_INT_GET_SOURCE_CONFIG, 0n, 0x1000n);
    expect(out).toEqual([0n, 3n, 0x7edc_ba98n]);
  });

  it('prio 0xFF resets the EAS before the other checks; GET then reports 0xFFFFFC00/0xFF/0 (observed)', () => {
    const { call, out, xive } = setup();
    call(H_INT_SET_SOURCE_CONFIG, 2n, 0n, 0n, 3n, 0x1234n);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0n, 99n, 0xffn, 7n)).toBe(H_SUCCESS); // bad target ignored
    expect([xive.eat[0], xive.eat[1]]).toEqual([0x8000_0000, 0x8000_0000]);
    expect(call(H_INT_GET_SOURCE_CONFIG, 0n, 0n)).toBe(H_SUCCESS);
    expect(out).toEqual([0xffff_fc00n, 0xffn, 0n]);
    // …but not before the flags and LISN checks.
    expect(call(H_INT_SET_SOURCE_CONFIG, 4n, 0n, 0n, 0xffn, 0n)).toBe(H_PARAMETER);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 5n, 0n, 0xffn, 0n)).toBe(H_P2);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0x2000n, 0n, 0xffn, 0n)).toBe(H_P2);
    // 0x1ff is not the shortcut (the register is compared whole) but a reserved uint8 0xff.
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0n, 0n, 0x1ffn, 0n)).toBe(H_P4);
  });

  it('errors: prio 7 → H_P4, bad target → H_P3, bad flags → H_PARAMETER (observed -57/-56/-4)', () => {
    const { call, xive } = setup();
    const before = Array.from(xive.eat);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0x1000n, 0n, 7n, 0n)).toBe(H_P4);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0x1000n, 1n, 3n, 0n)).toBe(H_P3);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0x1000n, 1n, 7n, 0n)).toBe(H_P4); // prio before target
    expect(call(H_INT_SET_SOURCE_CONFIG, 4n, 0x1000n, 0n, 3n, 0n)).toBe(H_PARAMETER);
    expect(call(H_INT_SET_SOURCE_CONFIG, 0n, 0x5n, 1n, 7n, 0n)).toBe(H_P2); // lisn before prio
    expect(Array.from(xive.eat)).toEqual(before);
    expect(call(H_INT_GET_SOURCE_CONFIG, 1n, 0n)).toBe(H_PARAMETER);
    expect(call(H_INT_GET_SOURCE_CONFIG, 0n, 5n)).toBe(H_P2);
    expect(call(H_INT_GET_SOURCE_CONFIG, 0n, 0x2000n)).toBe(H_P2);
  });
});

describe('H_INT_ESB', () => {
  it('loads through the management page, host order (7.2 byte-swaps: deviation)', () => {
    const { call, out, xive } = setup();
    expect(call(H_INT_ESB, 0n, 0x1000n, 0x800n, 0n)).toBe(H_SUCCESS);
    expect(out[0]).toBe(1n); // GET: 01 after reset
    expect(call(H_INT_ESB, 0n, 0x1000n, 0xe00n, 0n)).toBe(H_SUCCESS); // SET_PQ_10
    expect(out[0]).toBe(1n);
    expect(call(H_INT_ESB, 0n, 0x1000n, 0x800n, 0n)).toBe(H_SUCCESS);
    expect(out[0]).toBe(2n);
    expect(call(H_INT_ESB, SPAPR_XIVE_ESB_STORE, 0x1000n, 0xc00n, 0x1234n)).toBe(H_SUCCESS); // store SET_PQ_00
    expect(out[0]).toBe(M1);
    expect(xive.source.getPq(0x1000)).toBe(0);
    expect(call(H_INT_ESB, SPAPR_XIVE_ESB_STORE, 0x1000n, 0n, 0n)).toBe(H_SUCCESS); // store trigger
    expect(xive.source.getPq(0x1000)).toBe(2);
    expect(call(H_INT_ESB, 0n, 0x1000n, 0xfff8n, 0n)).toBe(H_SUCCESS); // last doubleword of the page: SET_PQ_11
    expect(xive.source.getPq(0x1000)).toBe(3);
  });

  it('a misaligned offset is H_HARDWARE with no side effect, R4 untouched (QEMU 7.2, observed)', () => {
    const { call, out, xive } = setup();
    xive.source.setPq(0x1000, 0);
    expect(call(H_INT_ESB, SPAPR_XIVE_ESB_STORE, 0x1000n, 1n, 0n)).toBe(H_HARDWARE); // would trigger
    expect(out[0]).toBe(SPAPR_XIVE_ESB_STORE);
    expect(xive.source.getPq(0x1000)).toBe(0);
    expect(call(H_INT_ESB, 0n, 0x1000n, 0xc4d6n, 0n)).toBe(H_HARDWARE);
    expect(out[0]).toBe(0n);
    expect(xive.source.getPq(0x1000)).toBe(0);
  });

  it('errors: flags, LISN (P2), offset ≥ 64K (P3; 7.2 allows up to 128K: deviation)', () => {
    const { call, xive } = setup();
    expect(call(H_INT_ESB, 2n, 0x1000n, 0x800n, 0n)).toBe(H_PARAMETER);
    expect(call(H_INT_ESB, 0n, 5n, 0x800n, 0n)).toBe(H_P2);
    expect(call(H_INT_ESB, 0n, 0x2000n, 0x800n, 0n)).toBe(H_P2);
    expect(call(H_INT_ESB, 0n, 0x1000n, 0x10000n, 0n)).toBe(H_P3);
    expect(call(H_INT_ESB, 0n, 0x1000n, 0x10001n, 0n)).toBe(H_P3);
    expect(call(H_INT_ESB, 0n, 0x1000n, M1, 0n)).toBe(H_P3);
    expect(xive.source.getPq(0x1001)).toBe(1); // the next source was not touched
  });

  it('LSI path: load EOI re-triggers an LSI whose line is still asserted', () => {
    const { call, out, xive, dma } = setup();
    call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n);
    call(H_INT_SET_SOURCE_CONFIG, 2n, 0x1200n, 0n, 3n, 0x1200n);
    xive.setIrq(0x1200, 1); // asserted while off: nothing
    expect(xive.source.getPq(0x1200)).toBe(1);
    expect(dma.loadBe32(0x20_0000)).toBe(0);
    expect(call(H_INT_ESB, 0n, 0x1200n, 0xc00n, 0n)).toBe(H_SUCCESS); // SET_PQ_00
    expect(out[0]).toBe(1n);
    expect(call(H_INT_ESB, 0n, 0x1200n, 0n, 0n)).toBe(H_SUCCESS); // LOAD_EOI
    expect(out[0]).toBe(1n);
    expect(xive.source.getPq(0x1200)).toBe(2);
    expect(dma.loadBe32(0x20_0000)).toBe(0x8000_1200);
    xive.setIrq(0x1200, 0);
    expect(call(H_INT_ESB, 0n, 0x1200n, 0n, 0n)).toBe(H_SUCCESS);
    expect(out[0]).toBe(0n);
    expect(xive.source.getPq(0x1200)).toBe(0);
  });
});

describe('H_INT_SYNC / H_INT_RESET', () => {
  it('SYNC: checks only', () => {
    const { call } = setup();
    expect(call(H_INT_SYNC, 0n, 0x1000n)).toBe(H_SUCCESS);
    expect(call(H_INT_SYNC, 1n, 0x1000n)).toBe(H_PARAMETER);
    expect(call(H_INT_SYNC, 0n, 5n)).toBe(H_P2);
    expect(call(H_INT_SYNC, 0n, 0x2000n)).toBe(H_P2);
  });

  it('RESET really resets routing, queues and PQs (7.2 changes nothing: deviation); contexts untouched', () => {
    const { call, out, xive } = setup();
    call(H_INT_SET_QUEUE_CONFIG, 1n, 0n, 3n, EQ, 16n);
    call(H_INT_SET_SOURCE_CONFIG, 2n, 0x1000n, 0n, 3n, 0xabcn);
    xive.source.setPq(0x1000, 0);
    xive.tctxs[0]!.setCppr(0x10, 0xff);
    expect(call(H_INT_RESET, 1n)).toBe(H_PARAMETER);
    expect(xive.source.getPq(0x1000)).toBe(0);
    expect(call(H_INT_RESET, 0n)).toBe(H_SUCCESS);
    expect(xive.source.getPq(0x1000)).toBe(1);
    expect([xive.eat[0x2000], xive.eat[0x2001]]).toEqual([0x8000_0000, 0x8000_0000]);
    expect(xive.isClaimed(0x1000)).toBe(true);
    call(H_INT_GET_QUEUE_CONFIG, 1n, 0n, 3n);
    expect(out).toEqual([0n, 0n, 0n, 0n]);
    expect(xive.tctxs[0]!.regs[0x11]).toBe(0xff);
    expect(xive.exploitation).toBe(true);
  });
});

const sameWords = (a: Uint32Array, b: Uint32Array): boolean =>
  a.length === b.length && a.every((v, i) => v === b[i]);

describe('properties', () => {
  const reg = fc.oneof(
    fc.bigInt({ min: 0n, max: 0x2001n }),
    fc.constantFrom(0n, 1n, 2n, 3n, 7n, 0xffn, 0x1ffn, 12n, 16n, 0x20_0000n, M1, 1n << 63n),
    fc.bigInt({ min: 0n, max: M1 }),
  );
  const CODES = [H_SUCCESS, H_FUNCTION, H_PARAMETER, H_P2, H_P3, H_P4, H_P5];

  it('seed 0x5eed: any H_INT_* call returns a known code, never throws, and changes nothing on error', () => {
    fc.assert(
      fc.property(fc.constantFrom(...OPCODES), fc.array(reg, { minLength: 0, maxLength: 6 }), (op, args) => {
        const { xive } = setup();
        xive.hcall(0, H_INT_SET_QUEUE_CONFIG, [1n, 0n, 3n, EQ, 16n], []);
        xive.hcall(0, H_INT_SET_SOURCE_CONFIG, [2n, 0x1000n, 0n, 3n, 0x42n], []);
        const eat = xive.eat.slice();
        const endt = xive.endt.slice();
        const pq = xive.source.getPq(0x1000);
        const out: bigint[] = [];
        const rc = xive.hcall(0, op, args, out);
        expect(CODES).toContain(rc);
        expect(out.every((v) => v >= 0n && v <= M1)).toBe(true);
        if (rc !== H_SUCCESS) {
          expect(sameWords(xive.eat, eat)).toBe(true);
          expect(sameWords(xive.endt, endt)).toBe(true);
          expect(xive.source.getPq(0x1000)).toBe(pq);
          expect(out.slice(0, args.length)).toEqual(args.map((a) => BigInt.asUintN(64, a)));
        }
      }),
      { seed: 0x5eed, numRuns: 1000 },
    );
  });
});
