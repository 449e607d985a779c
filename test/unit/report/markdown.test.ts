import { describe, expect, test } from 'vitest';
import { markdownTable, outcomeText, renderMarkdown, textMatrix } from '../../../src/report/markdown.ts';
import { resultsDocument } from '../../../src/scenario/compare.ts';
import { cell } from './fixtures.ts';

const cells = [
  cell('emulated', 'demo', {
    inv: { I2: 'n/a', I3: 'n/a', I6: 'n/a', I7: 'n/a' },
    costs: { vmmExits: 49999, hcalls: 754, modeledTimeNs: 250372000 },
    notes: ['kernel_irqchip=off'],
  }),
  cell('vma-pointer', 'demo', {
    inv: { I3: 2 },
    costs: { hostFaults: 12, ptesZapped: 4, modeledTimeNs: 13000 },
  }),
];
const results = resultsDocument(cells, ['emulated', 'vma-pointer'], ['demo'], 7);
const plots = [{ name: 'violations', title: 'Invariant violations', caption: '2 cells, 1 with violations.' }];

describe('tables', () => {
  test('outcome text', () => {
    expect(cells.map((c) => outcomeText(c.invariants.I3))).toEqual(['n/a', 'FAIL ×2']);
  });
  test('the plain-text matrix compare prints', () => {
    expect(textMatrix(cells)).toBe(
      [
        'scenario  design       I1    I2    I3       I4    I5    I6    I7    memslots  VMAs  host faults  partition faults  PTEs zapped  VMAs visited  VMM exits  hcalls  modeled ms',
        '--------  -----------  ----  ----  -------  ----  ----  ----  ----  --------  ----  -----------  ----------------  -----------  ------------  ---------  ------  ----------',
        'demo      emulated     pass  n/a   n/a      pass  pass  n/a   n/a          0     0            0                 0            0             0      49999     754     250.372',
        'demo      vma-pointer  pass  pass  FAIL ×2  pass  pass  pass  pass         0     0           12                 0            4             0          0       0       0.013',
      ].join('\n'),
    );
  });
  test('Markdown table: numbers right-aligned, pipes escaped', () => {
    expect(markdownTable(['a', 'n'], [['x|y', 1]])).toBe('| a | n |\n| --- | --: |\n| x\\|y | 1 |');
  });
});

describe('report.md', () => {
  const text = renderMarkdown({ results, plots });
  const lines = text.split('\n');
  test('summary, invariant and cost rows', () => {
    expect(lines[2]).toBe(
      '2 cells: 1 scenario × 2 designs, seed 7. 1 of 2 cells fail at least one invariant.',
    );
    expect(lines).toContain('| demo | vma-pointer | 1 | pass | pass | FAIL ×2 | pass | pass | pass | pass |');
    expect(lines).toContain('| demo | emulated | 0 | 0 | 0 | 0 | 0 | 0 | 49999 | 754 | 250.372 |');
    expect(lines).toContain('| memslotUpdate | 50000 |');
  });
  test('opens on the verdicts, the matrix and the per-design counts, before any long table', () => {
    expect(lines.slice(4, 13)).toEqual([
      '## Verdicts',
      '',
      "- **H1** A VMA pointer cannot follow userspace's mappings — **SUPPORTED**: vma-pointer broke routing, isolation or lifetime (I1–I3) in 1 of 1 scenario ([evidence](#h1))",
      '- **H2** Walking VMAs costs, and misses other processes — **NOT TESTED**: design "vma-walk" did not run ([evidence](#h2))',
      '- **H3** Overlapping memory regions run out of memslots — **NOT TESTED**: design "overlap-regions" did not run ([evidence](#h3))',
      '- **H4** MAP_FIXED remapping works only with a VMM that tracks bind/unbind, and costs VMAs — **NOT TESTED**: design "qemu-remap" did not run ([evidence](#h4))',
      '- **H5** Dedicated irq numbers for passthrough change the guest ABI — **NOT TESTED**: design "dedicated-irqs" did not run ([evidence](#h5))',
      '- **H6** The merged zap (unmap_mapping_range on the device file) holds in every scenario — **NOT TESTED**: design "rmap" did not run ([evidence](#h6))',
      '',
    ]);
    expect(lines.slice(13, 20)).toEqual([
      '## Matrix',
      '',
      '| scenario | emulated | vma-pointer |',
      '| --- | --- | --- |',
      '| demo | ✅ pass | 🟥 I3 |',
      '',
      '🟥 routing / isolation / lifetime (I1–I3) · 🟧 lost or spurious interrupts (I4–I5) · 🟪 guest ABI differs from the emulated reference (I6) · 🟦 resource limits exceeded (I7) · ✅ every checked invariant holds · ⬜ nothing to check',
    ]);
    expect(lines).toContain('- **emulated** holds in all 1 scenario');
    expect(lines).toContain('- **vma-pointer** fails in 1 of 1 scenario: I3 in 1 scenario');
    expect(lines.indexOf('## Per design')).toBeLessThan(lines.indexOf('## Invariants'));
    expect(lines).toContain('<a id="h1"></a>');
  });
  test('hypotheses with verdicts and what was measured', () => {
    expect(lines).toContain("### H1. A VMA pointer cannot follow userspace's mappings — SUPPORTED");
    expect(lines).toContain('- demo: I3 ×2');
    expect(lines).toContain(
      '### H6. The merged zap (unmap_mapping_range on the device file) holds in every scenario — NOT TESTED',
    );
  });
  test('plots, violations with their trace files, notes', () => {
    expect(lines).toContain('![Invariant violations](violations.svg)');
    expect(lines).toContain('2 cells, 1 with violations. ([PNG](violations.png))');
    expect(lines).toContain(
      '- **demo × vma-pointer, I3** (2): seed 1: vma-pointer broke I3 in demo — [demo--vma-pointer--I3.trace.json](traces/demo--vma-pointer--I3.trace.json) (3 events)',
    );
    // The story under it: the message names no object, so the trace's last events.
    const at = lines.findIndex((l) => l.startsWith('- **demo × vma-pointer, I3**'));
    expect(lines.slice(at + 1, at + 4)).toEqual([
      '  1. #10 page fault (mm.fault): pid 1, address 0x2, flags 0x3, vma 4',
      '  2. #11 kvm.zap: a0 0x5, a1 0x0, a2 0x0, a3 0x0',
      '  3. #12 ESB trigger (esb.trigger): srcno 0x1300, oldPq 0x0, newPq 0x2, forward 1',
    ]);
    expect(lines).toContain('- **demo × emulated**');
    expect(lines).toContain('  - kernel_irqchip=off');
    expect(lines.at(-2)).toBe('Data: [results.json](results.json) (schema: `xivelab schema --results`).');
  });
  test('no violations says so', () => {
    const t = renderMarkdown({
      results: resultsDocument([cells[0]!], ['emulated'], ['demo'], null),
      plots: [],
    });
    expect(t).toContain(
      "1 cell: 1 scenario × 1 design, each scenario's own seed. 0 of 1 cell fail at least one invariant.",
    );
    expect(t).toContain('## Violations\n\nNone.\n');
  });
});

