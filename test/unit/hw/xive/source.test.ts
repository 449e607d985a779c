import { describe, expect, it } from 'vitest';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { XIVE_ESB_OFF, XIVE_ESB_RESET } from '../../../../src/hw/xive/regs.ts';
import {
  XIVE_SRC_PQ_DISABLE,
  XIVE_SRC_STORE_EOI,
  XIVE_STAT_COALESCED,
  XIVE_STAT_FORWARD,
  XIVE_STAT_OFF,
  XIVE_STAT_TRIGGER,
  XiveSource,
  type XiveSourceConfig,
} from '../../../../src/hw/xive/source.ts';
import { Trace } from '../../../../src/sim/trace.ts';

const LISN = 0x1000;
const TRIG = LISN * 0x20000;
const MGMT = TRIG + 0x10000;

function make(cfg: Partial<XiveSourceConfig> = {}) {
  const trace = new Trace();
  const src = new XiveSource(
    { nrIrqs: 0x2000, esbShift: 17, flags: 0, resetPq: XIVE_ESB_OFF, ...cfg },
    trace,
  );
  const notified: number[] = [];
  src.notifier = (n) => notified.push(n);
  return { src, trace, notified };
}

const out = new Word64();
const ld = (s: XiveSource, off: number, size: 1 | 2 | 4 | 8 = 8): bigint => {
  s.load(off, size, 0, out);
  return out.toBigInt();
};

type Row = {
  name: string;
  op: 'ld' | 'st';
  addr: number;
  size?: 1 | 4;
  ret?: readonly bigint[];
  pq: readonly number[];
};
const ONES = 0xffff_ffff_ffff_ffffn;
/** What a load returns from PQ = 00, 01, 10, 11: a load-EOI 1 only from 11; the old PQ; all ones. */
const EOI_RET = [0n, 0n, 0n, 1n];
const PQ_RET = [0n, 1n, 2n, 3n];
const ONES_RET = [ONES, ONES, ONES, ONES];
const ZERO_RET = [0n, 0n, 0n, 0n];
/** The PQ after the access, from PQ = 00, 01, 10, 11. */
const EOI_PQ = [0, 1, 0, 2];
const TRIGGER_PQ = [2, 1, 3, 3];
const SAME_PQ = [0, 1, 2, 3];
const setPq = (pq: number): number[] => [pq, pq, pq, pq];
// Observed with qtest on QEMU 7.2, plus the other SET_PQ stores of hw/intc/xive.c
// (xive_source_esb_write).
const TABLE: readonly Row[] = [
  { name: 'load mgmt+0x000 (EOI)', op: 'ld', addr: MGMT + 0x000, ret: EOI_RET, pq: EOI_PQ },
  { name: 'load mgmt+0x400 (EOI)', op: 'ld', addr: MGMT + 0x400, ret: EOI_RET, pq: EOI_PQ },
  { name: 'load mgmt+0x7ff (EOI range)', op: 'ld', addr: MGMT + 0x7f8, ret: EOI_RET, pq: EOI_PQ },
  { name: 'load mgmt+0x800 (GET)', op: 'ld', addr: MGMT + 0x800, ret: PQ_RET, pq: SAME_PQ },
  { name: 'load mgmt+0xc00 (PQ=00)', op: 'ld', addr: MGMT + 0xc00, ret: PQ_RET, pq: setPq(0) },
  { name: 'load mgmt+0xd00 (PQ=01)', op: 'ld', addr: MGMT + 0xd00, ret: PQ_RET, pq: setPq(1) },
  { name: 'load mgmt+0xe00 (PQ=10)', op: 'ld', addr: MGMT + 0xe00, ret: PQ_RET, pq: setPq(2) },
  { name: 'load mgmt+0xe40 (PQ=10 LD_ST_MO)', op: 'ld', addr: MGMT + 0xe40, ret: PQ_RET, pq: setPq(2) },
  { name: 'load mgmt+0xf00 (PQ=11)', op: 'ld', addr: MGMT + 0xf00, ret: PQ_RET, pq: setPq(3) },
  { name: 'load trig+0x800', op: 'ld', addr: TRIG + 0x800, ret: ONES_RET, pq: SAME_PQ },
  { name: 'load trig+0x000', op: 'ld', addr: TRIG, ret: ONES_RET, pq: SAME_PQ },
  { name: 'store trig+0x000 (trigger)', op: 'st', addr: TRIG, pq: TRIGGER_PQ },
  { name: 'store trig+0xc00 (trigger)', op: 'st', addr: TRIG + 0xc00, pq: TRIGGER_PQ },
  { name: 'store trig+0x400 (trigger)', op: 'st', addr: TRIG + 0x400, pq: TRIGGER_PQ },
  { name: 'store mgmt+0x000 (trigger)', op: 'st', addr: MGMT, pq: TRIGGER_PQ },
  { name: 'store mgmt+0x3f8 (trigger)', op: 'st', addr: MGMT + 0x3f8, pq: TRIGGER_PQ },
  { name: 'store mgmt+0x400 (StoreEOI unsupported)', op: 'st', addr: MGMT + 0x400, pq: SAME_PQ },
  { name: 'store mgmt+0x800 (INJECT: forwards, PQ untouched)', op: 'st', addr: MGMT + 0x800, pq: SAME_PQ },
  { name: 'store mgmt+0xc00 (PQ=00)', op: 'st', addr: MGMT + 0xc00, pq: setPq(0) },
  { name: 'store mgmt+0xd00 (PQ=01)', op: 'st', addr: MGMT + 0xd00, pq: setPq(1) },
  { name: 'store mgmt+0xe00 (PQ=10)', op: 'st', addr: MGMT + 0xe00, pq: setPq(2) },
  { name: 'store mgmt+0xf00 (PQ=11)', op: 'st', addr: MGMT + 0xf00, pq: setPq(3) },
  { name: 'readl mgmt+0x800 (4-byte)', op: 'ld', addr: MGMT + 0x800, size: 4, ret: ZERO_RET, pq: SAME_PQ },
  { name: 'readb mgmt+0xc00 (1-byte)', op: 'ld', addr: MGMT + 0xc00, size: 1, ret: ZERO_RET, pq: SAME_PQ },
  { name: 'writel mgmt+0xc00 (4-byte)', op: 'st', addr: MGMT + 0xc00, size: 4, pq: SAME_PQ },
  { name: 'writeb trig+0x000 (1-byte)', op: 'st', addr: TRIG, size: 1, pq: SAME_PQ },
];

