import { describe, expect, it } from 'vitest';
import { EBUSY } from '../../../src/host/errno.ts';
import { NO_CPU, Word64 } from '../../../src/hw/mmio.ts';
import { XiveTctxMatch } from '../../../src/hw/xive/router.ts';
import {
  SPAPR_XIVE_BLOCK_ID,
  SPAPR_XIVE_NVT_BASE,
  SPAPR_XIVE_TM_BASE,
  SPAPR_XIVE_VC_BASE,
  SpaprXive,
} from '../../../src/vmm/spapr-xive.ts';
import {
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  H_SUCCESS,
} from '../../../src/vmm/spapr-xive-hcalls.ts';
import { FakeDma, RecTrace } from './spapr-xive-env.ts';

const EQ = 0x20_0000;
const MGMT = 0x1_0000;
const esb = (lisn: number): number => lisn * 0x2_0000;
const TIMA_OS = 0x2_0000;

function setup(nrServers = 1) {
  const dma = new FakeDma(0x40_0000);
  const trace = new RecTrace();
  const xive = new SpaprXive({ nrIrqs: 0x2000, nrServers, hvPrio: 7 }, dma, trace);
  const w = new Word64();
  const load = (dev: { load: SpaprXive['source']['load'] }, off: number, size: 1 | 2 | 4 | 8, cpu = 0) => {
    dev.load(off, size, cpu, w);
    return w.toBigInt();
  };
  return { dma, trace, xive, w, load };
}

describe('SpaprXive geometry and numbering (hw/intc/spapr_xive.c)', () => {
  it('has the QEMU 7.2 layout', () => {
    const { xive } = setup(2);
    expect(SPAPR_XIVE_VC_BASE).toBe(0x6010000000000);
    expect(SPAPR_XIVE_TM_BASE).toBe(0x6030203180000);
    expect([SPAPR_XIVE_NVT_BASE, SPAPR_XIVE_BLOCK_ID]).toEqual([0x400, 0]);
    expect(xive.nrEnds).toBe(16);
    expect(xive.esbSize).toBe(0x4000_0000);
    expect(xive.endBase).toBe(0x6010040000000);
    expect(xive.endEsbSize).toBe(0x4000_0000);
    expect(xive.source.esbShift).toBe(17);
    expect(xive.source.flags).toBe(0);
    expect(xive.tctxs.map((t) => t.cpu)).toEqual([0, 1]);
    expect(xive.exploitation).toBe(false);
    expect([xive.cpuToEnd(1, 3), xive.cpuToNvt(1), xive.nvtToTarget(0)]).toEqual([11, 0x401, 0xffff_fc00]);
    expect([xive.findCpu(1n), xive.findCpu(2n), xive.findCpu(0x1_0000_0001n), xive.findCpu(-1n)]).toEqual([
      1, -1, 1, -1,
    ]);
  });

  it('starts reset: sources off (PQ 01), ENDs with ESn/ESe off, OS CAM pushed', () => {
    const { xive } = setup(2);
    expect(xive.source.getPq(0)).toBe(1);
    expect(xive.source.getPq(0x1fff)).toBe(1);
    expect(Array.from(xive.endt.subarray(0, 8))).toEqual([0, 0x5000_0000, 0, 0, 0, 0, 0, 0]);
    expect(xive.tctxs[0]!.word2(0x10)).toBe(0x8000_0400);
    expect(xive.tctxs[1]!.word2(0x10)).toBe(0x8000_0401);
    expect(xive.tctxs[0]!.regs[0x17]).toBe(0xff);
  });

  it('END ESB window is disabled: reads 0', () => {
    const { xive, load } = setup();
    expect(load(xive.endEsb, 0x6_0800, 8)).toBe(0n);
    xive.endEsb.store(0x6_0c00, 8, 0, 0, 0);
    expect(load(xive.endEsb, 0x6_0800, 8)).toBe(0n);
  });
});

