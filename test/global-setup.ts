/**
 * Vitest global setup: the bins (`bin/xivelab.js`, `bin/xivelab-qemu.cjs`) and the compare suites
 * run the compiled `dist/`, so rebuild it when a source file is newer than the build (or there is
 * none), before any test spawns them (`scripts/fresh-dist.mjs`, which `npm start` runs too).
 * `npm ci` builds it as well (`prepare`). A run of unit-test files only (`vitest run test/unit/…`)
 * spawns no bin and skips it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../scripts/fresh-dist.mjs', import.meta.url));

/** True when the command line names test files and all of them are unit tests. */
function unitTestsOnly(): boolean {
  const files = process.argv.slice(2).filter((a) => !a.startsWith('-') && a !== 'run');
  return files.length > 0 && files.every((f) => f.startsWith('test/unit/'));
}

export default function setup(): void {
  if (unitTestsOnly()) return;
  spawnSync(process.execPath, [script], { stdio: ['ignore', 'ignore', 'inherit'] });
}
