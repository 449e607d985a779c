import { describe, expect, it } from 'vitest';
import { setField32 } from '../../../../src/hw/bits.ts';
import {
  EAS_MASKED_LO,
  EAS_VALID_HI,
  END_W0_BACKLOG,
  END_W0_ENQUEUE,
  END_W0_ESCALATE_CTL,
  END_W0_QSIZE,
  END_W0_SILENT_ESCALATE,
  END_W0_UCOND_NOTIFY,
  END_W0_UNCOND_ESCALATE,
  END_W0_VALID,
  END_W1_ESe,
  END_W1_ESn,
  END_W1_GENERATION,
  END_W1_PAGE_OFF,
  END_W6_FORMAT_BIT,
  END_W6_NVT_INDEX,
  END_W7_F0_PRIORITY,
  END_W7_F1_LOG_SERVER_ID,
  NVT_W0_VALID,
  NVT_W4_IPB,
  TM_CPPR,
  TM_IPB,
  TM_NSR,
  TM_PIPR,
  TM_QW1_OS,
  TM_QW1W2_VO,
} from '../../../../src/hw/xive/regs.ts';
import { XiveRouter } from '../../../../src/hw/xive/router.ts';
import { XiveTctx } from '../../../../src/hw/xive/tctx.ts';
import { Trace } from '../../../../src/sim/trace.ts';
import { FakeBackend, ram } from './fake-backend.ts';

interface EndCfg {
  qaddr?: number;
  qsize?: number;
  prio?: number;
  nvtIdx?: number;
  w0?: number;
  gen?: number;
  index?: number;
}

function setup() {
  const trace = new Trace();
  const be = new FakeBackend();
  const mem = ram(trace);
  const router = new XiveRouter(be, mem, trace);
  const tctx = new XiveTctx(0, trace);
  be.tctxs.push(tctx);
  tctx.setWord2(TM_QW1_OS, TM_QW1W2_VO | 0x400);
  tctx.setCppr(TM_QW1_OS, 0xff);
  be.nvt(0, 0x400)[0] = NVT_W0_VALID;
  const cfgEnd = (idx: number, c: EndCfg = {}) => {
    const e = be.end(0, idx);
    const q = c.qaddr ?? 0x20_0000;
    e[0] = setField32(
      END_W0_QSIZE,
      END_W0_VALID | END_W0_ENQUEUE | (c.w0 ?? END_W0_UCOND_NOTIFY),
      c.qsize ?? 0,
    );
    e[1] = setField32(END_W1_PAGE_OFF, (c.gen ?? 1) ? END_W1_GENERATION : 0, c.index ?? 0);
    e[2] = Math.floor(q / 2 ** 32);
    e[3] = q >>> 0;
    e[6] = setField32(END_W6_NVT_INDEX, 0, c.nvtIdx ?? 0x400);
    e[7] = setField32(END_W7_F0_PRIORITY, 0, c.prio ?? 3);
    return e;
  };
  const route = (lisn: number, endIdx: number, data: number) => be.setEas(lisn, EAS_VALID_HI | endIdx, data);
  return { trace, be, mem, router, tctx, cfgEnd, route };
}

describe('XiveRouter: EAS', () => {
  it('unknown, invalid and masked EAS drop the event', () => {
    const { router, be, trace, mem } = setup();
    router.notify(0x1234, true);
    be.setEas(5, 0, 0);
    router.notify(5, true);
    be.setEas(6, EAS_VALID_HI, EAS_MASKED_LO | 0xabc);
    router.notify(6, true);
    expect(router.stats.unknownLisn).toBe(1);
    expect(router.stats.easInvalid).toBe(1);
    expect(router.stats.easMasked).toBe(1);
    expect(router.stats.enqueued).toBe(0);
    expect(trace.guestErrors).toEqual(['XIVE: Unknown LISN 1234', 'XIVE: Invalid LISN 5']);
    expect(mem.allocatedFrames).toBe(0);
  });

  it('a valid EAS with no or an invalid END is logged', () => {
    const { router, trace, route, be } = setup();
    route(7, 9, 1);
    router.notify(7, true);
    be.end(0, 9)[0] = 0;
    router.notify(7, true);
    expect(trace.guestErrors).toEqual(['XIVE: No END 0/9', 'XIVE: END 0/9 is invalid']);
    expect(router.stats.endInvalid).toBe(2);
  });
});

