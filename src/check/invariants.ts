/**
 * The accounting invariants of an interrupt run, over a plain record of counters. Every counter
 * in the record is a count of the model's own path running (the XIVE source's per-source
 * `XIVE_STAT_*` counters, the router's enqueue / masked-EAS paths, the guest's handler
 * deliveries and queue reads); the checks compare paths with each other, never with a number
 * computed beside them.
 */

/** Per-interrupt counters of one run. */
export interface IrqCounters {
  /** Hardware interrupt number (LISN); the guest programs it as the EISN. */
  readonly lisn: number;
  /** The guest's irq number (Linux virq), or the LISN when the guest has none. */
  readonly girq: number;
  /** `ipi`, `msi` or `lsi`. */
  readonly kind: string;
  /** Trigger operations at the source (`XIVE_STAT_TRIGGER`). */
  readonly triggered: number;
  /** Triggers that moved PQ and forwarded an event (the source's trigger path, not EOI). */
  readonly triggerForwarded: number;
  /** Triggers that found P set and only set Q (`XIVE_STAT_COALESCED`). */
  readonly coalesced: number;
  /** Triggers that found PQ=01 and were dropped (`XIVE_STAT_OFF`). */
  readonly dropped: number;
  /** Events forwarded to the router, from triggers or EOIs (`XIVE_STAT_FORWARD`). */
  readonly forwarded: number;
  /** Forwarded events the router dropped on a masked EAS. */
  readonly easMasked: number;
  /** EQ entries the router wrote carrying this interrupt's EISN. */
  readonly enqueued: number;
  /** EQ entries carrying this EISN the guest read from its queues. */
  readonly consumed: number;
  /** Handler invocations (what the guest's drivers record). */
  readonly delivered: number;
  /** EQ entries the guest consumed without running the handler, leaving the event to a resend
   * (the irq was disabled: Linux marks it IRQS_PENDING; the CPU was going offline: Linux
   * retriggers it elsewhere). */
  readonly deferred: number;
  /** The guest's view at the end: irq enabled (started and not disabled). */
  readonly enabled: boolean;
  /** Run sequence number of the last trigger that found the source on (PQ ≠ 01); −1 if none. */
  readonly lastLiveTrigger: number;
  /** Run sequence number of the last handler invocation; −1 if none. */
  readonly lastDelivery: number;
  /**
   * Run sequence of the last enable that left this LSI asserted but idle (PQ 00, no event):
   * Linux + QEMU 7.2 lose the level there (see the README); −1 never.
   */
  readonly levelLost: number;
  /** Whether the trigger identity (triggered = forwarded + coalesced + dropped) applies: for
   * LSIs the EOI path re-asserts and counts coalesced/off without a new trigger. */
  readonly triggerIdentity: boolean;
}

/** Per-queue (END) counters. */
export interface QueueCounters {
  readonly cpu: number;
  readonly priority: number;
  /** Entries the queue holds (`4 KiB << qsize` / 4). */
  readonly capacity: number;
  /** Largest number of written-but-unread entries seen at any enqueue. */
  readonly maxOccupancy: number;
}

export interface RunCounters {
  readonly seed: number;
  readonly irqs: readonly IrqCounters[];
  readonly queues: readonly QueueCounters[];
  /** EQ entries whose EISN the guest could not map to an interrupt (EISN → count). */
  readonly unknownEisns: ReadonlyMap<number, number>;
}

export interface Violation {
  /** Short stable name of the broken invariant. */
  readonly invariant: string;
  /** The interrupt concerned (LISN), when there is one. */
  readonly lisn?: number;
  /** The vCPU concerned, when there is one. */
  readonly cpu?: number;
  /** One line, naming the seed that replays the run. */
  readonly message: string;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * Check every invariant. `final` is true at the end of a quiescent run; at intermediate
 * quiescent points the same equalities hold (nothing is in flight), but the "last trigger was
 * delivered" check only makes sense once the workload has stopped.
 */
export function checkInvariants(c: RunCounters, final: boolean): Violation[] {
  const out: Violation[] = [];
  const tag = `seed ${c.seed}`;
  for (const q of c.irqs) {
    const name = `irq ${q.girq} (LISN ${hex(q.lisn)}, ${q.kind})`;
    const v = (invariant: string, what: string): void => {
      out.push({ invariant, lisn: q.lisn, message: `${tag}: ${name}: ${what}` });
    };
    if (q.triggerIdentity && q.triggered !== q.triggerForwarded + q.coalesced + q.dropped) {
      v(
        'trigger-accounted',
        `${q.triggered} triggers but ${q.triggerForwarded} forwarded + ${q.coalesced} coalesced + ${q.dropped} dropped`,
      );
    }
    if (q.forwarded !== q.easMasked + q.enqueued) {
      v(
        'event-routed',
        `${q.forwarded} events forwarded but ${q.enqueued} enqueued + ${q.easMasked} dropped at a masked EAS`,
      );
    }
    if (q.consumed !== q.enqueued) {
      v(
        'eq-read-once',
        q.consumed > q.enqueued
          ? `${q.consumed} EQ entries read but only ${q.enqueued} written (an entry read twice)`
          : `${q.enqueued} EQ entries written but ${q.consumed} read (entries left or lost)`,
      );
    }
    const handled = q.delivered + q.deferred;
    if (handled !== q.enqueued) {
      v(
        'eq-handled-once',
        handled > q.enqueued
          ? `${q.delivered} deliveries + ${q.deferred} deferred but only ${q.enqueued} EQ entries (spurious delivery)`
          : `${q.enqueued} EQ entries but ${q.delivered} deliveries + ${q.deferred} deferred (entries not handled)`,
      );
    }
    if (final && q.enabled && q.lastLiveTrigger > q.lastDelivery && q.lastLiveTrigger > q.levelLost) {
      v(
        'trigger-delivered',
        `enabled at the end, but its last trigger (#${q.lastLiveTrigger}) was not followed by a delivery` +
          (q.lastDelivery >= 0 ? ` (last delivery #${q.lastDelivery})` : ' (never delivered)'),
      );
    }
  }
  for (const [eisn, n] of c.unknownEisns) {
    out.push({
      invariant: 'no-unknown-eisn',
      lisn: eisn,
      message: `${tag}: ${n} EQ entr${n === 1 ? 'y' : 'ies'} with EISN ${hex(eisn)} that no interrupt was configured with`,
    });
  }
  for (const q of c.queues) {
    if (q.maxOccupancy > q.capacity) {
      out.push({
        invariant: 'queue-overflow',
        cpu: q.cpu,
        message: `${tag}: CPU ${q.cpu} priority ${q.priority} queue held ${q.maxOccupancy} unread entries, capacity ${q.capacity}`,
      });
    }
  }
  return out;
}