describe('XiveSource ESB MMIO: the QEMU 7.2 table × every PQ (2-page, esbShift 17)', () => {
  for (const row of TABLE) {
    for (const pq0 of [0, 1, 2, 3]) {
      it(`${row.name} from PQ=${pq0.toString(2).padStart(2, '0')}`, () => {
        const { src, notified } = make();
        src.setPq(LISN, pq0);
        if (row.op === 'ld') {
          expect(ld(src, row.addr, row.size ?? 8)).toBe(row.ret![pq0]);
        } else {
          src.store(row.addr, row.size ?? 8, 0, 0, 0);
        }
        expect(src.getPq(LISN)).toBe(row.pq[pq0]);
        // Only a trigger from 00 and an EOI from 11 forward, and only with 8-byte accesses.
        const isTrigger = row.op === 'st' && (row.size ?? 8) === 8 && row.pq.join() === '2,1,3,3';
        const isEoi = row.op === 'ld' && (row.size ?? 8) === 8 && row.pq.join() === '0,1,0,2';
        const isInject = row.name.includes('INJECT');
        const fwd = (isTrigger && pq0 === 0) || (isEoi && pq0 === 3) || isInject;
        expect(notified).toEqual(fwd ? [LISN] : []);
      });
    }
  }

  it('rejected accesses log QEMU-worded guest errors', () => {
    const { src, trace } = make();
    src.setPq(LISN, 0);
    ld(src, MGMT + 0x800, 4);
    ld(src, TRIG + 0x800);
    src.store(MGMT + 0x400, 8, 0, 0, 0);
    expect(trace.guestErrors).toEqual([
      `Invalid read at addr 0x${(MGMT + 0x800).toString(16)}, size 4, region 'xive.esb-emulated', reason: invalid size (min:8 max:8)`,
      `XIVE: invalid load on IRQ 4096 trigger page at 0x${(TRIG + 0x800).toString(16)}`,
      'XIVE: invalid Store EOI for IRQ 4096',
    ]);
  });

  it('StoreEOI works only with XIVE_SRC_STORE_EOI', () => {
    for (const pq0 of [0, 1, 2, 3]) {
      const { src, notified } = make({ flags: XIVE_SRC_STORE_EOI });
      src.setPq(LISN, pq0);
      src.store(MGMT + 0x400, 8, 0, 0, 0);
      expect(src.getPq(LISN)).toBe([0, 1, 0, 2][pq0]);
      expect(notified).toEqual(pq0 === 3 ? [LISN] : []);
    }
  });

  it('source n of a 2-page source: trigger page at n<<17, management at +0x10000', () => {
    const { src, notified } = make();
    src.setPq(7, 0);
    src.setPq(8, 0);
    src.store(7 * 0x20000, 8, 0, 0, 0);
    expect(src.getPq(7)).toBe(2);
    expect(src.getPq(8)).toBe(0);
    expect(ld(src, 7 * 0x20000 + 0x10000 + 0x800)).toBe(2n);
    expect(ld(src, 8 * 0x20000 - 8)).toBe(2n); // last doubleword of source 7's management page (GET range 0xFF8)
    expect(notified).toEqual([7]);
    expect(src.esbSize).toBe(0x2000 * 0x20000);
  });

  it('out-of-range offsets are guest errors, not exceptions', () => {
    const { src, trace } = make({ nrIrqs: 4 });
    expect(ld(src, 4 * 0x20000 + 0x10800)).toBe(ONES);
    src.store(4 * 0x20000, 8, 0, 0, 0);
    expect(trace.guestErrors).toEqual([
      `XIVE: invalid ESB read @0x${(4 * 0x20000 + 0x10800).toString(16)}`,
      `XIVE: invalid ESB write @0x${(4 * 0x20000).toString(16)}`,
    ]);
  });
});

