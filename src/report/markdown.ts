/**
 * `report.md` and the plain-text matrix `xivelab compare` prints. The report opens with what a
 * reviewer reads in a minute — one line per hypothesis of the debate (claim → verdict → the
 * measurement that decides it), the design × scenario matrix with the failing invariants in each
 * cell, and per design the scenarios it fails in — then the details: the hypotheses with
 * everything measured, the invariant and cost tables, the plots, the violations with their
 * trace files, and the notes (a sentence written for many cells once). Pure: strings in,
 * strings out.
 */

import {
  type CellResult,
  COST_TABLE_NS,
  type Costs,
  INVARIANT_TITLES,
  INVARIANTS,
  type InvariantOutcome,
  type Results,
} from '../scenario/cell.ts';
import type { RaceRow } from '../scenario/race-row.ts';
import { violationTraceFile } from './chrome-trace.ts';
import { evaluateHypotheses, type Hypothesis } from './hypotheses.ts';
import { type StoryLine, violationStory } from './story.ts';
import {
  appliesTo,
  designLine,
  type FailureKind,
  failureCounts,
  groupNotes,
  KIND_STYLE,
  matrix,
  plural,
  raceVerdictText,
} from './summary.ts';
import { formatTable } from './table.ts';

/** How an invariant outcome reads in a table. */
export function outcomeText(o: InvariantOutcome): string {
  return o.status === 'fail' ? `FAIL ×${o.violations}` : o.status;
}

/** Cost columns, in table order: header and accessor. */
export const COST_COLUMNS: readonly (readonly [string, (c: Costs) => number | string])[] = [
  ['memslots', (c) => c.memslotsPeak],
  ['VMAs', (c) => c.vmasPeak],
  ['host faults', (c) => c.hostFaults],
  ['partition faults', (c) => c.partitionFaults],
  ['PTEs zapped', (c) => c.ptesZapped],
  ['VMAs visited', (c) => c.vmasVisited],
  ['VMM exits', (c) => c.vmmExits],
  ['hcalls', (c) => c.hcalls],
  ['modeled ms', (c) => Number(formatMs(c.modeledTimeNs))],
];

/** Nanoseconds as milliseconds with 3 decimals. */
export function formatMs(ns: number): string {
  return (ns / 1e6).toFixed(3);
}

/** The plain-text matrix printed by `xivelab compare` (one row per cell). */
export function textMatrix(cells: readonly CellResult[]): string {
  return formatTable(
    ['scenario', 'design', ...INVARIANTS, ...COST_COLUMNS.map(([h]) => h)],
    cells.map((c) => [
      c.scenario,
      c.design,
      ...INVARIANTS.map((i) => outcomeText(c.invariants[i])),
      ...COST_COLUMNS.map(([, f]) => f(c.costs)),
    ]),
  );
}

/** Escape a table cell for Markdown. */
function md(s: string | number): string {
  return String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A Markdown table. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const align = header.map((_, i) =>
    rows.length > 0 && rows.every((r) => typeof r[i] === 'number') ? '--:' : '---',
  );
  return [
    `| ${header.map(md).join(' | ')} |`,
    `| ${align.join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(md).join(' | ')} |`),
  ].join('\n');
}

/** Verdict as shown in reports. */
export function verdictText(h: Hypothesis): string {
  return h.verdict.toUpperCase();
}

/** What the report needs besides the cells. */
export interface ReportInput {
  readonly results: Results;
  /** Plot file stems with titles and captions, in order (`<name>.svg` / `.png` beside report.md). */
  readonly plots: readonly { name: string; title: string; caption: string }[];
}

/** The violations: one entry per failed invariant of each cell, with its trace file and story. */
export function violationEntries(cells: readonly CellResult[]): {
  cell: CellResult;
  invariant: (typeof INVARIANTS)[number];
  file: string;
  message: string;
  events: number;
  story: StoryLine[];
}[] {
  const out = [];
  for (const c of cells) {
    for (const i of INVARIANTS) {
      const o = c.invariants[i];
      if (o.status !== 'fail' || o.first === null) continue;
      out.push({
        cell: c,
        invariant: i,
        file: violationTraceFile(c.scenario, c.design, i),
        message: o.first.message,
        events: o.first.trace.length,
        story: violationStory(o.first.trace, o.first.message),
      });
    }
  }
  return out;
}

/** The marker a Markdown matrix cell starts with, one per kind (colour where Markdown has none). */
export const KIND_MARK: Readonly<Record<FailureKind | 'pass' | 'na', string>> = {
  routing: '🟥',
  delivery: '🟧',
  abi: '🟪',
  resources: '🟦',
  pass: '✅',
  na: '⬜',
};

/** The opening sentence: what ran, and how many cells fail. */
export function headlineText(r: Results): string {
  const cells = r.cells;
  const counts = failureCounts(cells);
  const seed = r.seed === null ? "each scenario's own seed" : `seed ${r.seed}`;
  return (
    `${plural(cells.length, 'cell')}: ${plural(r.scenarios.length, 'scenario')} × ${plural(r.designs.length, 'design')}, ${seed}. ` +
    `${counts.failingCells} of ${plural(cells.length, 'cell')} fail at least one invariant.`
  );
}

/** The anchor of hypothesis `id` in both reports. */
export function hypothesisAnchor(id: string): string {
  return id.toLowerCase();
}

/** The matrix as Markdown: scenarios down, designs across, a marker and the failing invariants. */
function matrixMarkdown(cells: readonly CellResult[]): string[] {
  const m = matrix(cells);
  return [
    markdownTable(
      ['scenario', ...m.designs],
      m.scenarios.map((s) => [
        s,
        ...m.designs.map((d) => {
          const c = m.cell(d, s);
          return c === undefined ? '' : `${KIND_MARK[c.kind]} ${c.text}`;
        }),
      ]),
    ),
    '',
    (Object.keys(KIND_MARK) as (keyof typeof KIND_MARK)[])
      .map((k) => `${KIND_MARK[k]} ${KIND_STYLE[k].label}`)
      .join(' · '),
  ];
}

