/**
 * `xivelab compare`: every selected design on every selected scenario, a matrix on stdout and
 * `report/` on disk (report.md, report.html, plots as SVG and PNG, results.json, one Chrome
 * trace per violation). Also the trace export of `xivelab run --trace`.
 */

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { toChromeTrace } from '../report/chrome-trace.ts';
import { costsCsv } from '../report/csv.ts';
import { renderHtml } from '../report/html.ts';
import { renderMarkdown, textMatrix, violationEntries } from '../report/markdown.ts';
import { reportPlots, svgToPng } from '../report/plots.ts';
import { cellViolations, type Results, type ScenarioRef } from '../scenario/cell.ts';
import {
  type CompareProgress,
  defaultJobs,
  planCells,
  resultsDocument,
  runCells,
} from '../scenario/compare.ts';
import { designEntry, designNames } from '../scenario/designs-registry.ts';
import { loadScenario } from '../scenario/load.ts';
import { ScenarioError } from '../scenario/parse.ts';
import { KVM_MAX_RUN_VCPUS } from '../scenario/runner.ts';

/** The built-in scenarios directory (`scenarios/` in the repo). */
export function builtinScenarioDir(): string {
  return fileURLToPath(new URL('../../scenarios/', import.meta.url));
}

/** Built-in scenario files, sorted by file name. */
export function builtinScenarioFiles(): string[] {
  const dir = builtinScenarioDir();
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

function toRef(file: string): ScenarioRef {
  const scenario = loadScenario(file);
  return { name: scenario.name, file, scenario };
}

/**
 * The scenarios `--scenarios` selects: every built-in when `names` is undefined; otherwise each
 * entry is a built-in's name (its `name` or file stem) or a path to a scenario file.
 * @throws ScenarioError for an unknown name or a bad file.
 */
export function selectScenarios(names?: readonly string[]): ScenarioRef[] {
  const builtins = builtinScenarioFiles().map(toRef);
  if (names === undefined) return builtins;
  return names.map((n) => {
    if (/[/\\]/.test(n) || /\.(ya?ml|json)$/.test(n)) return toRef(resolve(n));
    const hit = builtins.find((b) => b.name === n || basename(b.file, extname(b.file)) === n);
    if (!hit) {
      throw new ScenarioError(
        n,
        0,
        0,
        `no built-in scenario "${n}" (built-ins: ${builtins.map((b) => b.name).join(', ')})`,
      );
    }
    return hit;
  });
}

/**
 * The designs `--designs` selects: every registered one when undefined.
 * @throws Error naming the unknown design.
 */
export function selectDesigns(names?: readonly string[]): string[] {
  const known = designNames();
  if (names === undefined) return known;
  for (const n of names) {
    if (!known.includes(n)) throw new UsageError(`unknown design "${n}" (known: ${known.join(', ')})`);
  }
  return [...names];
}

/** A bad command-line value (exit 2, one line). */
export class UsageError extends Error {}

/** Where progress goes: a bar on a terminal, plain lines otherwise. */
export interface ProgressSink {
  start(total: number): void;
  update(p: CompareProgress): void;
  stop(): void;
}

/** One line per finished cell (CI logs, pipes). */
export function lineProgress(write: (s: string) => void): ProgressSink {
  return {
    start: (total) => write(`compare: ${total} cells\n`),
    update: (p) =>
      write(
        `[${p.done}/${p.total}] ${p.scenario} × ${p.design}: ` +
          `${p.violations === 0 ? 'no violations' : `${p.violations} violation${p.violations === 1 ? '' : 's'}`} ` +
          `(${Math.round(p.ms)} ms)\n`,
      ),
    stop: () => {},
  };
}

/** A cli-progress bar on stderr (terminal only). */
export function barProgress(): ProgressSink {
  const bar = new cliProgress.SingleBar(
    {
      format: 'compare [{bar}] {value}/{total} cells | {last}',
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total) => bar.start(total, 0, { last: '' }),
    update: (p) => bar.update(p.done, { last: `${p.scenario} × ${p.design}` }),
    stop: () => bar.stop(),
  };
}

/** Files written by {@link writeReport}, relative to the output directory. */
export interface WrittenReport {
  readonly files: string[];
}

/**
 * Write the report for `results` into `dir`: results.json, costs.csv, report.md, report.html, the plots
 * (SVG + PNG) and `traces/<scenario>--<design>--<invariant>.trace.json` per violation. Old trace
 * files in `dir/traces` are removed first, so the directory matches this run.
 */
export function writeReport(dir: string, results: Results): WrittenReport {
  mkdirSync(dir, { recursive: true });
  const tracesDir = join(dir, 'traces');
  rmSync(tracesDir, { recursive: true, force: true });
  const files: string[] = [];
  const put = (name: string, data: string | Uint8Array): void => {
    writeFileSync(join(dir, name), data);
    files.push(name);
  };
  put('results.json', `${JSON.stringify(results, null, 2)}\n`);
  put('costs.csv', costsCsv(results.cells));
  const plots = reportPlots(results.cells);
  for (const p of plots) {
    put(`${p.name}.svg`, `${p.svg}\n`);
    put(`${p.name}.png`, svgToPng(p.svg));
  }
  put('report.md', renderMarkdown({ results, plots }));
  put('report.html', renderHtml(results, plots));
  const vs = violationEntries(results.cells);
  if (vs.length > 0) mkdirSync(tracesDir, { recursive: true });
  for (const v of vs) {
    const doc = toChromeTrace(v.cell.invariants[v.invariant].first!.trace, {
      scenario: v.cell.scenario,
      design: v.cell.design,
      seed: v.cell.seed,
      violation: { invariant: v.invariant, message: v.message },
    });
    put(join('traces', v.file), `${JSON.stringify(doc)}\n`);
  }
  return { files };
}

/** Options of `xivelab compare`. */
export interface CompareCliOptions {
  readonly designs?: readonly string[];
  readonly scenarios?: readonly string[];
  readonly seed?: number;
  readonly jobs?: number;
  readonly out: string;
}

/** Run `xivelab compare`; returns the results written. Throws UsageError / ScenarioError on bad input. */
export async function compareCommand(
  opts: CompareCliOptions,
  io: { out(s: string): void; err(s: string): void },
  progress: ProgressSink,
): Promise<Results> {
  const designs = selectDesigns(opts.designs);
  const scenarios = selectScenarios(opts.scenarios);
  const plan = planCells(scenarios, designs, opts.seed);
  const jobs = opts.jobs ?? defaultJobs(plan.length);
  progress.start(plan.length);
  let cells: Awaited<ReturnType<typeof runCells>>;
  try {
    cells = await runCells(plan, { jobs, onProgress: (p) => progress.update(p) });
  } finally {
    progress.stop();
  }
  const results = resultsDocument(
    cells,
    designs,
    scenarios.map((s) => s.name),
    opts.seed ?? null,
  );
  const written = writeReport(opts.out, results);
  const total = cells.reduce((n, c) => n + cellViolations(c), 0);
  io.out(`${textMatrix(cells)}\n\n`);
  io.out(
    `${cells.length} cell${cells.length === 1 ? '' : 's'}, ${total} invariant violation${total === 1 ? '' : 's'}; ` +
      `wrote ${written.files.length} files to ${opts.out}${opts.out.endsWith('/') ? '' : '/'} ` +
      `(report.md, report.html, results.json, ${written.files.filter((f) => f.endsWith('.png')).length} plots, ` +
      `${written.files.filter((f) => f.startsWith('traces')).length} traces)\n`,
  );
  return results;
}

/**
 * Export the trace of one run of `ref` under `design` to `file` (Chrome trace-event JSON).
 * @returns the number of events written.
 */
export function exportTrace(ref: ScenarioRef, design: string, seed: number, file: string): number {
  const entry = designEntry(design);
  if (entry === undefined)
    throw new UsageError(`unknown design "${design}" (known: ${designNames().join(', ')})`);
  if (entry.trace === undefined) throw new UsageError(`design "${design}" cannot export a trace`);
  if (design !== 'emulated' && ref.scenario.vcpus > KVM_MAX_RUN_VCPUS)
    throw new UsageError(
      `design "${design}" runs under KVM, which runs at most ${KVM_MAX_RUN_VCPUS} vCPUs (one host thread each); ${ref.name} has ${ref.scenario.vcpus}`,
    );
  const { events, dropped } = entry.trace(ref, seed);
  const doc = toChromeTrace(events, { scenario: ref.name, design, seed, dropped });
  writeFileSync(file, `${JSON.stringify(doc)}\n`);
  return events.length;
}
