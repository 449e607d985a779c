/**
 * Race scenario files: a path or the name of a built-in (`scenarios/races/<name>.yaml`), parsed
 * and validated with `file:line:col` errors like every other scenario file.
 */

import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RaceScenario } from '../check/explore/race-schema.ts';
import { readScenarioText } from './load.ts';
import { parseKind, ScenarioError } from './parse.ts';
import { Scenario } from './schema.ts';

/** Directory of the built-in race scenarios. */
export function builtinRacesDir(): string {
  return fileURLToPath(new URL('../../scenarios/races/', import.meta.url));
}

/** Names of the built-in race scenarios, sorted. */
export function builtinRaceNames(): string[] {
  return readdirSync(builtinRacesDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/**
 * `arg` as a file path, else as a built-in name.
 * @throws ScenarioError when it is neither.
 */
export function resolveRaceScenario(arg: string): string {
  if (existsSync(arg) || /[/\\.]/.test(arg)) return arg;
  const names = builtinRaceNames();
  if (!names.includes(arg))
    throw new ScenarioError(arg, 0, 0, `no such file, nor a built-in race scenario (${names.join(', ')})`);
  return `${builtinRacesDir()}${arg}.yaml`;
}

/**
 * Parse race scenario text. A valid run scenario gets one error that names the command it is
 * for (as `loadScenario` does the other way round).
 * @throws ScenarioError
 */
export function parseRaceScenario(text: string, file: string): RaceScenario {
  return parseKind(RaceScenario, text, file, {
    schema: Scenario,
    says: 'a run scenario (vcpus, devices, workload), not a race scenario: `xivelab run` takes it',
  });
}

/** Load and validate a race scenario file or built-in name. @throws ScenarioError */
export function loadRaceScenario(arg: string): { file: string; scenario: RaceScenario } {
  const file = resolveRaceScenario(arg);
  return { file, scenario: parseRaceScenario(readScenarioText(file), file) };
}
