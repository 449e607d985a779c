/**
 * The KVM designs on a workload scenario: the run is the scenario's guest and workload under
 * KVM with the design's seams, checked I1–I7. A small scenario keeps it quick; a fault injected
 * into the host chip (the router loses one event) shows each check can fail and what it reports.
 */

import { describe, expect, test } from 'vitest';
import type { Host } from '../../../src/host/host.ts';
import { INVARIANTS } from '../../../src/scenario/cell.ts';
import { registryRunner } from '../../../src/scenario/cell-dispatch.ts';
import { runKvmWorkloadCell, traceKvmWorkload } from '../../../src/scenario/cell-kvm.ts';
import { checkScenario } from '../../../src/scenario/parse.ts';

const scenario = checkScenario({
  name: 'small',
  vcpus: 2,
  devices: [{ name: 'nic', msis: 8, lsis: 1 }],
  workload: {
    triggers: 3000,
    streams: [
      { device: 'nic', rate: 1e6, pattern: 'bursts', burst: 4 },
      { device: 'nic', kind: 'lsi', rate: 1e5 },
    ],
    ipis: { rate: 2e5 },
    masks: { rate: 5e4, hold: 5000 },
    retargets: { rate: 5e4 },
    latency: 100,
  },
});
const ref = { name: 'small', file: 'small.yaml', scenario };

/** The router loses the 500th event it is notified of (a fault in the host chip). */
function loseOneEvent(host: Host): void {
  const router = host.chip.router;
  const notify = router.notify.bind(router);
  let n = 0;
  router.notify = (hw, pqChecked) => {
    if (++n !== 500) notify(hw, pqChecked);
  };
}

describe('a KVM design on a workload scenario', () => {
  test('rmap (mainline): every invariant checked and holding; only hcalls exit', () => {
    const c = runKvmWorkloadCell(ref, 'rmap', 5);
    expect(INVARIANTS.map((i) => c.invariants[i].status)).toEqual(Array(7).fill('pass'));
    expect(c.costs.memslotsPeak).toBe(3);
    expect(c.costs.vmmExits).toBe(c.costs.hcalls);
    expect(c.costs.ptesZapped).toBe(0);
    expect(c.costs.vmasVisited).toBe(0);
    expect(c.notes[0]).toMatch(/^kernel_irqchip=on: /);
    expect(c.notes[2]).toMatch(/^I6: \d+ guest-visible trace entries/);
    // The same seed, the same cell.
    expect(runKvmWorkloadCell(ref, 'rmap', 5)).toEqual(c);
  });

  test('an event the host chip loses: I4 with its shortest trace, and I6 names the first different entry', () => {
    const c = runKvmWorkloadCell(ref, 'rmap-fixed', 5, undefined, loseOneEvent);
    const status = Object.fromEntries(INVARIANTS.map((i) => [i, c.invariants[i].status]));
    expect(status).toEqual({
      I1: 'pass',
      I2: 'pass',
      I3: 'pass',
      I4: 'fail',
      I5: 'pass',
      I6: 'fail',
      I7: 'pass',
    });
    const i4 = c.invariants.I4.first!;
    expect(i4.message).toMatch(
      /^seed 5: irq \d+ \(LISN 0x[0-9a-f]+, msi\): \d+ events forwarded but \d+ enqueued/,
    );
    // The trace keeps the chip's events of that interrupt (numbered by its IPI), ending in the
    // trigger whose forward the router lost.
    expect(i4.trace.length).toBeGreaterThan(0);
    expect(i4.trace.every((e) => e.kind.startsWith('esb.') || e.kind.startsWith('router.'))).toBe(true);
    expect(i4.trace.at(-1)!.kind).toBe('esb.forward');
    expect(c.invariants.I6.first!.message).toMatch(
      /^guest-visible trace entry #\d+ differs: ".*" where the emulated reference has ".*" \(seed 5\)$/,
    );
  });

  test('more vCPUs than the host chip has threads: the KVM designs are n/a, and say why', () => {
    const big = checkScenario({
      name: 'big',
      vcpus: 129,
      ramSize: 64 * 1024 * 1024,
      devices: [{ name: 'd', msis: 1 }],
      workload: { triggers: 1 },
    });
    const c = registryRunner({ name: 'big', file: 'big.yaml', scenario: big }, 'rmap-fixed', 1);
    expect(INVARIANTS.map((i) => c.invariants[i].status)).toEqual(Array(7).fill('n/a'));
    expect(c.notes).toEqual([
      'KVM mode runs at most 128 vCPUs (one host thread each), not 129: the design cannot run here',
    ]);
  });

  test('the exported trace is the chip, KVM and VMM side of the run', () => {
    const { events, dropped } = traceKvmWorkload(ref, 'rmap', 5);
    expect(dropped).toBe(0);
    const kinds = new Set(events.map((e) => e.kind));
    for (const k of ['esb.trigger', 'esb.forward', 'router.enqueue', 'hcall'])
      expect(kinds.has(k), k).toBe(true);
  });
});
