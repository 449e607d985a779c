/**
 * Scenario-file fuzzing: the built-in `scenarios/*.yaml`, mutated with their structure in mind
 * (keys deleted, types swapped, extreme numbers and durations, YAML anchors and aliases, unknown
 * and duplicate keys) and then as text (truncation, byte flips), each run through the CLI's own
 * `xivelab run` code path in a worker thread with a time limit. Every file must end with exit 0,
 * 1 or 2 — never 70 (an internal error) and never a hang (the time limit reached).
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type Document, isMap, isScalar, isSeq, type Node, parseDocument, type Scalar } from 'yaml';
import { Rng } from '../../src/sim/rng.ts';
import type { ScenarioReply, ScenarioTask } from './scenario-worker.ts';

const SCENARIOS_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

/** The built-in scenario files: [name, text]. */
export function builtinScenarios(): [string, string][] {
  return readdirSync(SCENARIOS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => [f, readFileSync(join(SCENARIOS_DIR, f), 'utf8')]);
}

/** Numbers and durations at and beyond the edges of every range in the schema. */
const EXTREMES: readonly unknown[] = [
  0,
  -1,
  -0.5,
  0.5,
  1e-20,
  1e-12,
  1e12,
  1e15,
  1e308,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 63,
  Number.MAX_VALUE,
  Number.POSITIVE_INFINITY,
  Number.NaN,
  '1e400s',
  '2e308ms',
  '1e309ns',
  '0s',
  '1e-30us',
  '999999999999h',
  '',
  'x'.repeat(300),
];

const NUMBERS = EXTREMES.filter((x) => typeof x === 'number').concat([1, 2, 3, 7, 64, 4096, 1e6, 1e9]);
const DURATIONS = EXTREMES.filter((x) => typeof x === 'string' && /s$/.test(x)).concat([
  '1ns',
  '1s',
  '100s',
  '1h',
]);

/** A map key path into the document and the node there. */
interface Site {
  readonly parent: Node;
  readonly key: unknown;
  readonly node: Node;
}

function sites(doc: Document): Site[] {
  const out: Site[] = [];
  const walk = (n: unknown): void => {
    if (isMap(n)) {
      for (const it of n.items) {
        if (it.value !== null && typeof it.value === 'object')
          out.push({ parent: n, key: isScalar(it.key) ? it.key.value : it.key, node: it.value as Node });
        walk(it.value);
      }
    } else if (isSeq(n)) {
      n.items.forEach((it, i) => {
        if (it !== null && typeof it === 'object') out.push({ parent: n, key: i, node: it as Node });
        walk(it);
      });
    }
  };
  walk(doc.contents);
  return out;
}

function setAt(s: Site, value: unknown, doc: Document): void {
  const v = value instanceof Object && 'toJSON' in (value as object) ? value : doc.createNode(value);
  (s.parent as unknown as { set(k: unknown, v: unknown): void }).set(s.key, v);
}

/** One structure-aware mutation of `doc` (in place); returns its description. */
function mutateDoc(doc: Document, rng: Rng): string {
  const ss = sites(doc);
  if (ss.length === 0) return 'no sites';
  // Half of the mutations push a number or a duration to an edge: those files reach the run.
  const numeric = ss.filter(
    (x) =>
      isScalar(x.node) &&
      (typeof x.node.value === 'number' || /^[\d.e+-]+[a-z]+$/.test(String(x.node.value))),
  );
  if (numeric.length > 0 && rng.chance(0.5)) {
    const s = numeric[rng.index(numeric.length)]!;
    const n = s.node as Scalar;
    const x =
      typeof n.value === 'number'
        ? NUMBERS[rng.index(NUMBERS.length)]!
        : DURATIONS[rng.index(DURATIONS.length)]!;
    n.value = x;
    return `${String(s.key)} := ${String(x)}`;
  }
  const s = ss[rng.index(ss.length)]!;
  const where = String(s.key);
  switch (rng.index(8)) {
    case 0:
      (s.parent as unknown as { delete(k: unknown): void }).delete(s.key);
      return `delete ${where}`;
    case 1:
    case 2: {
      const x = EXTREMES[rng.index(EXTREMES.length)];
      setAt(s, x, doc);
      return `${where} := ${String(x)}`;
    }
    case 3: {
      const n = s.node;
      const swapped = isScalar(n)
        ? typeof n.value === 'number'
          ? String(n.value)
          : typeof n.value === 'string'
            ? rng.chance(0.5)
              ? 42
              : [n.value]
            : { [String(n.value)]: n.value }
        : isSeq(n)
          ? { a: 1 }
          : isMap(n)
            ? [1, 2]
            : null;
      setAt(s, swapped, doc);
      return `${where} type-swapped`;
    }
    case 4: {
      // An alias of another node (anchors shared across the document).
      // The anchor comes first in document order.
      const at = ss.indexOf(s);
      const other = ss[rng.index(Math.max(1, at))]!;
      if (other.node === s.node || !isScalar(other.node)) {
        setAt(s, null, doc);
        return `${where} := null`;
      }
      const alias = doc.createAlias(other.node as Scalar, `a${rng.index(1000)}`);
      setAt(s, alias, doc);
      return `${where} := alias`;
    }
    case 5:
      setAt(s, true, doc);
      return `${where} := true`;
    case 6: {
      if (!isMap(s.parent)) return 'no-op';
      s.parent.set(`unknown${rng.index(10)}`, rng.index(100));
      return `unknown key beside ${where}`;
    }
    default: {
      const n = s.node;
      if (isScalar(n) && typeof n.value === 'number') {
        n.value = n.value * [10, 1000, 1e9, -1, 1e-9][rng.index(5)]!;
        return `${where} scaled`;
      }
      setAt(s, [], doc);
      return `${where} := []`;
    }
  }
}

