/**
 * The result collector of a run: the counters the accounting invariants read — the source's
 * `XIVE_STAT_*` counters, the probe's counts of the router's paths, the guest's deliveries and
 * queue reads — the invariant checks over them, and the {@link Result} of the run.
 */

import {
  checkInvariants,
  type IrqCounters,
  type QueueCounters,
  type Violation,
} from '../check/invariants.ts';
import {
  XIVE_STAT_COALESCED,
  XIVE_STAT_FORWARD,
  XIVE_STAT_OFF,
  XIVE_STAT_TRIGGER,
} from '../hw/xive/source.ts';
import { KVMPPC_H_CAS } from '../vmm/spapr-cas.ts';
import {
  H_INT_ESB,
  H_INT_GET_OS_REPORTING_LINE,
  H_INT_GET_QUEUE_CONFIG,
  H_INT_GET_QUEUE_INFO,
  H_INT_GET_SOURCE_CONFIG,
  H_INT_GET_SOURCE_INFO,
  H_INT_RESET,
  H_INT_SET_OS_REPORTING_LINE,
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  H_INT_SYNC,
} from '../vmm/spapr-xive-hcalls.ts';
import type { GuestIrq, GuestPort } from './guest-port.ts';
import type { CpuResult, IrqResult, Result } from './result.ts';
import type { RunSetup } from './run-machine.ts';
import type { WorkloadDriver } from './workload.ts';

/** hcall opcodes → names, for the result. */
const HCALL_NAMES: ReadonlyMap<number, string> = new Map([
  [H_INT_GET_SOURCE_INFO, 'H_INT_GET_SOURCE_INFO'],
  [H_INT_SET_SOURCE_CONFIG, 'H_INT_SET_SOURCE_CONFIG'],
  [H_INT_GET_SOURCE_CONFIG, 'H_INT_GET_SOURCE_CONFIG'],
  [H_INT_GET_QUEUE_INFO, 'H_INT_GET_QUEUE_INFO'],
  [H_INT_SET_QUEUE_CONFIG, 'H_INT_SET_QUEUE_CONFIG'],
  [H_INT_GET_QUEUE_CONFIG, 'H_INT_GET_QUEUE_CONFIG'],
  [H_INT_SET_OS_REPORTING_LINE, 'H_INT_SET_OS_REPORTING_LINE'],
  [H_INT_GET_OS_REPORTING_LINE, 'H_INT_GET_OS_REPORTING_LINE'],
  [H_INT_ESB, 'H_INT_ESB'],
  [H_INT_SYNC, 'H_INT_SYNC'],
  [H_INT_RESET, 'H_INT_RESET'],
  [KVMPPC_H_CAS, 'KVMPPC_H_CAS'],
]);

export class RunCollector {
  private readonly setup: RunSetup;
  private readonly guest: GuestPort;
  private readonly workload: WorkloadDriver;
  private readonly irqs: readonly GuestIrq[];

  constructor(setup: RunSetup, guest: GuestPort, workload: WorkloadDriver) {
    this.setup = setup;
    this.guest = guest;
    this.workload = workload;
    this.irqs = guest.irqs();
  }

