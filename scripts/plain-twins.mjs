#!/usr/bin/env node
// Plain twins of the kernel paths' step generators, derived at build time.
//
// A kernel path that can race (the ESB fault, KVM's hva_to_pfn, set/clr_mapped, the zap) is
// written once, as a generator of atomic steps named `…Steps` (src/host/atomic-step.ts): the
// interleaving explorer resumes it step by step, and a sequential call drives it to its end with
// `driveSteps`. A generator costs that sequential call a generator object and a resume at every
// level, and V8 inlines no generator: a full VM's million partition-scoped ESB faults (three
// levels each) spent about a fifth of their time there.
//
// This transform derives from each `…Steps` generator a plain function `…Plain` that does the
// same thing without suspending, and points the sequential calls at it:
//
//   - `if (mustYield(s)) yield s;` becomes `if (mustYield(s)) throw s;` (under a sequential
//     driver only a step that cannot run is yielded: the driver reports it stuck; the twin
//     throws it to `driveSteps`, which does the same); a bare `yield s;` becomes
//     `if (!s.canRun()) throw s;`;
//   - `yield* x.fooSteps(…)` becomes `x.fooPlain(…)`; `yield* <any other generator>` drives it
//     in place, throwing a step that cannot run;
//   - `driveSteps(x.fooSteps(a, b), stuck)` and `this.drive(x.fooSteps(a, b), …)` become
//     `driveSteps(x.fooPlain, stuck, x, a, b)`: `driveSteps` calls the twin on `x` under the
//     driver (no closure: a million faults would allocate a million);
//   - an object literal's `fooSteps: (…) => x.barSteps(…)` gains `fooPlain: (…) => x.barPlain(…)`.
//
// Everything else is copied. A `…Steps` generator the transform cannot derive (a `yield` it does
// not know, a `try`: a thrown step would run its handlers where an abandoned generator runs
// none) fails the build. Each twin is written on the line where its generator ends, so no line
// moves and source maps stay right. The build (dist/, dist-bench/) runs it on tsc's output, and
// Vitest on src/ as it loads it (vitest.config.ts): the tests run the code users run. Code run
// without it (tsx, the web build, which steps no kernel path) behaves the same, only slower.
//
// Usage: node scripts/plain-twins.mjs <dir>   (every .js file under <dir>, in place)

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAst } from 'vite';

const STEPS = /Steps$/;

/** Marks a module that has its twins (a bundle of transformed modules is not transformed again). */
const MARK = '/* plain twins */';

/** `fooSteps` → `fooPlain`. */
const plainName = (name) => name.replace(STEPS, 'Plain');

/** Drives a generator that is not a `…Steps` call, in place, as `driveSteps` would. */
const DRIVE_IN_PLACE =
  '((g) => { for (let r = g.next(); ; r = g.next()) { if (r.done) return r.value; if (!r.value.canRun()) throw r.value; } })(';

/** Every child node of an ESTree node. */
function* children(node) {
  for (const key of Object.keys(node)) {
    const v = node[key];
    if (Array.isArray(v)) {
      for (const c of v) if (c && typeof c.type === 'string') yield c;
    } else if (v && typeof v.type === 'string') yield v;
  }
}

/** The name of a call's callee, `foo` in `foo(…)` or `x.foo(…)`, with its node; else null. */
function calleeName(call) {
  if (call?.type !== 'CallExpression') return null;
  const c = call.callee;
  if (c.type === 'Identifier') return c;
  if (c.type === 'MemberExpression' && !c.computed && c.property.type === 'Identifier') return c.property;
  return null;
}

/** Whether `node` is a function whose own `yield`s the walk must not take for its parent's. */
const isFunction = (n) => n.type === 'FunctionExpression' || n.type === 'FunctionDeclaration';

/** A transform error naming the file and line of `pos`. */
function fail(code, file, pos, what) {
  const line = code.slice(0, pos).split('\n').length;
  return new Error(`${file}:${line}: plain twin: ${what}`);
}

