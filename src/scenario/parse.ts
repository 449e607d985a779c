/**
 * Scenario text → validated {@link Scenario}, with every error mapped back to `file:line:col`.
 * YAML and JSON both go through the `yaml` parser (JSON is YAML 1.2), so both get positions.
 * Pure: no file system (the browser visualizer can use it); `load.ts` reads files.
 */

import { isMap, isPair, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { Scenario } from './schema.ts';

/** Bad scenario input: one line, `file:line:col message`. */
export class ScenarioError extends Error {
  readonly file: string;
  /** 1-based; 0 when the error has no position (e.g. an unreadable file). */
  readonly line: number;
  readonly col: number;
  readonly detail: string;

  constructor(file: string, line: number, col: number, detail: string) {
    super(line > 0 ? `${file}:${line}:${col} ${detail}` : `${file}: ${detail}`);
    this.name = 'ScenarioError';
    this.file = file;
    this.line = line;
    this.col = col;
    this.detail = detail;
  }
}

type Path = readonly PropertyKey[];

/** The deepest node of `doc` along `path` and the offset to report for it. */
function locate(root: unknown, path: Path, unknownKey: string | null): number {
  let node: unknown = root;
  let offset = (root as Node | null)?.range?.[0] ?? 0;
  for (const key of path) {
    if (!isMap(node) && !(node && typeof node === 'object' && 'items' in node)) break;
    const items = (node as { items: unknown[] }).items;
    let next: unknown;
    if (isMap(node)) {
      const pair = items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
      if (!isPair(pair)) break;
      next = pair.value ?? pair.key;
      if (next === null) next = pair.key;
    } else {
      if (typeof key !== 'number') break;
      next = items[key];
      if (next === undefined) break;
    }
    node = next;
    const r = (node as Node | null)?.range;
    if (r) offset = r[0];
  }
  if (unknownKey !== null && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && p.key.value === unknownKey);
    const r = pair && isScalar(pair.key) ? pair.key.range : undefined;
    if (r) offset = r[0];
  }
  return offset;
}

function pathText(path: Path): string {
  return path.map(String).join('.');
}

/** One zod issue as `path: message` (the form the CLI prints after `file:line:col`). */
function issueText(issue: z.core.$ZodIssue): string {
  const where = pathText(issue.path);
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys')
    msg = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return where ? `${where}: ${msg}` : msg;
}

/**
 * Parse and validate scenario text. `file` names the source in messages.
 * @throws ScenarioError on a syntax or schema error (the first one, by position).
 */
export function parseScenario(text: string, file: string): Scenario {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = lineCounter.linePos(syntax.pos[0]);
    const msg = syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ScenarioError(file, pos.line, pos.col, msg);
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) throw new ScenarioError(file, 1, 1, 'empty scenario');
  const r = Scenario.safeParse(data);
  if (r.success) return r.data;
  const located = r.error.issues.map((issue) => {
    const unknown = issue.code === 'unrecognized_keys' ? (issue.keys[0] ?? null) : null;
    const rank = issue.code === 'custom' ? 1 : 0;
    return { rank, offset: locate(doc.contents, issue.path, unknown), text: issueText(issue) };
  });
  // Shape errors first (a refinement may only be confused by them), then by position.
  located.sort((a, b) => a.rank - b.rank || a.offset - b.offset);
  const first = located[0]!;
  const pos = lineCounter.linePos(first.offset);
  throw new ScenarioError(file, pos.line, pos.col, first.text);
}

/**
 * Validate an in-memory scenario object (programmatic sweeps): errors carry the path, no position.
 * @throws ScenarioError
 */
export function checkScenario(value: unknown, name = '<scenario>'): Scenario {
  const r = Scenario.safeParse(value);
  if (r.success) return r.data;
  throw new ScenarioError(name, 0, 0, issueText(r.error.issues[0]!));
}
