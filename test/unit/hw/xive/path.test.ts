import { describe, expect, it } from 'vitest';
import { setField32 } from '../../../../src/hw/bits.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import {
  EAS_VALID_HI,
  END_W0_ENQUEUE,
  END_W0_QSIZE,
  END_W0_UCOND_NOTIFY,
  END_W0_VALID,
  END_W1_GENERATION,
  END_W6_NVT_INDEX,
  END_W7_F0_PRIORITY,
  NVT_W0_VALID,
  TM_QW1_OS,
  TM_QW1W2_VO,
  XIVE_ESB_OFF,
} from '../../../../src/hw/xive/regs.ts';
import { XiveRouter } from '../../../../src/hw/xive/router.ts';
import { XiveSource } from '../../../../src/hw/xive/source.ts';
import { XiveTctx } from '../../../../src/hw/xive/tctx.ts';
import { XiveTima } from '../../../../src/hw/xive/tima.ts';
import { Trace } from '../../../../src/sim/trace.ts';
import { FakeBackend } from './fake-backend.ts';

const VC = 0x0006_0100_0000_0000;
const TM = 0x0006_0302_0318_0000;

describe('source → router → thread context → TIMA through PhysMem', () => {
  it('replays the observed 7.2 sequence for LISN 0, prio 3, EISN 0x1234', () => {
    const trace = new Trace();
    const mem = new PhysMem(trace);
    mem.addRam(0, 1 << 30, 'ppc_spapr.ram');
    const be = new FakeBackend();
    const router = new XiveRouter(be, mem, trace);
    const src = new XiveSource({ nrIrqs: 0x2000, esbShift: 17, flags: 0, resetPq: XIVE_ESB_OFF }, trace);
    src.notifier = (n, checked) => router.notify(n, checked);
    const t0 = new XiveTctx(0, trace);
    be.tctxs.push(t0);
    const tima = new XiveTima([t0], be, trace);
    mem.addMmio(VC, src.esbSize, src, 'xive.esb-emulated');
    mem.addMmio(TM, 0x40000, tima, 'xive.tima');
    const irqs: string[] = [];
    t0.onOsLine = (l) => irqs.push(l ? 'IRQ raise 0' : 'IRQ lower 0');

    // sPAPR state after SET_QUEUE_CONFIG(target 0, prio 3, qpage 0x200000, qsize 16) and
    // SET_SOURCE_CONFIG(lisn 0 → END 3, eisn 0x1234)
    t0.setWord2(TM_QW1_OS, TM_QW1W2_VO | 0x400);
    be.nvt(0, 0x400)[0] = NVT_W0_VALID;
    const end = be.end(0, 3);
    end[0] = setField32(END_W0_QSIZE, END_W0_VALID | END_W0_ENQUEUE | END_W0_UCOND_NOTIFY, 4);
    end[1] = END_W1_GENERATION;
    end[3] = 0x20_0000;
    end[6] = setField32(END_W6_NVT_INDEX, 0, 0x400);
    end[7] = setField32(END_W7_F0_PRIORITY, 0, 3);
    be.setEas(0, EAS_VALID_HI | 3, 0x1234);

    const w = new Word64();
    const readq = (a: number): bigint => {
      mem.load(a, 8, w);
      return w.toBigInt();
    };
    const lwz = (a: number): number => {
      mem.load(a, 4, w, 0);
      return w.lo;
    };
    const mgmt = VC + 0x10000;

    expect(readq(mgmt + 0x800)).toBe(1n);
    expect(readq(mgmt + 0xc00)).toBe(1n);
    expect(lwz(TM + 0x20010)).toBe(0x0000_00ff);
    mem.store(VC, 8, 0, 0); // trigger
    expect(readq(mgmt + 0x800)).toBe(2n);
    expect([mem.loadBe32(0x20_0000), mem.loadBe32(0x20_0004)]).toEqual([0x8000_1234, 0]);
    expect(lwz(TM + 0x20010)).toBe(0x0000_10ff);
    expect(lwz(TM + 0x20014)).toBe(0xff00_0003);
    expect(irqs).toEqual([]);
    mem.store(TM + 0x20011, 1, 0, 0xff, 0); // CPPR := 0xFF
    expect(lwz(TM + 0x20010)).toBe(0x80ff_10ff);
    expect(irqs).toEqual(['IRQ raise 0']);
    mem.load(TM + 0x20810, 2, w, 0);
    expect(w.lo).toBe(0x8003);
    expect(lwz(TM + 0x20010)).toBe(0x0003_00ff);
    expect(irqs).toEqual(['IRQ raise 0', 'IRQ lower 0']);
    mem.store(VC, 8, 0, 0); // second trigger while P=1
    expect(readq(mgmt + 0x800)).toBe(3n);
    expect(readq(mgmt)).toBe(1n); // load EOI re-notifies
    expect(readq(mgmt + 0x800)).toBe(2n);
    expect(mem.loadBe32(0x20_0004)).toBe(0x8000_1234);
    expect(lwz(TM + 0x20010)).toBe(0x0003_10ff); // PIPR 3 = CPPR → no NSR
    expect(irqs).toEqual(['IRQ raise 0', 'IRQ lower 0']);
    expect(trace.guestErrors).toEqual([]);
  });
});
