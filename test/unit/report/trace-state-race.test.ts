import { describe, expect, test } from 'vitest';
import { explore } from '../../../src/check/explore/explore.ts';
import { kernelRaceProgram, raceDesigns } from '../../../src/check/explore/kernel/race-program.ts';
import { stateAt } from '../../../src/report/trace-state.ts';
import { loadRaceScenario } from '../../../src/scenario/race-load.ts';
import { traceRaceSchedule } from '../../../src/scenario/race-replay.ts';

describe("a race counterexample's schedule, replayed traced, into the state panel's state", () => {
  const s = loadRaceScenario('s12-fault-vs-bind').scenario;
  const c = explore(kernelRaceProgram(s, raceDesigns(s).find((d) => d.name === 'rmap')!)).shortest!;
  const r = traceRaceSchedule(s, 'rmap', c.schedule);

  test('the same execution as the explorer found; each event stamped with its step', () => {
    expect(r.counterexample).toEqual(c);
    const times = r.events.map((e) => e.time);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Math.max(...times)).toBeLessThanOrEqual(c.steps.length);
    // The fault's install is the step the explorer labels vmf_insert_pfn.
    const install = r.events.filter((e) => e.kind === 'mm.insert_pfn');
    expect(install).toHaveLength(1);
    expect(c.steps[install[0]!.time - 1]!.label).toMatch(/^vmf_insert_pfn/);
  });

  test('at the end: the PTE the checker names, stale (installed for the IPI after the bind re-pointed the irq)', () => {
    // "pid 1 maps the EOI page of girq 5 to pfn 0x601000021, but girq 5 is backed by hw 0x1000000 …"
    expect(c.message).toMatch(
      /^I1: pid 1 maps the EOI page of girq 5 to pfn 0x601000021, but girq 5 is backed by hw 0x1000000/,
    );
    const end = stateAt(r.events, r.events.length - 1);
    expect([...end.procs.get(1)!.ptes]).toEqual([
      [0x7fff_f77b_0000, { pfn: 0x6_0100_0021, vma: 2, irq: 5, backing: -1, stale: true }],
    ]);
    expect(end.eas.get('guest:5')?.hwIrq).toBe(0x100_0000);
    expect(end.memslots.get(1)).toEqual({
      lpid: 1,
      change: 0,
      baseGfn: 0x6_0100_0000,
      npages: 128,
      hva: 0x7fff_f770_0000,
    });
    // The ESB mapping: girq n's trigger and EOI pages are file pages 4 + 2n, 5 + 2n.
    expect(end.procs.get(1)!.vmas.get(0x7fff_f770_0000)).toEqual({ end: 0x7fff_f7f0_0000, pgoff: 4 });
  });

  test('a schedule that does not fit, a design the scenario has not', () => {
    expect(() => traceRaceSchedule(s, 'rmap', '7')).toThrow(/schedule/);
    expect(() => traceRaceSchedule(s, 'no-such', c.schedule)).toThrow(
      'race scenario s12-fault-vs-bind has no design no-such',
    );
  });
});
