/**
 * `xivelab compare`: every selected design on every selected scenario, a matrix on stdout and
 * `report/` on disk (report.md, report.html, plots as SVG and PNG, results.json, one Chrome
 * trace per violation). Also the trace export of `xivelab run --trace`.
 */

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { DESIGN_NAMES, designVcpuLimit, findDesign, unknownDesign } from '../designs/index.ts';
import { toChromeTrace } from '../report/chrome-trace.ts';
import { costsCsv } from '../report/csv.ts';
import { renderHtml } from '../report/html.ts';
import { renderMarkdown, textMatrix, violationEntries } from '../report/markdown.ts';
import { cellViolations, type Results, type ScenarioRef } from '../scenario/cell.ts';
import { traceDesignRun } from '../scenario/cell-dispatch.ts';
import {
  type CompareProgress,
  defaultJobs,
  exploreRacesInWorker,
  planCells,
  resultsDocument,
  runCells,
} from '../scenario/compare.ts';
import { loadScenario } from '../scenario/load.ts';
import { ScenarioError } from '../scenario/parse.ts';
import { exploreBuiltinRaces } from '../scenario/race-table.ts';
import { Expectations } from './expect.ts';
import { makeOutputDir, onlyFilesEndingWith } from './out-paths.ts';
import { UsageError } from './usage-error.ts';

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
  if (names === undefined) return [...DESIGN_NAMES];
  for (const n of names) {
    if (findDesign(n) === undefined) throw new UsageError(unknownDesign(n));
  }
  return [...names];
}

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

/**
 * The plots module — Observable Plot, linkedom and resvg, the heaviest imports of the report —
 * loaded on first use: `compare` starts loading it once its workers run, not before they start.
 */
let plotsModule: Promise<typeof import('../report/plots.ts')> | null = null;
function loadPlots(): Promise<typeof import('../report/plots.ts')> {
  plotsModule ??= import('../report/plots.ts');
  return plotsModule;
}

/** Files written by {@link writeReport}, relative to the output directory. */
export interface WrittenReport {
  readonly files: string[];
}

/** Where the report's violation traces go, inside the output directory. */
const TRACES = 'traces';
/** What every file in it is named like. */
const TRACE_SUFFIX = '.trace.json';

/**
 * Check `--out` before any work: make the directory, check it can be written, and refuse a
 * `traces/` in it that holds anything other than trace files (xivelab replaces that folder).
 * @throws UsageError one line.
 */
export function checkReportDir(dir: string): void {
  makeOutputDir('--out', dir);
  try {
    rmdirSync(mkdtempSync(join(dir, '.xivelab-')));
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UsageError(`--out ${dir}: cannot write there (${code ?? String(e)})`);
  }
  const traces = join(dir, TRACES);
  if (existsSync(traces) && (!statSync(traces).isDirectory() || !onlyFilesEndingWith(traces, TRACE_SUFFIX))) {
    throw new UsageError(
      `--out ${dir}: ${traces} holds files xivelab did not write (it replaces that folder); move them or choose another --out`,
    );
  }
}

/**
 * Write the report for `results` into `dir` (checked by {@link checkReportDir}): results.json, costs.csv,
 * report.md, report.html, the plots (SVG + PNG), `traces/<scenario>--<design>--<invariant>`
 * `.trace.json` per violation and `traces/race--<scenario>--<design>.trace.json` per race
 * counterexample (`raceTraces`). Everything is written into a fresh folder in `dir` first, then
 * moved into place; the previous run's `traces/` is replaced, so the directory matches this run.
 */
