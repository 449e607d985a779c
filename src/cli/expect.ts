/**
 * `xivelab compare --expect FILE`: the verdicts CI expects per cell, and the cells of a run that
 * differ from them. FILE is either a `results.json` of an earlier compare (every invariant's
 * status of every cell) or a small YAML/JSON map `scenario → design → verdict`, where a verdict
 * is `pass`, `fail` or `n/a` for the whole cell, or a map of invariants to those:
 *
 * ```yaml
 * foundation:
 *   emulated: pass
 *   rmap: {I1: pass, I6: fail}
 * ```
 *
 * A whole-cell verdict is `fail` when any invariant fails, `pass` when none fails and one
 * passes, `n/a` when none applies.
 */

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { type CellResult, INVARIANTS, type InvariantId } from '../scenario/cell.ts';
import { UsageError } from './usage-error.ts';

const Status = z.enum(['pass', 'fail', 'n/a']);
type Status = z.output<typeof Status>;

const Verdict = z.union([Status, z.partialRecord(z.enum(INVARIANTS), Status)]);
type Verdict = z.output<typeof Verdict>;

const VerdictMap = z.record(z.string(), z.record(z.string(), Verdict));

const ResultsLike = z.object({
  tool: z.literal('xivelab'),
  cells: z.array(
    z.object({
      scenario: z.string(),
      design: z.string(),
      invariants: z.record(z.enum(INVARIANTS), z.object({ status: Status })),
    }),
  ),
});

/** Expected verdicts, by `scenario × design`. */
export class Expectations {
  readonly file: string;
  private readonly cells: Map<string, Verdict>;

  constructor(file: string, cells: Map<string, Verdict>) {
    this.file = file;
    this.cells = cells;
  }

  /**
   * Read `file`.
   * @throws UsageError when it cannot be read or is neither form.
   */
  static load(file: string): Expectations {
    let doc: unknown;
    try {
      doc = parse(readFileSync(file, 'utf8'));
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why = code === 'ENOENT' ? 'no such file' : e instanceof Error ? e.message : String(e);
      throw new UsageError(`--expect ${file}: ${why.split('\n')[0]}`);
    }
    const cells = new Map<string, Verdict>();
    if (typeof doc === 'object' && doc !== null && 'cells' in doc) {
      const r = ResultsLike.safeParse(doc);
      if (!r.success) throw new UsageError(`--expect ${file}: not a results.json: ${issue(r.error)}`);
      for (const c of r.data.cells) {
        cells.set(
          key(c.scenario, c.design),
          Object.fromEntries(Object.entries(c.invariants).map(([id, o]) => [id, o.status])),
        );
      }
      return new Expectations(file, cells);
    }
    const m = VerdictMap.safeParse(doc);
    if (!m.success) {
      throw new UsageError(
        `--expect ${file}: ${issue(m.error)} (expected scenario → design → pass, fail, n/a or a map of I1..I7 to those)`,
      );
    }
    for (const [scenario, designs] of Object.entries(m.data)) {
      for (const [design, v] of Object.entries(designs)) cells.set(key(scenario, design), v);
    }
    return new Expectations(file, cells);
  }

  /** One line per cell of `run` that differs from what is expected (empty: all match). */
  differences(run: readonly CellResult[]): string[] {
    const out: string[] = [];
    for (const c of run) {
      const want = this.cells.get(key(c.scenario, c.design));
      const name = `${c.scenario} × ${c.design}`;
      if (want === undefined) {
        out.push(`${name}: no expected verdict (got ${cellVerdict(c)})`);
      } else if (typeof want === 'string') {
        const got = cellVerdict(c);
        if (got !== want) out.push(`${name}: ${want} → ${got}`);
      } else {
        const changed = INVARIANTS.filter(
          (id) => want[id] !== undefined && want[id] !== c.invariants[id].status,
        );
        if (changed.length > 0) {
          out.push(
            `${name}: ${changed.map((id) => `${id} ${want[id]} → ${c.invariants[id].status}`).join(', ')}`,
          );
        }
      }
    }
    return out;
  }
}

function key(scenario: string, design: string): string {
  return `${scenario}\u0000${design}`;
}

/** The first issue of a zod error, with its path. */
function issue(e: z.ZodError): string {
  const i = e.issues[0]!;
  return i.path.length === 0 ? i.message : `${i.path.join('.')}: ${i.message}`;
}

/** The whole cell's verdict. */
export function cellVerdict(c: CellResult): Status {
  const statuses = INVARIANTS.map((id: InvariantId) => c.invariants[id].status);
  if (statuses.includes('fail')) return 'fail';
  return statuses.includes('pass') ? 'pass' : 'n/a';
}
