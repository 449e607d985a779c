import { describe, expect, it } from 'vitest';
import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import { P9_END_ESB_BASE, P9_IPI_ESB_BASE, P9_TIMA_BASE, P9Chip } from '../../../../src/hw/xive/p9-chip.ts';
import { Trace } from '../../../../src/sim/trace.ts';

const PAGE = 0x1_0000;

describe('P9Chip.isHostOnlyPage: the pages no guest may reach', () => {
  const trace = new Trace();
  const chip = new P9Chip({ nrCpus: 4, nrIpis: 8, nrVps: 0x1000 }, new PhysMem(trace), trace);
  const lentIpi3 = (srcno: number): boolean => srcno === 3;
  const at = (addr: number): boolean => chip.isHostOnlyPage(addr / PAGE, lentIpi3);

  it('the TIMA: HW, HV and USER pages are the host’s; the OS page is the guest’s view', () => {
    expect([0, 1, 2, 3].map((p) => at(P9_TIMA_BASE + p * PAGE))).toEqual([true, true, false, true]);
    expect(at(P9_TIMA_BASE + 4 * PAGE)).toBe(false);
  });

  it('an IPI’s two ESB pages are the host’s unless the IPI is lent to a guest', () => {
    expect([0, 1].map((p) => at(P9_IPI_ESB_BASE + 3 * 2 * PAGE + p * PAGE))).toEqual([false, false]);
    expect([0, 1].map((p) => at(P9_IPI_ESB_BASE + 2 * 2 * PAGE + p * PAGE))).toEqual([true, true]);
    // Past the chip's 8 IPIs: no IPI page.
    expect(at(P9_IPI_ESB_BASE + 8 * 2 * PAGE)).toBe(false);
  });

  it('END ESB pages (escalations) are the host’s, over every END of every VP', () => {
    expect(at(P9_END_ESB_BASE)).toBe(true);
    expect(at(P9_END_ESB_BASE + (0x1000 * 8 * 2 - 1) * PAGE)).toBe(true);
    expect(at(P9_END_ESB_BASE + 0x1000 * 8 * 2 * PAGE)).toBe(false);
  });
});
