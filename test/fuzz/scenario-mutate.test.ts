import { describe, expect, it } from 'vitest';
import { builtinScenarios, fuzzScenarios, mutant } from './scenario-mutate.ts';

const SEED = 20261206;

describe('scenario-file mutation (small budget; npm run fuzz runs 200 files)', () => {
  it('mutants are deterministic per seed and index', () => {
    const bases = builtinScenarios();
    expect(mutant(SEED, 3, bases)).toEqual(mutant(SEED, 3, bases));
    expect(mutant(SEED, 3, bases).bytes).not.toEqual(mutant(SEED, 4, bases).bytes);
  });

  it('every mutated file ends with exit 0, 1 or 2 through `xivelab run`, within the time limit', async () => {
    const r = await fuzzScenarios({ seed: SEED, files: 12, timeoutMs: 20_000, shrinkAttempts: 0 });
    expect(r.files).toBe(12);
    expect(
      r.failures.map(
        (f) => `${f.name} (seed ${SEED}, index ${f.index}): ${f.outcome.code} ${f.outcome.stderr}`,
      ),
    ).toEqual([]);
    expect([...r.codes.keys()].every((c) => c === '0' || c === '1' || c === '2')).toBe(true);
    // Every bad file is reported at its position.
    expect(r.positionless).toEqual([]);
  });
});
