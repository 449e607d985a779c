/**
 * Deep links: `#cell=<scenario>/<design>&step=<n>` opens a report cell's run at step n;
 * `#race=<file>&step=<n>` a report's race counterexample (its trace under `traces/`) at step n;
 * `#step=<n>` a trace's or scenario's run; an empty hash the matrix.
 */

export interface Route {
  /** `scenario/design`, or null: the matrix (report) or the one run (trace, scenario). */
  readonly cell: { readonly scenario: string; readonly design: string } | null;
  /** A race counterexample's trace file under the report's `traces/`, or null. */
  readonly race: string | null;
  readonly step: number | null;
}

export function parseRoute(hash: string): Route {
  const q = new URLSearchParams(hash.replace(/^#/, ''));
  const c = q.get('cell');
  const slash = c?.lastIndexOf('/') ?? -1;
  const r = q.get('race');
  const s = q.get('step');
  return {
    cell: c && slash > 0 ? { scenario: c.slice(0, slash), design: c.slice(slash + 1) } : null,
    // A file name: nothing that could leave traces/.
    race: r && /^[\w.-]+$/.test(r) && !r.startsWith('.') ? r : null,
    step: s !== null && /^\d+$/.test(s) ? Number(s) : null,
  };
}

export function formatRoute(r: Route): string {
  const parts: string[] = [];
  if (r.cell)
    parts.push(`cell=${encodeURIComponent(`${r.cell.scenario}/${r.cell.design}`).replace(/%2F/g, '/')}`);
  if (r.race !== null) parts.push(`race=${encodeURIComponent(r.race)}`);
  if (r.step !== null) parts.push(`step=${r.step}`);
  return parts.length === 0 ? '' : `#${parts.join('&')}`;
}
