import { describe, expect, test } from 'vitest';
import { GuestTraceDigest } from '../../../src/scenario/guest-port.ts';

/** A digest of `n` entries `0 L <i>`, with entry `at` replaced by `what`. */
function digest(
  n: number,
  change?: { at: number; what: string },
  window?: [number, number],
): GuestTraceDigest {
  const d = new GuestTraceDigest(window ?? null);
  for (let i = 0; i < n; i++) d.push(change?.at === i ? change.what : `0 L ${i.toString(16)}`);
  return d.finish();
}

describe('GuestTraceDigest', () => {
  const B = GuestTraceDigest.BLOCK;

  test('one digest per block of 4096 entries, the partial last one included', () => {
    expect(B).toBe(4096);
    const d = digest(2 * B + 1);
    expect(d.count).toBe(2 * B + 1);
    expect(d.blocks).toHaveLength(3);
    expect(d.finish().blocks).toHaveLength(3); // finish is idempotent
    expect(digest(2 * B).blocks).toHaveLength(2);
  });

  test('equal traces are equal; one changed entry is found in its block', () => {
    expect(GuestTraceDigest.firstDifferentBlock(digest(3 * B), digest(3 * B))).toBe(-1);
    const changed = digest(3 * B, { at: B + 17, what: '0 L 11' });
    expect(GuestTraceDigest.firstDifferentBlock(digest(3 * B), changed)).toBe(1);
    // Entries are separated: "ab","c" is not "a","bc".
    const x = new GuestTraceDigest();
    x.push('ab');
    x.push('c');
    const y = new GuestTraceDigest();
    y.push('a');
    y.push('bc');
    expect(GuestTraceDigest.firstDifferentBlock(x, y)).toBe(0);
  });

  test('a longer trace differs where the shorter one ends', () => {
    expect(GuestTraceDigest.firstDifferentBlock(digest(2 * B), digest(2 * B + 5))).toBe(2);
    expect(GuestTraceDigest.firstDifferentBlock(digest(B + 3), digest(B + 5))).toBe(1);
  });

  test('the window keeps exactly its entries', () => {
    const d = digest(3 * B, { at: B + 2, what: 'x' }, [B, B + 4]);
    expect(d.kept).toEqual([
      `0 L ${B.toString(16)}`,
      `0 L ${(B + 1).toString(16)}`,
      'x',
      `0 L ${(B + 3).toString(16)}`,
    ]);
  });
});
