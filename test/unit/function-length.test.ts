/**
 * The orchestration layers read like the model layers: no function in `src/scenario` or
 * `src/cli` runs over 80 lines. Every function declaration, method, constructor, accessor,
 * function expression and arrow counts, from its first token (its TSDoc excluded) to its last.
 * The TypeScript compiler API parses the files (typescript 7: the `unstable/sync` API over tsgo).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { type Node, type SourceFile, SyntaxKind } from 'typescript/unstable/ast';
import { API } from 'typescript/unstable/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const MAX_LINES = 80;
/** The layers held to the limit. */
const CHECKED = ['src/scenario/', 'src/cli/'];

const FUNCTION_KINDS: ReadonlySet<SyntaxKind> = new Set([
  SyntaxKind.FunctionDeclaration,
  SyntaxKind.FunctionExpression,
  SyntaxKind.ArrowFunction,
  SyntaxKind.MethodDeclaration,
  SyntaxKind.Constructor,
  SyntaxKind.GetAccessor,
  SyntaxKind.SetAccessor,
]);

/** The function's name where it has one, else `<anonymous>`. */
function nameOf(node: Node): string {
  const name = (node as Node & { name?: Node & { text?: string } }).name;
  return name?.text ?? '<anonymous>';
}

/** Every function in `sf` longer than `max` lines, as `file:line name (N lines)`. */
function longFunctions(sf: SourceFile, file: string, max: number): string[] {
  const starts = [0];
  for (let i = sf.text.indexOf('\n'); i >= 0; i = sf.text.indexOf('\n', i + 1)) starts.push(i + 1);
  const lineOf = (pos: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const out: string[] = [];
  const visit = (node: Node): void => {
    if (FUNCTION_KINDS.has(node.kind)) {
      const first = lineOf(node.getStart(sf));
      const lines = lineOf(node.end) - first + 1;
      if (lines > max) out.push(`${file}:${first} ${nameOf(node)} (${lines} lines)`);
    }
    node.forEachChild(visit);
  };
  visit(sf);
  return out;
}

/**
 * The files of the project at `tsconfig` below `base` (not its libraries) that `pick` selects,
 * and their over-long functions.
 */
function scan(
  api: API,
  tsconfig: string,
  base: string,
  pick: (file: string) => boolean,
  max: number,
): { files: number; long: string[] } {
  const project = api.updateSnapshot({ openProjects: [tsconfig] }).getProject(tsconfig);
  if (project === undefined) throw new Error(`no project at ${tsconfig}`);
  const files = project.program
    .getSourceFileNames()
    .map((f) => relative(base, f))
    .filter((f) => !f.startsWith('..') && pick(f))
    .sort();
  const long = files.flatMap((f) => {
    const sf = project.program.getSourceFile(join(base, f));
    if (sf === undefined) throw new Error(`no source file ${f}`);
    return longFunctions(sf, f, max);
  });
  return { files: files.length, long };
}

describe('function length', () => {
  let api: API;
  let fixture: string;
  beforeAll(() => {
    api = new API({ cwd: ROOT });
    fixture = mkdtempSync(join(tmpdir(), 'xivelab-fnlen-'));
  });
  afterAll(() => {
    api.close();
    rmSync(fixture, { recursive: true, force: true });
  });

  it(`no function in ${CHECKED.join(' or ')} runs over ${MAX_LINES} lines`, () => {
    const pick = (f: string): boolean => CHECKED.some((d) => f.startsWith(d));
    const { files, long } = scan(api, join(ROOT, 'tsconfig.json'), ROOT, pick, MAX_LINES);
    expect(files).toBeGreaterThan(20);
    expect(long).toEqual([]);
  });

  it('the checker names a long function, method and arrow, and passes a short one', () => {
    const body = (n: number): string => '  x++;\n'.repeat(n);
    writeFileSync(join(fixture, 'tsconfig.json'), '{ "include": ["*.ts"] }\n');
    writeFileSync(
      join(fixture, 'long.ts'),
      `let x = 0;\n/** doc lines are not counted */\nexport function long(): void {\n${body(4)}}\n` +
        `export class C {\n  m(): void {\n${body(3)}  }\n}\n` +
        `export const f = (): void => {\n${body(3)}};\n` +
        `export function short(): void {\n${body(1)}}\n`,
    );
    expect(scan(api, join(fixture, 'tsconfig.json'), fixture, () => true, 4)).toEqual({
      files: 1,
      long: ['long.ts:3 long (6 lines)', 'long.ts:10 m (5 lines)', 'long.ts:16 <anonymous> (5 lines)'],
    });
  });
});
