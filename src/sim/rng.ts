import { uniformInt } from 'pure-rand/distribution/uniformInt';

type JumpableRandomGenerator = ReturnType<typeof xoroshiro128plus>;

import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';

/** Widest span `hi - lo` of {@link Rng.int}: every value of the range is a safe integer. */
const MAX_SPAN = Number.MAX_SAFE_INTEGER;

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

  /**
   * Uniform integer in `[lo, hi]` (both included): safe integers, at most 2^53 values. A wider
   * range would make pure-rand's rejection sampling draw almost forever, so it is refused.
   * @throws RangeError for a range that is empty, not integral or wider than that.
   */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo || hi - lo > MAX_SPAN)
      throw new RangeError(`Rng.int: bad range [${lo}, ${hi}]`);
    return uniformInt(this.gen, lo, hi);
  }

  /** Uniform index into a collection of `n` items (`n` ≥ 1). */
  index(n: number): number {
    return this.int(0, n - 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return uniformInt(this.gen, 0, 0x3fff_ffff) < p * 0x4000_0000;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty array');
    return items[this.index(items.length)]!;
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
