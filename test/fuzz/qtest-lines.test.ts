import { describe, expect, it } from 'vitest';
import { findQemu } from '../diff/qemu-driver.ts';
import { fuzzQtest } from './qtest-lines.ts';

const SEED = 20261206;

describe('qtest line fuzzing (small budget; npm run fuzz runs 10^5 lines)', () => {
  it('xivelab answers every random or hostile line as QEMU 7.2 does (QEMU when installed)', async () => {
    const qemu = findQemu();
    const r = await fuzzQtest({ seed: SEED, lines: 1500, abortRate: 0.002, qemu });
    expect(r.exceptions).toBe(0);
    expect(
      r.mismatches.map((m) => `${JSON.stringify(m.line)}: ${m.xivelab} / ${m.qemu} (seed ${SEED})`),
    ).toEqual([]);
    expect(r.lines).toBe(1500);
    if (qemu !== null) expect(r.compared + r.qemuAborts).toBe(1500);
  });
});
