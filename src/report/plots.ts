/**
 * The report's plots, rendered server-side: Observable Plot draws into a linkedom document (no
 * DOM globals), the SVG is serialised as a string, and resvg turns it into a PNG. Pure apart
 * from resvg's system-font lookup: the same cells give the same SVG, byte for byte.
 *
 * Plots never carry a title, subtitle or legend (with those Plot returns an HTML `<figure>`,
 * which resvg rejects); titles go in the Markdown/HTML report and lines are labelled at their end.
 */

import * as Plot from '@observablehq/plot';
import { Resvg } from '@resvg/resvg-js';
import { parseHTML } from 'linkedom';
import { type CellResult, INVARIANTS, SERIES } from '../scenario/cell.ts';

/** One rendered plot. */
export interface PlotSvg {
  /** File stem: `report/<name>.svg` and `.png`. */
  readonly name: string;
  /** Caption for the report. */
  readonly title: string;
  /** What the plot shows, or why it is empty. */
  readonly caption: string;
  /** Standalone SVG document (with the SVG namespace). */
  readonly svg: string;
  /** Data points drawn (0: a placeholder saying no design produced the series). */
  readonly points: number;
}

const WIDTH = 640;
const HEIGHT = 360;

/** Render a Plot spec to an SVG string in a fresh linkedom document. */
function renderSvg(spec: Plot.PlotOptions): string {
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const el = Plot.plot({ ...spec, document } as Plot.PlotOptions);
  el.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  return String(el);
}

/** A plot saying there is nothing to draw. */
function placeholder(message: string): string {
  return renderSvg({
    width: WIDTH,
    height: 120,
    marks: [Plot.frame({ stroke: '#bbb' }), Plot.text([message], { frameAnchor: 'middle', fontSize: 13 })],
  });
}

interface Point {
  readonly x: number;
  readonly y: number;
  readonly line: string;
}

/**
 * Points of series `name` over all cells, one line per design (per design and scenario when a
 * design produced the series in more than one scenario).
 */
export function seriesPoints(
  cells: readonly CellResult[],
  name: string,
): { points: Point[]; x: string; y: string } {
  const having = cells.filter((c) => c.series.some((s) => s.name === name));
  const perDesign = new Map<string, number>();
  for (const c of having) perDesign.set(c.design, (perDesign.get(c.design) ?? 0) + 1);
  const points: Point[] = [];
  let x = '';
  let y = '';
  for (const c of having) {
    const line = perDesign.get(c.design)! > 1 ? `${c.design} · ${c.scenario}` : c.design;
    for (const s of c.series) {
      if (s.name !== name) continue;
      x ||= s.x;
      y ||= s.y;
      for (const [px, py] of s.points) points.push({ x: px, y: py, line });
    }
  }
  return { points, x, y };
}

/** A line plot of series `name`, or a placeholder when no cell has it. */
export function seriesPlot(cells: readonly CellResult[], name: string, title: string, what: string): PlotSvg {
  const { points, x, y } = seriesPoints(cells, name);
  if (points.length === 0) {
    const caption = `No design that ran produced the series "${name}" (${what}).`;
    return {
      name,
      title,
      caption,
      svg: placeholder(`no data: no design that ran produced "${name}"`),
      points: 0,
    };
  }
  const lines = [...new Set(points.map((p) => p.line))];
  const svg = renderSvg({
    width: WIDTH,
    height: HEIGHT,
    marginRight: 120,
    grid: true,
    x: { label: x },
    y: { label: y, zero: true },
    color: { domain: lines, scheme: 'tableau10' },
    marks: [
      Plot.line(points, { x: 'x', y: 'y', stroke: 'line', z: 'line' }),
      Plot.dot(points, { x: 'x', y: 'y', stroke: 'line', r: 2.5 }),
      Plot.text(
        points,
        Plot.selectLast({
          x: 'x',
          y: 'y',
          z: 'line',
          text: 'line',
          fill: 'line',
          dx: 6,
          textAnchor: 'start',
        }),
      ),
    ],
  });
  return {
    name,
    title,
    caption: `${what}: ${lines.length} line${lines.length === 1 ? '' : 's'}, ${points.length} points measured on the model.`,
    svg,
    points: points.length,
  };
}

/** One heatmap cell. */
interface HeatCell {
  readonly design: string;
  readonly scenario: string;
  readonly violations: number;
  readonly label: string;
}

/** The violations heatmap's cells: one per scenario × design that ran. */
export function heatCells(cells: readonly CellResult[]): HeatCell[] {
  return cells.map((c) => {
    const failed = INVARIANTS.filter((i) => c.invariants[i].status === 'fail');
    const violations = failed.reduce((n, i) => n + c.invariants[i].violations, 0);
    return {
      design: c.design,
      scenario: c.scenario,
      violations,
      label: failed.length === 0 ? 'pass' : `${violations} (${failed.join(' ')})`,
    };
  });
}

/** Invariant violations per design × scenario. */
export function violationsHeatmap(cells: readonly CellResult[]): PlotSvg {
  const name = 'violations';
  const title = 'Invariant violations per design × scenario';
  if (cells.length === 0) {
    return { name, title, caption: 'No cells ran.', svg: placeholder('no data: no cells ran'), points: 0 };
  }
  const data = heatCells(cells);
  const designs = [...new Set(data.map((d) => d.design))];
  const scenarios = [...new Set(data.map((d) => d.scenario))];
  const max = Math.max(1, ...data.map((d) => d.violations));
  const longest = Math.max(...scenarios.map((s) => s.length));
  const svg = renderSvg({
    width: Math.max(WIDTH, 160 + designs.length * 110),
    height: 60 + scenarios.length * 32,
    marginLeft: Math.min(260, 20 + longest * 7),
    marginTop: 40,
    x: { domain: designs, label: null, axis: 'top' },
    y: { domain: scenarios, label: null },
    color: { type: 'linear', domain: [0, max], range: ['#e8f5e9', '#c62828'] },
    marks: [
      Plot.cell(data, { x: 'design', y: 'scenario', fill: 'violations', inset: 1 }),
      Plot.text(data, {
        x: 'design',
        y: 'scenario',
        text: 'label',
        fill: (d: HeatCell) => (d.violations > max / 2 ? 'white' : 'black'),
      }),
    ],
  });
  const bad = data.filter((d) => d.violations > 0).length;
  return {
    name,
    title,
    caption: `${data.length} cells, ${bad} with violations; a cell shows its violation count and the invariants broken.`,
    svg,
    points: data.length,
  };
}

/** Every plot of the report, in report order. */
export function reportPlots(cells: readonly CellResult[]): PlotSvg[] {
  return [
    seriesPlot(
      cells,
      SERIES.memslotsVsVectors,
      'KVM memslots vs passthrough vectors, per design',
      'memslots in use as passthrough vectors are bound',
    ),
    seriesPlot(
      cells,
      SERIES.bindCostVsMappings,
      'Bind cost vs number of mappings of the ESB range',
      'the modeled cost of one bind as the ESB range is mapped more times',
    ),
    seriesPlot(
      cells,
      SERIES.bindCostVsVmas,
      'Bind cost vs number of VMAs in the VMM process',
      'the modeled cost of one bind as the VMM process holds more VMAs',
    ),
    violationsHeatmap(cells),
  ];
}

/** Rasterise an SVG to PNG with resvg (DejaVu Sans for text; resvg draws no text without a font). */
export function svgToPng(svg: string): Uint8Array {
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}
