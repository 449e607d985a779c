/**
 * Read a scenario file (YAML or JSON) and validate it; every failure is a {@link ScenarioError}
 * with `file:line:col` where there is one.
 */

import { readFileSync } from 'node:fs';
import { parseScenario, ScenarioError } from './parse.ts';
import type { Scenario } from './schema.ts';

/** Load and validate `path`. @throws ScenarioError */
export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : `cannot read (${code ?? String(e)})`;
    throw new ScenarioError(path, 0, 0, why);
  }
  return parseScenario(text, path);
}
