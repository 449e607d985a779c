/**
 * What a reviewer reads first: the matrix of designs × scenarios with the failing invariants
 * written in each cell and coloured by the kind of failure, the counts a reader counts (cells
 * that fail, scenarios in which a design fails an invariant — not repeats of one failure), and
 * the notes that repeat across cells gathered once. Pure: cells in, plain data out; the
 * Markdown and HTML renderers lay it out.
 */

import { type CellResult, INVARIANTS, type InvariantId } from '../scenario/cell.ts';
import type { RaceRow } from '../scenario/race-row.ts';

/** What a failing invariant means for the design, coarsest first. */
export type FailureKind = 'routing' | 'delivery' | 'abi' | 'resources';

/** Each invariant's kind: I1–I3 routing/isolation/lifetime, I4–I5 lost/spurious, I6, I7. */
export const INVARIANT_KIND: Readonly<Record<InvariantId, FailureKind>> = {
  I1: 'routing',
  I2: 'routing',
  I3: 'routing',
  I4: 'delivery',
  I5: 'delivery',
  I6: 'abi',
  I7: 'resources',
};

/** Legend text and colour of each kind (and of a pass and an all-n/a cell). */
export const KIND_STYLE: Readonly<Record<FailureKind | 'pass' | 'na', { label: string; color: string }>> = {
  routing: { label: 'routing / isolation / lifetime (I1–I3)', color: '#c62828' },
  delivery: { label: 'lost or spurious interrupts (I4–I5)', color: '#ef6c00' },
  abi: { label: 'guest ABI differs from the emulated reference (I6)', color: '#6a1b9a' },
  resources: { label: 'resource limits exceeded (I7)', color: '#1565c0' },
  pass: { label: 'every checked invariant holds', color: '#e8f5e9' },
  na: { label: 'nothing to check', color: '#f5f5f5' },
};

/** Severity order used to colour a cell that fails invariants of several kinds. */
const KIND_ORDER: readonly FailureKind[] = ['routing', 'delivery', 'abi', 'resources'];

/** One design × scenario pair of the matrix. */
export interface MatrixCell {
  readonly design: string;
  readonly scenario: string;
  /** The invariants that failed, in I1…I7 order. */
  readonly failing: readonly InvariantId[];
  /** The kind the cell is coloured by: the most severe of its failures, or pass / na. */
  readonly kind: FailureKind | 'pass' | 'na';
  /** What the cell says: `pass`, `n/a` or the failing invariants (`I1 I2`). */
  readonly text: string;
}

/** The matrix: designs as columns, scenarios as rows, in the order the cells ran. */
export interface Matrix {
  readonly designs: readonly string[];
  readonly scenarios: readonly string[];
  /** `cell(design, scenario)`, or undefined for a pair that did not run. */
  readonly cell: (design: string, scenario: string) => MatrixCell | undefined;
}

/** The matrix cell of one result. */
export function matrixCell(c: CellResult): MatrixCell {
  const failing = INVARIANTS.filter((i) => c.invariants[i].status === 'fail');
  const checked = INVARIANTS.some((i) => c.invariants[i].status !== 'n/a');
  const kind =
    failing.length > 0
      ? (KIND_ORDER.find((k) => failing.some((i) => INVARIANT_KIND[i] === k)) ?? 'routing')
      : checked
        ? 'pass'
        : 'na';
  const text = failing.length > 0 ? failing.join(' ') : checked ? 'pass' : 'n/a';
  return { design: c.design, scenario: c.scenario, failing, kind, text };
}

/** Build the matrix of `cells`. */
export function matrix(cells: readonly CellResult[]): Matrix {
  const byKey = new Map<string, MatrixCell>();
  for (const c of cells) byKey.set(`${c.design}\u0000${c.scenario}`, matrixCell(c));
  return {
    designs: [...new Set(cells.map((c) => c.design))],
    scenarios: [...new Set(cells.map((c) => c.scenario))],
    cell: (design, scenario) => byKey.get(`${design}\u0000${scenario}`),
  };
}

