/**
 * `report.html`: the same content as report.md in one self-contained page — inline CSS, the
 * plots as inline SVG, no scripts, fonts or other external assets (links go only to the trace
 * files, results.json and costs.csv beside it). It opens on the verdicts and the design ×
 * scenario matrix, each pair one cell coloured by the kind of its worst failure with the failing
 * invariants written in it; the long tables follow. Pure: strings in, a string out.
 */

import {
  type CellResult,
  COST_TABLE_NS,
  INVARIANT_TITLES,
  INVARIANTS,
  type Results,
} from '../scenario/cell.ts';
import { evaluateHypotheses } from './hypotheses.ts';
import {
  COST_COLUMNS,
  headlineText,
  hypothesisAnchor,
  outcomeText,
  verdictText,
  violationEntries,
} from './markdown.ts';
import {
  appliesTo,
  designLine,
  failureCounts,
  groupNotes,
  KIND_STYLE,
  matrix,
  raceVerdictText,
} from './summary.ts';

/** Escape text for HTML content and attribute values. */
export function esc(s: string | number): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const CSS = `
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:2rem auto;max-width:78rem;padding:0 1rem;color:#222;line-height:1.45}
h1,h2,h3{line-height:1.2}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{background:#e8f5e9}td.fail{background:#ffcdd2;font-weight:bold}td.na{color:#888}
.verdict{font-weight:bold;padding:.05rem .4rem;border-radius:.2rem}
.v-supported{background:#c8e6c9}.v-refuted{background:#ffcdd2}.v-mixed{background:#fff3c4}.v-not-tested{background:#eee}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto;background:#fff}figcaption{font-size:.9rem;color:#555}
code{background:#f5f5f5;padding:0 .2rem}
table.matrix td{text-align:center;min-width:6.5rem;font-size:.85rem}table.matrix td.k-pass{color:#2e7d32}
table.matrix td.k-routing,table.matrix td.k-delivery,table.matrix td.k-abi,table.matrix td.k-resources{color:#fff;font-weight:bold}
.legend span{display:inline-block;margin-right:1rem;font-size:.85rem}.legend i{display:inline-block;width:.9rem;height:.9rem;vertical-align:-.1rem;margin-right:.3rem;border:1px solid #999}
ul.verdicts li{margin:.3rem 0}
${Object.entries(KIND_STYLE)
  .map(([k, v]) => `.k-${k}{background:${v.color}}`)
  .join('')}
`;

/** A plot for the page: inline SVG and its caption. */
export interface HtmlPlot {
  readonly name: string;
  readonly title: string;
  readonly caption: string;
  readonly svg: string;
}

function statusClass(status: string): string {
  return status === 'pass' ? 'pass' : status === 'fail' ? 'fail' : 'na';
}

function row(cells: readonly string[]): string {
  return `<tr>${cells.join('')}</tr>`;
}

function invariantRow(c: CellResult): string {
  return row([
    `<td>${esc(c.scenario)}</td>`,
    `<td>${esc(c.design)}</td>`,
    `<td class="num">${c.seed}</td>`,
    ...INVARIANTS.map((i) => {
      const o = c.invariants[i];
      return `<td class="${statusClass(o.status)}">${esc(outcomeText(o))}</td>`;
    }),
  ]);
}

function costRow(c: CellResult): string {
  return row([
    `<td>${esc(c.scenario)}</td>`,
    `<td>${esc(c.design)}</td>`,
    ...COST_COLUMNS.map(([, f]) => `<td class="num">${esc(f(c.costs))}</td>`),
  ]);
}

/** Strip an XML prolog so the SVG can sit inline. */
function inlineSvg(svg: string): string {
  return svg.replace(/^<\?xml[^>]*>\s*/, '');
}

/** The matrix as an HTML table: scenarios down, designs across, one coloured cell per pair. */
function matrixHtml(cells: readonly CellResult[]): string[] {
  const m = matrix(cells);
  const legend = Object.entries(KIND_STYLE)
    .map(([k, v]) => `<span><i class="k-${k}"></i>${esc(v.label)}</span>`)
    .join('');
  return [
    '<table class="matrix"><thead>',
    row(['scenario', ...m.designs].map((h) => `<th>${esc(h)}</th>`)),
    '</thead><tbody>',
    ...m.scenarios.map((s) =>
      row([
        `<th>${esc(s)}</th>`,
        ...m.designs.map((d) => {
          const c = m.cell(d, s);
          return c === undefined
            ? '<td></td>'
            : `<td class="k-${c.kind}" title="${esc(`${s} × ${d}: ${KIND_STYLE[c.kind].label}`)}">${esc(c.text)}</td>`;
        }),
      ]),
    ),
    '</tbody></table>',
    `<p class="legend">${legend}</p>`,
  ];
}

