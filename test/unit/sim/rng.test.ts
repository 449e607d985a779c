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