describe('XiveRouter: END enqueue', () => {
  it('writes BE gen<<31|eisn, advances the index and presents to the OS ring', () => {
    const { router, mem, be, tctx, cfgEnd, route } = setup();
    cfgEnd(3);
    route(0x1000, 3, 0xabc);
    router.notify(0x1000, true);
    expect(mem.loadBe32(0x20_0000)).toBe(0x8000_0abc);
    const bytes = new Uint8Array(4);
    mem.readBytes(0x20_0000, bytes);
    expect([...bytes]).toEqual([0x80, 0x00, 0x0a, 0xbc]);
    expect(be.end(0, 3)[1]).toBe(END_W1_GENERATION | 1);
    expect(be.endWrites).toEqual([[0, 3, 1]]);
    expect(tctx.regs[TM_QW1_OS + TM_IPB]).toBe(0x10);
    expect(tctx.regs[TM_QW1_OS + TM_PIPR]).toBe(3);
    expect(tctx.regs[TM_QW1_OS + TM_NSR]).toBe(0x80);
    expect(tctx.osLine).toBe(true);
    expect(router.stats.enqueued).toBe(1);
    expect(router.stats.presented).toBe(1);
    // logic_serv is w7 bits 1–31 whatever the format (QEMU passes it unconditionally)
    expect(be.matchCalls).toEqual([[0, 0, 0x400, false, 3, 0x0003_0000]]);
  });

  it('4 KiB queue: 1030 events rewrite entries 0..5 with generation 0', () => {
    const { router, mem, be, cfgEnd, route } = setup();
    cfgEnd(3, { qsize: 0 });
    route(0x1000, 3, 0x42);
    for (let i = 0; i < 1030; i++) router.notify(0x1000, true);
    for (let i = 0; i < 6; i++) expect(mem.loadBe32(0x20_0000 + 4 * i)).toBe(0x0000_0042);
    for (let i = 6; i < 1024; i++) expect(mem.loadBe32(0x20_0000 + 4 * i)).toBe(0x8000_0042);
    expect(mem.loadBe32(0x20_0000 + 4 * 1024)).toBe(0);
    expect(be.end(0, 3)[1]).toBe(6); // generation 0, index 6
    expect(router.stats.enqueued).toBe(1030);
  });

  it('qsize n → 4 KiB << n: a 64 KiB queue wraps after 16384 entries', () => {
    const { router, mem, be, cfgEnd, route } = setup();
    cfgEnd(3, { qsize: 4, index: 16383, gen: 0 });
    route(1, 3, 0x77);
    router.notify(1, true);
    expect(mem.loadBe32(0x20_0000 + 16383 * 4)).toBe(0x77);
    expect(be.end(0, 3)[1]).toBe(END_W1_GENERATION); // wrapped: index 0, generation flipped to 1
    router.notify(1, true);
    expect(mem.loadBe32(0x20_0000)).toBe(0x8000_0077);
    // qsize 2 (16 KiB): index 4095 is the last slot
    cfgEnd(4, { qsize: 2, index: 4095, qaddr: 0x40_0000 });
    route(2, 4, 0x5);
    router.notify(2, true);
    expect(mem.loadBe32(0x40_0000 + 4095 * 4)).toBe(0x8000_0005);
    expect(be.end(0, 4)[1]).toBe(0);
  });

  it('a queue outside RAM is a guest error; notification still proceeds', () => {
    const { router, cfgEnd, route, trace, tctx } = setup();
    cfgEnd(3, { qaddr: 0x4000_0000 });
    route(1, 3, 1);
    router.notify(1, true);
    expect(trace.guestErrors).toEqual(['XIVE: failed to write END data @0x40000000']);
    expect(router.stats.enqueued).toBe(0);
    expect(tctx.regs[TM_QW1_OS + TM_IPB]).toBe(0x10);
  });

  it('priority 0xFF masks the END after the enqueue', () => {
    const { router, mem, cfgEnd, route, tctx } = setup();
    cfgEnd(3, { prio: 0xff });
    route(1, 3, 9);
    router.notify(1, true);
    expect(mem.loadBe32(0x20_0000)).toBe(0x8000_0009);
    expect(router.stats.endMasked).toBe(1);
    expect(tctx.regs[TM_QW1_OS + TM_IPB]).toBe(0);
  });
});

