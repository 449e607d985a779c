/**
 * Scenario text → validated {@link Scenario}, with every error mapped back to `file:line:col`.
 * YAML and JSON both go through the `yaml` parser (JSON is YAML 1.2), so both get positions; a
 * `.json` file must also be strict JSON (no comments, no trailing commas).
 * Pure: no file system (the browser visualizer can use it); `load.ts` reads files.
 */

import {
  type Alias,
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  LineCounter,
  type Node,
  parseDocument,
  visit,
} from 'yaml';
import type { z } from 'zod';
import { Scenario } from './schema.ts';
import { jsonSyntaxError } from './strict-json.ts';

/** Errors printed for one file; the rest are counted in a last line. */
export const MAX_REPORTED_ERRORS = 20;
/** Aliases one document may expand (the `yaml` guard against alias bombs). */
const MAX_ALIAS_COUNT = 100;
const TOO_DEEP = 'nested too deeply (the parser ran out of stack)';

/** One error in a scenario: 1-based position (0 when there is none) and the message. */
export interface ScenarioIssue {
  readonly line: number;
  readonly col: number;
  readonly detail: string;
}

/**
 * Bad scenario input: one line per error, `file:line:col message` (at most
 * {@link MAX_REPORTED_ERRORS}, then `file: … and N more errors`). `line`, `col` and `detail` are
 * the first error's; `issues` holds them all, in file order.
 */
export class ScenarioError extends Error {
  readonly file: string;
  /** 1-based; 0 when the error has no position (an in-memory scenario). */
  readonly line: number;
  readonly col: number;
  readonly detail: string;
  readonly issues: readonly ScenarioIssue[];

  constructor(file: string, line: number, col: number, detail: string, more: readonly ScenarioIssue[] = []) {
    const issues = [{ line, col, detail }, ...more];
    const lines = issues
      .slice(0, MAX_REPORTED_ERRORS)
      .map((i) => (i.line > 0 ? `${file}:${i.line}:${i.col} ${i.detail}` : `${file}: ${i.detail}`));
    const rest = issues.length - MAX_REPORTED_ERRORS;
    if (rest > 0) lines.push(`${file}: … and ${rest} more error${rest > 1 ? 's' : ''}`);
    super(lines.join('\n'));
    this.name = 'ScenarioError';
    this.file = file;
    this.line = line;
    this.col = col;
    this.detail = detail;
    this.issues = issues;
  }

