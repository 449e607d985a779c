/**
 * Read a scenario file (YAML or JSON) and validate it; every failure is a {@link ScenarioError}
 * with `file:line:col`. A file that cannot be read is reported at 1:1, so every message has the
 * same shape for editors and CI problem matchers.
 */

import { readFileSync, statSync } from 'node:fs';
import { RaceScenario } from '../check/explore/race-schema.ts';
import { parseKind, ScenarioError } from './parse.ts';
import { Scenario } from './schema.ts';

/** Largest scenario file read (a scenario is a few KiB; this stops /dev/zero-like inputs). */
export const MAX_SCENARIO_BYTES = 4 * 2 ** 20;

const WHY: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'no such file (a parent is not a directory)',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'file name too long',
};

/** The text of `path`, or a ScenarioError at 1:1 saying why it cannot be read. */
export function readScenarioText(path: string): string {
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new ScenarioError(path, 1, 1, 'is a directory');
    // A FIFO or a device would block or never end: a scenario is a regular file.
    if (!st.isFile()) throw new ScenarioError(path, 1, 1, 'not a regular file');
    if (st.size > MAX_SCENARIO_BYTES) {
      throw new ScenarioError(
        path,
        1,
        1,
        `file too large (${st.size} bytes; a scenario file is at most ${MAX_SCENARIO_BYTES})`,
      );
    }
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new ScenarioError(path, 1, 1, WHY[code] ?? `cannot read (${code || String(e)})`);
  }
}

/**
 * Load and validate `path`. A valid race scenario gets one error that names the command it is
 * for.
 * @throws ScenarioError
 */
export function loadScenario(path: string): Scenario {
  return parseKind(Scenario, readScenarioText(path), path, {
    schema: RaceScenario,
    says: 'a race scenario (summary, setup, threads), not a run scenario: `xivelab explore` takes it',
  });
}
