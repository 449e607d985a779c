import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadScenario, MAX_SCENARIO_BYTES } from '../../../src/scenario/load.ts';
import { scenarioErrorOf } from './scenario-error-of.ts';

const dir = mkdtempSync(join(tmpdir(), 'xivelab-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The message loading `path` fails with. */
function errorOf(path: string): string {
  return scenarioErrorOf(() => loadScenario(path));
}

describe('loadScenario', () => {
  test('reads and validates a YAML file', () => {
    const f = join(dir, 'ok.yaml');
    writeFileSync(f, 'vcpus: 2\ndevices: [{name: a, msis: 1}]\nworkload: {triggers: 3}\n');
    expect(loadScenario(f).vcpus).toBe(2);
  });

  test('a race scenario is named as one, with the command that takes it', () => {
    const f = join(dir, 'race.yaml');
    writeFileSync(
      f,
      readFileSync(new URL('../../../scenarios/races/s12-fault-vs-bind.yaml', import.meta.url), 'utf8'),
    );
    expect(errorOf(f)).toBe(
      `${f}:1:1 a race scenario (summary, setup, threads), not a run scenario: \`xivelab explore\` takes it`,
    );
  });

  test('a file that cannot be read is reported at 1:1, like every other error', () => {
    expect(errorOf(join(dir, 'missing.yaml'))).toBe(`${join(dir, 'missing.yaml')}:1:1 no such file`);
    expect(errorOf(join(dir, 'missing', 'x.yaml'))).toBe(
      `${join(dir, 'missing', 'x.yaml')}:1:1 no such file`,
    );
    expect(errorOf(dir)).toBe(`${dir}:1:1 is a directory`);
  });

  test('a device is refused before it is read (/dev/null, /dev/zero would never end)', () => {
    expect(errorOf('/dev/null')).toBe('/dev/null:1:1 not a regular file');
    expect(errorOf('/dev/zero')).toBe('/dev/zero:1:1 not a regular file');
  });

  test('a file larger than the limit is refused without reading it', () => {
    const f = join(dir, 'big.yaml');
    writeFileSync(f, '');
    truncateSync(f, MAX_SCENARIO_BYTES + 1);
    expect(errorOf(f)).toBe(`${f}:1:1 file too large (4194305 bytes; a scenario file is at most 4194304)`);
  });

  test('the extension picks the format: a .json file is strict JSON', () => {
    const f = join(dir, 'trailing.json');
    writeFileSync(f, '{\n  "vcpus": 1,\n  "workload": {"duration": 5, "ipis": {"rate": 5}},\n}\n');
    expect(errorOf(f)).toBe(`${f}:3:51 trailing comma is not allowed in JSON`);
  });
});
