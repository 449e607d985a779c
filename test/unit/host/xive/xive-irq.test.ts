import { describe, expect, it } from 'vitest';
import { EINVAL } from '../../../../src/host/errno.ts';
import { HOST_XIVE_PRIO, HostXive, XIVE_INVALID_TARGET } from '../../../../src/host/xive/host-xive.ts';
import {
  irqdIsForwardedToVcpu,
  irqSetVcpuAffinity,
  xiveDoSourceSetMask,
  xiveIrqSetVcpuAffinity,
} from '../../../../src/host/xive/xive-irq.ts';
import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import { P9Chip, XiveIrqConfig } from '../../../../src/hw/xive/p9-chip.ts';
import { Trace } from '../../../../src/sim/trace.ts';

/** A host with one requested HW IPI standing in for a device MSI (PQ 00, routed to CPU 0). */
function setup(request = true) {
  const trace = new Trace();
  const mem = new PhysMem(trace);
  const chip = new P9Chip({ nrCpus: 2, nrIpis: 16 }, mem, trace);
  const host = new HostXive(chip, trace);
  const hw = host.allocIrq();
  const virq = host.createMapping(hw);
  let handled = 0;
  if (request) expect(host.requestIrq(virq, () => handled++, 'dev')).toBe(0);
  const d = host.irq(virq)!;
  const src = chip.ipiSource;
  const srcno = hw - 0x10;
  return { chip, host, hw, virq, d, xd: d.data, src, srcno, handled: () => handled };
}

function eas(chip: P9Chip, hw: number): [number, number, number] {
  const c = new XiveIrqConfig();
  chip.getIrqConfig(hw, c);
  return [c.vp, c.prio, c.lirq];
}

describe('host side of passthrough: xive_irq_set_vcpu_affinity (arch/powerpc/sysdev/xive/common.c)', () => {
  it('P clear: forward → PQ 10, saved_p 0, stale_p 1; back → sync, EAS to the host, source EOI → PQ 00', () => {
    const t = setup();
    const syncs = t.chip.stats.syncs;
    expect(irqSetVcpuAffinity(t.host, t.virq, {})).toBe(0);
    expect(t.src.getPq(t.srcno)).toBe(2);
    expect([t.xd.savedP, t.xd.staleP, irqdIsForwardedToVcpu(t.host, t.virq)]).toEqual([false, true, true]);
    expect(t.chip.stats.syncs).toBe(syncs);
    // The guest takes the EAS meanwhile.
    t.host.configureIrq(t.hw, t.chip.hostVp(1), 3, 0x99);
    expect(irqSetVcpuAffinity(t.host, t.virq, null)).toBe(0);
    expect(t.chip.stats.syncs).toBe(syncs + 1);
    expect(eas(t.chip, t.hw)).toEqual([t.chip.hostVp(t.xd.target), HOST_XIVE_PRIO, t.virq]);
    expect(t.src.getPq(t.srcno)).toBe(0);
    expect([t.xd.staleP, irqdIsForwardedToVcpu(t.host, t.virq)]).toEqual([false, false]);
  });

  it('P set (an event in a host queue): saved_p → PQ 11 + source sync; back: no EOI (the host still owes one)', () => {
    const t = setup();
    t.src.setPq(t.srcno, 2);
    const syncs = t.chip.stats.syncs;
    expect(xiveIrqSetVcpuAffinity(t.host, t.virq, true)).toBe(0);
    expect([t.xd.savedP, t.xd.staleP]).toEqual([true, false]);
    expect(t.src.getPq(t.srcno)).toBe(3);
    expect(t.chip.stats.syncs).toBe(syncs + 1);
    const eois = t.host.stats.eois;
    expect(xiveIrqSetVcpuAffinity(t.host, t.virq, false)).toBe(0);
    expect(t.host.stats.eois).toBe(eois);
    expect(t.src.getPq(t.srcno)).toBe(3);
  });

  it('stale_p already set (the EOI was skipped while forwarded): P is not trusted, saved_p unchanged, no PQ 11', () => {
    const t = setup();
    t.xd.staleP = true;
    t.src.setPq(t.srcno, 2);
    expect(xiveIrqSetVcpuAffinity(t.host, t.virq, true)).toBe(0);
    expect([t.xd.savedP, t.xd.staleP]).toEqual([false, true]);
    expect(t.src.getPq(t.srcno)).toBe(2);
  });

  it('no host target: forward only PQ 10 (WARN if saved_p); back masks with saved_p bookkeeping', () => {
    const t = setup(false);
    expect(t.xd.target).toBe(XIVE_INVALID_TARGET);
    t.src.setPq(t.srcno, 2);
    const trace = t.host.trace as Trace;
    expect(xiveIrqSetVcpuAffinity(t.host, t.virq, true)).toBe(0);
    expect(t.src.getPq(t.srcno)).toBe(2);
    expect(trace.guestErrors.at(-1)).toMatch(/forwarded with saved_p/);
    t.xd.savedP = false;
    t.xd.staleP = false;
    expect(xiveIrqSetVcpuAffinity(t.host, t.virq, false)).toBe(0);
    expect(t.src.getPq(t.srcno)).toBe(1);
    expect([t.xd.savedP, t.xd.staleP]).toEqual([true, false]); // P was set under the mask
  });

  it('xive_do_source_set_mask: unmask gives PQ 10 while saved_p (then clears it), else PQ 00', () => {
    const t = setup();
    t.xd.savedP = true;
    xiveDoSourceSetMask(t.host, t.xd, false);
    expect([t.src.getPq(t.srcno), t.xd.savedP]).toEqual([2, false]);
    t.xd.staleP = true;
    xiveDoSourceSetMask(t.host, t.xd, false);
    expect([t.src.getPq(t.srcno), t.xd.staleP]).toEqual([0, false]);
    t.xd.staleP = true;
    t.src.setPq(t.srcno, 2);
    xiveDoSourceSetMask(t.host, t.xd, true); // stale P is not saved
    expect([t.src.getPq(t.srcno), t.xd.savedP, t.xd.staleP]).toEqual([1, false, false]);
  });

  it('an unknown virq: -EINVAL', () => {
    const t = setup();
    expect(irqSetVcpuAffinity(t.host, 0x7777, {})).toBe(-EINVAL);
    expect(xiveIrqSetVcpuAffinity(t.host, 0x7777, true)).toBe(-EINVAL);
  });

  it('agrees with HostXive.irqSetVcpuAffinity (the entry KVM calls) on every targeted case', () => {
    for (const [pq, staleP] of [
      [0, false],
      [2, false],
      [3, false],
      [2, true],
      [1, false],
    ] as const) {
      const a = setup();
      const b = setup();
      for (const t of [a, b]) {
        t.src.setPq(t.srcno, pq);
        t.xd.staleP = staleP;
      }
      xiveIrqSetVcpuAffinity(a.host, a.virq, true);
      b.host.irqSetVcpuAffinity(b.hw, true);
      const state = (t: typeof a) => [
        t.src.getPq(t.srcno),
        t.xd.savedP,
        t.xd.staleP,
        t.d.forwarded,
        t.chip.stats.syncs,
      ];
      expect(state(a)).toEqual(state(b));
      xiveIrqSetVcpuAffinity(a.host, a.virq, false);
      b.host.irqSetVcpuAffinity(b.hw, false);
      expect(state(a)).toEqual(state(b));
      expect(eas(a.chip, a.hw)).toEqual(eas(b.chip, b.hw));
    }
  });
});
