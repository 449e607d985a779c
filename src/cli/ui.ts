/**
 * `xivelab ui [report-dir | trace.json | scenario.yaml] [--port N]`: serve the prebuilt web app
 * (`dist/web`, built by `npm run build:web`) and the given data, read-only, on 127.0.0.1 with a
 * plain `node:http` server. The app asks:
 * - `GET /api/input`: what was given (`{ kind: 'report' | 'trace' | 'scenario' | 'none', name }`);
 * - `GET /data/<path>`: a file of the report directory (or the one trace file), never one outside
 *   it: `..`, absolute paths and symlinks that leave the folder are refused (403);
 * - `GET /api/run?scenario=S&design=D&seed=N`: the events of one cell's run, re-run here with the
 *   design's trace (a built-in scenario or a file in the report directory), or of the scenario
 *   given on the command line (run at start-up), as typed columns ({@link TraceColumns.encode});
 * - `GET /api/race?file=<path>`: the trace events of an explorer counterexample (a file under
 *   `/data/`), its schedule replayed here on a built-in race scenario with the machine traced,
 *   each event's time its schedule step (0: the set-up).
 */

import { createReadStream, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDesign } from '../designs/index.ts';
import type { ScenarioRef } from '../scenario/cell.ts';
import { traceDesignRun } from '../scenario/cell-dispatch.ts';
import { traceEmulated } from '../scenario/cell-emulated.ts';
import { loadScenario } from '../scenario/load.ts';
import { ScenarioError } from '../scenario/parse.ts';
import { builtinRaceNames, loadRaceScenario } from '../scenario/race-load.ts';
import { traceRaceSchedule } from '../scenario/race-replay.ts';
import type { TraceEvent } from '../sim/trace.ts';
import { TraceColumns } from '../sim/trace-columns.ts';
import { selectScenarios } from './compare.ts';
import { UsageError } from './usage-error.ts';

/** What `xivelab ui` was given. */
export type UiInput =
  | { readonly kind: 'none' }
  | { readonly kind: 'report'; readonly dir: string }
  | { readonly kind: 'trace'; readonly file: string }
  | {
      readonly kind: 'scenario';
      readonly ref: ScenarioRef;
      /** Its events in {@link TraceColumns}' wire form, made once. */
      readonly body: Uint8Array;
    };

/** The built web app: `dist/web` beside the package's `dist/cli` (or the sources' `src/cli`). */
export function webAppDir(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../../dist/web/' : '../web/', import.meta.url));
}

/**
 * Classify `path` (a report directory with results.json, a Chrome trace `.json`, or a scenario
 * `.yaml`/`.yml`); a scenario is run here, traced, once.
 * @throws UsageError / ScenarioError for a path that is none of them.
 */
export function resolveUiInput(path: string | undefined): UiInput {
  if (path === undefined) return { kind: 'none' };
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`${path}: no such file or directory`);
  }
  if (st.isDirectory()) {
    if (!statSync(join(path, 'results.json'), { throwIfNoEntry: false })?.isFile())
      throw new UsageError(
        `${path}: not a report directory (no results.json; make one with xivelab compare)`,
      );
    return { kind: 'report', dir: realpathSync(path) };
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') {
    const scenario = loadScenario(path);
    const ref = { name: scenario.name, file: path, scenario };
    const { events, dropped } = traceEmulated(ref, scenario.options.seed);
    return { kind: 'scenario', ref, body: runBody(events, dropped) };
  }
  if (ext === '.json') return { kind: 'trace', file: realpathSync(path) };
  throw new UsageError(`${path}: expected a report directory, a trace .json or a scenario .yaml`);
}

/** A run's reply body: its events as columns, and how many older ones the ring dropped. */
function runBody(events: readonly TraceEvent[], dropped: number): Uint8Array {
  return TraceColumns.of(events).encode(dropped);
}

/**
 * The file `urlPath` names inside `root`, or a status: 403 when it leaves `root` (by `..`, an
 * absolute path or a symlink), 404 when there is no such file.
 */