describe('XiveRouter: ESn coalescing', () => {
  it('without UCOND_NOTIFY an END notifies once, then only enqueues', () => {
    const { router, mem, be, cfgEnd, route, tctx } = setup();
    cfgEnd(3, { w0: 0 });
    route(1, 3, 0x1234);
    router.notify(1, true);
    expect((be.end(0, 3)[1]! & END_W1_ESn) >>> 0).toBe(0x8000_0000); // ESn 10
    expect(tctx.accept(TM_QW1_OS)).toBe(0x8003);
    router.notify(1, true);
    expect((be.end(0, 3)[1]! & END_W1_ESn) >>> 0).toBe(0xc000_0000); // ESn 11
    expect(mem.loadBe32(0x20_0004)).toBe(0x8000_1234);
    expect(tctx.regs[TM_QW1_OS + TM_IPB]).toBe(0);
    expect(router.stats.presented).toBe(1);
    expect(router.stats.endCoalesced).toBe(1);
  });

  it('with UCOND_NOTIFY every event is presented and ESn untouched', () => {
    const { router, be, cfgEnd, route } = setup();
    cfgEnd(3);
    route(1, 3, 0x1234);
    router.notify(1, true);
    router.notify(1, true);
    expect(router.stats.presented).toBe(2);
    expect((be.end(0, 3)[1]! & END_W1_ESn) >>> 0).toBe(0);
  });
});

