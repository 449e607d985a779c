import { describe, expect, test } from 'vitest';
import type { Host } from '../../../src/host/host.ts';
import { PTE_SPECIAL } from '../../../src/host/mm/page-table.ts';
import { TM_QW1_OS } from '../../../src/hw/xive/regs.ts';
import { mostStaleStep, SNAPSHOT_EVERY, stateAt, TraceReplay } from '../../../src/report/trace-state.ts';
import { bootGuest } from '../../../src/scenario/guest-port.ts';
import { loadScenario } from '../../../src/scenario/load.ts';
import { buildMachine } from '../../../src/scenario/run-machine.ts';
import { runGuest } from '../../../src/scenario/runner.ts';
import { Trace, type TraceEvent } from '../../../src/sim/trace.ts';
import { TraceColumns } from '../../../src/sim/trace-columns.ts';
import type { TraceKind } from '../../../src/sim/trace-events.ts';
import { TRACE_ALL } from '../../../src/sim/trace-sink.ts';

const ev = (seq: number, kind: string, ...a: number[]): TraceEvent => ({
  seq,
  time: seq * 10,
  cat: 0,
  kind,
  args: [a[0] ?? 0, a[1] ?? 0, a[2] ?? 0, a[3] ?? 0],
});

describe('state reconstruction, one handler per event kind', () => {
  const events = [
    ev(0, 'kvm.memslot', 1, 3, 0, 1), // create slot 3
    ev(1, 'kvm.xive.esb_fault', 0x1001, 0, 0x6_0000_0123, 0),
    ev(2, 'mm.insert_pfn', 7, 0x7fff_0001_0000, 0x6_0000_0123, 4),
    ev(3, 'esb.trigger', 0x21, 0, 2, 1),
    ev(4, 'router.enqueue', 0, 0x38, 5, 0x8000_1001),
    ev(5, 'tctx.ipb', 2, TM_QW1_OS, 0x80, 0),
    ev(6, 'kvm.xive.set_mapped', 0x1001, 0x31, 6, 0),
    ev(7, 'tctx.accept', 2, TM_QW1_OS, 0x8000, 0),
    ev(8, 'mm.zap', 7, 0x7fff_0001_0000, 0x7fff_0002_0000, 1),
    ev(9, 'kvm.memslot', 1, 3, 1, 0), // delete it
  ];
  // Installed while unbound, missed by the bind's zap, right again after the unbind.
  const missed = [
    ev(0, 'kvm.xive.esb_fault', 5, 1, 0x6_0300_0013, 0),
    ev(1, 'mm.insert_pfn', 2, 0x7000_0000, 0x6_0300_0013, 5),
    ev(2, 'kvm.xive.set_mapped', 5, 0x31, 6, 0),
    ev(3, 'esb.trigger', 0x21, 0, 2, 1),
    ev(4, 'kvm.xive.clr_mapped', 5, 0x31, 6, 0),
    ev(5, 'esb.trigger', 0x21, 2, 3, 0),
  ];

  test('PTE install after a device fault belongs to its irq; a re-point marks it stale; a zap removes it', () => {
    expect(stateAt(events, 2).procs.get(7)?.ptes.get(0x7fff_0001_0000)).toEqual({
      pfn: 0x6_0000_0123,
      vma: 4,
      irq: 0x1001,
      backing: -1,
      stale: false,
    });
    const replay = new TraceReplay(TraceColumns.of(events));
    const at6 = replay.stateAt(6);
    expect(at6.state.procs.get(7)?.ptes.get(0x7fff_0001_0000)?.stale).toBe(true);
    expect([...at6.changed]).toEqual(['eas:guest:4097', `pte:7:${0x7fff_0001_0000}`]);
    expect(at6.state.eas.get('guest:4097')).toEqual({
      target: -1,
      prio: 0xff,
      eisn: 0,
      masked: true,
      hwIrq: 0x31,
    });
    expect(replay.stateAt(8).state.procs.get(7)?.ptes.size).toBe(0);
    expect([...replay.stateAt(8).changed]).toEqual([`pte:7:${0x7fff_0001_0000}`]);
  });

  test('a PTE is stale while its irq is backed by another page than the one it was installed for', () => {
    expect([1, 2, 3, 4].map((k) => stateAt(missed, k).procs.get(2)?.ptes.get(0x7000_0000)?.stale)).toEqual([
      false,
      true,
      true,
      false,
    ]);
    expect(mostStaleStep(TraceColumns.of(missed), 5)).toBe(3);
    expect(mostStaleStep(TraceColumns.of(missed), 1)).toBe(-1);
    expect(mostStaleStep(TraceColumns.of(events), 9)).toBe(7);
  });

  test('memslots, PQ, END queue, OS ring', () => {
    const s = stateAt(events, 7);
    expect([...s.memslots]).toEqual([[3, { lpid: 1, change: 0, baseGfn: -1, npages: 0, hva: -1 }]]);
    expect(s.memslotsUsed).toBe(1);
    expect(s.sources.get(0x21)).toEqual({ pq: 2 });
    expect(s.ends.get('0/56')).toEqual({ entries: 1, index: 5, toggle: 1, lastData: 0x1001 });
    // ACK with NSR EO: CPPR := PIPR 0, IPB bit 0 cleared, line down.
    expect(s.osRings.get(2)).toEqual({ ipb: 0, pipr: 0xff, cppr: 0, line: false });
    expect(stateAt(events, 9).memslots.size).toBe(0);
    expect(stateAt(events, 9).memslotsUsed).toBe(0);
  });

  test('a PTE installed after its irq was re-pointed since the fault read the page is stale at once', () => {
    const raced = [
      ev(0, 'kvm.xive.esb_fault', 5, 1, 0x6_0300_0001, 0), // reads the IPI's page
      ev(1, 'kvm.xive.set_mapped', 5, 0x100_0000, 0xff, 0), // the bind: nothing to zap yet
      ev(2, 'mm.insert_pfn', 1, 0x7fff_f77b_0000, 0x6_0300_0001, 2),
    ];
    expect(stateAt(raced, 2).procs.get(1)?.ptes.get(0x7fff_f77b_0000)).toEqual({
      pfn: 0x6_0300_0001,
      vma: 2,
      irq: 5,
      backing: -1,
      stale: true,
    });
    expect(stateAt(raced, 2).pendingFaults.size).toBe(0);
  });

  test('VMAs: mmap, munmap splitting one, mremap moving the PTEs, fork copying device PTEs, exit', () => {
    const P = 0x1_0000;
    const mm = [
      ev(0, 'mm.mmap', 1, 0x10 * P, 0x20 * P, 4),
      ev(1, 'kvm.xive.esb_fault', 5, 1, 0x6_0300_0001, 0),
      ev(2, 'mm.insert_pfn', 1, 0x1e * P, 0x6_0300_0001, 2),
      ev(3, 'mm.munmap', 1, 0x14 * P, 0x16 * P, 0),
      ev(4, 'mm.fork', 1, 2, 0, 0),
      ev(5, 'mm.copy_pte', 2, 0x1e * P, 0x6_0300_0001, 9),
      ev(6, 'mm.copy_pte', 2, 0x30 * P, 0x77, 9), // an anonymous page: not a device PTE
      ev(7, 'mm.mremap', 1, 0x1e * P, 0x20 * P, 0x40 * P),
      ev(8, 'mm.mmap', 1, 0x40 * P, 0x42 * P, 0x12),
      ev(9, 'mm.munmap', 1, 0x1e * P, 0x20 * P, 0),
      ev(10, 'mm.exit', 2, 1, 0, 0),
    ];
    const at3 = stateAt(mm, 3).procs.get(1)!;
    expect([...at3.vmas]).toEqual([
      [0x10 * P, { end: 0x14 * P, pgoff: 4 }],
      [0x16 * P, { end: 0x20 * P, pgoff: 0xa }],
    ]);
    const at6 = stateAt(mm, 6);
    expect([...at6.procs.get(2)!.ptes]).toEqual([
      [0x1e * P, { pfn: 0x6_0300_0001, vma: 9, irq: 5, backing: -1, stale: false }],
    ]);
    expect(at6.procs.get(2)!.vmas).toEqual(at3.vmas);
    const r = new TraceReplay(TraceColumns.of(mm));
    const at9 = r.stateAt(9, 7);
    expect([...at9.state.procs.get(1)!.ptes.keys()]).toEqual([0x40 * P]);
    expect([...at9.state.procs.get(1)!.vmas].sort((x, y) => x[0] - y[0])).toEqual([
      [0x10 * P, { end: 0x14 * P, pgoff: 4 }],
      [0x16 * P, { end: 0x1e * P, pgoff: 0xa }],
      [0x40 * P, { end: 0x42 * P, pgoff: 0x12 }],
    ]);
    // What events 7..9 changed, together.
    expect([...at9.changed]).toEqual([
      `pte:1:${0x1e * P}`,
      `pte:1:${0x40 * P}`,
      `vma:1:${0x40 * P}`,
      `vma:1:${0x16 * P}`,
    ]);
    expect([...r.stateAt(10).state.procs.keys()]).toEqual([1]);
  });

  test('memslot ranges and partition-scoped entries', () => {
    const kvm = [
      ev(0, 'kvm.memslot', 1, 1, 0, 1),
      ev(1, 'kvm.memslot.range', 1, 0x6_0100_0000, 128, 0x7fff_f770_0000),
      ev(2, 'kvm.pt.insert', 1, 0x6_0100_000b, 0x6_0300_0001, 1),
      ev(3, 'kvm.pt.insert', 1, 0x6_0100_0020, 0x6_0300_0010, 0),
      ev(4, 'kvm.pt.invalidate', 1, 0x6_0100_000a, 0x6_0100_000c, 1),
    ];
    expect(stateAt(kvm, 1).memslots.get(1)).toEqual({
      lpid: 1,
      change: 0,
      baseGfn: 0x6_0100_0000,
      npages: 128,
      hva: 0x7fff_f770_0000,
    });
    expect([...stateAt(kvm, 3).partition]).toEqual([
      [`1:${0x6_0100_000b}`, { pfn: 0x6_0300_0001, writable: true }],
      [`1:${0x6_0100_0020}`, { pfn: 0x6_0300_0010, writable: false }],
    ]);
    expect([...stateAt(kvm, 4).partition.keys()]).toEqual([`1:${0x6_0100_0020}`]);
  });

  test('before the first event and past the last', () => {
    const r = new TraceReplay(TraceColumns.of(events));
    expect(r.stateAt(-1).state.procs.size).toBe(0);
    expect([...r.stateAt(-1).changed]).toEqual([]);
    expect([...r.stateAt(99).changed]).toEqual([]);
    expect(r.stateAt(99).state.memslotsUsed).toBe(0);
  });
});