/** Apply non-overlapping edits `{ start, end, text }` to `code.slice(from, to)`. */
function applyEdits(code, from, to, edits) {
  const inside = edits.filter((e) => e.start >= from && e.end <= to).sort((a, b) => a.start - b.start || a.end - b.end);
  let out = '';
  let at = from;
  for (const e of inside) {
    if (e.start < at) throw new Error(`plain twin: overlapping edits at ${e.start}`);
    out += code.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + code.slice(at, to);
}

/**
 * The edits that strip the comments of `code.slice(node.start, node.end)`: comments lie only
 * between the leaf nodes (a literal's or template's text is a leaf), so the gaps are scanned.
 */
function commentEdits(code, node) {
  const leaves = [];
  const walk = (n) => {
    let any = false;
    for (const c of children(n)) {
      any = true;
      walk(c);
    }
    if (!any || n.type === 'Literal' || n.type === 'TemplateElement') leaves.push(n);
    if (n.type === 'TemplateElement' && code.slice(n.start, n.end).includes('\n'))
      throw new Error(`plain twin: a template literal spans lines at ${n.start}`);
  };
  walk(node);
  leaves.sort((a, b) => a.start - b.start);
  const edits = [];
  const scan = (from, to) => {
    for (let i = from; i < to - 1; i++) {
      if (code[i] !== '/') continue;
      const end =
        code[i + 1] === '/' ? code.indexOf('\n', i) : code[i + 1] === '*' ? code.indexOf('*/', i + 2) + 2 : -1;
      if (end <= i) continue;
      edits.push({ start: i, end: Math.min(end, to), text: ' ' });
      i = end - 1;
    }
  };
  let at = node.start;
  for (const l of leaves) {
    if (l.start > at) scan(at, l.start);
    at = Math.max(at, l.end);
  }
  scan(at, node.end);
  return edits;
}

/** `text` on one line: the twin goes on its generator's last line. */
function oneLine(text, code, file, pos) {
  if (/\/\/|\/\*/.test(text.slice(0, text.indexOf('{')))) throw fail(code, file, pos, 'a comment before the body');
  return text.replace(/\s*\n\s*/g, ' ');
}

/**
 * The twin of a generator function `fn` (a declaration, or a method's function): its header
 * `head` (the text before the body, with the name and `*` replaced), and the body with the
 * `yield`s rewritten and `calls` (the call-site edits inside it) applied.
 */
function twinText(code, file, fn, head, calls, imports) {
  const edits = [...calls, ...commentEdits(code, fn.body)];
  const walk = (n) => {
    if (n.type === 'TryStatement') throw fail(code, file, n.start, 'a try statement in a step generator');
    if (n.type === 'IfStatement' && isGuardedYield(n)) {
      const s = n.consequent.type === 'BlockStatement' ? n.consequent.body[0] : n.consequent;
      edits.push({ start: s.start, end: s.end, text: `throw ${s.expression.argument.name};` });
      return;
    }
    if (n.type === 'ExpressionStatement' && n.expression.type === 'YieldExpression' && !n.expression.delegate) {
      const a = n.expression.argument;
      if (a?.type !== 'Identifier') throw fail(code, file, n.start, 'a yield of something other than a step variable');
      edits.push({ start: n.start, end: n.end, text: `if (!${a.name}.canRun()) throw ${a.name};` });
      return;
    }
    if (n.type === 'YieldExpression') {
      if (!n.delegate) throw fail(code, file, n.start, 'a yield whose value is used');
      const name = calleeName(n.argument);
      if (name !== null && STEPS.test(name.name)) {
        edits.push({ start: n.start, end: n.argument.start, text: '' });
        edits.push({ start: name.start, end: name.end, text: plainName(name.name) });
        if (n.argument.callee === name) imports.add(name.name);
      } else {
        edits.push({ start: n.start, end: n.argument.start, text: DRIVE_IN_PLACE });
        edits.push({ start: n.argument.end, end: n.argument.end, text: ')' });
      }
      for (const c of children(n.argument)) walk(c);
      return;
    }
    if (isFunction(n)) return;
    for (const c of children(n)) walk(c);
  };
  walk(fn.body);
  return oneLine(head + applyEdits(code, fn.body.start, fn.body.end, edits), code, file, fn.start);
}

/** `if (mustYield(s)) yield s;` (or `{ yield s; }`). */
function isGuardedYield(n) {
  const t = n.test;
  if (t.type !== 'CallExpression' || t.callee.type !== 'Identifier' || t.callee.name !== 'mustYield') return false;
  const c = n.consequent;
  const s = c.type === 'BlockStatement' && c.body.length === 1 ? c.body[0] : c;
  const y = s.type === 'ExpressionStatement' ? s.expression : null;
  return (
    n.alternate === null &&
    y?.type === 'YieldExpression' &&
    !y.delegate &&
    y.argument?.type === 'Identifier' &&
    t.arguments[0]?.type === 'Identifier' &&
    t.arguments[0].name === y.argument.name
  );
}

/**
 * The module `code` (JavaScript, file `file`) with its `…Steps` generators' plain twins, or null
 * when it has none and no call to point at one.
 */
export function plainTwins(code, file) {
  if (!code.includes('Steps') || code.includes(MARK)) return null;
  const ast = parseAst(code, { lang: 'js' }, file);
  const calls = [];
  const inserts = [];
  const imports = new Set();
  const local = new Set();
  const specifiers = new Map();

  // Call sites: driveSteps(x.fooSteps(…), …) / this.drive(x.fooSteps(…), …).
  const findCalls = (n) => {
    const driver = calleeName(n);
    const inner = n.type === 'CallExpression' ? calleeName(n.arguments[0]) : null;
    if (driver && inner && (driver.name === 'driveSteps' || driver.name === 'drive') && STEPS.test(inner.name)) {
      const call = n.arguments[0];
      const method = call.callee !== inner;
      if (n.arguments.length !== 2) throw fail(code, file, n.start, 'a driver call not of (steps, stuck)');
      if (method && !['ThisExpression', 'Identifier'].includes(call.callee.object.type))
        throw fail(code, file, n.start, `the receiver of ${inner.name} is neither this nor a variable`);
      const args = [method ? code.slice(call.callee.object.start, call.callee.object.end) : 'undefined'];
      for (const a of call.arguments) args.push(code.slice(a.start, a.end));
      if (args.length > 5 || /\n|\/\/|\/\*/.test(args.join()))
        throw fail(code, file, n.start, `${inner.name}: more than 4 arguments, or arguments over lines`);
      calls.push({ start: call.callee.end, end: call.end, text: '' });
      calls.push({ start: inner.start, end: inner.end, text: plainName(inner.name) });
      calls.push({ start: n.arguments[1].end, end: n.arguments[1].end, text: `, ${args.join(', ')}` });
      if (!method) imports.add(inner.name);
    }
    for (const c of children(n)) findCalls(c);
  };
  findCalls(ast);

  const generators = (n, parent) => {
    if (n.type === 'ImportSpecifier' && n.imported.name === n.local.name) specifiers.set(n.local.name, n);
    if (n.type === 'FunctionDeclaration' && n.generator && STEPS.test(n.id.name)) {
      const exported = parent?.type === 'ExportNamedDeclaration';
      local.add(n.id.name);
      const head = `${exported ? 'export ' : ''}function ${plainName(n.id.name)}${code.slice(n.id.end, n.body.start)}`;
      inserts.push({ at: (exported ? parent : n).end, text: ` ${twinText(code, file, n, head, calls, imports)}` });
    } else if ((n.type === 'MethodDefinition' || (n.type === 'Property' && n.method)) && n.value.generator) {
      const key = n.key;
      if (key.type === 'Identifier' && !n.computed && STEPS.test(key.name)) {
        const prefix = code.slice(n.start, key.start).replace(/\*\s*$/, '');
        const head = `${prefix}${plainName(key.name)}${code.slice(key.end, n.value.body.start)}`;
        const sep = n.type === 'Property' ? ', ' : ' ';
        inserts.push({ at: n.end, text: sep + twinText(code, file, n.value, head, calls, imports) });
      }
    } else if (
      n.type === 'Property' &&
      !n.method &&
      !n.computed &&
      n.key.type === 'Identifier' &&
      STEPS.test(n.key.name) &&
      n.value.type === 'ArrowFunctionExpression'
    ) {
      const name = calleeName(n.value.body);
      if (name === null || !STEPS.test(name.name))
        throw fail(code, file, n.start, `${n.key.name} is not an arrow to a …Steps call`);
      const edits = [...commentEdits(code, n.value), { start: name.start, end: name.end, text: plainName(name.name) }];
      const arrow = applyEdits(code, n.value.start, n.value.end, edits);
      inserts.push({ at: n.end, text: `, ${plainName(n.key.name)}: ${oneLine(arrow, code, file, n.start)}` });
      if (n.value.body.callee === name) imports.add(name.name);
    }
    for (const c of children(n)) generators(c, n);
  };
  generators(ast, null);

  if (inserts.length === 0 && calls.length === 0) return null;
  for (const name of imports) {
    if (local.has(name)) continue;
    const spec = specifiers.get(name);
    if (spec === undefined) throw fail(code, file, 0, `${name} is neither declared nor imported by name`);
    inserts.push({ at: spec.end, text: `, ${plainName(name)}` });
  }
  inserts.push({ at: 0, text: MARK });
  const edits = [...calls, ...inserts.map((i) => ({ start: i.at, end: i.at, text: i.text }))];
  return applyEdits(code, 0, code.length, edits);
}

/** Vite / Vitest plugin: the twins of src/'s modules, after the TypeScript is stripped. */
export function plainTwinsPlugin() {
  return {
    name: 'xivelab-plain-twins',
    enforce: 'post',
    transform(code, id) {
      if (!/\/src\/.*\.ts$/.test(id.split('?')[0])) return null;
      const out = plainTwins(code, id);
      // No line moves: the source map of the stripped TypeScript stays right (null keeps it).
      return out === null ? null : { code: out, map: null };
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? 'dist';
  let files = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.js')) continue;
    const path = join(entry.parentPath ?? entry.path, entry.name);
    const out = plainTwins(readFileSync(path, 'utf8'), path);
    if (out !== null) {
      writeFileSync(path, out);
      files++;
    }
  }
  console.log(`${dir}: plain twins of the step generators in ${files} modules`);
}