/** Per design: how many of its scenarios fail, and in how many scenarios each invariant fails. */
export interface DesignFailures {
  readonly design: string;
  readonly cells: number;
  readonly failingCells: number;
  /** Invariant → scenarios in which it failed, for the invariants that failed at all. */
  readonly byInvariant: readonly { invariant: InvariantId; scenarios: readonly string[] }[];
}

/** The counts a reader counts: failing cells overall and per design. */
export interface FailureCounts {
  readonly cells: number;
  readonly failingCells: number;
  readonly designs: readonly DesignFailures[];
}

/** Count failing cells, overall and per design, and the scenarios each invariant fails in. */
export function failureCounts(cells: readonly CellResult[]): FailureCounts {
  const designs = [...new Set(cells.map((c) => c.design))].map((design): DesignFailures => {
    const mine = cells.filter((c) => c.design === design);
    return {
      design,
      cells: mine.length,
      failingCells: mine.filter((c) => matrixCell(c).failing.length > 0).length,
      byInvariant: INVARIANTS.map((invariant) => ({
        invariant,
        scenarios: mine.filter((c) => c.invariants[invariant].status === 'fail').map((c) => c.scenario),
      })).filter((f) => f.scenarios.length > 0),
    };
  });
  return {
    cells: cells.length,
    failingCells: designs.reduce((n, d) => n + d.failingCells, 0),
    designs,
  };
}

/** `n scenario(s)` / `n cell(s)`. */
export function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** One line per design: `fails I1 in 3 scenarios, I2 in 4` or `holds in all 11 scenarios`. */
export function designLine(d: DesignFailures): string {
  if (d.failingCells === 0) return `holds in all ${plural(d.cells, 'scenario')}`;
  const parts = d.byInvariant.map((f, k) =>
    k === 0
      ? `${f.invariant} in ${plural(f.scenarios.length, 'scenario')}`
      : `${f.invariant} in ${f.scenarios.length}`,
  );
  return `fails in ${d.failingCells} of ${plural(d.cells, 'scenario')}: ${parts.join(', ')}`;
}

/** A note and the cells it was written for. */
export interface NoteGroup {
  readonly note: string;
  /** `scenario × design` of every cell that carries it. */
  readonly cells: readonly string[];
}

/**
 * The cells' notes grouped by text: a sentence written for more than one cell is listed once
 * (`shared`), with the cells it applies to; the rest stay with their cell (`own`).
 */
export function groupNotes(cells: readonly CellResult[]): {
  shared: readonly NoteGroup[];
  own: readonly { cell: string; notes: readonly string[] }[];
} {
  const where = new Map<string, string[]>();
  for (const c of cells) {
    for (const n of new Set(c.notes)) {
      const list = where.get(n) ?? [];
      list.push(`${c.scenario} × ${c.design}`);
      where.set(n, list);
    }
  }
  const shared = [...where].filter(([, w]) => w.length > 1).map(([note, w]) => ({ note, cells: w }));
  const own = cells
    .map((c) => ({
      cell: `${c.scenario} × ${c.design}`,
      notes: [...new Set(c.notes)].filter((n) => (where.get(n)?.length ?? 0) === 1),
    }))
    .filter((o) => o.notes.length > 0);
  return { shared, own };
}

/** Describe where a shared note applies: every cell, every cell of some designs, or a count. */
export function appliesTo(group: NoteGroup, cells: readonly CellResult[]): string {
  if (group.cells.length === cells.length) return 'every cell';
  const set = new Set(group.cells);
  const designs = [...new Set(cells.map((c) => c.design))].filter((d) =>
    cells.filter((c) => c.design === d).every((c) => set.has(`${c.scenario} × ${c.design}`)),
  );
  const covered = cells.filter((c) => designs.includes(c.design)).length;
  if (designs.length > 0 && covered === group.cells.length) return `every cell of ${designs.join(', ')}`;
  return plural(group.cells.length, 'cell');
}

/** Verdict of a race row as the report shows it. */
export function raceVerdictText(r: RaceRow): string {
  if (r.verdict !== 'violation') return r.verdict;
  return r.counterexample?.kind === 'deadlock' ? 'DEADLOCK' : 'VIOLATION';
}
