/**
 * The report's plots, rendered server-side: Observable Plot draws each panel into a linkedom
 * document (no DOM globals), this module lays the panels out as small multiples — one per
 * design — inside one SVG with its own title, axis labels (with units) and reference lines for
 * the limits that matter (`KVM_USER_MEM_SLOTS`, `KVMPPC_PIRQ_MAPPED`, `vm.max_map_count`), and
 * resvg turns it into a PNG. The text this module places itself is reported as boxes
 * ({@link PlotSvg.labels}) so a test can check that no label overlaps another. Pure apart from
 * resvg's system-font lookup: the same cells give the same SVG, byte for byte.
 *
 * Plot's own title, subtitle and legend are not used (with those Plot returns an HTML
 * `<figure>`, which resvg rejects): the outer SVG carries them.
 */

import * as Plot from '@observablehq/plot';
import { renderAsync } from '@resvg/resvg-js';
import { parseHTML } from 'linkedom';
import { KVMPPC_PIRQ_MAPPED } from '../host/kvm/irqfd.ts';
import { KVM_USER_MEM_SLOTS } from '../host/kvm/uapi.ts';
import { DEFAULT_MAX_MAP_COUNT } from '../host/mm/constants.ts';
import { type CellResult, SERIES } from '../scenario/cell.ts';
import { KIND_STYLE, matrixCell } from './summary.ts';

/** A text box placed by the layout, in SVG user units. */
export interface LabelBox {
  readonly text: string;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

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
  /** Every text box the layout placed (title, axis labels, panel titles, limit labels). */
  readonly labels: readonly LabelBox[];
  /** Width and height of the SVG. */
  readonly size: readonly [number, number];
}

const FONT = 'DejaVu Sans, sans-serif';
/** Average advance of a DejaVu Sans glyph as a fraction of the font size (a safe upper bound). */
const CHAR_WIDTH = 0.62;

/** The box of `text` at font `size` whose left baseline is (x, y). */
function box(
  text: string,
  x: number,
  y: number,
  size: number,
  anchor: 'start' | 'middle' | 'end' = 'start',
): LabelBox {
  const width = text.length * size * CHAR_WIDTH;
  const left = anchor === 'start' ? x : anchor === 'middle' ? x - width / 2 : x - width;
  return { text, x: left, y: y - size, width, height: size * 1.25 };
}

/** Escape text for SVG. */
function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A `<text>` element and its box. */
function text(
  s: string,
  x: number,
  y: number,
  size: number,
  opts: { anchor?: 'start' | 'middle' | 'end'; bold?: boolean; fill?: string; rotate?: boolean } = {},
): { svg: string; box: LabelBox } {
  const anchor = opts.anchor ?? 'start';
  const attrs = [
    `x="${x}"`,
    `y="${y}"`,
    `font-family="${FONT}"`,
    `font-size="${size}"`,
    `text-anchor="${anchor}"`,
    opts.bold ? 'font-weight="bold"' : '',
    `fill="${opts.fill ?? '#222'}"`,
    opts.rotate ? `transform="rotate(-90 ${x} ${y})"` : '',
  ].filter((a) => a !== '');
  const b = box(s, x, y, size, anchor);
  // A label turned by -90° runs upwards from its anchor: its box is the unrotated extent turned
  // about the anchor point (start: above it; end: below it; middle: centred on it).
  const along = anchor === 'start' ? y - b.width : anchor === 'middle' ? y - b.width / 2 : y;
  const turned: LabelBox = opts.rotate
    ? { text: s, x: x - size, y: along, width: size * 1.25, height: b.width }
    : b;
  return { svg: `<text ${attrs.join(' ')}>${xml(s)}</text>`, box: turned };
}

/** Render a Plot spec; the element keeps Plot's `scale()` for the layout. */
function renderPlot(spec: Plot.PlotOptions): ReturnType<typeof Plot.plot> {
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const el = Plot.plot({ ...spec, document } as Plot.PlotOptions);
  el.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  return el;
}

