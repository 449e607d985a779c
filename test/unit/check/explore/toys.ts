/** Small programs with known answers, for the explorer's own tests. */

import { ExploreLock } from '../../../../src/check/explore/locks.ts';
import type { RaceProgram, ThreadBody } from '../../../../src/check/explore/step.ts';
import { AtomicStep } from '../../../../src/host/atomic-step.ts';

interface Vars {
  v: Record<string, number>;
  locks: Record<string, ExploreLock>;
}

function vars(names: string[], locks: string[] = []): Vars {
  return {
    v: Object.fromEntries(names.map((n) => [n, 0])),
    locks: Object.fromEntries(locks.map((n) => [n, new ExploreLock(n)])),
  };
}

/** Two threads doing `x = x + 1` as a load and a store, optionally under a lock. */
export function increment(locked: boolean): RaceProgram<Vars> {
  return {
    threads: ['inc0', 'inc1'],
    setup: () => vars(['x'], ['m']),
    *start(w, id): ThreadBody {
      const m = w.locks.m!;
      if (locked) {
        yield m.acquire();
        m.take(id);
      }
      yield new AtomicStep('load x', ['x'], []);
      const r = w.v.x!;
      const st = new AtomicStep('store x', [], ['x']);
      yield st;
      w.v.x = r + 1;
      st.effect = `x = ${r + 1}`;
      if (locked) {
        yield m.release();
        m.drop(id);
      }
    },
    check: (w) => (w.v.x === 2 ? null : `lost update: x = ${w.v.x}`),
    digest: (w) => `x=${w.v.x}`,
  };
}

/** `n` threads each writing its own variable `steps` times: all steps commute. */
export function independent(n: number, steps: number): RaceProgram<Vars> {
  const names = Array.from({ length: n }, (_, i) => `v${i}`);
  return {
    threads: names.map((v) => `w-${v}`),
    setup: () => vars(names),
    *start(w, id): ThreadBody {
      for (let i = 0; i < steps; i++) {
        yield new AtomicStep(`write v${id}`, [], [`v${id}`]);
        w.v[`v${id}`]!++;
      }
    },
    check: () => null,
    digest: (w) => names.map((v) => `${v}=${w.v[v]}`).join(' '),
  };
}

/**
 * One writer of x and `readers` readers of x: each reader is before or after the write and the
 * readers commute with each other, so there are 2^readers Mazurkiewicz traces.
 */
export function writerReaders(readers: number): RaceProgram<Vars> {
  return {
    threads: ['writer', ...Array.from({ length: readers }, (_, i) => `reader${i}`)],
    setup: () => vars(['x', ...Array.from({ length: readers }, (_, i) => `r${i}`)]),
    *start(w, id): ThreadBody {
      if (id === 0) {
        yield new AtomicStep('write x', [], ['x']);
        w.v.x = 1;
        return;
      }
      yield new AtomicStep('read x', ['x'], []);
      w.v[`r${id - 1}`] = w.v.x!;
    },
    check: () => null,
    digest: (w) =>
      Object.entries(w.v)
        .map(([k, x]) => `${k}=${x}`)
        .join(' '),
  };
}

/** `n` threads each writing x once: n! traces (every order of the writes differs). */
export function writers(n: number): RaceProgram<Vars> {
  return {
    threads: Array.from({ length: n }, (_, i) => `w${i}`),
    setup: () => vars(['x']),
    *start(w, id): ThreadBody {
      yield new AtomicStep('write x', [], ['x']);
      w.v.x = id;
    },
    check: () => null,
    digest: (w) => `x=${w.v.x}`,
  };
}

/** Two threads taking locks a and b in opposite orders. */
export function lockInversion(): RaceProgram<Vars> {
  return {
    threads: ['ab', 'ba'],
    setup: () => vars([], ['a', 'b']),
    *start(w, id): ThreadBody {
      const [first, second] = id === 0 ? [w.locks.a!, w.locks.b!] : [w.locks.b!, w.locks.a!];
      yield first.acquire();
      first.take(id);
      yield second.acquire();
      second.take(id);
      yield second.release();
      second.drop(id);
      yield first.release();
      first.drop(id);
    },
    check: () => null,
    digest: (w) => `a=${w.locks.a!.holder} b=${w.locks.b!.holder}`,
  };
}

/** One thread that never ends, one that throws: the livelock guard and model exceptions. */
export function misbehaving(kind: 'spin' | 'throw'): RaceProgram<Vars> {
  return {
    threads: [kind],
    setup: () => vars(['x']),
    *start(w): ThreadBody {
      for (;;) {
        yield new AtomicStep('poke x', [], ['x']);
        if (kind === 'throw') throw new Error('poked a freed x');
        w.v.x!++;
      }
    },
    check: () => null,
    digest: (w) => `x=${w.v.x}`,
  };
}