describe('the Races section', () => {
  const races = [
    {
      scenario: 's12-fault-vs-bind',
      summary: 'ESB fault vs set_mapped',
      design: 'rmap',
      verdict: 'violation' as const,
      executions: 8,
      traces: 6,
      counterexample: {
        kind: 'violation' as const,
        message: 'I1: a | b',
        schedule: '0.1',
        preemptions: 1,
        steps: 2,
        trace: 'race--s12-fault-vs-bind--rmap.trace.json',
      },
    },
    {
      scenario: 'clr-mapped-error-hang',
      summary: 'the error path',
      design: 'rmap',
      verdict: 'violation' as const,
      executions: 2,
      traces: 2,
      counterexample: {
        kind: 'deadlock' as const,
        message: 'fault blocked',
        schedule: '0.0.1',
        preemptions: 0,
        steps: 3,
        trace: 'race--clr-mapped-error-hang--rmap.trace.json',
      },
    },
    {
      scenario: 's12-fault-vs-bind',
      summary: 'ESB fault vs set_mapped',
      design: 'rmap-fixed',
      verdict: 'exhausted' as const,
      executions: 5,
      traces: 3,
      counterexample: null,
    },
  ];

  test('one row per race scenario × design, the counterexample with its schedule and trace link', () => {
    const md = renderMarkdown({
      results: resultsDocument(cells, ['emulated', 'vma-pointer'], ['demo'], 7, races),
      plots,
    }).split('\n');
    const at = md.indexOf('## Races');
    expect(md.slice(at + 5, at + 9)).toEqual([
      '|---|---|---|---:|---:|---|',
      '| s12-fault-vs-bind | rmap | VIOLATION | 8 | 6 | I1: a \\| b — 2 steps, schedule `0.1` — [trace](traces/race--s12-fault-vs-bind--rmap.trace.json) |',
      '| clr-mapped-error-hang | rmap | DEADLOCK | 2 | 2 | fault blocked — 3 steps, schedule `0.0.1` — [trace](traces/race--clr-mapped-error-hang--rmap.trace.json) |',
      '| s12-fault-vs-bind | rmap-fixed | exhausted | 5 | 3 | — |',
    ]);
  });

  test('absent without races in results.json', () => {
    expect(renderMarkdown({ results, plots })).not.toContain('## Races');
  });
});