  /** The counters of every interrupt and of every queue that held an entry. */
  counters(): { irqs: IrqCounters[]; queues: QueueCounters[] } {
    const { probe, source } = this.setup;
    const g = this.guest;
    const w = this.workload;
    return {
      irqs: this.irqs.map((q) => ({
        lisn: q.lisn,
        girq: q.girq,
        kind: q.kind,
        triggered: source.counter(q.lisn, XIVE_STAT_TRIGGER),
        triggerForwarded: probe.triggerForwarded[q.lisn]!,
        coalesced: source.counter(q.lisn, XIVE_STAT_COALESCED),
        dropped: source.counter(q.lisn, XIVE_STAT_OFF),
        forwarded: source.counter(q.lisn, XIVE_STAT_FORWARD),
        easMasked: probe.easMasked[q.lisn]!,
        enqueued: probe.enqueued[q.lisn]!,
        consumed: g.consumed(q.lisn),
        delivered: g.delivered(q.lisn),
        deferred: g.deferred(q.lisn),
        enabled: g.isEnabled(q.girq),
        lastLiveTrigger: probe.lastLiveTrigger[q.lisn]!,
        lastDelivery: w.lastDelivery[q.lisn]!,
        levelLost: w.levelLost[q.lisn]!,
        // Under KVM an LSI is an edge IPI fed by trigger stores (asserts, deasserts and the
        // EOI's re-trigger), so the identity holds for it too.
        triggerIdentity: q.kind !== 'lsi' || this.setup.host !== null,
      })),
      queues: Array.from(probe.endMaxOccupancy, (occ, endIdx) => ({
        cpu: endIdx >>> 3,
        priority: endIdx & 7,
        capacity: g.queueCapacity(endIdx >>> 3, endIdx & 7),
        maxOccupancy: occ,
      })).filter((q) => q.maxOccupancy > 0),
    };
  }

  /** The accounting invariants now (`final`: the workload has stopped and drained). */
  check(final: boolean): Violation[] {
    const m = new Map<number, number>(this.setup.probe.strayEnqueued);
    for (const [e, n] of this.guest.unknownEisns()) m.set(e, (m.get(e) ?? 0) + n);
    return checkInvariants({ seed: this.setup.seed, ...this.counters(), unknownEisns: m }, final);
  }

  /** The result of the run, with `violations`. */
  result(violations: Violation[]): Result {
    const { setup, guest } = this;
    const c = this.counters();
    const irqs: IrqResult[] = this.irqs.map((q, i) => {
      const k = c.irqs[i]!;
      return {
        girq: q.girq,
        lisn: q.lisn,
        kind: q.kind,
        device: q.device,
        vector: q.vector,
        target: guest.target(q.girq),
        enabled: k.enabled,
        triggered: k.triggered,
        delivered: k.delivered,
        coalesced: k.coalesced,
        dropped: k.dropped,
        forwarded: k.forwarded,
        enqueued: k.enqueued,
        easMasked: k.easMasked,
      };
    });
    const sum = (f: (r: IrqResult) => number): number => irqs.reduce((a, r) => a + f(r), 0);
    // Under KVM: the host chip's router (the guest's events and the host's escalations).
    const rs = setup.host === null ? setup.machine.xive.router.stats : setup.host.chip.router.stats;
    return {
      scenario: setup.scenario.name,
      seed: setup.seed,
      accel: setup.host === null ? 'emulated' : 'kvm',
      virtualTimeNs: setup.clock.nanos,
      events: this.workload.events,
      router: {
        enqueued: rs.enqueued,
        presented: rs.presented,
        easMasked: rs.easMasked,
        notDispatched: rs.notDispatched,
        endCoalesced: rs.endCoalesced,
      },
      hcalls: this.hcalls(),
      cpus: this.cpus(),
      irqs,
      totals: {
        triggered: sum((r) => r.triggered),
        delivered: sum((r) => r.delivered),
        coalesced: sum((r) => r.coalesced),
        dropped: sum((r) => r.dropped),
        enqueued: sum((r) => r.enqueued),
      },
      violations,
    };
  }

  private cpus(): CpuResult[] {
    const g = this.guest;
    return this.setup.machine.cpus.map((cpu) => ({
      id: cpu.id,
      online: g.isOnline(cpu.id),
      delivered: g.cpuDelivered(cpu.id),
      ipis: g.cpuIpis(cpu.id),
      extIrqs: cpu.raises,
      acks: this.setup.probe.acks[cpu.id]!,
      eqEntries: g.cpuEqEntries(cpu.id),
      offlines: g.cpuOfflines(cpu.id),
    }));
  }

  private hcalls(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [op, n] of [...this.setup.probe.hcalls].sort((a, b) => a[0] - b[0])) {
      out[HCALL_NAMES.get(op) ?? `0x${op.toString(16)}`] = n;
    }
    return out;
  }
}
