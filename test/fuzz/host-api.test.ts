import { describe, expect, it } from 'vitest';
import { fuzzHostApi } from './host-api.ts';

const SEED = 20261206;

describe('host API fuzzing (small budget; npm run fuzz runs 10^6 calls)', () => {
  it('random and hostile syscalls keep every invariant: no exception, −errno only, I1, I2, one run per vCPU', () => {
    const r = fuzzHostApi({ seed: SEED, runs: 25, maxCommands: 150 });
    expect(r.failure, `seed ${SEED}`).toBeNull();
    expect(r.stats.exceptions).toBe(0);
    expect(r.stats.violations).toBe(0);
    expect(r.stats.sequences).toBe(25);
    // The commands reach the kernel's refusals, not just its success paths.
    expect(r.stats.results.get('EBADF')).toBeGreaterThan(0);
    expect(r.stats.results.get('EINVAL')).toBeGreaterThan(0);
    expect(r.stats.signals.get('SIGSEGV')).toBeGreaterThan(0);
  });
});
