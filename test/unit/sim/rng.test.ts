import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/sim/rng.ts';

describe('Rng', () => {
  it('replays the same stream for the same seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 8 }, () => a.int(0, 1000));
    expect(Array.from({ length: 8 }, () => b.int(0, 1000))).toEqual(xs);
  });
  it('restores from a snapshot mid-stream', () => {
    const a = new Rng(7);
    a.int(0, 9);
    const snap = a.snapshot();
    const next = a.int(0, 1 << 20);
    expect(Rng.restore(snap).int(0, 1 << 20)).toBe(next);
  });
  it('rejects a non-integer seed', () => {
    expect(() => new Rng(1.5)).toThrow(RangeError);
  });
});

describe('Rng.int ranges', () => {
  it('draws across the widest range, 2^53 values', () => {
    const v = new Rng(3).int(0, Number.MAX_SAFE_INTEGER);
    expect(Number.isSafeInteger(v)).toBe(true);
    expect(new Rng(3).int(-5, -5)).toBe(-5);
  });
  it.each([
    [0, 2 ** 53],
    [-(2 ** 52), 2 ** 52],
    [1, 2e21],
    [1, Number.POSITIVE_INFINITY],
    [0.5, 2],
    [3, 2],
    [0, Number.NaN],
  ])('refuses [%d, %d] instead of sampling forever', (lo, hi) => {
    expect(() => new Rng(1).int(lo, hi)).toThrow(RangeError);
  });
  it('index and pick of nothing throw', () => {
    expect(() => new Rng(1).index(0)).toThrow('Rng.int: bad range [0, -1]');
    expect(() => new Rng(1).pick([])).toThrow('pick from an empty array');
  });
});
