import { describe, expect, it } from 'vitest';
import { Trace } from '../../../src/sim/trace.ts';
import { TRACE_EVENTS, traceArgs, traceEvent } from '../../../src/sim/trace-events.ts';
import { TRACE_ALL, TRACE_ESB, TRACE_KVM, TRACE_VMM } from '../../../src/sim/trace-sink.ts';

describe('the trace contract', () => {
  it('an event is emitted in its category, arguments in the declared order, unused slots 0', () => {
    const t = new Trace(TRACE_ALL, 8);
    traceEvent(t, 'esb.trigger', { forward: 1, newPq: 2, oldPq: 0, srcno: 9 });
    traceEvent(t, 'kvm.xive.zap', { irq: 4, pgoff: 12, npages: 2 });
    traceEvent(t, 'xive.kvm.run', {});
    expect(t.events().map((e) => [e.cat, e.kind, e.args])).toEqual([
      [TRACE_ESB, 'esb.trigger', [9, 0, 2, 1]],
      [TRACE_KVM, 'kvm.xive.zap', [4, 12, 2, 0]],
      [TRACE_VMM, 'xive.kvm.run', [0, 0, 0, 0]],
    ]);
  });

  it('traceArgs gives each argument’s position by name', () => {
    expect(traceArgs('router.enqueue')).toEqual({ endBlk: 0, endIdx: 1, qindex: 2, qdata: 3 });
    expect(traceArgs('tctx.accept')).toEqual({ cpu: 0, ring: 1, nsrCppr: 2 });
    expect(traceArgs('kvm.xive.reset')).toEqual({});
  });

  it('every kind has at most four distinct argument names', () => {
    for (const [kind, d] of Object.entries(TRACE_EVENTS)) {
      expect(d.args.length, kind).toBeLessThanOrEqual(4);
      expect(new Set(d.args).size, kind).toBe(d.args.length);
    }
  });
});