/** What the live model holds that the trace covers: the special PTEs, memslots, IPI PQs. */
interface Live {
  ptes: Map<string, number>;
  slots: number;
  pq: Map<number, number>;
}

function liveState(host: Host, srcnos: Iterable<number>): Live {
  const ptes = new Map<string, number>();
  for (const p of host.mm.processes) {
    p.mm.pgtable.scan(0, Number.MAX_SAFE_INTEGER, (vpn, pfn, flags) => {
      if (flags & PTE_SPECIAL) ptes.set(`${p.pid}:${vpn * 0x1_0000}`, pfn);
    });
  }
  const pq = new Map<number, number>();
  for (const n of srcnos) pq.set(n, host.chip.ipiSource.getPq(n));
  return { ptes, slots: host.kvm.vms[0]?.memslots.used ?? 0, pq };
}

describe('replaying a KVM run gives the PTEs, memslots and PQs the live model had (demo, seed 1)', () => {
  // Sample the live model each time a guest hcall is traced (between operations: every earlier
  // event's change is complete), then replay the trace to the event before it.
  const samples: { seq: number; live: Live }[] = [];
  const events: TraceEvent[] = [];
  const s = loadScenario('scenarios/demo.yaml');
  const small = { ...s, workload: { ...s.workload, triggers: 3000 } };
  let host: Host | null = null;
  let n = 0;
  const srcnos = new Set<number>();
  /** The run's own trace, sampling the live host as it records (the runner stamps its time). */
  class SamplingTrace extends Trace {
    override emit(cat: number, kind: TraceKind, a0: number, a1: number, a2: number, a3: number): void {
      if (host !== null && (kind === 'kvm.exit.hcall' || kind === 'guest.irq') && n++ % 41 === 0)
        samples.push({ seq: this.total - 1, live: liveState(host, srcnos) });
      if (kind.startsWith('esb.')) srcnos.add(a0);
      super.emit(cat, kind, a0, a1, a2, a3);
    }
  }
  const trace = new SamplingTrace(TRACE_ALL, 1 << 20);
  const setup = buildMachine(small, 1, { kvm: {}, trace });
  host = setup.host;
  runGuest(setup, bootGuest(setup.machine, setup.probe));
  events.push(...trace.events());

  test('the run was sampled across snapshots', () => {
    expect(events.length).toBeGreaterThan(2 * SNAPSHOT_EVERY);
    expect(samples.length).toBeGreaterThan(20);
    // Not vacuous: most samples see device PTEs, a memslot and PQ bits to compare.
    const rich = samples.filter((x) => x.live.ptes.size > 0 && x.live.slots > 0 && x.live.pq.size > 0);
    expect(rich.length).toBeGreaterThan(samples.length / 2);
  });

  test('at every sampled step the replayed state equals the live one', () => {
    const replay = new TraceReplay(TraceColumns.of(events));
    for (const { seq, live } of samples) {
      const st = replay.stateAt(seq).state;
      const ptes = new Map<string, number>();
      for (const [pid, p] of st.procs) for (const [addr, pte] of p.ptes) ptes.set(`${pid}:${addr}`, pte.pfn);
      expect({ seq, ptes, slots: st.memslotsUsed }).toEqual({ seq, ptes: live.ptes, slots: live.slots });
      for (const [n, pq] of live.pq) expect({ seq, n, pq: st.sources.get(n)?.pq }).toEqual({ seq, n, pq });
    }
  });
});
