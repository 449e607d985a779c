import { describe, expect, test } from 'vitest';
import {
  designSeries,
  heatCells,
  integerTicks,
  overlaps,
  reportPlots,
  svgToPng,
  violationsHeatmap,
} from '../../../src/report/plots.ts';
import { SERIES } from '../../../src/scenario/cell.ts';
import { cell } from './fixtures.ts';

const mem = (points: [number, number][], wanted: [number, number][] = []) => [
  { name: SERIES.memslotsVsVectors, x: 'passthrough vectors', y: 'memslots', points },
  {
    name: SERIES.memslotsWantedVsVectors,
    x: 'passthrough vectors asked for',
    y: 'memslots needed',
    points: wanted,
  },
];
const cells = [
  cell('emulated', 'demo'),
  cell('overlap-regions', 'demo', {
    inv: { I7: 3 },
    series: mem(
      [
        [0, 1],
        [8, 9],
        [16, 17],
      ],
      // Binds refused past the 512-slot limit, at the memslots the VM would need.
      [
        [2048, 2052],
        [600, 604],
      ],
    ),
  }),
  cell('overlap-regions', 'nic', {
    series: mem([
      [0, 1],
      [4, 5],
    ]),
  }),
  cell('rmap', 'demo', {
    series: mem([
      [0, 1],
      [8, 1],
      [16, 1],
    ]),
  }),
];

function pngSize(png: Uint8Array): [number, number] {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [v.getUint32(16), v.getUint32(20)];
}

describe('plot data', () => {
  test("one line per design: every scenario's samples averaged per x, sorted by x", () => {
    const withRepeats = [
      ...cells,
      cell('rmap', 'nic', {
        series: mem([
          [16, 3],
          [0, 1],
          [16, 1],
        ]),
      }),
    ];
    expect(designSeries(withRepeats, SERIES.memslotsVsVectors)).toEqual([
      {
        design: 'overlap-regions',
        points: [
          { x: 0, y: 1 },
          { x: 4, y: 5 },
          { x: 8, y: 9 },
          { x: 16, y: 17 },
        ],
        samples: 5,
      },
      {
        design: 'rmap',
        points: [
          { x: 0, y: 1 },
          { x: 8, y: 1 },
          { x: 16, y: 5 / 3 },
        ],
        samples: 6,
      },
    ]);
  });
  test('integer ticks for axes that count', () => {
    expect(integerTicks(0, 3.15)).toEqual([0, 1, 2, 3]);
    expect(integerTicks(0, 2150)).toEqual([0, 500, 1000, 1500, 2000]);
    expect(integerTicks(0, 563.2)).toEqual([0, 200, 400]);
    expect(integerTicks(0, 11)).toEqual([0, 5, 10]);
  });
  test('matrix cells: the invariants broken and the kind that colours them', () => {
    expect(heatCells(cells)).toEqual([
      { design: 'emulated', scenario: 'demo', kind: 'pass', label: 'pass' },
      { design: 'overlap-regions', scenario: 'demo', kind: 'resources', label: 'I7' },
      { design: 'overlap-regions', scenario: 'nic', kind: 'pass', label: 'pass' },
      { design: 'rmap', scenario: 'demo', kind: 'pass', label: 'pass' },
    ]);
  });
});

