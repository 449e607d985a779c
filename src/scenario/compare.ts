/**
 * The compare machinery: run a list of scenario × design cells with a {@link CellRunner},
 * in this thread or across N worker threads, and collect them in plan order. A cell depends only
 * on (scenario, design, seed), so the results are the same for any number of jobs. The cells of
 * a row (scenario × seed) share one emulated {@link Reference}: in this thread one per row; across
 * workers each worker keeps the reference of the row it works on, and the scheduler keeps a
 * worker on its row, starting a fresh row (or, once none is left, taking cells from the end of
 * the row with the most cells left) only when its own row is done.
 *
 * Worker threads run `compare-worker.ts`, which finds designs by name in the registry (`designs/index.ts`):
 * a design must be listed there to run with `jobs > 1`.
 */

import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import {
  type CellResult,
  type CellRunner,
  COST_TABLE_NS,
  RESULTS_VERSION,
  type Results,
  type ScenarioRef,
} from './cell.ts';
import { registryRunner } from './cell-dispatch.ts';
import type { RaceRow } from './race-row.ts';
import type { RaceTable } from './race-table.ts';
import type { RaceWorkerReply } from './race-worker.ts';
import { Reference } from './reference.ts';

/** One cell to run. */
export interface CellPlan {
  readonly scenario: ScenarioRef;
  readonly design: string;
  readonly seed: number;
}

/** Progress of a compare run, reported after each cell. */
export interface CompareProgress {
  /** Cells finished so far (including this one). */
  readonly done: number;
  readonly total: number;
  /** The cell that just finished. */
  readonly scenario: string;
  readonly design: string;
  /** Its violations over all invariants. */
  readonly violations: number;
  /** Wall-clock ms the cell took (for display only; never in results). */
  readonly ms: number;
}

export interface CompareOptions {
  /** Worker threads (1: run in this thread). Default 1. */
  readonly jobs?: number;
  /** Called after each cell, in completion order. */
  readonly onProgress?: (p: CompareProgress) => void;
  /**
   * The runner for `jobs` = 1 (default: the designs registry). With `jobs` > 1 workers always
   * use the registry, since functions do not cross threads.
   */
  readonly runner?: CellRunner;
}

/** Every scenario × every design (scenarios outer), each with `seed` or the scenario's own. */
export function planCells(
  scenarios: readonly ScenarioRef[],
  designs: readonly string[],
  seed?: number,
): CellPlan[] {
  return scenarios.flatMap((scenario) =>
    designs.map((design) => ({ scenario, design, seed: seed ?? scenario.scenario.options.seed })),
  );
}

/** A sensible default for `--jobs`: the cores available, at most the cells. */
export function defaultJobs(cells: number): number {
  return Math.max(1, Math.min(availableParallelism(), cells));
}

function violationsOf(c: CellResult): number {
  let n = 0;
  for (const o of Object.values(c.invariants)) n += o.violations;
  return n;
}

/** Run `plan` in this thread. */
export function runCellsSequential(
  plan: readonly CellPlan[],
  runner: CellRunner = registryRunner,
  onProgress?: (p: CompareProgress) => void,
): CellResult[] {
  const out: CellResult[] = [];
  // The designs of a row (scenario × seed) share its emulated reference.
  let reference: Reference | null = null;
  for (const cell of plan) {
    const t0 = performance.now();
    if (reference?.scenario !== cell.scenario.scenario || reference.seed !== cell.seed)
      reference = new Reference(cell.scenario.scenario, cell.seed);
    const r = runner(cell.scenario, cell.design, cell.seed, reference);
    out.push(r);
    onProgress?.({
      done: out.length,
      total: plan.length,
      scenario: r.scenario,
      design: r.design,
      violations: violationsOf(r),
      ms: performance.now() - t0,
    });
  }
  return out;
}

/** Message from the main thread to a worker. */
export interface WorkerTask {
  readonly index: number;
  readonly cell: CellPlan;
  /** The cell's row in the plan: cells of one row share the worker's {@link Reference}. */
  readonly row: number;
}

/** The plan's rows (maximal runs of cells with the same scenario and seed) as [start, end). */
function planRows(plan: readonly CellPlan[]): [number, number][] {
  const rows: [number, number][] = [];
  for (let i = 0; i < plan.length; i++) {
    const last = rows[rows.length - 1];
    const prev = plan[i - 1];
    if (last !== undefined && prev?.scenario === plan[i]!.scenario && prev.seed === plan[i]!.seed)
      last[1] = i + 1;
    else rows.push([i, i + 1]);
  }
  return rows;
}

/** Where a worker is in the plan: its row (−1: none yet) and which end of it it takes from. */
interface WorkerPlace {
  row: number;
  fromEnd: boolean;
}

/**
 * Hands out the cells of a plan to workers so that each worker stays on one row as long as it
 * can (one reference per row and worker): the next cell of the worker's row; else the first row
 * nobody started; else, from its end, the row with the most cells left (its first worker keeps
 * taking from the front).
 */
class RowScheduler {
  /** Cells not handed out yet, per row: [next, end). */
  private readonly left: [number, number][];
  private started: number;
  constructor(plan: readonly CellPlan[]) {
    this.left = planRows(plan);
    this.started = 0;
  }