describe('XiveSource 1-page mode (esbShift 16)', () => {
  it('stores to 0x000–0x3FF trigger, loads manage, 0xC00 stores set PQ', () => {
    const { src, notified } = make({ esbShift: 16 });
    const base = 5 * 0x10000;
    src.setPq(5, 0);
    src.store(base + 0x3f8, 8, 0, 0, 0);
    expect(src.getPq(5)).toBe(2);
    expect(ld(src, base + 0x800)).toBe(2n); // GET, not a trigger-page all-ones
    src.store(base + 0x000, 8, 0, 0, 0);
    expect(src.getPq(5)).toBe(3);
    expect(ld(src, base + 0x000)).toBe(1n); // EOI 11 → 10, re-notify
    expect(src.getPq(5)).toBe(2);
    src.store(base + 0x400, 8, 0, 0, 0); // StoreEOI unsupported: ignored
    expect(src.getPq(5)).toBe(2);
    src.store(base + 0xc00, 8, 0, 0, 0);
    expect(src.getPq(5)).toBe(0);
    expect(notified).toEqual([5, 5]);
    expect(src.isTwoPage).toBe(false);
  });

  it('4K geometries: 2-page at shift 13 (mgmt at +0x1000), 1-page at shift 12', () => {
    const two = make({ esbShift: 13 }).src;
    two.setPq(3, 0);
    two.store(3 * 0x2000 + 0x800, 8, 0, 0, 0);
    expect(ld(two, 3 * 0x2000 + 0x1000 + 0x800)).toBe(2n);
    expect(ld(two, 3 * 0x2000 + 0x800)).toBe(ONES);
    const one = make({ esbShift: 12 }).src;
    one.setPq(3, 0);
    one.store(3 * 0x1000, 8, 0, 0, 0);
    expect(ld(one, 3 * 0x1000 + 0x800)).toBe(2n);
  });
});

describe('XiveSource LSI and device lines', () => {
  it('assert forwards only from 00, never sets Q; EOI re-triggers while asserted', () => {
    const { src, notified } = make();
    src.setLsi(0x1200, true);
    src.setPq(0x1200, XIVE_ESB_RESET);
    src.setIrq(0x1200, 1);
    expect(src.getPq(0x1200)).toBe(2);
    expect(src.isAsserted(0x1200)).toBe(true);
    src.setIrq(0x1200, 1);
    expect(src.getPq(0x1200)).toBe(2); // no Q via the line
    const mgmt = 0x1200 * 0x20000 + 0x10000;
    expect(ld(src, mgmt)).toBe(1n); // EOI 10 → 00, still asserted → 10 + forward
    expect(src.getPq(0x1200)).toBe(2);
    src.setIrq(0x1200, 0);
    expect(src.isAsserted(0x1200)).toBe(false);
    expect(src.getPq(0x1200)).toBe(2);
    expect(ld(src, mgmt)).toBe(0n);
    expect(src.getPq(0x1200)).toBe(0);
    expect(notified).toEqual([0x1200, 0x1200]);
  });

  it('an asserted LSI at PQ 01 stays off; a trigger store uses the MSI path and can set Q', () => {
    const { src, notified, trace } = make();
    src.setLsi(0x1201, true);
    src.setIrq(0x1201, 1);
    expect(src.getPq(0x1201)).toBe(1);
    expect(src.isAsserted(0x1201)).toBe(true);
    src.setPq(0x1201, 2);
    src.store(0x1201 * 0x20000, 8, 0, 0, 0);
    expect(src.getPq(0x1201)).toBe(3);
    expect(trace.guestErrors).toEqual(['XIVE: queued an event on LSI IRQ 4609']);
    expect(notified).toEqual([]);
    expect(src.counter(0x1201, XIVE_STAT_OFF)).toBe(1);
  });

  it('MSI set_irq: level 1 triggers, level 0 ignored', () => {
    const { src, notified } = make();
    src.setPq(3, 0);
    src.setIrq(3, 0);
    expect(src.getPq(3)).toBe(0);
    src.setIrq(3, 1);
    src.setIrq(3, 1);
    src.setIrq(3, 1);
    expect(src.getPq(3)).toBe(3);
    expect(notified).toEqual([3]);
    expect(src.counter(3, XIVE_STAT_TRIGGER)).toBe(3);
    expect(src.counter(3, XIVE_STAT_FORWARD)).toBe(1);
    expect(src.counter(3, XIVE_STAT_COALESCED)).toBe(2);
    src.setIrq(4, 1); // reset state 01: dropped
    expect(src.counter(4, XIVE_STAT_OFF)).toBe(1);
    expect(src.counter(4, XIVE_STAT_FORWARD)).toBe(0);
  });

  it('PQ_DISABLE: MSI triggers always forward (pqChecked false), EOI refused', () => {
    const { src, trace } = make({ flags: XIVE_SRC_PQ_DISABLE });
    const seen: [number, boolean][] = [];
    src.notifier = (n, checked) => seen.push([n, checked]);
    src.setIrq(9, 1);
    src.setIrq(9, 1);
    expect(seen).toEqual([
      [9, false],
      [9, false],
    ]);
    expect(src.esbEoi(9)).toBe(false);
    expect(trace.guestErrors).toEqual(['XIVE: invalid EOI for IRQ 9']);
  });
});

