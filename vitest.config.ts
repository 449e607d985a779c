import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { plainTwinsPlugin } from './scripts/plain-twins.mjs';

/**
 * The files that take longest (the QEMU differential suite, every design × every passthrough
 * scenario): started first, so that no worker is left running one of them alone at the end.
 */
const LONGEST = ['test/diff/diff.test.ts', 'test/e2e/designs-matrix.test.ts'];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const i = LONGEST.findIndex((l) => f.moduleId.endsWith(l));
      return i < 0 ? LONGEST.length : i;
    };
    const sorted = await super.sort(files);
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map((x) => x.f);
  }
}

export default defineConfig({
  // The tests run src/ as the build emits it: with the step generators' plain twins.
  plugins: [plainTwinsPlugin()],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Test files share their worker's module graph instead of importing the model afresh each
    // (no test mocks modules or relies on module state of its own): the imports were a third of
    // the suite's time.
    isolate: false,
    sequence: { sequencer: LongestFirst },
  },
});