/** The whole report.html. */
export function renderHtml(results: Results, plots: readonly HtmlPlot[]): string {
  const cells = results.cells;
  const hyps = evaluateHypotheses(cells);
  const p: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>xivelab compare</title>',
    `<style>${CSS}</style>`,
    '</head><body>',
    '<h1>xivelab compare</h1>',
    `<p>${esc(headlineText(results))}</p>`,
    '<h2 id="verdicts">Verdicts</h2>',
    '<ul class="verdicts">',
    ...hyps.map(
      (h) =>
        `<li><strong>${esc(h.id)}</strong> ${esc(h.claim)} — <span class="verdict v-${h.verdict.replace(' ', '-')}">${esc(verdictText(h))}</span>: ` +
        `${esc(h.headline)} (<a href="#${hypothesisAnchor(h.id)}">evidence</a>)</li>`,
    ),
    '</ul>',
    '<h2 id="matrix">Matrix</h2>',
    ...matrixHtml(cells),
    '<h2 id="per-design">Per design</h2>',
    `<ul>${failureCounts(cells)
      .designs.map((d) => `<li><strong>${esc(d.design)}</strong> ${esc(designLine(d))}</li>`)
      .join('')}</ul>`,
    '<h2 id="hypotheses">Hypotheses in detail</h2>',
  ];
  for (const h of hyps) {
    p.push(
      `<h3 id="${hypothesisAnchor(h.id)}">${esc(h.id)}. ${esc(h.claim)} <span class="verdict v-${h.verdict.replace(' ', '-')}">${esc(verdictText(h))}</span></h3>`,
      `<p><em>${esc(h.source)}; decided by: ${esc(h.designs.join(', '))}</em></p>`,
      `<ul>${h.measured.map((m) => `<li>${esc(m)}</li>`).join('')}</ul>`,
    );
  }
  p.push(
    '<h2 id="invariants">Invariants</h2>',
    `<ul>${INVARIANTS.map((i) => `<li><strong>${i}</strong> ${esc(INVARIANT_TITLES[i])}</li>`).join('')}</ul>`,
    '<table><thead>',
    row(['scenario', 'design', 'seed', ...INVARIANTS].map((h) => `<th>${esc(h)}</th>`)),
    '</thead><tbody>',
    ...cells.map(invariantRow),
    '</tbody></table>',
    '<h2 id="costs">Costs</h2>',
    '<p>Counts of the model’s own paths running; peaks for memslots and VMAs; modeled time = Σ count × the cost table. ' +
      'The same numbers: <a href="costs.csv">costs.csv</a>.</p>',
    '<table><thead>',
    row(['scenario', 'design', ...COST_COLUMNS.map(([h]) => h)].map((h) => `<th>${esc(h)}</th>`)),
    '</thead><tbody>',
    ...cells.map(costRow),
    '</tbody></table>',
    '<table><thead><tr><th>path</th><th>ns per occurrence</th></tr></thead><tbody>',
    ...Object.entries(COST_TABLE_NS).map(([k, v]) =>
      row([`<td>${esc(k)}</td>`, `<td class="num">${v}</td>`]),
    ),
    '</tbody></table>',
    '<h2 id="plots">Plots</h2>',
  );
  for (const pl of plots) {
    p.push(
      `<figure id="plot-${esc(pl.name)}"><h3>${esc(pl.title)}</h3>`,
      inlineSvg(pl.svg),
      `<figcaption>${esc(pl.caption)}</figcaption></figure>`,
    );
  }
  p.push('<h2 id="violations">Violations</h2>');
  const vs = violationEntries(cells);
  if (vs.length === 0) p.push('<p>None.</p>');
  else {
    p.push(
      '<p>Each trace opens in Perfetto (ui.perfetto.dev) or chrome://tracing; under each violation, the events of its trace that touch what it names, in order.</p><ul>',
    );
    for (const v of vs) {
      const story = v.story.map((l) => `<li><code>${esc(l.text)}</code></li>`).join('');
      p.push(
        `<li><strong>${esc(v.cell.scenario)} × ${esc(v.cell.design)}, ${v.invariant}</strong> ` +
          `(${v.cell.invariants[v.invariant].violations}): ${esc(v.message)} — ` +
          `<a href="traces/${esc(v.file)}">${esc(v.file)}</a> (${v.events} events)` +
          (story === '' ? '' : `<ol class="story">${story}</ol>`) +
          '</li>',
      );
    }
    p.push('</ul>');
  }
  if (results.races !== undefined) {
    p.push(
      '<h2 id="races">Races</h2>',
      '<p>Every built-in race scenario (<code>scenarios/races/</code>) under its designs, every ' +
        "interleaving of its kernel threads at the kernel's atomicity explored (DPOR with sleep sets; " +
        "<code>xivelab explore &lt;scenario&gt;</code>). <code>rmap-fixed</code> carries vfio-pci's " +
        '<code>memory_lock</code> pattern: the kernel cannot insert a PFN under <code>sb-&gt;lock</code> ' +
        '(<code>vmf_insert_pfn</code> may sleep). A counterexample replays with <code>--design</code> and ' +
        '<code>--replay &lt;schedule&gt;</code>; its trace has one track per thread.</p>',
      '<table><thead><tr><th>race scenario</th><th>design</th><th>verdict</th><th>executions</th>' +
        '<th>traces</th><th>counterexample</th></tr></thead><tbody>',
    );
    for (const r of results.races) {
      const c = r.counterexample;
      const ce =
        c === null
          ? '—'
          : `${esc(c.message)} — ${c.steps} steps, schedule <code>${esc(c.schedule)}</code> — ` +
            `<a href="traces/${esc(c.trace)}">trace</a>`;
      p.push(
        `<tr><td>${esc(r.scenario)}</td><td>${esc(r.design)}</td><td>${esc(raceVerdictText(r))}</td>` +
          `<td>${r.executions}</td><td>${r.traces}</td><td>${ce}</td></tr>`,
      );
    }
    p.push('</tbody></table>');
  }
  const notes = groupNotes(cells);
  p.push('<h2 id="notes">Notes</h2><ul>');
  for (const g of notes.shared) p.push(`<li>${esc(g.note)} <em>(${esc(appliesTo(g, cells))})</em></li>`);
  for (const o of notes.own) {
    p.push(
      `<li><strong>${esc(o.cell)}</strong><ul>${o.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></li>`,
    );
  }
  p.push(
    '</ul>',
    '<p>Data: <a href="results.json">results.json</a> (schema: <code>xivelab schema --results</code>), ' +
      '<a href="costs.csv">costs.csv</a>.</p>',
    '</body></html>',
    '',
  );
  return p.join('\n');
}
