import { describe, expect, test } from 'vitest';
import { LisnStats } from '../../../src/guest/irq-core.ts';

describe('LisnStats', () => {
  test('counts per LISN and kind across 1024-LISN blocks, above 2^31 too; unseen LISNs read 0', () => {
    const s = new LisnStats();
    const lisns = [0, 1023, 1024, 0x1000, 0x8000_0001, 0xffff_ffff];
    lisns.forEach((lisn, i) => {
      for (let n = 0; n <= i; n++) s.inc(lisn, LisnStats.DELIVERED);
      s.inc(lisn, LisnStats.CONSUMED);
    });
    // Back to the first block after others: the last-block shortcut must not count it elsewhere.
    s.inc(1023, LisnStats.DEFERRED);
    expect(lisns.map((l) => s.get(l, LisnStats.DELIVERED))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lisns.map((l) => s.get(l, LisnStats.CONSUMED))).toEqual([1, 1, 1, 1, 1, 1]);
    expect(lisns.map((l) => s.get(l, LisnStats.DEFERRED))).toEqual([0, 1, 0, 0, 0, 0]);
    expect([1, 1025, 0x1001, 0x8000_0000, 0x7fff_ffff].map((l) => s.get(l, LisnStats.DELIVERED))).toEqual([
      0, 0, 0, 0, 0,
    ]);
  });
});