/** A plot saying there is nothing to draw. */
function placeholder(name: string, title: string, caption: string, message: string): PlotSvg {
  const width = 640;
  const height = 120;
  const t = text(message, width / 2, height / 2, 13, { anchor: 'middle', fill: '#555' });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect x="0.5" y="0.5" width="${width - 1}" height="${height - 1}" fill="white" stroke="#bbb"/>${t.svg}</svg>`;
  return { name, title, caption, svg, points: 0, labels: [t.box], size: [width, height] };
}

/** A limit drawn as a reference line across every panel. */
interface Limit {
  readonly axis: 'x' | 'y';
  readonly value: number;
  readonly label: string;
}

/** How one series is drawn. */
interface SeriesSpec {
  readonly name: string;
  readonly title: string;
  /** What the plot shows, for the caption. */
  readonly what: string;
  /** Axis labels with units. */
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xLog: boolean;
  /** Whether the axis counts things (integer ticks only). */
  readonly xCounts: boolean;
  readonly yCounts: boolean;
  readonly limits: readonly Limit[];
  /**
   * A companion series of points past a limit (binds refused there, at what they would have
   * needed): drawn as red crosses on a dashed continuation of the line.
   */
  readonly refused?: { readonly name: string; readonly legend: string };
}

/** The three series the report plots. */
export const SERIES_PLOTS: readonly SeriesSpec[] = [
  {
    name: SERIES.memslotsVsVectors,
    title: 'KVM memslots in use as passthrough vectors are bound',
    what: 'memslots in use as passthrough vectors are bound',
    xLabel: 'passthrough vectors bound (crosses: asked for, the bind refused)',
    yLabel: 'KVM memslots in use',
    xLog: false,
    xCounts: true,
    yCounts: true,
    limits: [
      { axis: 'y', value: KVM_USER_MEM_SLOTS, label: `KVM_USER_MEM_SLOTS ${KVM_USER_MEM_SLOTS}` },
      { axis: 'x', value: KVMPPC_PIRQ_MAPPED, label: `KVMPPC_PIRQ_MAPPED ${KVMPPC_PIRQ_MAPPED}` },
    ],
    refused: {
      name: SERIES.memslotsWantedVsVectors,
      legend: 'bind refused at the limit: memslots the VM would need',
    },
  },
  {
    name: SERIES.bindCostVsMappings,
    title: 'Cost of one bind vs mappings of the ESB range',
    what: 'the modeled cost of one bind as the ESB range is mapped more times',
    xLabel: 'mappings of the ESB range',
    yLabel: 'bind cost (µs, modeled)',
    xLog: false,
    xCounts: true,
    yCounts: false,
    limits: [],
  },
  {
    name: SERIES.bindCostVsVmas,
    title: 'Cost of one bind vs VMAs in the VMM process',
    what: 'the modeled cost of one bind as the VMM process holds more VMAs',
    xLabel: 'VMAs in the VMM process (log scale)',
    yLabel: 'bind cost (µs, modeled)',
    xLog: true,
    xCounts: true,
    yCounts: false,
    limits: [{ axis: 'x', value: DEFAULT_MAX_MAP_COUNT, label: `vm.max_map_count ${DEFAULT_MAX_MAP_COUNT}` }],
  },
];

/** One design's line: the mean y at each x, sorted by x. */
export interface DesignSeries {
  readonly design: string;
  readonly points: readonly { x: number; y: number }[];
  /** Samples behind the line (repeats included). */
  readonly samples: number;
}

/**
 * The points of series `name`, one line per design: every sample of every scenario the design
 * ran, averaged per x and sorted by x (a design's samples come in measurement order, with
 * repeats; joined as they come they zig-zag).
 */
export function designSeries(cells: readonly CellResult[], name: string): DesignSeries[] {
  const byDesign = new Map<string, Map<number, { sum: number; n: number }>>();
  for (const c of cells) {
    for (const s of c.series) {
      if (s.name !== name) continue;
      const acc = byDesign.get(c.design) ?? new Map<number, { sum: number; n: number }>();
      byDesign.set(c.design, acc);
      for (const [x, y] of s.points) {
        const a = acc.get(x) ?? { sum: 0, n: 0 };
        a.sum += y;
        a.n++;
        acc.set(x, a);
      }
    }
  }
  return [...byDesign].map(([design, acc]) => ({
    design,
    points: [...acc].sort((a, b) => a[0] - b[0]).map(([x, a]) => ({ x, y: a.sum / a.n })),
    samples: [...acc.values()].reduce((n, a) => n + a.n, 0),
  }));
}

/** Integer tick values over [lo, hi]: 1, 2 or 5 × 10^k steps, at most `max` ticks. */
export function integerTicks(lo: number, hi: number, max = 6): number[] {
  const span = Math.max(1, hi - lo);
  let step = 1;
  for (let k = 1; ; k *= 10) {
    const s = [k, 2 * k, 5 * k].find((m) => span / m <= max - 1);
    if (s !== undefined) {
      step = s;
      break;
    }
  }
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

/** Powers of ten over [lo, hi] for a log axis. */
function decadeTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let v = 10 ** Math.floor(Math.log10(Math.max(1, lo))); v <= hi * 1.0001; v *= 10)
    if (v >= lo) out.push(v);
  return out;
}

/** Tick label text (thousands separated, no fractions for counts). */
function tickText(v: number, counts: boolean): string {
  return counts || Number.isInteger(v) ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
}

const PANEL_W = 440;
const PANEL_H = 190;
const COLS = 2;
const GAP_X = 28;
const GAP_Y = 44;
const TITLE_H = 40;
/** Height of the legend row under the title, when there is one. */
const LEGEND_H = 18;
const MARGIN = { left: 48, bottom: 46, right: 16 };
const REFUSED_COLOR = '#c62828';

/** A red cross centred on (x, y), the refused-bind marker of the legend. */
function cross(x: number, y: number, r: number): string {
  return `<path d="M${x - r},${y - r}L${x + r},${y + r}M${x - r},${y + r}L${x + r},${y - r}" stroke="${REFUSED_COLOR}" stroke-width="1.5"/>`;
}

/**
 * The dashed continuation past a limit: from the last point of the line before the first refused
 * one, through the refused points (both sorted by x).
 */
function continuation(
  line: readonly { x: number; y: number }[],
  refused: readonly { x: number; y: number }[],
): { x: number; y: number }[] {
  if (refused.length === 0) return [];
  const before = line.filter((p) => p.x < refused[0]!.x).at(-1);
  return before === undefined ? [...refused] : [before, ...refused];
}

/** Boxes along a polyline in SVG units (points and the segments between them, every ≤ 4 units). */
function pathBoxes(pts: readonly { x: number; y: number }[]): LabelBox[] {
  const out: LabelBox[] = [];
  const dot = (x: number, y: number, r: number): LabelBox => ({
    text: '',
    x: x - r,
    y: y - r,
    width: 2 * r,
    height: 2 * r,
  });
  pts.forEach((p, i) => {
    out.push(dot(p.x, p.y, 4));
    const q = pts[i + 1];
    if (q === undefined) return;
    const steps = Math.ceil(Math.hypot(q.x - p.x, q.y - p.y) / 4);
    for (let k = 1; k < steps; k++)
      out.push(dot(p.x + ((q.x - p.x) * k) / steps, p.y + ((q.y - p.y) * k) / steps, 1.5));
  });
  return out;
}

/** Whether box `b` lies within `frame`. */
function inside(b: LabelBox, frame: Omit<LabelBox, 'text'>): boolean {
  return (
    b.x >= frame.x &&
    b.y >= frame.y &&
    b.x + b.width <= frame.x + frame.width &&
    b.y + b.height <= frame.y + frame.height
  );
}

/** Places for the label of a horizontal limit line at `y`: above it left, right, below it left, right. */
function yLimitPlaces(l: Limit, y: number, frame: Omit<LabelBox, 'text'>): { svg: string; box: LabelBox }[] {
  const left = frame.x + 4;
  const right = frame.x + frame.width - 4;
  const o = { fill: '#c62828' };
  return [
    text(l.label, left, y - 4, 10, o),
    text(l.label, right, y - 4, 10, { ...o, anchor: 'end' }),
    text(l.label, left, y + 13, 10, o),
    text(l.label, right, y + 13, 10, { ...o, anchor: 'end' }),
  ];
}

/** Places for the label of a vertical limit line at `x`. */
function xLimitPlaces(l: Limit, x: number, frame: Omit<LabelBox, 'text'>): { svg: string; box: LabelBox }[] {
  const bottom = frame.y + frame.height - 4;
  const top = frame.y + 4;
  const o = { fill: '#1565c0' };
  const up = { ...o, rotate: true };
  // Along the line first; where data crosses it, across at the top or bottom beside it.
  return [
    text(l.label, x - 5, bottom, 10, up),
    text(l.label, x - 5, top, 10, { ...up, anchor: 'end' }),
    text(l.label, x + 13, bottom, 10, up),
    text(l.label, x + 13, top, 10, { ...up, anchor: 'end' }),
    text(l.label, x + 4, top + 10, 10, o),
    text(l.label, x - 4, top + 10, 10, { ...o, anchor: 'end' }),
    text(l.label, x + 4, bottom, 10, o),
    text(l.label, x - 4, bottom, 10, { ...o, anchor: 'end' }),
  ];
}

/** A series as small multiples, one panel per design, with limits drawn in every panel. */
export function seriesPlot(cells: readonly CellResult[], spec: SeriesSpec): PlotSvg {
  const measured = designSeries(cells, spec.name);
  const refusedLines = spec.refused === undefined ? [] : designSeries(cells, spec.refused.name);
  // One panel per design with either kind of point, in the order the designs first appear.
  const designs = [...new Set([...measured, ...refusedLines].map((l) => l.design))];
  const none = { points: [], samples: 0 };
  const lines = designs.map((design) => ({
    design,
    points: (measured.find((l) => l.design === design) ?? none).points,
    refused: (refusedLines.find((l) => l.design === design) ?? none).points,
    samples:
      (measured.find((l) => l.design === design) ?? none).samples +
      (refusedLines.find((l) => l.design === design) ?? none).samples,
  }));
  const refusedN = lines.reduce((k, l) => k + l.refused.length, 0);
  const n = lines.reduce((k, l) => k + l.points.length, 0) + refusedN;
  if (n === 0) {
    return placeholder(
      spec.name,
      spec.title,
      `No design that ran produced the series "${spec.name}" (${spec.what}).`,
      `no data: no design that ran produced "${spec.name}"`,
    );
  }
  const scale = spec.yCounts ? 1 : 1e-3; // ns → µs for costs
  const xs = lines.flatMap((l) => [...l.points, ...l.refused].map((p) => p.x));
  const ys = lines.flatMap((l) => [...l.points, ...l.refused].map((p) => p.y * scale));
  const xLimits = spec.limits.filter((l) => l.axis === 'x').map((l) => l.value);
  const yLimits = spec.limits.filter((l) => l.axis === 'y').map((l) => l.value);
  const xHi = Math.max(...xs, ...xLimits) * (spec.xLog ? 1.5 : 1.05);
  const xLo = spec.xLog ? Math.max(1, Math.min(...xs) / 1.5) : 0;
  const yHi = Math.max(1, ...ys, ...yLimits) * 1.1;
  const xTicks = spec.xLog ? decadeTicks(xLo, xHi) : spec.xCounts ? integerTicks(xLo, xHi) : undefined;
  const yTicks = spec.yCounts ? integerTicks(0, yHi) : undefined;
  const yTickTexts = (yTicks ?? integerTicks(0, yHi)).map((v) => tickText(v, spec.yCounts));
  // Room for the widest y tick label, so no digit is clipped.
  const marginLeft = Math.max(
    MARGIN.left,
    14 + Math.max(...yTickTexts.map((t) => t.length)) * 11 * CHAR_WIDTH,
  );
  const legend = refusedN > 0 ? spec.refused : undefined;
  const top = TITLE_H + (legend === undefined ? 0 : LEGEND_H);
  const rows = Math.ceil(lines.length / COLS);
  const cols = Math.min(COLS, lines.length);
  const width = 56 + cols * PANEL_W + (cols - 1) * GAP_X + 16;
  const height = top + rows * (PANEL_H + GAP_Y) - GAP_Y + 18 + 36;
  const parts: string[] = [];
  const labels: LabelBox[] = [];
  const put = (t: { svg: string; box: LabelBox }): void => {
    parts.push(t.svg);
    labels.push(t.box);
  };
  put(text(spec.title, 16, 24, 16, { bold: true }));
  if (legend !== undefined) {
    // ● measured   × refused, on a row of its own under the title.
    parts.push('<circle cx="20" cy="44" r="2.5" fill="#333"/>');
    const inUse = text(spec.yLabel, 28, 48, 11);
    put(inUse);
    const cx = inUse.box.x + inUse.box.width + 20;
    parts.push(cross(cx, 44, 3.5));
    put(text(legend.legend, cx + 8, 48, 11, { fill: REFUSED_COLOR }));
  }
  lines.forEach((line, i) => {
    const px = 56 + (i % COLS) * (PANEL_W + GAP_X);
    const py = top + Math.floor(i / COLS) * (PANEL_H + GAP_Y) + 18;
    const data = line.points.map((p) => ({ x: p.x, y: p.y * scale }));
    const past = line.refused.map((p) => ({ x: p.x, y: p.y * scale }));
    const el = renderPlot({
      width: PANEL_W,
      height: PANEL_H,
      marginLeft,
      marginBottom: 24,
      marginRight: MARGIN.right,
      marginTop: 6,
      style: { fontFamily: FONT, fontSize: '11px' },
      x: {
        type: spec.xLog ? 'log' : 'linear',
        domain: [xLo, xHi],
        ...(xTicks === undefined ? {} : { ticks: xTicks }),
        tickFormat: (v: number) => tickText(v, spec.xCounts),
        label: null,
        grid: true,
      },
      y: {
        domain: [0, yHi],
        ticks: yTicks ?? 5,
        tickFormat: (v: number) => tickText(v, spec.yCounts),
        label: null,
        grid: true,
      },
      marks: [
        Plot.frame({ stroke: '#ccc' }),
        ...spec.limits.map((l) =>
          l.axis === 'y'
            ? Plot.ruleY([l.value], { stroke: '#c62828', strokeDasharray: '5,3' })
            : Plot.ruleX([l.value], { stroke: '#1565c0', strokeDasharray: '5,3' }),
        ),
        Plot.line(data, { x: 'x', y: 'y', stroke: '#333', strokeWidth: 1.5 }),
        Plot.dot(data, { x: 'x', y: 'y', fill: '#333', r: 2.5 }),
        ...(past.length === 0
          ? []
          : [
              Plot.line(continuation(data, past), {
                x: 'x',
                y: 'y',
                stroke: REFUSED_COLOR,
                strokeWidth: 1.5,
                strokeDasharray: '2,2',
              }),
              Plot.dot(past, { x: 'x', y: 'y', symbol: 'times', stroke: REFUSED_COLOR, r: 3.5 }),
            ]),
      ],
    });
    const inner = String(el).replace(/^<svg /, `<svg x="${px}" y="${py}" `);
    parts.push(inner);
    put(text(line.design, px + marginLeft, py - 6, 12, { bold: true }));
    // Limit labels in panel coordinates, from Plot's own scales: each at the first place that
    // stays inside the frame and clear of the other labels and of the data drawn.
    const sx = el.scale('x')!;
    const sy = el.scale('y')!;
    const at = (p: { x: number; y: number }) => ({
      x: px + (sx.apply!(p.x) as number),
      y: py + (sy.apply!(p.y) as number),
    });
    const drawn = [...pathBoxes(data.map(at)), ...pathBoxes(continuation(data, past).map(at))];
    const frame = {
      x: px + marginLeft,
      y: py + 6,
      width: PANEL_W - marginLeft - MARGIN.right,
      height: PANEL_H - 30,
    };
    for (const l of spec.limits) {
      const candidates =
        l.axis === 'y'
          ? yLimitPlaces(l, at({ x: 0, y: l.value }).y, frame)
          : xLimitPlaces(l, at({ x: l.value, y: 0 }).x, frame);
      const clear = candidates.find(
        (c) =>
          inside(c.box, frame) &&
          !labels.some((b) => overlaps(b, c.box)) &&
          !drawn.some((b) => overlaps(b, c.box)),
      );
      put(clear ?? candidates[0]!);
    }
  });
  put(text(spec.xLabel, width / 2, height - 10, 12, { anchor: 'middle' }));
  put(
    text(spec.yLabel, 16, top + 18 + (rows * (PANEL_H + GAP_Y) - GAP_Y) / 2, 12, {
      anchor: 'middle',
      rotate: true,
    }),
  );
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect width="${width}" height="${height}" fill="white"/>${parts.join('')}</svg>`;
  const samples = lines.reduce((k, l) => k + l.samples, 0);
  return {
    name: spec.name,
    title: spec.title,
    caption:
      `${spec.what}: one panel per design (${lines.length}), the mean of ${samples} samples at each of ${n} x values, ` +
      `measured on the model${spec.limits.length > 0 ? `; dashed lines: ${spec.limits.map((l) => l.label).join(', ')}` : ''}` +
      `${legend === undefined ? '' : `; red crosses on a dotted line: ${refusedN} points where a ${legend.legend}`}.`,
    svg,
    points: n,
    labels,
    size: [width, height],
  };
}