/** Text-level mutations, applied after the structure ones. */
function mutateText(text: Buffer, rng: Rng): [Buffer, string] {
  switch (rng.index(7)) {
    case 0: {
      const at = rng.index(text.length + 1);
      return [text.subarray(0, at), `truncated at byte ${at}`];
    }
    case 1:
    case 2: {
      const b = Buffer.from(text);
      const n = 1 + rng.index(4);
      for (let i = 0; i < n && b.length > 0; i++) b[rng.index(b.length)] = rng.index(256);
      return [b, `${n} byte flip(s)`];
    }
    case 3:
      return [Buffer.concat([Buffer.from('vcpus: *nowhere\n'), text]), 'unresolved alias'];
    case 4: {
      // Nested anchors: each level 9 aliases of the previous one.
      let s = 'a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
      for (let i = 1; i < 9; i++)
        s += `a${i}: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]\n`;
      return [Buffer.concat([text, Buffer.from(s)]), 'alias bomb'];
    }
    case 5: {
      const lines = text.toString('latin1').split('\n');
      const i = rng.index(lines.length);
      lines.splice(i, 0, lines[rng.index(lines.length)] ?? '');
      return [Buffer.from(lines.join('\n'), 'latin1'), `line duplicated at ${i + 1}`];
    }
    default:
      return [text, 'no text mutation'];
  }
}

/** A mutated scenario file. */
export interface Mutant {
  readonly name: string;
  readonly bytes: Buffer;
  readonly mutations: readonly string[];
}

/** The `i`-th mutant of a session seeded with `seed` (deterministic: replays by seed and index). */
export function mutant(seed: number, i: number, bases: readonly [string, string][]): Mutant {
  const rng = new Rng((seed * 1_000_003 + i) >>> 0);
  const [base, text] = bases[rng.index(bases.length)]!;
  let doc = parseDocument(text);
  let good = text;
  const mutations: string[] = [];
  const n = rng.chance(0.3) ? 2 : 1;
  for (let k = 0; k < n; k++) {
    const what = mutateDoc(doc, rng);
    try {
      // An alias whose anchor a later mutation removed does not print: that mutation is undone.
      good = doc.toString();
      mutations.push(what);
    } catch {
      doc = parseDocument(good);
    }
  }
  const json = rng.chance(0.1);
  let bytes: Buffer = Buffer.from(
    json ? JSON.stringify(doc.toJS({ maxAliasCount: -1 }), null, 2) : doc.toString(),
  );
  if (rng.chance(0.25)) {
    const [b, what] = mutateText(bytes, rng);
    bytes = b;
    mutations.push(what);
  }
  return {
    name: `${String(i).padStart(4, '0')}-${base.replace(/\.yaml$/, json ? '.json' : '.yaml')}`,
    bytes,
    mutations,
  };
}

/** Outcome of one file. */
export interface FileOutcome {
  /** Exit code, or 'hang' when the time limit was reached. */
  readonly code: number | 'hang';
  readonly stderr: string;
  readonly ms: number;
}

