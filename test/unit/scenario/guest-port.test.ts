import { describe, expect, test } from 'vitest';
import { GuestTrace, GuestTraceDigest } from '../../../src/scenario/guest-port.ts';

/** A digest of `n` loads `0 L <i>/8 = i`, with entry `at` a store of `what` instead. */
function digest(
  n: number,
  change?: { at: number; what: number },
  window?: [number, number],
): GuestTraceDigest {
  const d = new GuestTraceDigest(window ?? null);
  for (let i = 0; i < n; i++) {
    if (change?.at === i) d.store(0, i, 8, 0, change.what);
    else d.load(0, i, 8, 0, i);
  }
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
    const changed = digest(3 * B, { at: B + 17, what: 0x11 });
    expect(GuestTraceDigest.firstDifferentBlock(digest(3 * B), changed)).toBe(1);
  });

  test('every field of an entry counts: kind, vCPU, address above 2^32, value, hcall arguments', () => {
    const one = (f: (d: GuestTraceDigest) => void): GuestTraceDigest => {
      const d = new GuestTraceDigest();
      f(d);
      return d;
    };
    const base = one((d) => d.load(1, 0x6_0000_0010, 4, 0, 7));
    const variants = [
      one((d) => d.store(1, 0x6_0000_0010, 4, 0, 7)),
      one((d) => d.load(0, 0x6_0000_0010, 4, 0, 7)),
      one((d) => d.load(1, 0x7_0000_0010, 4, 0, 7)),
      one((d) => d.load(1, 0x6_0000_0010, 8, 0, 7)),
      one((d) => d.load(1, 0x6_0000_0010, 4, 1, 7)),
      one((d) => d.load(1, 0x6_0000_0010, 4, 0, 8)),
    ];
    for (const v of variants) expect(GuestTraceDigest.firstDifferentBlock(base, v)).toBe(0);
    const h = (args: bigint[], out: bigint[]): GuestTraceDigest =>
      one((d) => d.hcall(0, 0x3a8, args, 0, out));
    expect(GuestTraceDigest.firstDifferentBlock(h([1n, 2n], [3n]), h([1n, 2n], [3n]))).toBe(-1);
    expect(GuestTraceDigest.firstDifferentBlock(h([1n, 2n], [3n]), h([1n], [2n, 3n]))).toBe(0);
    expect(GuestTraceDigest.firstDifferentBlock(h([1n << 40n], []), h([1n << 41n], []))).toBe(0);
  });

  test('a longer trace differs where the shorter one ends', () => {
    expect(GuestTraceDigest.firstDifferentBlock(digest(2 * B), digest(2 * B + 5))).toBe(2);
    expect(GuestTraceDigest.firstDifferentBlock(digest(B + 3), digest(B + 5))).toBe(1);
  });

  test('the window keeps exactly its entries, as the text GuestTrace records', () => {
    const d = digest(3 * B, { at: B + 2, what: 0xabc }, [B, B + 4]);
    expect(d.kept).toEqual([
      `0 L ${B.toString(16)}/8 = ${B.toString(16)}`,
      `0 L ${(B + 1).toString(16)}/8 = ${(B + 1).toString(16)}`,
      `0 S ${(B + 2).toString(16)}/8 abc`,
      `0 L ${(B + 3).toString(16)}/8 = ${(B + 3).toString(16)}`,
    ]);
    const t = new GuestTrace();
    t.load(2, 0x6_0000_0010, 8, 0x1, 0x2);
    t.hcall(1, 0x3a8, [0n, 0x1300n], 0, [0x10n]);
    t.deliver(3, 0x1300);
    expect(t.entries).toEqual(['2 L 600000010/8 = 100000002', '1 H 3a8(0,1300) = 0 [10]', '3 D 1300']);
  });
});