describe('XiveRouter: not dispatched, backlog, escalation', () => {
  it('no matching context: logged, no backlog without B', () => {
    const { router, cfgEnd, route, tctx, trace, be } = setup();
    tctx.setWord2(TM_QW1_OS, 0x400); // VO clear: pulled
    cfgEnd(3);
    route(1, 3, 1);
    router.notify(1, true);
    expect(router.stats.notDispatched).toBe(1);
    expect(trace.guestErrors).toEqual(['XIVE: NVT 0/400 is not dispatched']);
    expect(be.nvtWrites).toEqual([]);
  });

  it('B set: the priority is recorded in NVT w4 IPB', () => {
    const { router, cfgEnd, route, tctx, be } = setup();
    tctx.setWord2(TM_QW1_OS, 0x400);
    cfgEnd(3, { w0: END_W0_UCOND_NOTIFY | END_W0_BACKLOG, prio: 3 });
    cfgEnd(5, { w0: END_W0_UCOND_NOTIFY | END_W0_BACKLOG, prio: 5, qaddr: 0x30_0000 });
    route(1, 3, 1);
    route(2, 5, 2);
    router.notify(1, true);
    router.notify(2, true);
    expect(be.nvt(0, 0x400)[4]).toBe(setField32(NVT_W4_IPB, 0, 0x14));
    expect(be.nvtWrites).toEqual([
      [0, 0x400, 4],
      [0, 0x400, 4],
    ]);
    expect(router.stats.backlogged).toBe(2);
  });

  it('F=1 with backlog is a configuration error', () => {
    const { router, cfgEnd, route, be, trace } = setup();
    const e = cfgEnd(3, { w0: END_W0_UCOND_NOTIFY | END_W0_BACKLOG });
    e[6] = e[6]! | END_W6_FORMAT_BIT;
    e[7] = 0x1234 & END_W7_F1_LOG_SERVER_ID;
    route(1, 3, 1);
    router.notify(1, true);
    expect(be.matchCalls).toEqual([[1, 0, 0x400, false, 0, 0x1234]]);
    expect(trace.guestErrors).toContain('XIVE: END 0/3 invalid config: F1 & backlog');
    expect(be.nvtWrites).toEqual([]);
  });

  it('invalid or missing NVT stops the notification', () => {
    const { router, cfgEnd, route, be, trace } = setup();
    cfgEnd(3, { nvtIdx: 0x401 });
    route(1, 3, 1);
    router.notify(1, true);
    be.nvt(0, 0x401);
    router.notify(1, true);
    expect(trace.guestErrors).toEqual(['XIVE: no NVT 0/401', 'XIVE: NVT 0/401 is invalid']);
    expect(be.matchCalls).toEqual([]);
  });

  it('E set: escalation through ESe to the END named by w4/w5, once until ESe is reset', () => {
    const { router, cfgEnd, route, be, tctx, mem } = setup();
    tctx.setWord2(TM_QW1_OS, 0x400);
    const e = cfgEnd(3, { w0: END_W0_UCOND_NOTIFY | END_W0_ESCALATE_CTL });
    e[4] = 0x0000_0007; // escalation END 0/7
    e[5] = 0x0000_0e5c; // escalation data
    cfgEnd(7, { qaddr: 0x50_0000, nvtIdx: 0x401, prio: 7 });
    route(1, 3, 1);
    router.notify(1, true);
    expect(mem.loadBe32(0x50_0000)).toBe(0x8000_0e5c);
    expect((be.end(0, 3)[1]! & END_W1_ESe) >>> 0).toBe(0x2000_0000); // ESe 10
    expect(router.stats.escalations).toBe(1);
    router.notify(1, true);
    expect((be.end(0, 3)[1]! & END_W1_ESe) >>> 0).toBe(0x3000_0000);
    expect(mem.loadBe32(0x50_0004)).toBe(0);
    expect(router.stats.escalations).toBe(1);
  });

  it('U: unconditional escalation every time; S: silent escalation skips the presenter', () => {
    const { router, cfgEnd, route, be, tctx, mem } = setup();
    const e = cfgEnd(3, {
      w0: END_W0_UCOND_NOTIFY | END_W0_ESCALATE_CTL | END_W0_UNCOND_ESCALATE | END_W0_SILENT_ESCALATE,
    });
    e[4] = 7;
    e[5] = 0x99;
    cfgEnd(7, { qaddr: 0x50_0000, nvtIdx: 0x401 });
    route(1, 3, 1);
    router.notify(1, true);
    router.notify(1, true);
    expect(mem.loadBe32(0x20_0000)).toBe(0x8000_0001);
    expect(mem.loadBe32(0x50_0004)).toBe(0x8000_0099);
    expect(router.stats.escalations).toBe(2);
    expect(tctx.regs[TM_QW1_OS + TM_IPB]).toBe(0); // the dispatched NVT 0/400 was never presented
    expect(be.matchCalls.length).toBe(0); // escalation END's NVT 0/401 does not exist
  });

  it('an escalation loop stops with a guest error instead of recursing forever', () => {
    const { router, cfgEnd, route, trace } = setup();
    const e = cfgEnd(3, {
      w0: END_W0_UCOND_NOTIFY | END_W0_ESCALATE_CTL | END_W0_UNCOND_ESCALATE | END_W0_SILENT_ESCALATE,
    });
    e[4] = 3;
    route(1, 3, 1);
    router.notify(1, true);
    expect(trace.guestErrors).toEqual(['XIVE: END 0/3 escalation loop']);
    expect(router.stats.enqueued).toBe(8);
  });

  it('duplicate CAM (more than one match) fails the presentation', () => {
    const { router, cfgEnd, route, be, tctx } = setup();
    be.forceCount = 2;
    cfgEnd(3);
    route(1, 3, 1);
    router.notify(1, true);
    expect(router.stats.presented).toBe(0);
    expect(router.stats.notDispatched).toBe(1);
    expect(tctx.regs[TM_QW1_OS + TM_IPB]).toBe(0);
    expect(tctx.regs[TM_QW1_OS + TM_CPPR]).toBe(0xff);
  });
});