/** Cells of the matrix plot: one per scenario × design that ran. */
export function heatCells(
  cells: readonly CellResult[],
): { design: string; scenario: string; kind: string; label: string }[] {
  return cells.map((c) => {
    const m = matrixCell(c);
    return { design: c.design, scenario: c.scenario, kind: m.kind, label: m.text };
  });
}

/** The design × scenario matrix, each cell coloured by the kind of its worst failure. */
export function violationsHeatmap(cells: readonly CellResult[]): PlotSvg {
  const name = 'violations';
  const title = 'Failing invariants per design × scenario';
  if (cells.length === 0) return placeholder(name, title, 'No cells ran.', 'no data: no cells ran');
  const data = heatCells(cells);
  const designs = [...new Set(data.map((d) => d.design))];
  const scenarios = [...new Set(data.map((d) => d.scenario))];
  const longest = Math.max(...scenarios.map((s) => s.length));
  const kinds = Object.keys(KIND_STYLE);
  const marginLeft = 16 + longest * 11 * CHAR_WIDTH;
  const colW = Math.max(96, 16 + Math.max(...designs.map((d) => d.length)) * 11 * CHAR_WIDTH);
  const width = Math.ceil(marginLeft + designs.length * colW + 16);
  const height = 90 + scenarios.length * 28;
  const el = renderPlot({
    width,
    height: height - TITLE_H,
    marginLeft,
    marginTop: 40,
    marginRight: 16,
    style: { fontFamily: FONT, fontSize: '11px' },
    x: { domain: designs, label: null, axis: 'top', tickRotate: 0 },
    y: { domain: scenarios, label: null },
    color: {
      type: 'ordinal',
      domain: kinds,
      range: kinds.map((k) => KIND_STYLE[k as keyof typeof KIND_STYLE].color),
    },
    marks: [
      Plot.cell(data, { x: 'design', y: 'scenario', fill: 'kind', inset: 1 }),
      Plot.text(data, {
        x: 'design',
        y: 'scenario',
        text: 'label',
        fill: (d: { kind: string }) => (d.kind === 'pass' || d.kind === 'na' ? '#222' : 'white'),
      }),
    ],
  });
  const t = text(title, 16, 24, 16, { bold: true });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect width="${width}" height="${height}" fill="white"/>${t.svg}` +
    `${String(el).replace(/^<svg /, `<svg x="0" y="${TITLE_H}" `)}</svg>`;
  const bad = data.filter((d) => d.kind !== 'pass' && d.kind !== 'na').length;
  return {
    name,
    title,
    caption:
      `${data.length} cells, ${bad} failing; a cell names the invariants it fails and is coloured by the worst kind: ` +
      `${(['routing', 'delivery', 'abi', 'resources'] as const).map((k) => KIND_STYLE[k].label).join('; ')}.`,
    svg,
    points: data.length,
    labels: [t.box],
    size: [width, height],
  };
}

/** Every plot of the report, in report order. */
export function reportPlots(cells: readonly CellResult[]): PlotSvg[] {
  return [...SERIES_PLOTS.map((s) => seriesPlot(cells, s)), violationsHeatmap(cells)];
}

/** Whether two label boxes overlap (touching edges do not count). */
export function overlaps(a: LabelBox, b: LabelBox): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/**
 * Rasterise an SVG to PNG with resvg (DejaVu Sans for text; resvg draws no text without a font),
 * on libuv's thread pool: several render at once, and the caller's thread goes on meanwhile.
 */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  const image = await renderAsync(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return image.asPng();
}
