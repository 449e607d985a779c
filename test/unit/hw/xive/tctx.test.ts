import { describe, expect, it } from 'vitest';
import {
  TM_CPPR,
  TM_IPB,
  TM_NSR,
  TM_PIPR,
  TM_QW0_USER,
  TM_QW0W2_VU,
  TM_QW1_OS,
  TM_QW1W2_VO,
  TM_QW2_HV_POOL,
  TM_QW2W2_VP,
  TM_QW3_HV_PHYS,
  TM_QW3W2_VT,
} from '../../../../src/hw/xive/regs.ts';
import { XiveTctx } from '../../../../src/hw/xive/tctx.ts';
import { Trace } from '../../../../src/sim/trace.ts';

function make(cpu = 0) {
  const trace = new Trace();
  const t = new XiveTctx(cpu, trace);
  const os: boolean[] = [];
  const hv: boolean[] = [];
  t.onOsLine = (l) => os.push(l);
  t.onHvLine = (l) => hv.push(l);
  return { t, trace, os, hv };
}

const OS = TM_QW1_OS;

describe('XiveTctx', () => {
  it('reset values: OS LSMFB=ACK_CNT=AGE=0xFF, OS and PHYS PIPR 0xFF, all else 0', () => {
    const { t } = make();
    const expected = new Uint8Array(64);
    expected[0x13] = 0xff;
    expected[0x14] = 0xff;
    expected[0x16] = 0xff;
    expected[0x17] = 0xff;
    expected[0x37] = 0xff;
    expect([...t.regs]).toEqual([...expected]);
    expect(t.osLine).toBe(false);
    expect(t.hvLine).toBe(false);
  });

  it('ipbUpdate with CPPR 0 records but does not notify; setCppr then raises (observer sees one edge)', () => {
    const { t, os } = make();
    t.ipbUpdate(OS, 3);
    expect([t.regs[OS + TM_IPB], t.regs[OS + TM_PIPR], t.regs[OS + TM_NSR]]).toEqual([0x10, 3, 0]);
    expect(os).toEqual([]);
    t.setCppr(OS, 9); // clamp to 0xFF
    expect(t.regs[OS + TM_CPPR]).toBe(0xff);
    expect(t.regs[OS + TM_NSR]).toBe(0x80);
    t.ipbUpdate(OS, 5); // already raised: no new edge
    expect([t.regs[OS + TM_IPB], t.regs[OS + TM_PIPR]]).toEqual([0x14, 3]);
    expect(os).toEqual([true]);
    expect(t.accept(OS)).toBe(0x8003);
    expect(os).toEqual([true, false]);
    expect([t.regs[OS + TM_CPPR], t.regs[OS + TM_IPB], t.regs[OS + TM_PIPR], t.regs[OS + TM_NSR]]).toEqual([
      3, 0x04, 5, 0,
    ]);
    t.setCppr(OS, 6); // PIPR 5 < 6 → raise again
    expect(os).toEqual([true, false, true]);
    expect(t.osLine).toBe(true);
  });

  it('raising CPPR does not clear NSR; accept with nothing pending returns CPPR only', () => {
    const { t, os } = make();
    t.setCppr(OS, 0xff);
    t.ipbUpdate(OS, 4);
    t.setCppr(OS, 2);
    expect(t.regs[OS + TM_NSR]).toBe(0x80);
    expect(os).toEqual([true]);
    const { t: u } = make();
    u.setCppr(OS, 2);
    expect(u.accept(OS)).toBe(0x0002);
    expect(u.regs[OS + TM_CPPR]).toBe(2);
  });

  it('PIPR equal to CPPR is not delivered', () => {
    const { t, os } = make();
    t.setCppr(OS, 3);
    t.ipbUpdate(OS, 3);
    expect(t.regs[OS + TM_NSR]).toBe(0);
    expect(os).toEqual([]);
  });

  it('PHYS ring: HE=PHYS in NSR, the HV line; POOL presents through PHYS CPPR with HE=POOL', () => {
    const { t, hv, os } = make();
    t.setCppr(TM_QW3_HV_PHYS, 0xff);
    t.ipbUpdate(TM_QW3_HV_PHYS, 2);
    expect(t.regs[TM_QW3_HV_PHYS + TM_NSR]).toBe(0x80);
    expect(hv).toEqual([true]);
    expect(t.accept(TM_QW3_HV_PHYS)).toBe(0x8002);
    expect(hv).toEqual([true, false]);
    t.setCppr(TM_QW3_HV_PHYS, 0xff);
    t.ipbUpdate(TM_QW2_HV_POOL, 1);
    expect(t.regs[TM_QW3_HV_PHYS + TM_NSR]).toBe(0x40);
    expect(hv).toEqual([true, false, true]);
    expect(os).toEqual([]);
  });

  it('match: PHYS, POOL, OS order for format 0; USER for format 1; ignore unsupported', () => {
    const { t, trace } = make(5);
    expect(t.match(0, 0, 0x400, false, 0)).toBe(-1);
    t.setWord2(OS, TM_QW1W2_VO | 0x400);
    expect(t.match(0, 0, 0x400, false, 0)).toBe(OS);
    expect(t.match(0, 1, 0x400, false, 0)).toBe(-1);
    t.setWord2(TM_QW2_HV_POOL, TM_QW2W2_VP | 0x400);
    expect(t.match(0, 0, 0x400, false, 0)).toBe(TM_QW2_HV_POOL);
    t.setWord2(TM_QW3_HV_PHYS, TM_QW3W2_VT);
    expect(t.hwCamLine()).toBe(0x85);
    expect(t.match(0, 0, 0x85, false, 0)).toBe(TM_QW3_HV_PHYS);
    expect(t.match(0, 0, 0x400, true, 0)).toBe(-1);
    expect(trace.guestErrors).toEqual(['XIVE: no support for LS NVT 0/400']);
    expect(t.match(1, 0, 0x400, false, 7)).toBe(-1);
    t.setWord2(TM_QW0_USER, TM_QW0W2_VU | 7);
    expect(t.match(1, 0, 0x400, false, 7)).toBe(TM_QW0_USER);
    expect(t.match(1, 0, 0x400, false, 8)).toBe(-1);
  });

  it('word2 is big-endian in regs', () => {
    const { t } = make();
    t.setWord2(OS, 0x8000_0400);
    expect([...t.regs.subarray(0x18, 0x1c)]).toEqual([0x80, 0x00, 0x04, 0x00]);
    expect(t.word2(OS)).toBe(0x8000_0400);
  });

  it('reset lowers a raised line; snapshot/restore round-trips regs and lines', () => {
    const { t, os } = make();
    t.setCppr(OS, 0xff);
    t.ipbUpdate(OS, 1);
    const snap = JSON.parse(JSON.stringify(t.snapshot()));
    t.reset();
    expect(os).toEqual([true, false]);
    t.restore(snap);
    expect(os).toEqual([true, false, true]);
    expect(t.regs[OS + TM_PIPR]).toBe(1);
    expect(t.snapshot()).toEqual(snap);
    expect(() => t.restore({ v: 1, regs: [] })).toThrow('not a version 1 snapshot');
  });
});