describe('claim / free', () => {
  it('claims VALID|MASKED, refuses a valid EAS with -EBUSY, free clears VALID only', () => {
    const { xive, trace } = setup();
    expect(xive.claimIrq(0x1000, false)).toBe(0);
    expect([xive.eat[0x2000], xive.eat[0x2001]]).toEqual([0x8000_0000, 0x8000_0000]);
    expect(xive.isClaimed(0x1000)).toBe(true);
    expect(xive.claimIrq(0x1000, false)).toBe(-EBUSY);
    expect(EBUSY).toBe(16);
    expect(trace.errors).toEqual(['IRQ 4096 is not free']);
    expect(xive.claimIrq(0x1200, true)).toBe(0);
    expect(xive.source.isLsi(0x1200)).toBe(true);
    expect(xive.source.isLsi(0x1000)).toBe(false);
    xive.freeIrq(0x1200);
    expect(xive.isClaimed(0x1200)).toBe(false);
    expect([xive.eat[0x2400], xive.eat[0x2401]]).toEqual([0, 0x8000_0000]);
    expect(xive.source.isLsi(0x1200)).toBe(true); // the LSI map is not cleared
    expect(() => xive.claimIrq(0x2000, false)).toThrow(/out of range/);
  });
});

describe('router backend', () => {
  it('getEas/getEnd bound by nrIrqs/nrEnds; getNvt synthesises a valid NVT per vCPU', () => {
    const { xive } = setup(2);
    const eas = new Uint32Array(2);
    const end = new Uint32Array(8);
    const nvt = new Uint32Array(16).fill(0xdead);
    expect(xive.getEas(0, 0x1fff, eas)).toBe(true);
    expect(xive.getEas(0, 0x2000, eas)).toBe(false);
    expect(xive.getEnd(0, 15, end)).toBe(true);
    expect(xive.getEnd(0, 16, end)).toBe(false);
    expect(xive.getNvt(0, 0x401, nvt)).toBe(true);
    expect(nvt[0]).toBe(0x8000_0000);
    expect(nvt[4]).toBe(0);
    expect(xive.getNvt(0, 0x402, nvt)).toBe(false);
    expect(xive.getNvt(0, 0x3ff, nvt)).toBe(false);
    expect(() => xive.writeNvt(0, 0x400, nvt, 4)).toThrow(/unreachable/);
  });

  it('writeEnd writes the whole END back', () => {
    const { xive } = setup();
    xive.writeEnd(0, 3, Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 8), 1);
    expect(Array.from(xive.endt.subarray(24, 32))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('matchNvt finds the OS ring; a duplicate CAM fails with 2 and a guest error', () => {
    const { xive, trace } = setup(2);
    const m = new XiveTctxMatch();
    expect(xive.matchNvt(0, 0, 0x401, false, 3, 0, m)).toBe(1);
    expect(m.tctx).toBe(xive.tctxs[1]);
    expect(m.ring).toBe(0x10);
    const none = new XiveTctxMatch();
    expect(xive.matchNvt(0, 0, 0x402, false, 3, 0, none)).toBe(0);
    expect(none.tctx).toBeNull();
    xive.tctxs[1]!.setWord2(0x10, 0x8000_0400);
    const dup = new XiveTctxMatch();
    expect(xive.matchNvt(0, 0, 0x400, false, 3, 0, dup)).toBe(2);
    expect(trace.errors).toEqual(['XIVE: already found a thread context NVT 0/400']);
  });
});

/** Configure as the qtest session on QEMU 7.2 did: queue 0x200000 (64K), source → vCPU 0 prio 3. */
function configure(xive: SpaprXive, lisn: number, eisn: number): void {
  const out: bigint[] = [];
  xive.exploitation = true;
  expect(xive.hcall(0, H_INT_SET_QUEUE_CONFIG, [1n, 0n, 3n, BigInt(EQ), 16n], out)).toBe(H_SUCCESS);
  expect(xive.hcall(0, H_INT_SET_SOURCE_CONFIG, [2n, BigInt(lisn), 0n, 3n, BigInt(eisn)], out)).toBe(
    H_SUCCESS,
  );
}

describe('end to end through the public API (as observed with qtest on QEMU 7.2)', () => {
  it('claim, configure, unmask, CPPR, trigger → EQ, OS line, ACK 0x8003', () => {
    const { xive, dma, load } = setup();
    const lines: boolean[] = [];
    xive.tctxs[0]!.onOsLine = (l) => lines.push(l);
    expect(xive.claimIrq(0x1000, false)).toBe(0);
    configure(xive, 0x1000, 0xabc);
    expect(load(xive.source, esb(0x1000) + MGMT + 0x800, 8)).toBe(1n); // PQ 01 (off)
    expect(load(xive.source, esb(0x1000) + MGMT + 0xc00, 8)).toBe(1n); // SET_PQ_00, old 01
    xive.tima.store(TIMA_OS + 0x11, 1, 0, 0xff, 0); // CPPR := 0xff
    expect(lines).toEqual([]);
    xive.source.store(esb(0x1000), 8, 0, 0, NO_CPU); // trigger page
    expect(lines).toEqual([true]);
    expect(load(xive.source, esb(0x1000) + MGMT + 0x800, 8)).toBe(2n); // PQ 10
    expect(dma.loadBe32(EQ)).toBe(0x8000_0abc);
    expect(dma.loadBe32(EQ + 4)).toBe(0);
    expect(xive.tctxs[0]!.osLine).toBe(true);
    expect(load(xive.tima, TIMA_OS + 0x810, 2)).toBe(0x8003n); // ACK_OS_REG
    expect(lines).toEqual([true, false]);
    expect(xive.router.stats.enqueued).toBe(1);
    expect(xive.router.stats.presented).toBe(1);
  });

  it('a masked EAS drops the event after the PQ update; setIrq triggers an MSI', () => {
    const { xive, dma, load } = setup();
    xive.claimIrq(0x1001, false);
    xive.source.setPq(0x1001, 0);
    xive.setIrq(0x1001, 1);
    expect(xive.source.getPq(0x1001)).toBe(2);
    expect(xive.router.stats.easMasked).toBe(1);
    expect(dma.loadBe32(EQ)).toBe(0);
    configure(xive, 0x1001, 0x42);
    expect(load(xive.source, esb(0x1001) + MGMT + 0x000, 8)).toBe(0n); // EOI 10 → 00
    xive.setIrq(0x1001, 1);
    expect(dma.loadBe32(EQ)).toBe(0x8000_0042);
  });

  it('an unknown NVT (OS CAM pulled) enqueues but is not dispatched', () => {
    const { xive, dma, trace } = setup();
    xive.claimIrq(0x1000, false);
    configure(xive, 0x1000, 7);
    xive.source.setPq(0x1000, 0);
    xive.tctxs[0]!.setWord2(0x10, 0x400); // VO clear
    xive.setIrq(0x1000, 1);
    expect(dma.loadBe32(EQ)).toBe(0x8000_0007);
    expect(xive.router.stats.notDispatched).toBe(1);
    expect(trace.errors).toContain('XIVE: NVT 0/400 is not dispatched');
  });
});

describe('reset', () => {
  it('masks valid EASs (EISN/target dropped), zeroes invalid ones, clears ENDs, PQ 01, tctx + CAM', () => {
    const { xive, load } = setup();
    xive.claimIrq(0x1000, false);
    configure(xive, 0x1000, 0xabc);
    xive.claimIrq(0x1001, false);
    xive.freeIrq(0x1001); // leaves MASKED in the low word
    load(xive.source, esb(0x1000) + MGMT + 0xc00, 8);
    xive.tima.store(TIMA_OS + 0x11, 1, 0, 0xff, 0);
    xive.source.store(esb(0x1000), 8, 0, 0, NO_CPU);
    expect(xive.tctxs[0]!.osLine).toBe(true);
    xive.tctxs[0]!.setWord2(0x10, 0);
    const lines: boolean[] = [];
    xive.tctxs[0]!.onOsLine = (l) => lines.push(l);
    xive.reset();
    expect([xive.eat[0x2000], xive.eat[0x2001]]).toEqual([0x8000_0000, 0x8000_0000]);
    expect([xive.eat[0x2002], xive.eat[0x2003]]).toEqual([0, 0]);
    expect(Array.from(xive.endt.subarray(24, 32))).toEqual([0, 0x5000_0000, 0, 0, 0, 0, 0, 0]);
    expect(xive.source.getPq(0x1000)).toBe(1);
    expect(xive.tctxs[0]!.word2(0x10)).toBe(0x8000_0400);
    expect(xive.tctxs[0]!.regs[0x11]).toBe(0); // CPPR back to 0
    expect(lines).toEqual([false]);
    expect(xive.exploitation).toBe(true); // machine state, cleared by the machine
  });

  it('cpuIntcReset resets one thread context and pushes its CAM', () => {
    const { xive } = setup(2);
    xive.tctxs[1]!.setCppr(0x10, 5);
    xive.tctxs[1]!.setWord2(0x10, 0);
    xive.cpuIntcReset(1);
    expect(xive.tctxs[1]!.regs[0x11]).toBe(0);
    expect(xive.tctxs[1]!.word2(0x10)).toBe(0x8000_0401);
    expect(() => xive.cpuIntcReset(2)).toThrow();
  });
});

describe('info pic (HMP on QEMU 7.2)', () => {
  it('matches the QEMU 7.2 layout for one configured IPI and a claimed LSI', () => {
    const { xive, dma, load } = setup();
    // IPI 0 of vCPU 0 is claimed at machine init.
    xive.claimIrq(0, false);
    xive.claimIrq(0x1200, true);
    configure(xive, 0, 0x1234);
    load(xive.source, esb(0) + MGMT + 0xc00, 8);
    xive.source.store(esb(0), 8, 0, 0, NO_CPU); // trigger
    expect(dma.loadBe32(EQ)).toBe(0x8000_1234);
    xive.tima.store(TIMA_OS + 0x11, 1, 0, 0xff, 0);
    expect(load(xive.tima, TIMA_OS + 0x810, 2)).toBe(0x8003n);
    xive.source.store(esb(0), 8, 0, 0, NO_CPU); // while P=1
    expect(xive.source.getPq(0)).toBe(3);
    expect(load(xive.source, esb(0) + MGMT, 8)).toBe(1n); // load EOI re-notifies
    expect(xive.source.getPq(0)).toBe(2);
    expect(dma.loadBe32(EQ + 4)).toBe(0x8000_1234);
    expect(xive.infoPic()).toBe(
      [
        'CPU[0000]:   QW   NSR CPPR IPB LSMFB ACK# INC AGE PIPR  W2',
        'CPU[0000]: USER    00   00  00    00   00  00  00   00  00000000',
        'CPU[0000]:   OS    00   03  10    ff   ff  00  ff   03  80000400',
        'CPU[0000]: POOL    00   00  00    00   00  00  00   00  00000000',
        'CPU[0000]: PHYS    00   00  00    00   00  00  00   ff  00000000',
        '  LISN         PQ    EISN     CPU/PRIO EQ',
        '  00000000 MSI P-    00001234   0/3      2/16384 @200000 ^1 [ 00000000 00000000 00000000 80001234 80001234 ^00000000 ]',
        '  00001200 LSI -Q  M 00000000 ',
        '',
      ].join('\n'),
    );
  });

  it('prints asserted LSIs, masked EASs without END, wide indexes and negative targets', () => {
    const { xive } = setup();
    xive.claimIrq(0x1200, true);
    xive.source.setPq(0x1200, 0);
    xive.setIrq(0x1200, 1); // masked EAS: PQ 10, asserted
    xive.endt.set([0x8004_0000 >>> 0, 0x0041_e240, 0, EQ, 0, 0, 0x3ff, 0x0006_0000], 0);
    xive.eat[0x2400] = 0x8000_0000;
    xive.eat[0x2401] = 5;
    const pic = xive.infoPic();
    expect(pic).toContain(
      '  00001200 LSI P-A   00000005  -1/6  123456/16384 @200000 ^1 [ 00000000 00000000 00000000 00000000 00000000 ^00000000 ]\n',
    );
  });
});

describe('snapshot / restore', () => {
  it('round-trips tables, PQs, thread contexts and exploitation', () => {
    const { xive, dma } = setup();
    xive.claimIrq(0x1000, false);
    configure(xive, 0x1000, 0xabc);
    xive.source.setPq(0x1000, 0);
    const snap = JSON.parse(JSON.stringify(xive.snapshot()));
    const other = new SpaprXive({ nrIrqs: 0x2000, nrServers: 1, hvPrio: 7 }, dma, new RecTrace());
    other.restore(snap);
    expect(other.exploitation).toBe(true);
    expect(other.infoPic()).toBe(xive.infoPic());
    expect(Array.from(other.endt)).toEqual(Array.from(xive.endt));
    expect(() => other.restore({ v: 2 })).toThrow(/version 1/);
  });
});
