/**
 * The run probe's counters, one by one: each fires the event it counts — through the trace
 * contract the model's emitters use, and for the source and router counters through the model's
 * own path — and checks the counter moves.
 */
import { describe, expect, it } from 'vitest';
import {
  EAS_MASKED_LO,
  EAS_VALID_HI,
  TM_QW1_NSR_EO,
  TM_QW1_OS,
  TM_QW3_HV_PHYS,
} from '../../../src/hw/xive/regs.ts';
import { XiveRouter } from '../../../src/hw/xive/router.ts';
import { XiveSource } from '../../../src/hw/xive/source.ts';
import { type HostView, RunProbe } from '../../../src/scenario/metrics.ts';
import { Trace } from '../../../src/sim/trace.ts';
import { traceEvent } from '../../../src/sim/trace-events.ts';
import { TRACE_ALL } from '../../../src/sim/trace-sink.ts';
import { FakeBackend, ram } from '../hw/xive/fake-backend.ts';

const probe = (): RunProbe => new RunProbe(0x2000, 4 * 8);

describe('RunProbe counts the events of the trace contract', () => {
  it('esb.trigger: a live trigger is stamped, a forwarding one counted; a trigger on an off source is neither live nor forwarded', () => {
    const p = probe();
    traceEvent(p, 'esb.trigger', { srcno: 0x1300, oldPq: 0, newPq: 2, forward: 1 });
    expect([p.triggerForwarded[0x1300], p.lastLiveTrigger[0x1300], p.seq]).toEqual([1, 1, 1]);
    traceEvent(p, 'esb.trigger', { srcno: 0x1300, oldPq: 2, newPq: 3, forward: 0 });
    expect([p.triggerForwarded[0x1300], p.lastLiveTrigger[0x1300]]).toEqual([1, 2]);
    traceEvent(p, 'esb.trigger', { srcno: 0x1301, oldPq: 1, newPq: 1, forward: 0 });
    expect([p.triggerForwarded[0x1301], p.lastLiveTrigger[0x1301]]).toEqual([0, -1]);
  });

  it('router.masked: a masked-EAS drop is counted on the LISN (under KVM: the IPI behind it)', () => {
    const p = probe();
    traceEvent(p, 'router.masked', { hwIrq: 0x1201 });
    expect(p.easMasked[0x1201]).toBe(1);
    const k = probe();
    const lisnOfSrc = new Int32Array(64).fill(-1);
    lisnOfSrc[5] = 0x1201;
    const view: HostView = {
      lisnOfSrc,
      srcOfLisn: new Int32Array(0x2000).fill(-1),
      hwBase: 0x10,
      endOf: () => -1,
      lsi: new Uint8Array(0x2000),
    };
    k.hostView = view;
    traceEvent(k, 'router.masked', { hwIrq: 0x10 + 5 });
    traceEvent(k, 'router.masked', { hwIrq: 0x10 + 6 }); // an IPI of the host's own
    expect([k.easMasked[0x1201], k.easMasked.reduce((a, b) => a + b, 0)]).toEqual([1, 1]);
  });

  it('esb.forward then router.enqueue: the entry is the routed LISN’s; with none routed it is stray, by EISN', () => {
    const p = probe();
    let read = 0;
    p.queueRead = () => read;
    traceEvent(p, 'esb.forward', { srcno: 0x1300 });
    expect(p.routing).toBe(0x1300);
    const end = (1 << 3) | 6; // vCPU 1, priority 6
    traceEvent(p, 'router.enqueue', { endBlk: 0, endIdx: end, qindex: 0, qdata: 0x8000_0000 | 0x42 });
    expect([p.enqueued[0x1300], p.routing, p.endEnqueued[end], p.endMaxOccupancy[end]]).toEqual([
      1, -1, 1, 1,
    ]);
    traceEvent(p, 'router.enqueue', { endBlk: 0, endIdx: end, qindex: 1, qdata: 0x8000_0000 | 0x42 });
    expect([...p.strayEnqueued]).toEqual([[0x42, 1]]);
    expect([p.endEnqueued[end], p.endMaxOccupancy[end]]).toEqual([2, 2]);
    read = 2;
    traceEvent(p, 'router.enqueue', { endBlk: 0, endIdx: end, qindex: 2, qdata: 7 });
    expect([p.endEnqueued[end], p.endMaxOccupancy[end]]).toEqual([3, 2]);
  });

  it('tctx.accept: an OS-ring acknowledge that returned an interrupt counts for its vCPU, nothing else does', () => {
    const p = probe();
    traceEvent(p, 'tctx.accept', { cpu: 2, ring: TM_QW1_OS, nsrCppr: (TM_QW1_NSR_EO << 8) | 5 });
    traceEvent(p, 'tctx.accept', { cpu: 2, ring: TM_QW1_OS, nsrCppr: 0xff });
    traceEvent(p, 'tctx.accept', { cpu: 2, ring: TM_QW3_HV_PHYS, nsrCppr: 0x80 << 8 });
    expect([...p.acks]).toEqual([0, 0, 1, 0]);
  });

  it('hcall: counted by opcode, from the machine and from the VMM side under KVM', () => {
    const p = probe();
    traceEvent(p, 'hcall', { cpu: 0, opcode: 0x3a8 });
    traceEvent(p.vmmSide(), 'hcall', { cpu: 1, opcode: 0x3a8 });
    traceEvent(p.vmmSide(), 'hcall.xive', { cpu: 1, opcode: 0x3ac, rc: 0, arg1: 0 });
    expect([...p.hcalls]).toEqual([[0x3a8, 2]]);
  });

  it('forwards every event to the inner trace by its mask, arguments in the declared order', () => {
    const inner = new Trace(TRACE_ALL, 16);
    const p = new RunProbe(0x2000, 8, inner);
    traceEvent(p, 'router.enqueue', { qdata: 4, qindex: 3, endIdx: 2, endBlk: 1 });
    expect(inner.events().map((e) => [e.kind, e.args])).toEqual([['router.enqueue', [1, 2, 3, 4]]]);
  });
});

describe('RunProbe on the model’s own paths', () => {
  it('a source trigger and a masked EAS move triggerForwarded and easMasked', () => {
    const p = probe();
    const src = new XiveSource({ nrIrqs: 8, esbShift: 16, flags: 0, resetPq: 0 }, p);
    expect(src.esbTrigger(3)).toBe(true);
    expect([p.triggerForwarded[3], p.lastLiveTrigger[3]]).toEqual([1, 1]);
    const be = new FakeBackend();
    const router = new XiveRouter(be, ram(p), p);
    be.setEas(6, EAS_VALID_HI, EAS_MASKED_LO);
    router.notify(6, true);
    expect(p.easMasked[6]).toBe(1);
  });
});
