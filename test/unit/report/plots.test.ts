import { describe, expect, test } from 'vitest';
import {
  heatCells,
  reportPlots,
  seriesPoints,
  svgToPng,
  violationsHeatmap,
} from '../../../src/report/plots.ts';
import { SERIES } from '../../../src/scenario/cell.ts';
import { cell } from './fixtures.ts';

const mem = (points: [number, number][]) => [
  { name: SERIES.memslotsVsVectors, x: 'passthrough vectors', y: 'memslots', points },
];
const cells = [
  cell('emulated', 'demo'),
  cell('overlap-regions', 'demo', {
    inv: { I7: 3 },
    series: mem([
      [0, 1],
      [8, 9],
      [16, 17],
    ]),
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
  test('series points: one line per design, per design · scenario when a design has several', () => {
    const { points, x, y } = seriesPoints(cells, SERIES.memslotsVsVectors);
    expect([x, y]).toEqual(['passthrough vectors', 'memslots']);
    expect(points.map((p) => `${p.line}@${p.x}=${p.y}`)).toEqual([
      'overlap-regions · demo@0=1',
      'overlap-regions · demo@8=9',
      'overlap-regions · demo@16=17',
      'overlap-regions · nic@0=1',
      'overlap-regions · nic@4=5',
      'rmap@0=1',
      'rmap@8=1',
      'rmap@16=1',
    ]);
  });
  test('heatmap cells: violations and the invariants broken', () => {
    expect(heatCells(cells)).toEqual([
      { design: 'emulated', scenario: 'demo', violations: 0, label: 'pass' },
      { design: 'overlap-regions', scenario: 'demo', violations: 3, label: '3 (I7)' },
      { design: 'overlap-regions', scenario: 'nic', violations: 0, label: 'pass' },
      { design: 'rmap', scenario: 'demo', violations: 0, label: 'pass' },
    ]);
  });
});

describe('rendered plots', () => {
  const plots = reportPlots(cells);
  test('four plots in report order; empty series become a placeholder', () => {
    expect(plots.map((p) => [p.name, p.points])).toEqual([
      ['memslots-vs-vectors', 8],
      ['bind-cost-vs-mappings', 0],
      ['bind-cost-vs-vmas', 0],
      ['violations', 4],
    ]);
    expect(plots[1]!.caption).toBe(
      'No design that ran produced the series "bind-cost-vs-mappings" (the modeled cost of one bind as the ESB range is mapped more times).',
    );
    expect(plots[1]!.svg).toContain('no data: no design that ran produced "bind-cost-vs-mappings"');
  });
  test('SVG documents: namespace, one dot per point, a label per line, deterministic', () => {
    const svg = plots[0]!.svg;
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<circle /g)!.length).toBe(8);
    for (const l of ['overlap-regions · demo', 'overlap-regions · nic', 'rmap'])
      expect(svg).toContain(`>${l}</text>`);
    expect(reportPlots(cells)[0]!.svg).toBe(svg);
    const heat = violationsHeatmap(cells).svg;
    expect(heat.match(/<rect /g)!.length).toBe(4);
    expect(heat).toContain('>3 (I7)</text>');
  });
  test('PNG: the signature and twice the SVG size (zoom 2)', () => {
    const png = svgToPng(plots[0]!.svg);
    expect([...png.slice(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(pngSize(png)).toEqual([1280, 720]);
  });
});