/** The whole report.md. */
export function renderMarkdown(input: ReportInput): string {
  const { results: r, plots } = input;
  const cells = r.cells;
  const hyps = evaluateHypotheses(cells);
  const out: string[] = [
    '# xivelab compare',
    '',
    headlineText(r),
    '',
    '## Verdicts',
    '',
    ...hyps.map(
      (h) =>
        `- **${h.id}** ${h.claim} — **${verdictText(h)}**: ${h.headline} ([evidence](#${hypothesisAnchor(h.id)}))`,
    ),
    '',
    '## Matrix',
    '',
    ...matrixMarkdown(cells),
    '',
    '## Per design',
    '',
    ...failureCounts(cells).designs.map((d) => `- **${d.design}** ${designLine(d)}`),
    '',
    '## Hypotheses in detail',
    '',
  ];
  for (const h of hyps) {
    out.push(
      `<a id="${hypothesisAnchor(h.id)}"></a>`,
      `### ${h.id}. ${h.claim} — ${verdictText(h)}`,
      '',
      `_${h.source}; decided by: ${h.designs.join(', ')}_`,
      '',
    );
    for (const m of h.measured) out.push(`- ${m}`);
    out.push('');
  }
  out.push(
    '## Invariants',
    '',
    ...INVARIANTS.map((i) => `- **${i}** ${INVARIANT_TITLES[i]}`),
    '',
    markdownTable(
      ['scenario', 'design', 'seed', ...INVARIANTS],
      cells.map((c) => [
        c.scenario,
        c.design,
        c.seed,
        ...INVARIANTS.map((i) => outcomeText(c.invariants[i])),
      ]),
    ),
    '',
    '## Costs',
    '',
    'Counts of the model’s own paths running; peaks for memslots and VMAs; modeled time = Σ count × the cost table below. ' +
      'The same numbers: [costs.csv](costs.csv).',
    '',
    markdownTable(
      ['scenario', 'design', ...COST_COLUMNS.map(([h]) => h)],
      cells.map((c) => [c.scenario, c.design, ...COST_COLUMNS.map(([, f]) => f(c.costs))]),
    ),
    '',
    '### Cost table (ns per occurrence)',
    '',
    markdownTable(
      ['path', 'ns'],
      Object.entries(COST_TABLE_NS).map(([k, v]) => [k, v]),
    ),
    '',
    'Orders of magnitude for a POWER9 host with KVM HV, radix MMU, 64 KiB pages; the rationale is in `src/scenario/cell.ts`.',
    '',
    '## Plots',
    '',
  );
  for (const p of plots) {
    out.push(
      `### ${p.title}`,
      '',
      `![${p.title}](${p.name}.svg)`,
      '',
      `${p.caption} ([PNG](${p.name}.png))`,
      '',
    );
  }
  out.push('## Violations', '');
  const vs = violationEntries(cells);
  if (vs.length === 0) out.push('None.', '');
  else {
    out.push(
      'Each trace opens in Perfetto (ui.perfetto.dev) or chrome://tracing; under each violation, the events of its trace that touch what it names, in order.',
      '',
    );
    for (const v of vs) {
      out.push(
        `- **${v.cell.scenario} × ${v.cell.design}, ${v.invariant}** (${v.cell.invariants[v.invariant].violations}): ` +
          `${v.message} — [${v.file}](traces/${v.file}) (${v.events} events)`,
      );
      v.story.forEach((l, n) => {
        out.push(`  ${n + 1}. ${l.text}`);
      });
    }
    out.push('');
  }
  out.push(...racesMarkdown(input.results.races));
  out.push('## Notes', '');
  const notes = groupNotes(cells);
  for (const g of notes.shared) out.push(`- ${g.note} _(${appliesTo(g, cells)})_`);
  for (const o of notes.own) {
    out.push(`- **${o.cell}**`);
    for (const n of o.notes) out.push(`  - ${n}`);
  }
  out.push('', 'Data: [results.json](results.json) (schema: `xivelab schema --results`).', '');
  return out.join('\n');
}

/** The "Races" section: race scenario × design → verdict, executions, counterexample link. */
function racesMarkdown(races: readonly RaceRow[] | undefined): string[] {
  if (races === undefined) return [];
  const out = [
    '## Races',
    '',
    'Every built-in race scenario (`scenarios/races/`) under its designs, every interleaving of its ' +
      "kernel threads at the kernel's atomicity explored (DPOR with sleep sets; `xivelab explore <scenario>`). " +
      "`rmap-fixed` carries vfio-pci's `memory_lock` pattern: the kernel cannot insert a PFN under " +
      '`sb->lock` (`vmf_insert_pfn` may sleep), so select + insert hold an rwsem for read and ' +
      'publish + zap hold it for write. A counterexample replays with ' +
      '`xivelab explore <scenario> --design <design> --replay <schedule>`; its trace has one track per thread.',
    '',
    '| race scenario | design | verdict | executions | traces | counterexample |',
    '|---|---|---|---:|---:|---|',
  ];
  for (const r of races) {
    const c = r.counterexample;
    const ce =
      c === null
        ? '—'
        : `${c.message.replace(/\|/g, '\\|')} — ${c.steps} steps, schedule \`${c.schedule}\` — [trace](traces/${c.trace})`;
    out.push(
      `| ${r.scenario} | ${r.design} | ${raceVerdictText(r)} | ${r.executions} | ${r.traces} | ${ce} |`,
    );
  }
  out.push('');
  return out;
}