  /** The error for `issues` (at least one). */
  static of(file: string, issues: readonly ScenarioIssue[]): ScenarioError {
    const [first, ...more] = issues;
    if (first === undefined) throw new RangeError('ScenarioError.of: no issue');
    return new ScenarioError(file, first.line, first.col, first.detail, more);
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
 * The issues worth printing: a cross-field check about a value that is already wrong (out of
 * range, wrong type) only repeats that error, so it is left out.
 */
function reported(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const shape = issues.filter((i) => i.code !== 'custom' && i.code !== 'unrecognized_keys');
  const under = (outer: Path, inner: Path): boolean =>
    outer.length <= inner.length && outer.every((k, j) => k === inner[j]);
  return issues.filter((i) => i.code !== 'custom' || !shape.some((sh) => under(sh.path, i.path)));
}

/** Scenario text formats: `.json` files are strict JSON, anything else YAML 1.2. */
export type ScenarioFormat = 'yaml' | 'json';

/** The format a file name implies. */
export function formatOf(file: string): ScenarioFormat {
  return /\.json$/i.test(file) ? 'json' : 'yaml';
}

/**
 * The alias an alias error is about: the first alias with no anchor before it (`unresolved`), or
 * the first alias of a collection that holds aliases itself (the nesting that makes an alias
 * bomb). One pass in document order, as `yaml` resolves anchors.
 */
function aliasAt(doc: Document, unresolved: boolean): Alias | undefined {
  const anchors = new Map<string, Node>();
  const nests = new Map<Node, boolean>();
  const holdsAlias = (n: Node): boolean => {
    let hit = nests.get(n);
    if (hit === undefined) {
      hit = false;
      visit(n, {
        Alias() {
          hit = true;
          return visit.BREAK;
        },
      });
      nests.set(n, hit);
    }
    return hit;
  };
  let first: Alias | undefined;
  let found: Alias | undefined;
  visit(doc, {
    Node(_key, n) {
      if (!isAlias(n)) {
        if (n.anchor) anchors.set(n.anchor, n);
        return undefined;
      }
      first ??= n;
      const target = anchors.get(n.source);
      if (unresolved ? target === undefined : isCollection(target) && holdsAlias(target)) {
        found = n;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found ?? first;
}

/**
 * Parse and validate scenario text. `file` names the source in messages; its extension picks the
 * format unless `format` is given.
 * @throws ScenarioError listing every syntax or schema error, in file order.
 */
export function parseScenario(text: string, file: string, format: ScenarioFormat = formatOf(file)): Scenario {
  return parseValidated(Scenario, text, file, format);
}

/**
 * {@link parseValidated} for a command that takes one kind of file, where users may hand it the
 * other kind: text that fails `schema` but is a valid `other.schema` gets one error at 1:1
 * (`other.says`), rather than every key the two formats do not share.
 * @throws ScenarioError
 */
export function parseKind<T extends z.ZodType>(
  schema: T,
  text: string,
  file: string,
  other: { schema: z.ZodType; says: string },
): z.output<T> {
  try {
    return parseValidated(schema, text, file);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    try {
      parseValidated(other.schema, text, file);
    } catch {
      throw e;
    }
    throw new ScenarioError(file, 1, 1, other.says);
  }
}

/**
 * Parse YAML/JSON text and validate it against `schema` (any scenario-like format: scenarios,
 * race scenarios), with the errors of {@link parseScenario}.
 * @throws ScenarioError listing every syntax or schema error, in file order.
 */
export function parseValidated<T extends z.ZodType>(
  schema: T,
  text: string,
  file: string,
  format: ScenarioFormat = formatOf(file),
): z.output<T> {
  const lineCounter = new LineCounter();
  const at = (offset: number, detail: string): ScenarioIssue => ({ ...lineCounter.linePos(offset), detail });
  if (text.trim() === '') throw new ScenarioError(file, 1, 1, 'empty scenario');
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  if (format === 'json') {
    const bad = jsonSyntaxError(text);
    if (bad !== null) throw ScenarioError.of(file, [at(bad.offset, bad.message)]);
  }
  // The first syntax error only: the parser's recovery after it mostly reports echoes of it.
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const msg =
      syntax.code === 'RESOURCE_EXHAUSTION'
        ? TOO_DEEP
        : syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw ScenarioError.of(file, [at(syntax.pos[0], msg)]);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // The parser's own depth guard usually comes first; the conversion recurses too.
    if (e instanceof RangeError) throw new ScenarioError(file, 1, 1, TOO_DEEP);
    if (!(e instanceof ReferenceError)) throw e;
    const unresolved = e.message.startsWith('Unresolved alias');
    const alias = aliasAt(doc, unresolved);
    const detail = unresolved
      ? `Unresolved alias "*${alias?.source}": no anchor "&${alias?.source}" before it`
      : `Excessive alias count: the aliases expand to more than ${MAX_ALIAS_COUNT} nodes`;
    throw ScenarioError.of(file, [at(alias?.range?.[0] ?? 0, detail)]);
  }
  if (data === null || data === undefined) throw new ScenarioError(file, 1, 1, 'empty scenario');
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const located = reported(r.error.issues).map((issue) => {
    const unknown = issue.code === 'unrecognized_keys' ? (issue.keys[0] ?? null) : null;
    return { offset: locate(doc.contents, issue.path, unknown), text: issueText(issue) };
  });
  located.sort((a, b) => a.offset - b.offset);
  throw ScenarioError.of(
    file,
    located.map((l) => at(l.offset, l.text)),
  );
}

/**
 * Validate an in-memory scenario object (programmatic sweeps): errors carry the path, no position.
 * @throws ScenarioError listing every error.
 */
export function checkScenario(value: unknown, name = '<scenario>'): Scenario {
  const r = Scenario.safeParse(value);
  if (r.success) return r.data;
  throw ScenarioError.of(
    name,
    reported(r.error.issues).map((issue) => ({ line: 0, col: 0, detail: issueText(issue) })),
  );
}