export function confinedPath(root: string, urlPath: string): string | 403 | 404 {
  if (urlPath.includes('\0') || urlPath.includes('\\')) return 403;
  const rel = urlPath.replace(/^\/+/, '');
  if (isAbsolute(rel)) return 403;
  const full = resolve(root, rel);
  const r = relative(root, full);
  if (r.startsWith('..') || isAbsolute(r)) return 403;
  let real: string;
  try {
    real = realpathSync(full);
  } catch {
    return 404;
  }
  if (real !== root && !real.startsWith(root + sep)) return 403;
  return statSync(real).isFile() ? real : 404;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.md': 'text/markdown; charset=utf-8',
};

/** What a request gets: a text/JSON body with a status, or a file's contents. */
type Reply =
  | { readonly status: number; readonly body: string | Uint8Array; readonly type?: string }
  | { readonly file: string };

const JSON_TYPE = 'application/json; charset=utf-8';
/** A run's events ({@link TraceColumns.encode}). */
const COLUMNS_TYPE = 'application/octet-stream';

function refused(r: 403 | 404): Reply {
  return { status: r, body: r === 403 ? 'forbidden\n' : 'not found\n' };
}

function reply(res: ServerResponse, r: Reply): void {
  if ('file' in r) {
    res.writeHead(200, {
      'content-type': TYPES[extname(r.file).toLowerCase()] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    createReadStream(r.file).pipe(res);
    return;
  }
  res.writeHead(r.status, {
    'content-type': r.type ?? 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(r.body);
}

/** The scenario a report cell names: a built-in, or a file in the report directory. */
function cellScenario(input: UiInput, name: string): ScenarioRef | null {
  if (input.kind === 'scenario') return input.ref.name === name ? input.ref : null;
  try {
    return selectScenarios([name])[0] ?? null;
  } catch (e) {
    if (e instanceof ScenarioError) return null;
    throw e;
  }
}

/** Serves one {@link UiInput}. */
export class UiServer {
  readonly input: UiInput;
  readonly appDir: string;
  private readonly runs = new Map<string, Uint8Array>();
  readonly server: Server;

  constructor(input: UiInput, appDir = webAppDir()) {
    this.input = input;
    this.appDir = realpathSync(appDir);
    this.server = createServer((req, res) => {
      let r: Reply;
      try {
        r = this.route(req);
      } catch (e) {
        r = {
          status: 500,
          body: `xivelab ui: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`,
        };
      }
      reply(res, r);
    });
  }

  /** Listen on 127.0.0.1:`port` (0: a free port); resolves to the app's URL. */
  listen(port: number): Promise<string> {
    return new Promise((ok, fail) => {
      this.server.once('error', fail);
      this.server.listen(port, '127.0.0.1', () => {
        const a = this.server.address() as AddressInfo;
        ok(`http://127.0.0.1:${a.port}/`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((ok) => {
      this.server.close(() => ok());
      this.server.closeAllConnections();
    });
  }

  private route(req: IncomingMessage): Reply {
    if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, body: 'read-only\n' };
    // The raw path, not `new URL(…).pathname`, which would resolve `..` before it is checked.
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    let path: string;
    try {
      path = decodeURIComponent(q < 0 ? raw : raw.slice(0, q));
    } catch {
      return { status: 400, body: 'bad path\n' };
    }
    if (path === '/api/input') return { status: 200, body: JSON.stringify(this.describe()), type: JSON_TYPE };
    if (path === '/api/run') return this.run(new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)));
    if (path === '/api/race')
      return this.race(new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)).get('file') ?? '');
    if (path.startsWith('/data/')) return this.data(path.slice('/data/'.length));
    if (path === '/' || path === '/index.html') return this.index();
    const file = confinedPath(this.appDir, path);
    return typeof file === 'number' ? refused(file) : { file };
  }

  /**
   * The app's page, with a preload of what the app will ask for first (what was given, and the
   * results, the trace or the scenario's run), so the browser fetches it while the script loads.
   */
  private index(): Reply {
    const i = this.input;
    const first =
      i.kind === 'report'
        ? ['data/results.json']
        : i.kind === 'trace'
          ? [`data/${encodeURIComponent(basename(i.file))}`]
          : i.kind === 'scenario'
            ? ['api/run']
            : [];
    const links = ['api/input', ...first]
      .map((u) => `<link rel="preload" href="${u}" as="fetch" crossorigin="anonymous" />`)
      .join('');
    const html = readFileSync(join(this.appDir, 'index.html'), 'utf8');
    return {
      status: 200,
      body: html.replace('</head>', `${links}</head>`),
      type: 'text/html; charset=utf-8',
    };
  }

  private describe(): Record<string, string> {
    const i = this.input;
    switch (i.kind) {
      case 'none':
        return { kind: 'none' };
      case 'report':
        return { kind: 'report', name: basename(i.dir), results: 'results.json' };
      case 'trace':
        return { kind: 'trace', name: basename(i.file), file: basename(i.file) };
      case 'scenario':
        return { kind: 'scenario', name: i.ref.name, seed: String(i.ref.scenario.options.seed) };
    }
  }

  private data(rel: string): Reply {
    const i = this.input;
    let file: string | 403 | 404 = 404;
    if (i.kind === 'report') file = confinedPath(i.dir, rel);
    else if (i.kind === 'trace') {
      const f = confinedPath(dirname(i.file), rel);
      file = f === i.file || typeof f === 'number' ? f : 403;
    }
    return typeof file === 'number' ? refused(file) : { file };
  }

  private run(q: URLSearchParams): Reply {
    const i = this.input;
    if (i.kind === 'scenario') return { status: 200, body: i.body, type: COLUMNS_TYPE };
    const scenario = q.get('scenario') ?? '';
    const design = q.get('design') ?? '';
    const seed = Number(q.get('seed'));
    const key = `${scenario}\0${design}\0${seed}`;
    let body = this.runs.get(key);
    if (body === undefined) {
      const ref = i.kind === 'report' ? cellScenario(i, scenario) : null;
      const d = findDesign(design);
      if (ref === null || d === undefined || !Number.isSafeInteger(seed))
        return { status: 404, body: `cannot re-run ${scenario} × ${design} here\n` };
      const { events, dropped } = traceDesignRun(ref, d, seed);
      body = runBody(events, dropped);
      this.runs.set(key, body);
    }
    return { status: 200, body, type: COLUMNS_TYPE };
  }

  /** The traced replay of the counterexample in data file `rel`. */
  private race(rel: string): Reply {
    const d = this.data(rel);
    if (!('file' in d)) return d;
    const key = `race\0${d.file}`;
    let body = this.runs.get(key);
    if (body === undefined) {
      let m: Record<string, unknown>;
      try {
        m =
          (JSON.parse(readFileSync(d.file, 'utf8')) as { metadata?: Record<string, unknown> }).metadata ?? {};
      } catch {
        return { status: 400, body: `${rel}: not JSON\n` };
      }
      if (typeof m.schedule !== 'string')
        return {
          status: 404,
          body: `${rel}: not an explorer counterexample (no schedule in its metadata)\n`,
        };
      const [name, design, schedule] = [m.scenario, m.design, m.schedule].map((v) => String(v ?? ''));
      // Only a built-in: the file names no path the server would read.
      if (!builtinRaceNames().includes(name!))
        return { status: 404, body: `cannot replay ${rel} here: ${name} is not a built-in race scenario\n` };
      try {
        const { events } = traceRaceSchedule(loadRaceScenario(name!).scenario, design!, schedule!);
        body = TraceColumns.of(events).encode(0);
      } catch (e) {
        return { status: 404, body: `cannot replay ${rel}: ${e instanceof Error ? e.message : String(e)}\n` };
      }
      this.runs.set(key, body);
    }
    return { status: 200, body, type: COLUMNS_TYPE };
  }
}

/** `xivelab ui`: serve until SIGINT/SIGTERM; prints the URL. */
export async function uiCommand(
  path: string | undefined,
  port: number,
  io: { out(s: string): void },
): Promise<void> {
  const app = webAppDir();
  if (!statSync(join(app, 'index.html'), { throwIfNoEntry: false })?.isFile())
    throw new UsageError(`the web app is not built (${app}): run npm run build:web`);
  const server = new UiServer(resolveUiInput(path), app);
  const url = await server.listen(port).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot listen on 127.0.0.1:${port} (${e.code ?? e.message})`);
  });
  io.out(`xivelab ui: ${path ?? 'no data'} at ${url} (Ctrl-C stops)\n`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
