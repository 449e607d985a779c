/**
 * `costs.csv`: the cost matrix for a spreadsheet or pandas — one row per cell, the scenario, the
 * design, the seed and every counted cost under its results.json name (RFC 4180: comma
 * separated, CRLF-free, fields quoted when they hold a comma, quote or newline). Pure.
 */

import { type CellResult, Costs } from '../scenario/cell.ts';

/** The cost columns, in results.json order. */
export const CSV_COST_KEYS = Object.keys(Costs.shape) as (keyof Costs)[];

/** One CSV field. */
function field(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The whole costs.csv (header line first, a trailing newline). */
export function costsCsv(cells: readonly CellResult[]): string {
  const lines = [['scenario', 'design', 'seed', ...CSV_COST_KEYS].join(',')];
  for (const c of cells)
    lines.push([c.scenario, c.design, c.seed, ...CSV_COST_KEYS.map((k) => c.costs[k])].map(field).join(','));
  return `${lines.join('\n')}\n`;
}
