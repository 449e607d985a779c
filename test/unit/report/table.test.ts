import { describe, expect, test } from 'vitest';
import { formatReport, formatTable } from '../../../src/report/table.ts';
import { Result } from '../../../src/scenario/result.ts';

const result: Result = Result.parse({
  scenario: 'tiny',
  seed: 7,
  accel: 'emulated',
  virtualTimeNs: 12_345,
  events: {
    deviceTriggers: 3,
    ipisSent: 1,
    disables: 0,
    enables: 0,
    retargets: 0,
    offlines: 0,
    onlines: 0,
    lsiLevelsLost: 0,
    quiescePoints: 4,
  },
  router: { enqueued: 4, presented: 4, easMasked: 0, notDispatched: 0, endCoalesced: 0 },
  hcalls: { H_INT_ESB: 2 },
  cpus: [
    { id: 0, online: true, delivered: 3, ipis: 0, extIrqs: 3, acks: 3, eqEntries: 3, offlines: 0 },
    { id: 1, online: false, delivered: 1, ipis: 1, extIrqs: 1, acks: 1, eqEntries: 1, offlines: 1 },
  ],
  irqs: [
    {
      girq: 16,
      lisn: 1,
      kind: 'ipi',
      device: 'ipi',
      vector: 1,
      target: 1,
      enabled: true,
      triggered: 1,
      delivered: 1,
      coalesced: 0,
      dropped: 0,
      forwarded: 1,
      enqueued: 1,
      easMasked: 0,
    },
    {
      girq: 17,
      lisn: 0x1300,
      kind: 'msi',
      device: 'nic0',
      vector: 0,
      target: 0,
      enabled: true,
      triggered: 3,
      delivered: 3,
      coalesced: 0,
      dropped: 0,
      forwarded: 3,
      enqueued: 3,
      easMasked: 0,
    },
  ],
  totals: { triggered: 4, delivered: 4, coalesced: 0, dropped: 0, enqueued: 4 },
  violations: [],
});

describe('formatTable', () => {
  test('numbers right-aligned, text left-aligned, booleans as yes/no', () => {
    expect(
      formatTable(
        ['name', 'n', 'ok'],
        [
          ['a', 5, true],
          ['bbb', 123, false],
        ],
      ),
    ).toBe(['name    n  ok', '----  ---  ---', 'a       5  yes', 'bbb   123  no'].join('\n'));
  });
});

describe('formatReport', () => {
  test('the whole report of a small run', () => {
    expect(formatReport(result)).toBe(
      [
        'scenario tiny, seed 7, emulated XIVE: 3 device triggers, 1 IPIs, 0 disables / 0 enables, 0 retargets, 0 offlines / 0 onlines in 12.3 µs of virtual time',
        '',
        'CPU  online  delivered  IPIs  ext-irqs  acks  EQ-entries  offlines',
        '---  ------  ---------  ----  --------  ----  ----------  --------',
        '  0  yes             3     0         3     3           3         0',
        '  1  no              1     1         1     1           1         1',
        '',
        'girq  LISN    kind  device  vec  target  enabled  triggered  delivered  coalesced  dropped  enqueued  eas-masked',
        '----  ------  ----  ------  ---  ------  -------  ---------  ---------  ---------  -------  --------  ----------',
        '  16  0x1     ipi   ipi       1       1  yes              1          1          0        0         1           0',
        '  17  0x1300  msi   nic0      0       0  yes              3          3          0        0         3           0',
        '',
        'totals: 4 triggered, 4 delivered, 0 coalesced, 0 dropped, 4 EQ entries; router: 4 presented, 0 masked at the EAS, 0 not dispatched',
        'hcalls: H_INT_ESB 2',
        'invariants: all hold',
      ].join('\n'),
    );
  });

  test('a KVM run says so in its first line', () => {
    expect(formatReport({ ...result, accel: 'kvm' }).split('\n')[0]).toBe(
      'scenario tiny, seed 7, KVM (kernel_irqchip=on): 3 device triggers, 1 IPIs, 0 disables / 0 enables, 0 retargets, 0 offlines / 0 onlines in 12.3 µs of virtual time',
    );
  });

  test('violations are listed, capped at 20', () => {
    const many = {
      ...result,
      violations: Array.from({ length: 22 }, (_, i) => ({ invariant: 'eq-handled-once', message: `m${i}` })),
    };
    const lines = formatReport(many).split('\n');
    expect(lines.at(-22)).toBe('invariants: 22 violations');
    expect(lines.at(-21)).toBe('  [eq-handled-once] m0');
    expect(lines.at(-1)).toBe('  … 2 more (see --json)');
  });
});
