/**
 * The plain twins the build derives from the kernel paths' step generators
 * (scripts/plain-twins.mjs): the exact code it writes, what it refuses, and that the tests run
 * them (Vitest loads src/ through the same transform).
 */
import { describe, expect, it } from 'vitest';
import { plainTwins } from '../../../scripts/plain-twins.mjs';
import {
  AtomicStep,
  driveSteps,
  mustYield,
  type PlainTwin,
  waitsForever,
} from '../../../src/host/atomic-step.ts';
import { KvmVm } from '../../../src/host/kvm/kvm.ts';
import { KvmXiveNative } from '../../../src/host/kvm/xive-native.ts';
import * as fault from '../../../src/host/mm/fault.ts';

describe('plainTwins', () => {
  it('a generator function: guarded and bare yields throw, yield* of a …Steps call is a call, others drive in place', () => {
    const src = [
      "import { mustYield, driveSteps } from './atomic-step.js';",
      "import { barSteps } from './bar.js';",
      'export function* fooSteps(a) {',
      '  const s = mk(a); // a comment',
      '  if (mustYield(s)) yield s;',
      '  yield s;',
      '  const r = yield* barSteps(a);',
      '  /* and',
      '     another */',
      '  yield* other;',
      '  return r + 1;',
      '}',
      'export function run(a) {',
      '  return driveSteps(fooSteps(a), stuck);',
      '}',
      '',
    ].join('\n');
    const out = plainTwins(src, 'foo.js');
    expect(out?.split('\n')).toEqual([
      "/* plain twins */import { mustYield, driveSteps } from './atomic-step.js';",
      "import { barSteps, barPlain } from './bar.js';",
      'export function* fooSteps(a) {',
      '  const s = mk(a); // a comment',
      '  if (mustYield(s)) yield s;',
      '  yield s;',
      '  const r = yield* barSteps(a);',
      '  /* and',
      '     another */',
      '  yield* other;',
      '  return r + 1;',
      '} export function fooPlain(a) { const s = mk(a); if (mustYield(s)) throw s; if (!s.canRun()) throw s; ' +
        'const r = barPlain(a); ((g) => { for (let r = g.next(); ; r = g.next()) { if (r.done) return r.value; ' +
        'if (!r.value.canRun()) throw r.value; } })(other); return r + 1; }',
      'export function run(a) {',
      '  return driveSteps(fooPlain, stuck, undefined, a);',
      '}',
      '',
    ]);
    // A transformed module is left alone (the bundle of transformed modules).
    expect(plainTwins(out!, 'foo.js')).toBe(null);
  });

  it('methods of classes and object literals, an arrow property to a …Steps call, this.drive', () => {
    const src = [
      'class Dev {',
      '  *lockSteps(w) {',
      '    const s = this.s;',
      '    if (mustYield(s)) yield s;',
      '  }',
      '  *faultSteps(p) {',
      '    yield* this.lockSteps(false);',
      '    return p;',
      '  }',
      '  fault(p) {',
      '    return this.drive(this.faultSteps(p), -1);',
      '  }',
      '  ops() {',
      '    return {',
      '      faultSteps: (vmf) => this.faultSteps(vmf.pgoff),',
      '      *zapSteps(n) { yield* zapPagesSteps(n); },',
      '    };',
      '  }',
      '}',
      'function* zapPagesSteps(n) { return n; }',
    ].join('\n');
    expect(plainTwins(src, 'dev.js')?.split('\n')).toEqual([
      '/* plain twins */class Dev {',
      '  *lockSteps(w) {',
      '    const s = this.s;',
      '    if (mustYield(s)) yield s;',
      '  } lockPlain(w) { const s = this.s; if (mustYield(s)) throw s; }',
      '  *faultSteps(p) {',
      '    yield* this.lockSteps(false);',
      '    return p;',
      '  } faultPlain(p) { this.lockPlain(false); return p; }',
      '  fault(p) {',
      '    return this.drive(this.faultPlain, -1, this, p);',
      '  }',
      '  ops() {',
      '    return {',
      '      faultSteps: (vmf) => this.faultSteps(vmf.pgoff), faultPlain: (vmf) => this.faultPlain(vmf.pgoff),',
      '      *zapSteps(n) { yield* zapPagesSteps(n); }, zapPlain(n) { zapPagesPlain(n); },',
      '    };',
      '  }',
      '}',
      'function* zapPagesSteps(n) { return n; } function zapPagesPlain(n) { return n; }',
    ]);
  });

  it('refuses what it cannot derive, naming the file and line', () => {
    const bad = (body: string) => () => plainTwins(`\nfunction* xSteps(s) {\n${body}\n}\n`, 'bad.js');
    expect(bad('try { yield s; } finally { f(); }')).toThrow(
      'bad.js:3: plain twin: a try statement in a step generator',
    );
    expect(bad('const v = yield s;')).toThrow('bad.js:3: plain twin: a yield whose value is used');
    expect(bad('yield mk();')).toThrow(
      'bad.js:3: plain twin: a yield of something other than a step variable',
    );
    expect(bad('yield s; return `a\nb`;')).toThrow('plain twin: a template literal spans lines');
    expect(() => plainTwins('const o = { fooSteps: (x) => x };', 'o.js')).toThrow(
      'o.js:1: plain twin: fooSteps is not an arrow to a …Steps call',
    );
    expect(() => plainTwins('function* aSteps() { yield* bSteps(); }', 'i.js')).toThrow(
      'i.js:1: plain twin: bSteps is neither declared nor imported by name',
    );
    expect(() => plainTwins('driveSteps(a.b.xSteps(1), s);', 'd.js')).toThrow(
      'd.js:1: plain twin: the receiver of xSteps is neither this nor a variable',
    );
    expect(() => plainTwins('driveSteps(xSteps(1, 2, 3, 4, 5), s);', 'd.js')).toThrow(
      'd.js:1: plain twin: xSteps: more than 4 arguments, or arguments over lines',
    );
    expect(() => plainTwins('driveSteps(xSteps(1), s, 2);', 'd.js')).toThrow(
      'd.js:1: plain twin: a driver call not of (steps, stuck)',
    );
    // Nothing to do: null.
    expect(plainTwins('export const x = 1;', 'x.js')).toBe(null);
    expect(plainTwins('export const formatSteps = 1;', 'x.js')).toBe(null);
  });
});

