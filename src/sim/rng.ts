import { uniformInt } from 'pure-rand/distribution/uniformInt';

type JumpableRandomGenerator = ReturnType<typeof xoroshiro128plus>;

import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';

/**
 * The seeded random source of a run. Every random choice in the model comes from one of these,
 * never from `Math.random`, so a seed replays a run exactly.
 */
export class Rng {
  readonly seed: number;
  private gen: JumpableRandomGenerator;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.seed = seed;
    this.gen = xoroshiro128plus(seed | 0);
  }

  /** Uniform integer in `[lo, hi]` (both included). */
  int(lo: number, hi: number): number {
    return uniformInt(this.gen, lo, hi);
  }

  /** Uniform index into a collection of `n` items. */
  index(n: number): number {
    return uniformInt(this.gen, 0, n - 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return uniformInt(this.gen, 0, 0x3fff_ffff) < p * 0x4000_0000;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.index(items.length)];
    if (item === undefined) throw new RangeError('pick from an empty array');
    return item;
  }

  /** An independent stream (pure-rand `jump()`), for a sub-actor that must not perturb this one. */
  fork(): Rng {
    const child = new Rng(this.seed);
    child.gen = this.gen.clone();
    child.gen.jump();
    this.gen.next();
    return child;
  }

  snapshot(): { v: 1; seed: number; state: number[] } {
    return { v: 1, seed: this.seed, state: [...this.gen.getState()] };
  }

  static restore(s: { v: 1; seed: number; state: readonly number[] }): Rng {
    const r = new Rng(s.seed);
    r.gen = xoroshiro128plusFromState(s.state);
    return r;
  }
}
