import { describe, expect, it } from 'vitest';
import { AtomicStep, driveSteps, mustYield, StepPool, waitsForever } from '../../../src/host/atomic-step.ts';

/** A hot-path-style step: its label is made of its number, on first read. */
class NumberedStep extends AtomicStep {
  declare private n: number;
  declare private blocked: boolean;

  private constructor(n: number, blocked: boolean) {
    super();
    this.n = n;
    this.blocked = blocked;
  }

  static of(n: number, blocked = false): NumberedStep {
    const s = pool.take(0);
    if (s === null) return pool.keep(0, new NumberedStep(n, blocked));
    s.n = n;
    s.blocked = blocked;
    return s;
  }

  protected override describe(): string {
    return `step ${this.n}`;
  }

  override canRun(): boolean {
    return !this.blocked;
  }
}

const pool = new StepPool<NumberedStep>();

/** Yields steps 1 … `n` (the last one blocked when asked), recording what it was handed. */
function* numbered(n: number, seen: AtomicStep[], blockLast = false): Generator<AtomicStep, number, void> {
  for (let i = 1; i <= n; i++) {
    const s = NumberedStep.of(i, blockLast && i === n);
    seen.push(s);
    yield s;
  }
  return n;
}

describe('atomic steps: sequential drivers recycle, everyone else keeps new steps', () => {
  it('a sequential driver is handed one instance per kind, set up again for each step', () => {
    const seen: AtomicStep[] = [];
    expect(driveSteps(numbered(3, seen), waitsForever)).toBe(3);
    expect(seen[0]).toBe(seen[1]);
    expect(seen[1]).toBe(seen[2]);
    expect(seen[2]!.label).toBe('step 3');
  });

  it('a recycled step tells its current numbers and records no effect; a new one keeps both', () => {
    const seen: AtomicStep[] = [];
    const effects: string[] = [];
    function* explained(): Generator<AtomicStep, void, void> {
      for (const i of [1, 2]) {
        const s = NumberedStep.of(i);
        seen.push(s);
        yield s;
        s.effect = `ran ${i}`;
        effects.push(s.effect);
      }
    }
    driveSteps(explained(), waitsForever);
    expect(seen[0]).toBe(seen[1]);
    expect(seen[0]!.label).toBe('step 2');
    expect(effects).toEqual(['', '']);
    seen.length = 0;
    effects.length = 0;
    const g = explained();
    while (!g.next().done);
    expect(seen.map((s) => s.label)).toEqual(['step 1', 'step 2']);
    expect(effects).toEqual(['ran 1', 'ran 2']);
    expect(seen[0]!.effect).toBe('ran 1');
  });

  it('steps of a generator stepped by hand are new, and keep their text across a sequential run', () => {
    const seen: AtomicStep[] = [];
    const g = numbered(2, seen);
    const first = g.next().value as AtomicStep;
    // A sequential run in between reuses its own instances, not the ones handed out here.
    expect(driveSteps(numbered(2, []), waitsForever)).toBe(2);
    const second = g.next().value as AtomicStep;
    expect(first).not.toBe(second);
    expect([first.label, second.label]).toEqual(['step 1', 'step 2']);
    expect(g.next()).toEqual({ done: true, value: 2 });
  });

  it('a step that cannot run ends the drive with what `stuck` makes of it; waitsForever throws', () => {
    expect(driveSteps(numbered(2, [], true), (s) => (s.label === 'step 2' ? -1 : -2))).toBe(-1);
    expect(() => driveSteps(numbered(1, [], true), waitsForever)).toThrow('"step 1" waits forever');
    // The counter of running drivers is back to 0: a hand-stepped generator gets new steps again.
    const seen: AtomicStep[] = [];
    const g = numbered(2, seen);
    g.next();
    g.next();
    expect(seen[0]).not.toBe(seen[1]);
  });
});

/** As {@link numbered}, announcing a step only when {@link mustYield} says so; records the labels it yielded. */
function* announcing(n: number, yielded: string[], blockAt = 0): Generator<AtomicStep, number, void> {
  for (let i = 1; i <= n; i++) {
    const s = NumberedStep.of(i, i === blockAt);
    if (mustYield(s)) {
      yielded.push(s.label);
      yield s;
    }
  }
  return n;
}

describe('mustYield: only the steps a driver acts on are announced', () => {
  it('under a sequential driver, a generator runs straight through its runnable steps', () => {
    const yielded: string[] = [];
    expect(driveSteps(announcing(4, yielded), waitsForever)).toBe(4);
    expect(yielded).toEqual([]);
  });

  it('under a sequential driver, the step that cannot run is announced and the drive stops there', () => {
    const yielded: string[] = [];
    expect(driveSteps(announcing(4, yielded, 3), (s) => (s.label === 'step 3' ? -3 : -1))).toBe(-3);
    expect(yielded).toEqual(['step 3']);
  });

  it('stepped by hand (as the explorer does), every step is announced, blocked or not', () => {
    const yielded: string[] = [];
    const g = announcing(3, yielded, 2);
    const steps: AtomicStep[] = [];
    for (let r = g.next(); !r.done; r = g.next()) steps.push(r.value);
    expect(yielded).toEqual(['step 1', 'step 2', 'step 3']);
    expect(steps.map((s) => s.canRun())).toEqual([true, false, true]);
  });
});