describe('rendered plots', () => {
  const plots = reportPlots(cells);
  test('four plots in report order; empty series become a placeholder', () => {
    expect(plots.map((p) => [p.name, p.points])).toEqual([
      ['memslots-vs-vectors', 9],
      ['bind-cost-vs-mappings', 0],
      ['bind-cost-vs-vmas', 0],
      ['violations', 4],
    ]);
    expect(plots[1]!.caption).toBe(
      'No design that ran produced the series "bind-cost-vs-mappings" (the modeled cost of one bind as the ESB range is mapped more times).',
    );
    expect(plots[1]!.svg).toContain('no data: no design that ran produced &quot;bind-cost-vs-mappings&quot;');
  });
  test('small multiples: a titled panel per design, axis labels with units, the limits drawn', () => {
    const p = plots[0]!;
    expect(p.svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(p.labels.map((l) => l.text)).toEqual([
      'KVM memslots in use as passthrough vectors are bound',
      'KVM memslots in use',
      'bind refused at the limit: memslots the VM would need',
      'overlap-regions',
      'KVM_USER_MEM_SLOTS 512',
      'KVMPPC_PIRQ_MAPPED 1024',
      'rmap',
      'KVM_USER_MEM_SLOTS 512',
      'KVMPPC_PIRQ_MAPPED 1024',
      'passthrough vectors bound (crosses: asked for, the bind refused)',
      'KVM memslots in use',
    ]);
    // One dot per averaged point and the legend's; a reference rule per limit per panel.
    expect(p.svg.match(/<circle /g)!.length).toBe(7 + 1);
    expect(p.svg.match(/stroke-dasharray="5,3"/g)!.length).toBe(4);
    // The refused binds: a red cross each, on a dotted line from the last bound point.
    const crosses = p.svg.match(/<g [^>]*stroke="#c62828" fill="none" aria-label="dot">(.*?)<\/g>/)![1]!;
    expect(crosses.match(/<path /g)!.length).toBe(2);
    expect(
      p.svg.match(/<g stroke-dasharray="2,2"[^>]* stroke="#c62828" fill="none" aria-label="line">/g)!.length,
    ).toBe(1);
    expect(p.caption).toBe(
      'memslots in use as passthrough vectors are bound: one panel per design (2), the mean of 10 samples at each of 9 x values, ' +
        'measured on the model; dashed lines: KVM_USER_MEM_SLOTS 512, KVMPPC_PIRQ_MAPPED 1024; ' +
        'red crosses on a dotted line: 2 points where a bind refused at the limit: memslots the VM would need.',
    );
    expect(reportPlots(cells)[0]!.svg).toBe(p.svg);
    // Without refused points there is no legend row.
    const noRefused = reportPlots(cells.filter((c) => c.scenario !== 'demo'))[0]!;
    expect(noRefused.labels.map((l) => l.text).slice(0, 2)).toEqual([
      'KVM memslots in use as passthrough vectors are bound',
      'overlap-regions',
    ]);
    const heat = violationsHeatmap(cells).svg;
    expect(heat.match(/<rect /g)!.length).toBe(5); // 4 cells and the background
    expect(heat).toContain('>I7</text>');
  });
  test('the refused points continue the line past the limit, sorted by x', () => {
    expect(designSeries(cells, SERIES.memslotsWantedVsVectors)).toEqual([
      {
        design: 'overlap-regions',
        points: [
          { x: 600, y: 604 },
          { x: 2048, y: 2052 },
        ],
        samples: 2,
      },
      { design: 'rmap', points: [], samples: 0 },
    ]);
  });
  test('no label box overlaps another, and every box lies inside the picture', () => {
    for (const p of plots) {
      for (let i = 0; i < p.labels.length; i++) {
        const a = p.labels[i]!;
        expect(a.x, `${p.name}: ${a.text}`).toBeGreaterThanOrEqual(0);
        expect(a.y, `${p.name}: ${a.text}`).toBeGreaterThanOrEqual(0);
        expect(a.x + a.width, `${p.name}: ${a.text}`).toBeLessThanOrEqual(p.size[0]);
        expect(a.y + a.height, `${p.name}: ${a.text}`).toBeLessThanOrEqual(p.size[1]);
        for (const b of p.labels.slice(i + 1))
          expect(overlaps(a, b), `${p.name}: ${a.text} / ${b.text}`).toBe(false);
      }
    }
  });
  test('limit labels keep clear of the data: where the curve crosses a limit line its label lies across it', () => {
    // pt-many-vectors under overlap-regions: 7 functions of 64 vectors bound, 25 refused.
    const steps = (from: number, to: number): [number, number][] =>
      Array.from({ length: (to - from) / 64 + 1 }, (_, i) => [from + 64 * i, from + 64 * i + 4]);
    const many = [
      cell('overlap-regions', 'pt-many-vectors', { series: mem(steps(64, 448), steps(512, 2048)) }),
    ];
    const p = reportPlots(many)[0]!;
    const pirq = p.labels.find((l) => l.text === 'KVMPPC_PIRQ_MAPPED 1024')!;
    expect(pirq.width).toBeGreaterThan(pirq.height);
    for (const [i, a] of p.labels.entries())
      for (const b of p.labels.slice(i + 1)) expect(overlaps(a, b), `${a.text} / ${b.text}`).toBe(false);
  });
  test('the overlap check itself', () => {
    const a = { text: 'a', x: 0, y: 0, width: 10, height: 10 };
    expect(overlaps(a, { ...a, x: 9 })).toBe(true);
    expect(overlaps(a, { ...a, x: 10 })).toBe(false);
  });
  test('PNG: the signature and twice the SVG size (zoom 2)', async () => {
    const png = await svgToPng(plots[0]!.svg);
    expect([...png.slice(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(pngSize(png)).toEqual([plots[0]!.size[0] * 2, plots[0]!.size[1] * 2]);
  });
});