/** Runs files through `xivelab run` in a worker thread, one at a time, with a time limit each. */
export class ScenarioRunner {
  private worker: Worker | null = null;
  private readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** A worker with the CLI loaded (its start-up is not part of any file's time). */
  private async start(): Promise<Worker> {
    const entry = new URL('./scenario-worker.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(entry)}))`;
    const w = new Worker(boot, { eval: true, stdout: true, stderr: true });
    await new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
    return w;
  }

  async run(file: string): Promise<FileOutcome> {
    const w = this.worker ?? (await this.start());
    this.worker = w;
    const t0 = performance.now();
    return new Promise((resolve) => {
      const done = (o: FileOutcome): void => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('error', onError);
        resolve(o);
      };
      const timer = setTimeout(() => {
        this.worker = null;
        void w.terminate();
        done({ code: 'hang', stderr: '', ms: performance.now() - t0 });
      }, this.timeoutMs);
      const onMessage = (r: ScenarioReply): void =>
        done({ code: r.code, stderr: r.stderr, ms: performance.now() - t0 });
      const onError = (e: Error): void => {
        this.worker = null;
        done({ code: 70, stderr: `worker died: ${e.message}`, ms: performance.now() - t0 });
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.postMessage({ file } satisfies ScenarioTask);
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = null;
  }
}

/** A failing file: the shrunk text, the mutations, and the outcome. */
export interface ScenarioFailure {
  readonly name: string;
  readonly index: number;
  readonly mutations: readonly string[];
  readonly outcome: FileOutcome;
  /** The file after line-by-line shrinking (same outcome). */
  readonly shrunk: string;
}

export interface ScenarioFuzzOptions {
  readonly seed: number;
  readonly files: number;
  readonly timeoutMs: number;
  /** Line-removal attempts per failing file. */
  readonly shrinkAttempts?: number;
  /** Only this mutant index (replay). */
  readonly only?: number;
  readonly onFile?: (i: number, name: string, o: FileOutcome) => void;
}

export interface ScenarioFuzzResult {
  /** Exit code (or 'hang') → files. */
  readonly codes: Map<string, number>;
  /** Exit-2 files whose message has no `file:line:col`. */
  readonly positionless: string[];
  readonly failures: ScenarioFailure[];
  readonly files: number;
}

const bad = (o: FileOutcome): boolean => o.code === 'hang' || (o.code !== 0 && o.code !== 1 && o.code !== 2);

/** Run the scenario-file fuzzer. */
export async function fuzzScenarios(o: ScenarioFuzzOptions): Promise<ScenarioFuzzResult> {
  const bases = builtinScenarios();
  const dir = mkdtempSync(join(tmpdir(), 'xivelab-fuzz-'));
  const runner = new ScenarioRunner(o.timeoutMs);
  const codes = new Map<string, number>();
  const positionless: string[] = [];
  const failures: ScenarioFailure[] = [];
  let files = 0;
  try {
    const first = o.only ?? 0;
    const end = o.only !== undefined ? o.only + 1 : o.files;
    for (let i = first; i < end; i++) {
      const m = mutant(o.seed, i, bases);
      const file = join(dir, m.name);
      writeFileSync(file, m.bytes);
      const out = await runner.run(file);
      files++;
      o.onFile?.(i, m.name, out);
      codes.set(String(out.code), (codes.get(String(out.code)) ?? 0) + 1);
      if (out.code === 2) {
        const first = out.stderr.split('\n')[0] ?? '';
        if (!first.startsWith(`${file}:`) || !/^:\d+:\d+ /.test(first.slice(file.length)))
          positionless.push(`${m.name}: ${first.replace(file, m.name)}`);
      }
      if (bad(out)) {
        const shrunk = await shrink(runner, file, m.bytes.toString('latin1'), out, o.shrinkAttempts ?? 40);
        failures.push({ name: m.name, index: i, mutations: m.mutations, outcome: out, shrunk });
      }
    }
  } finally {
    await runner.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { codes, positionless, failures, files };
}

/** Remove lines while the outcome stays as bad, within `attempts` runs. */
async function shrink(
  runner: ScenarioRunner,
  file: string,
  text: string,
  out: FileOutcome,
  attempts: number,
): Promise<string> {
  // A hang costs the whole time limit per attempt: not shrunk.
  let budget = out.code === 'hang' ? 0 : attempts;
  let lines = text.split('\n');
  let progress = true;
  while (progress && budget > 0) {
    progress = false;
    for (let i = lines.length - 1; i >= 0 && budget > 0; i--) {
      const cand = [...lines.slice(0, i), ...lines.slice(i + 1)];
      writeFileSync(file, Buffer.from(cand.join('\n'), 'latin1'));
      budget--;
      const r = await runner.run(file);
      if (r.code === out.code) {
        lines = cand;
        progress = true;
      }
    }
  }
  return lines.join('\n');
}