export async function writeReport(
  dir: string,
  results: Results,
  raceTraces: ReadonlyMap<string, object> = new Map(),
): Promise<WrittenReport> {
  const { reportPlots, svgToPng } = await loadPlots();
  const stage = mkdtempSync(join(dir, '.xivelab-'));
  try {
    const files: string[] = [];
    const put = (name: string, data: string | Uint8Array): void => {
      writeFileSync(join(stage, name), data);
      files.push(name);
    };
    const plots = reportPlots(results.cells);
    // The PNGs render on the thread pool while this thread writes the rest.
    const pngs = Promise.all(plots.map((p) => svgToPng(p.svg)));
    put('results.json', `${JSON.stringify(results, null, 2)}\n`);
    put('costs.csv', costsCsv(results.cells));
    for (const p of plots) {
      put(`${p.name}.svg`, `${p.svg}\n`);
      files.push(`${p.name}.png`);
    }
    put('report.md', renderMarkdown({ results, plots }));
    put('report.html', renderHtml(results, plots));
    const vs = violationEntries(results.cells);
    const anyTraces = vs.length > 0 || raceTraces.size > 0;
    if (anyTraces) mkdirSync(join(stage, TRACES));
    for (const [file, doc] of raceTraces) put(join(TRACES, file), `${JSON.stringify(doc)}\n`);
    for (const v of vs) {
      const doc = toChromeTrace(v.cell.invariants[v.invariant].first!.trace, {
        scenario: v.cell.scenario,
        design: v.cell.design,
        seed: v.cell.seed,
        violation: { invariant: v.invariant, message: v.message },
      });
      put(join(TRACES, v.file), `${JSON.stringify(doc)}\n`);
    }
    for (const [i, png] of (await pngs).entries()) writeFileSync(join(stage, `${plots[i]!.name}.png`), png);
    for (const f of files) if (!f.startsWith(TRACES)) renameSync(join(stage, f), join(dir, f));
    const traces = join(dir, TRACES);
    if (existsSync(traces) && onlyFilesEndingWith(traces, TRACE_SUFFIX)) rmSync(traces, { recursive: true });
    if (anyTraces) renameSync(join(stage, TRACES), traces);
    return { files };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Options of `xivelab compare`. */
export interface CompareCliOptions {
  readonly designs?: readonly string[];
  readonly scenarios?: readonly string[];
  readonly seed?: number;
  readonly jobs?: number;
  readonly out: string;
  /** `--expect FILE`: the verdicts to compare the cells with. */
  readonly expect?: string;
  /** Explore the built-in race scenarios for the "Races" section (default true). */
  readonly races?: boolean;
}

/** What `xivelab compare` produced. */
export interface CompareOutcome {
  readonly results: Results;
  /** Cells that differ from `--expect` (one line each; empty without it). */
  readonly differences: string[];
}

/**
 * Run `xivelab compare`. Input, `--expect` and `--out` are checked before any cell runs.
 * @throws UsageError / ScenarioError on bad input.
 */
export async function compareCommand(
  opts: CompareCliOptions,
  io: { out(s: string): void; err(s: string): void },
  progress: ProgressSink,
): Promise<CompareOutcome> {
  const designs = selectDesigns(opts.designs);
  const scenarios = selectScenarios(opts.scenarios);
  const expected = opts.expect === undefined ? null : Expectations.load(opts.expect);
  checkReportDir(opts.out);
  const plan = planCells(scenarios, designs, opts.seed);
  const jobs = opts.jobs ?? defaultJobs(plan.length);
  // With workers, the race exploration runs on one of its own alongside the cells.
  const racesInWorker = opts.races !== false && jobs > 1 ? exploreRacesInWorker() : null;
  progress.start(plan.length);
  let cells: Awaited<ReturnType<typeof runCells>>;
  try {
    const running = runCells(plan, { jobs, onProgress: (p) => progress.update(p) });
    // A failure to load surfaces where the report awaits the module.
    loadPlots().catch(() => {});
    cells = await running;
  } catch (e) {
    racesInWorker?.stop();
    throw e;
  } finally {
    progress.stop();
  }
  const races = opts.races === false ? null : ((await racesInWorker?.table) ?? exploreBuiltinRaces());
  const results = resultsDocument(
    cells,
    designs,
    scenarios.map((s) => s.name),
    opts.seed ?? null,
    races?.rows ?? null,
  );
  const written = await writeReport(opts.out, results, races?.traces);
  const total = cells.reduce((n, c) => n + cellViolations(c), 0);
  io.out(`${textMatrix(cells)}\n\n`);
  io.out(
    `${cells.length} cell${cells.length === 1 ? '' : 's'}, ${total} invariant violation${total === 1 ? '' : 's'}; ` +
      `wrote ${written.files.length} files to ${opts.out}${opts.out.endsWith('/') ? '' : '/'} ` +
      `(report.md, report.html, results.json, ${written.files.filter((f) => f.endsWith('.png')).length} plots, ` +
      `${written.files.filter((f) => f.startsWith(TRACES)).length} traces)\n`,
  );
  if (races !== null) {
    const found = races.rows.filter((r) => r.verdict === 'violation').length;
    io.out(
      `races: ${races.rows.length} race scenario × design explored (DPOR), ${found} with a counterexample (report.md, "Races")\n`,
    );
  }
  const differences = expected === null ? [] : expected.differences(cells);
  if (expected !== null) {
    io.out(
      differences.length === 0
        ? `expect: all ${cells.length} cells match ${expected.file}\n`
        : `expect: ${differences.length} of ${cells.length} cells differ from ${expected.file}:\n${differences.map((d) => `  ${d}\n`).join('')}`,
    );
  }
  return { results, differences };
}

/**
 * Export the trace of one run of `ref` under `design` to `file` (Chrome trace-event JSON).
 * @returns the number of events written.
 */
export function exportTrace(ref: ScenarioRef, design: string, seed: number, file: string): number {
  const d = findDesign(design);
  if (d === undefined) throw new UsageError(unknownDesign(design));
  const why = designVcpuLimit(d, ref.scenario.vcpus);
  if (why !== null) throw new UsageError(`design "${design}" runs under KVM: ${why} (${ref.name})`);
  const { events, dropped } = traceDesignRun(ref, d, seed);
  const doc = toChromeTrace(events, { scenario: ref.name, design, seed, dropped });
  writeFileSync(file, `${JSON.stringify(doc)}\n`);
  return events.length;
}