describe('driveSteps of a plain twin', () => {
  const blocked = new AtomicStep('blocked', [], [], () => false);

  it('returns what `stuck` makes of a step the twin throws, rethrows anything else', () => {
    expect(driveSteps(() => 7, waitsForever)).toBe(7);
    // The twin is called on `self` with the arguments after it.
    const twin = function (this: { k: number }, a?: unknown, b?: unknown): number {
      return this.k + (a as number) * (b as number);
    } as PlainTwin<number>;
    expect(driveSteps(twin, waitsForever, { k: 1 }, 6, 7)).toBe(43);
    expect(
      driveSteps(
        () => {
          if (mustYield(blocked)) throw blocked;
          return 1;
        },
        (s) => (s === blocked ? -2 : -3),
      ),
    ).toBe(-2);
    expect(() => driveSteps(() => (mustYield(blocked) ? blocked : 0), waitsForever)).not.toThrow();
    expect(() =>
      driveSteps(() => {
        throw new RangeError('model bug');
      }, waitsForever),
    ).toThrow(RangeError);
    // Outside every driver a kernel path yields each step again.
    expect(mustYield(new AtomicStep('free'))).toBe(true);
  });

  it('the model as the tests load it has the twins of its step generators', () => {
    expect(typeof (KvmVm.prototype as unknown as Record<string, unknown>).partitionFaultPlain).toBe(
      'function',
    );
    expect(typeof (KvmXiveNative.prototype as unknown as Record<string, unknown>).esbFaultPlain).toBe(
      'function',
    );
    expect(typeof (fault as Record<string, unknown>).faultPlain).toBe('function');
  });
});