  /** The next cell for the worker at `w` (which moves as needed), or −1 when none is left. */
  next(w: WorkerPlace): number {
    const own = this.left[w.row];
    if (own !== undefined && own[0] < own[1]) return w.fromEnd ? --own[1] : own[0]++;
    if (this.started < this.left.length) {
      w.row = this.started++;
      w.fromEnd = false;
      return this.left[w.row]![0]++;
    }
    let best = -1;
    for (let r = 0; r < this.left.length; r++) {
      const [a, b] = this.left[r]!;
      if (b > a && (best < 0 || b - a > this.left[best]![1] - this.left[best]![0])) best = r;
    }
    if (best < 0) return -1;
    w.row = best;
    w.fromEnd = true;
    return --this.left[best]![1];
  }
}
/** Message from a worker to the main thread. */
export type WorkerReply =
  | { readonly index: number; readonly ok: true; readonly result: CellResult; readonly ms: number }
  | { readonly index: number; readonly ok: false; readonly error: string };

/** The worker entry `name` next to this module (`.ts` under tsx, `.js` in a build). */
function workerUrl(name = 'compare-worker'): URL {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`./${name}.${ext}`, import.meta.url);
}

/**
 * Explore the built-in race scenarios on a worker thread of its own, so that it overlaps the
 * cells: `table` is the same {@link RaceTable} as {@link exploreBuiltinRaces} in this thread;
 * `stop` ends the worker early (its table is then never settled).
 */
export function exploreRacesInWorker(): { table: Promise<RaceTable>; stop(): void } {
  const w = startWorker(workerUrl('race-worker'));
  // Set when this side ends the worker: any other exit before a reply is a failure.
  let ended = false;
  const table = new Promise<RaceTable>((resolve, reject) => {
    w.on('message', (m: RaceWorkerReply) => {
      ended = true;
      void w.terminate();
      if (m.ok) resolve(m.table);
      else reject(new Error(`race exploration: ${m.error}`));
    });
    w.on('error', reject);
    w.on('exit', (code) => {
      if (!ended) reject(new Error(`race worker exited with ${code}`));
    });
  });
  return {
    table,
    stop: () => {
      ended = true;
      void w.terminate();
    },
  };
}

/**
 * Start a worker thread on `url` (default: the compare worker). From a build (`.js`) the worker file runs as is. From source (`.ts`,
 * under `node --import tsx` or a test runner) Node 20 does not apply a loader given in the
 * worker's `execArgv` to the worker's own entry file, so a small bootstrap registers tsx's
 * loader in the worker first, then imports the `.ts` entry.
 */
export function startWorker(url: URL = workerUrl(), options: WorkerOptions = {}): Worker {
  if (url.pathname.endsWith('.js')) return new Worker(url, options);
  const tsx = tsxEsmApi();
  const boot = `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(url.href)}))`;
  return new Worker(boot, { ...options, eval: true });
}

/** URL of tsx's ESM register API (`tsx/esm/api`, its `import` condition). */
function tsxEsmApi(): string {
  if (typeof import.meta.resolve === 'function') {
    try {
      return import.meta.resolve('tsx/esm/api');
    } catch {
      // fall through: resolve by hand
    }
  }
  const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
  return pathToFileURL(cjs.replace(/index\.cjs$/, 'index.mjs')).href;
}

/** Run `plan` across `jobs` worker threads; results in plan order. */
export async function runCellsParallel(
  plan: readonly CellPlan[],
  jobs: number,
  onProgress?: (p: CompareProgress) => void,
): Promise<CellResult[]> {
  const results: (CellResult | undefined)[] = new Array(plan.length);
  const rows = new RowScheduler(plan);
  let stopped = false;
  let done = 0;
  const n = Math.max(1, Math.min(jobs, plan.length));
  const one = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const w = startWorker();
      const place: WorkerPlace = { row: -1, fromEnd: false };
      let failed = false;
      let ending = false;
      const feed = (): void => {
        const index = stopped ? -1 : rows.next(place);
        if (index < 0) {
          ending = true;
          void w.terminate().then(() => resolve());
          return;
        }
        w.postMessage({ index, cell: plan[index]!, row: place.row } satisfies WorkerTask);
      };
      w.on('message', (m: WorkerReply) => {
        if (!m.ok) {
          failed = true;
          const c = plan[m.index]!;
          stopped = true; // stop handing out work
          void w.terminate();
          reject(new Error(`${c.scenario.name} × ${c.design}: ${m.error}`));
          return;
        }
        results[m.index] = m.result;
        done++;
        onProgress?.({
          done,
          total: plan.length,
          scenario: m.result.scenario,
          design: m.result.design,
          violations: violationsOf(m.result),
          ms: m.ms,
        });
        feed();
      });
      w.on('error', (e) => {
        failed = true;
        stopped = true;
        reject(e);
      });
      w.on('exit', (code) => {
        if (!failed && !ending && code !== 0) reject(new Error(`compare worker exited with ${code}`));
      });
      feed();
    });
  await Promise.all(Array.from({ length: n }, one));
  return results.map((r, i) => {
    if (r === undefined) throw new Error(`cell ${i} produced no result`);
    return r;
  });
}

/** Run `plan` with `opts.jobs` threads (1: this thread). */
export async function runCells(plan: readonly CellPlan[], opts: CompareOptions = {}): Promise<CellResult[]> {
  const jobs = opts.jobs ?? 1;
  if (jobs <= 1 || plan.length <= 1) return runCellsSequential(plan, opts.runner, opts.onProgress);
  return runCellsParallel(plan, jobs, opts.onProgress);
}

/** The results.json document of a compare run. */
export function resultsDocument(
  cells: readonly CellResult[],
  designs: readonly string[],
  scenarios: readonly string[],
  seed: number | null,
  races: readonly RaceRow[] | null = null,
): Results {
  return {
    tool: 'xivelab',
    version: RESULTS_VERSION,
    seed,
    designs: [...designs],
    scenarios: [...scenarios],
    costTable: { ...COST_TABLE_NS },
    cells: [...cells],
    ...(races !== null ? { races: [...races] } : {}),
  };
}