describe('XiveSource state', () => {
  it('allocates 1024-source blocks lazily; untouched sources read resetPq', () => {
    const { src } = make();
    expect(src.allocatedBlocks).toBe(0);
    expect(src.getPq(0x1fff)).toBe(XIVE_ESB_OFF);
    expect(src.isLsi(0x1fff)).toBe(false);
    expect(src.counter(0x1fff, XIVE_STAT_TRIGGER)).toBe(0);
    expect(src.allocatedBlocks).toBe(0);
    src.setPq(0x1fff, 0);
    src.setPq(0x1c00, 0);
    expect(src.allocatedBlocks).toBe(1);
    src.setPq(0, 0);
    expect(src.allocatedBlocks).toBe(2);
  });

  it('reset sets every PQ to resetPq and clears assertion, keeps the LSI map', () => {
    const { src } = make();
    src.setLsi(0x1200, true);
    src.setPq(0x1200, 0);
    src.setIrq(0x1200, 1);
    src.reset();
    expect(src.getPq(0x1200)).toBe(1);
    expect(src.isAsserted(0x1200)).toBe(false);
    expect(src.isLsi(0x1200)).toBe(true);
  });

  it('snapshot/restore round-trips status and LSI map', () => {
    const a = make().src;
    a.setLsi(0x1200, true);
    a.setPq(0x1200, 0);
    a.setIrq(0x1200, 1);
    a.setPq(5, 3);
    const snap = JSON.parse(JSON.stringify(a.snapshot()));
    const b = make().src;
    b.setPq(0x1fff, 2);
    b.restore(snap);
    expect(b.getPq(0x1200)).toBe(2);
    expect(b.isAsserted(0x1200)).toBe(true);
    expect(b.isLsi(0x1200)).toBe(true);
    expect(b.getPq(5)).toBe(3);
    expect(b.getPq(0x1fff)).toBe(1); // block not in the snapshot → reset state
    expect(b.snapshot()).toEqual(a.snapshot());
    expect(() => b.restore({ v: 2 })).toThrow('not a version 1 snapshot');
  });

  it('restore keeps the counters of blocks the snapshot holds and drops the others', () => {
    const a = make().src;
    a.setPq(5, 0);
    const snap = a.snapshot();
    const b = make().src;
    b.setPq(5, 0);
    b.setPq(0x1800, 0);
    b.setIrq(5, 1);
    b.setIrq(0x1800, 1);
    b.restore(snap);
    expect(b.counter(5, XIVE_STAT_TRIGGER)).toBe(1);
    expect(b.counter(5, XIVE_STAT_FORWARD)).toBe(1);
    expect(b.counter(0x1800, XIVE_STAT_TRIGGER)).toBe(0);
    expect(b.counter(0x1800, XIVE_STAT_FORWARD)).toBe(0);
  });

  it('API misuse by the model (bad srcno) throws', () => {
    const { src } = make();
    expect(() => src.getPq(0x2000)).toThrow('out of range');
    expect(() => src.setPq(-1, 0)).toThrow('out of range');
  });
});
