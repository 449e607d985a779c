import { describe, expect, test } from 'vitest';
import { evaluateHypotheses, type Hypothesis } from '../../../src/report/hypotheses.ts';
import type { CellResult } from '../../../src/scenario/cell.ts';
import { cell } from './fixtures.ts';

function verdicts(cells: CellResult[]): Record<string, string> {
  return Object.fromEntries(evaluateHypotheses(cells).map((h) => [h.id, h.verdict]));
}
function get(cells: CellResult[], id: string): Hypothesis {
  return evaluateHypotheses(cells).find((h) => h.id === id)!;
}

describe('hypotheses', () => {
  test('only emulated ran: every claim is not tested, naming the design that did not run', () => {
    const h = evaluateHypotheses([cell('emulated', 'demo')]);
    expect(h.map((x) => [x.id, x.verdict, x.measured])).toEqual([
      ['H1', 'not tested', ['design "vma-pointer" did not run']],
      ['H2', 'not tested', ['design "vma-walk" did not run']],
      ['H3', 'not tested', ['design "overlap-regions" did not run']],
      ['H4', 'not tested', ['design "qemu-remap" did not run']],
      ['H5', 'not tested', ['design "dedicated-irqs" did not run']],
      ['H6', 'not tested', ['design "rmap" did not run']],
    ]);
  });

  test('H1: vma-pointer breaking I3 supports it; keeping I1–I3 everywhere refutes it', () => {
    const bad = [
      cell('vma-pointer', 'second-mapping', { inv: { I3: 2, I2: 1 } }),
      cell('vma-pointer', 'demo'),
    ];
    expect(get(bad, 'H1')).toMatchObject({
      verdict: 'supported',
      measured: [
        'vma-pointer broke routing/isolation/lifetime (I1–I3) in 1 of 2 scenarios',
        'second-mapping: I2 ×1, I3 ×2',
      ],
    });
    expect(get([cell('vma-pointer', 'demo'), cell('vma-pointer', 'fork')], 'H1')).toMatchObject({
      verdict: 'refuted',
      measured: ['vma-pointer kept I1, I2 and I3 in every scenario run (2: demo, fork)'],
    });
  });

  test('H2: cost against rmap and a miss in another process; mixed when only one part holds', () => {
    const walk = cell('vma-walk', 'scm-rights', { inv: { I2: 3 }, costs: { vmasVisited: 400 } });
    const rmap = cell('rmap', 'scm-rights', { costs: { vmasVisited: 2 } });
    expect(get([walk, rmap], 'H2')).toMatchObject({
      verdict: 'supported',
      measured: [
        'scm-rights: vma-walk visited 400 VMAs, rmap 2',
        'vma-walk left a stale mapping (I1/I2) in 1 scenario: scm-rights: I2 ×3',
      ],
    });
    const clean = cell('vma-walk', 'scm-rights', { costs: { vmasVisited: 400 } });
    expect(get([clean, rmap], 'H2').verdict).toBe('mixed');
    const cheap = cell('vma-walk', 'scm-rights', { costs: { vmasVisited: 1 } });
    expect(get([cheap, rmap], 'H2').verdict).toBe('refuted');
  });

  test('H3: I7 broken by overlap-regions supports it, with the peak memslots', () => {
    const cells = [
      cell('overlap-regions', '2048-vectors', { inv: { I7: 1 }, costs: { memslotsPeak: 509 } }),
      cell('overlap-regions', 'demo', { costs: { memslotsPeak: 25 } }),
    ];
    expect(get(cells, 'H3')).toMatchObject({
      verdict: 'supported',
      measured: [
        'peak memslots 509 (2048-vectors 509, demo 25)',
        'memslot limit exceeded (I7): 2048-vectors: I7 ×1',
      ],
    });
    expect(get([cells[1]!], 'H3')).toMatchObject({
      verdict: 'refuted',
      measured: ['peak memslots 25 (demo 25)', 'I7 held in every scenario run'],
    });
  });

  test('H4: qemu-remap works and costs VMAs against rmap → supported, with the counterfactual caveat', () => {
    const cells = [
      cell('qemu-remap', 'nic', { costs: { vmasPeak: 140 } }),
      cell('rmap', 'nic', { costs: { vmasPeak: 12 } }),
    ];
    expect(get(cells, 'H4')).toMatchObject({
      verdict: 'supported',
      measured: [
        'with the VMM tracking bind/unbind, I1–I5 held in every scenario run (nic)',
        'nic: peak VMAs 140, rmap 12',
        'the "only with a VMM that tracks" half needs a VMM that does not track: no such variant ran',
      ],
    });
    const broken = [cell('qemu-remap', 'nic', { inv: { I1: 1 }, costs: { vmasPeak: 12 } }), cells[1]!];
    expect(get(broken, 'H4').verdict).toBe('refuted');
    // The ablation without tracking decides the "only with" half.
    const ablated = [...cells, cell('qemu-remap-untracked', 'nic', { inv: { I1: 48, I4: 16 } })];
    expect(get(ablated, 'H4')).toMatchObject({
      verdict: 'supported',
      measured: [
        'with the VMM tracking bind/unbind, I1–I5 held in every scenario run (nic)',
        'nic: peak VMAs 140, rmap 12',
        'without the VMM tracking bind/unbind (qemu-remap-untracked), routing or delivery broke in 1 scenario: nic: I1 ×48, I4 ×16',
      ],
    });
    expect(get([...cells, cell('qemu-remap-untracked', 'nic')], 'H4').verdict).toBe('mixed');
  });

  test('H5: I6 broken by dedicated-irqs supports it; I6 n/a everywhere is not tested', () => {
    expect(get([cell('dedicated-irqs', 'demo', { inv: { I6: 4 } })], 'H5')).toMatchObject({
      verdict: 'supported',
      measured: ['I6 broken: demo: I6 ×4'],
    });
    expect(get([cell('dedicated-irqs', 'demo', { inv: { I6: 'n/a' } })], 'H5')).toMatchObject({
      verdict: 'not tested',
      measured: ['I6 was n/a in every scenario run (demo)'],
    });
    expect(get([cell('dedicated-irqs', 'demo')], 'H5').verdict).toBe('refuted');
  });

  test('H6: rmap failing I1–I3 refutes "holds in all" (a failure rmap-fixed does not share is named a latent bug’s); other failures are listed as not the zap’s; rmap-fixed beside it', () => {
    const cells = [
      cell('rmap', 'split-vma', { inv: { I1: 5 } }),
      cell('rmap', 'demo', { inv: { I4: 3 } }),
      cell('rmap-fixed', 'split-vma'),
      cell('rmap-fixed', 'demo'),
    ];
    expect(get(cells, 'H6')).toMatchObject({
      verdict: 'refuted',
      measured: [
        'rmap broke routing/isolation/lifetime (I1–I3) in 1 of 2 scenarios',
        'split-vma: I1 ×5',
        "rmap-fixed (the same record and zap, latent bugs fixed) kept I1–I3 in split-vma: there a latent bug of the merged code breaks them, not the zap's reach",
        "not the zap's — rmap also broke: demo: I4 ×3",
        'rmap-fixed (latent bugs fixed) kept every checked invariant in every scenario run (2)',
      ],
    });
    // A failure rmap-fixed shares is not attributed to a latent bug.
    const shared = [
      cell('rmap', 'split-vma', { inv: { I2: 2 } }),
      cell('rmap-fixed', 'split-vma', { inv: { I2: 2 } }),
    ];
    expect(get(shared, 'H6').measured).toEqual([
      'rmap broke routing/isolation/lifetime (I1–I3) in 1 of 1 scenario',
      'split-vma: I2 ×2',
      'rmap-fixed (latent bugs fixed) still broke: split-vma: I2 ×2',
    ]);
    expect(verdicts([cell('rmap', 'demo')]).H6).toBe('supported');
    expect(verdicts([cell('rmap', 'demo', { inv: { I4: 1 } })]).H6).toBe('supported');
  });
});
