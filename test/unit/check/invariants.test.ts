import { describe, expect, test } from 'vitest';
import { checkInvariants, type IrqCounters, type RunCounters } from '../../../src/check/invariants.ts';

/** A consistent MSI: 10 triggers, 7 forwarded (1 after an EOI), 2 coalesced, 1 dropped. */
function irq(over: Partial<IrqCounters> = {}): IrqCounters {
  return {
    lisn: 0x1300,
    girq: 17,
    kind: 'msi',
    triggered: 10,
    triggerForwarded: 7,
    coalesced: 2,
    dropped: 1,
    forwarded: 8,
    easMasked: 1,
    enqueued: 7,
    consumed: 7,
    delivered: 6,
    deferred: 1,
    enabled: true,
    lastLiveTrigger: 40,
    lastDelivery: 41,
    levelLost: -1,
    triggerIdentity: true,
    ...over,
  };
}

function run(irqs: IrqCounters[], extra: Partial<RunCounters> = {}): RunCounters {
  return { seed: 42, irqs, queues: [], unknownEisns: new Map(), ...extra };
}

describe('checkInvariants', () => {
  test('a consistent run has no violations', () => {
    expect(checkInvariants(run([irq()]), true)).toEqual([]);
  });

  test('trigger identity: triggered = forwarded-by-trigger + coalesced + dropped', () => {
    expect(checkInvariants(run([irq({ coalesced: 3 })]), true)).toEqual([
      {
        invariant: 'trigger-accounted',
        lisn: 0x1300,
        message: 'seed 42: irq 17 (LISN 0x1300, msi): 10 triggers but 7 forwarded + 3 coalesced + 1 dropped',
      },
    ]);
    // LSIs are exempt (EOI re-asserts count coalesced/off without a trigger).
    expect(checkInvariants(run([irq({ coalesced: 3, kind: 'lsi', triggerIdentity: false })]), true)).toEqual(
      [],
    );
  });

  test('every forwarded event is enqueued or dropped at a masked EAS', () => {
    const v = checkInvariants(run([irq({ easMasked: 0 })]), true);
    expect(v.map((x) => x.invariant)).toEqual(['event-routed']);
    expect(v[0]!.message).toBe(
      'seed 42: irq 17 (LISN 0x1300, msi): 8 events forwarded but 7 enqueued + 0 dropped at a masked EAS',
    );
  });

  test('each EQ entry read once and handled once', () => {
    expect(checkInvariants(run([irq({ consumed: 8, delivered: 7 })]), true).map((x) => x.message)).toEqual([
      'seed 42: irq 17 (LISN 0x1300, msi): 8 EQ entries read but only 7 written (an entry read twice)',
      'seed 42: irq 17 (LISN 0x1300, msi): 7 deliveries + 1 deferred but only 7 EQ entries (spurious delivery)',
    ]);
    expect(checkInvariants(run([irq({ consumed: 6, delivered: 5 })]), true).map((x) => x.message)).toEqual([
      'seed 42: irq 17 (LISN 0x1300, msi): 7 EQ entries written but 6 read (entries left or lost)',
      'seed 42: irq 17 (LISN 0x1300, msi): 7 EQ entries but 5 deliveries + 1 deferred (entries not handled)',
    ]);
  });

  test('an enabled irq whose last live trigger was not delivered is lost (final check only)', () => {
    const lost = irq({ lastLiveTrigger: 50, lastDelivery: 41 });
    expect(checkInvariants(run([lost]), false)).toEqual([]);
    expect(checkInvariants(run([lost]), true)).toEqual([
      {
        invariant: 'trigger-delivered',
        lisn: 0x1300,
        message:
          'seed 42: irq 17 (LISN 0x1300, msi): enabled at the end, but its last trigger (#50) was not followed by a delivery (last delivery #41)',
      },
    ]);
    expect(checkInvariants(run([irq({ lastLiveTrigger: 3, lastDelivery: -1 })]), true)[0]!.message).toMatch(
      /\(never delivered\)$/,
    );
    // A disabled irq may keep its last trigger pending.
    expect(checkInvariants(run([irq({ lastLiveTrigger: 50, enabled: false })]), true)).toEqual([]);
  });

  test('an LSI level lost at enable (Linux + QEMU 7.2) accounts for the triggers before it, not after', () => {
    const lsi = { kind: 'lsi', lisn: 0x1200, triggerIdentity: false };
    expect(
      checkInvariants(run([irq({ ...lsi, lastLiveTrigger: 50, lastDelivery: 41, levelLost: 60 })]), true),
    ).toEqual([]);
    expect(
      checkInvariants(run([irq({ ...lsi, lastLiveTrigger: 70, lastDelivery: 41, levelLost: 60 })]), true).map(
        (v) => v.invariant,
      ),
    ).toEqual(['trigger-delivered']);
  });

  test('unknown EISNs and queue overflow', () => {
    const v = checkInvariants(
      run([], {
        unknownEisns: new Map([[0x77, 2]]),
        queues: [
          { cpu: 1, priority: 6, capacity: 16384, maxOccupancy: 16385 },
          { cpu: 2, priority: 6, capacity: 16384, maxOccupancy: 16384 },
        ],
      }),
      false,
    );
    expect(v).toEqual([
      {
        invariant: 'no-unknown-eisn',
        lisn: 0x77,
        message: 'seed 42: 2 EQ entries with EISN 0x77 that no interrupt was configured with',
      },
      {
        invariant: 'queue-overflow',
        cpu: 1,
        message: 'seed 42: CPU 1 priority 6 queue held 16385 unread entries, capacity 16384',
      },
    ]);
  });
});
