import { describe, expect, it } from 'vitest';
import { explore, replay } from '../../../../src/check/explore/explore.ts';
import { parseSchedule, ScheduleError } from '../../../../src/check/explore/schedule.ts';
import { increment, independent, lockInversion, misbehaving, writerReaders, writers } from './toys.ts';

describe('DPOR on programs with known answers', () => {
  it('non-atomic increment: the lost update is found, 4 steps with 1 preemption', () => {
    const r = explore(increment(false));
    expect(r.verdict).toBe('violation');
    expect(r.shortest?.kind).toBe('violation');
    expect(r.shortest?.message).toBe('lost update: x = 1');
    expect(r.shortest?.steps.length).toBe(4);
    expect(r.shortest?.preemptions).toBe(1);
    expect(r.shortest?.digest).toBe('x=1');
  });

  it('increment under a lock: exhausted, no failure, the two lock orders are the two traces', () => {
    const r = explore(increment(true));
    expect(r.verdict).toBe('exhausted');
    expect(r.failures).toBe(0);
    expect(r.traces).toBe(2);
    expect(r.shortest).toBe(null);
  });

  it('independent threads: exactly one execution and one trace, against C(6,3) = 20 interleavings', () => {
    const r = explore(independent(2, 3));
    expect([r.executions, r.traces, r.naive, r.reduction]).toEqual([1, 1, 20, 20]);
    const r3 = explore(independent(3, 2));
    expect([r3.executions, r3.traces, r3.naive]).toEqual([1, 1, 90]);
  });

  it('a writer and n readers of x: 2^n Mazurkiewicz traces (n = 1..4), each explored once', () => {
    for (const n of [1, 2, 3, 4]) {
      const r = explore(writerReaders(n));
      expect(r.verdict).toBe('exhausted');
      expect(r.traces).toBe(2 ** n);
      expect(r.complete).toBe(2 ** n);
    }
  });

  it('n writers of x: n! traces (n = 2..4); uniform random sees no trace DPOR missed', () => {
    expect([2, 3, 4].map((n) => explore(writers(n)).traces)).toEqual([2, 6, 24]);
    const rnd = explore(writerReaders(3), { strategy: 'random', runs: 2000, seed: 7 });
    expect(rnd.traces).toBe(8);
  });

  it('lock-order inversion: deadlock found after two steps, both threads named', () => {
    const r = explore(lockInversion());
    expect(r.verdict).toBe('violation');
    expect(r.shortest?.kind).toBe('deadlock');
    expect(r.shortest?.schedule).toBe('0.1');
    expect(r.shortest?.message).toBe('ab blocked at "take b", ba blocked at "take a"');
  });

  it('livelock guard and model exceptions end the execution as failures', () => {
    const spin = explore(misbehaving('spin'), { maxSteps: 50 });
    expect(spin.shortest?.kind).toBe('livelock');
    expect(spin.shortest?.message).toBe('no end after 50 steps (livelock guard)');
    const thrown = explore(misbehaving('throw'));
    expect(thrown.shortest?.kind).toBe('exception');
    expect(thrown.shortest?.message).toBe('the model threw: poked a freed x');
  });

  it('preemption bound: bound 0 cannot lose the update (none within the bound), bound 1 does', () => {
    expect(explore(increment(false), { bound: 0 }).verdict).toBe('none-within-bound');
    expect(explore(increment(false), { bound: 1 }).verdict).toBe('violation');
  });
});

describe('randomized strategies', () => {
  it('PCT (d = 2) and uniform random find the lost update within 200 runs (seed 1)', () => {
    for (const strategy of ['pct', 'random'] as const) {
      const r = explore(increment(false), { strategy, runs: 200, seed: 1, depth: 2 });
      expect(r.executions).toBe(200);
      expect(r.verdict).toBe('violation');
      expect(r.shortest?.steps.length).toBe(4);
    }
  });

  it('under the lock, neither finds anything: none within the budget', () => {
    const r = explore(increment(true), { strategy: 'pct', runs: 100, seed: 3 });
    expect([r.verdict, r.failures]).toEqual(['none-within-budget', 0]);
  });
});

describe('replay', () => {
  it('a printed schedule reproduces the same steps, state and verdict', () => {
    const found = explore(increment(false)).shortest!;
    const again = replay(increment(false), parseSchedule(found.schedule, 2));
    expect(again).toEqual(found);
    const serial = replay(increment(false), parseSchedule('0.0.1.1', 2));
    expect([serial.kind, serial.digest]).toEqual(['ok', 'x=2']);
  });

  it('a schedule naming a blocked thread or a bad id is refused with one line', () => {
    expect(() => replay(lockInversion(), [0, 1, 0])).toThrow(
      new ScheduleError('schedule step 3: thread 0 (ab) cannot run there'),
    );
    expect(() => parseSchedule('0.x', 2)).toThrow(/schedule step 2: "x" is not a thread id \(0..1/);
  });
});
