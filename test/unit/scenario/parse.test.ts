import { describe, expect, test } from 'vitest';
import { checkScenario, parseScenario, ScenarioError } from '../../../src/scenario/parse.ts';

/** The one-line message a scenario text fails with. */
function errorOf(text: string, file = 's.yaml'): string {
  try {
    parseScenario(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).message;
  }
  throw new Error('expected a ScenarioError');
}

describe('parseScenario', () => {
  test('applies defaults and converts durations to ns', () => {
    const s = parseScenario(
      'vcpus: 2\ndevices:\n  - name: nic0\n    msis: 4\nworkload:\n  duration: 1.5ms\n  masks: {rate: 1000}\n',
      'x.yaml',
    );
    expect(s.name).toBe('scenario');
    expect(s.ramSize).toBe(0x400_0000);
    expect(s.devices).toEqual([{ name: 'nic0', msis: 4, lsis: 0 }]);
    expect(s.workload.duration).toBe(1_500_000);
    expect(s.workload.masks).toEqual({ rate: 1000, hold: 20_000 });
    expect(s.workload.latency).toBe(0);
    expect(s.options).toEqual({ seed: 1, maxSteps: 1_000_000 });
  });

  test('JSON files parse through the same path, with positions', () => {
    const s = parseScenario('{"vcpus": 1, "workload": {"triggers": 3, "ipis": {"rate": 5}}}', 'x.json');
    expect(s.vcpus).toBe(1);
    expect(s.workload.triggers).toBe(3);
    expect(errorOf('{\n  "vcpus": 1,\n  "workload": {"triggers": -3}\n}', 'x.json')).toBe(
      'x.json:3:28 workload.triggers: Too small: expected number to be >=1',
    );
  });

  test('smp 0 → file:line:col of the value', () => {
    expect(errorOf('name: x\nvcpus: 0\nworkload: {triggers: 1, ipis: {rate: 1}}\n')).toBe(
      's.yaml:2:8 vcpus: Too small: expected number to be >=1',
    );
  });

  test('more than 4 LSIs on a PHB device', () => {
    expect(errorOf('vcpus: 1\ndevices:\n  - name: a\n    lsis: 5\nworkload: {triggers: 1}\n')).toBe(
      's.yaml:4:11 devices.0.lsis: a PHB device has at most 4 LSIs (INTx pins)',
    );
  });

  test('a bad passthrough section points at the offending entry', () => {
    const head = 'vcpus: 1\ndevices:\n  - {name: a, msis: 4}\n  - {name: b, msis: 2, lsis: 1}\n';
    expect(errorOf(`${head}passthrough:\n  devices: [a, nope]\nworkload: {triggers: 1}\n`)).toBe(
      's.yaml:6:16 passthrough.devices.1: no device "nope"',
    );
    expect(errorOf(`${head}passthrough:\n  devices: [b]\nworkload: {triggers: 1}\n`)).toBe(
      's.yaml:6:13 passthrough.devices.0: device "b" must have MSIs and no LSIs to be passed through (MSI-X only)',
    );
    expect(
      errorOf(`${head}passthrough:\n  devices: [a]\n  mappings: {twice: true}\nworkload: {triggers: 1}\n`),
    ).toBe('s.yaml:7:14 passthrough.mappings: unknown key "twice"');
    expect(errorOf(`${head}passthrough:\n  devices: [a]\n  cycles: 0\nworkload: {triggers: 1}\n`)).toBe(
      's.yaml:7:11 passthrough.cycles: Too small: expected number to be >=1',
    );
  });

  test('an irq index out of range points at the index', () => {
    const text =
      'vcpus: 1\ndevices:\n  - {name: a, msis: 4}\nworkload:\n  triggers: 1\n  streams:\n    - {device: a, vectors: [0, 4], rate: 1}\n';
    expect(errorOf(text)).toBe(
      's.yaml:7:32 workload.streams.0.vectors.1: MSI index 4 out of range: device "a" has 4',
    );
  });

  test('unknown device, device without LSIs, duplicate names', () => {
    expect(
      errorOf(
        'vcpus: 1\ndevices: [{name: a, msis: 1}]\nworkload:\n  triggers: 1\n  streams: [{device: b, rate: 1}]\n',
      ),
    ).toBe('s.yaml:5:22 workload.streams.0.device: no device "b"');
    expect(
      errorOf(
        'vcpus: 1\ndevices: [{name: a, msis: 1}]\nworkload:\n  triggers: 1\n  streams: [{device: a, kind: lsi, rate: 1}]\n',
      ),
    ).toBe('s.yaml:5:31 workload.streams.0.kind: device "a" has no LSIs');
    expect(
      errorOf('vcpus: 1\ndevices: [{name: a, msis: 1}, {name: a, msis: 1}]\nworkload: {triggers: 1}\n'),
    ).toBe('s.yaml:2:38 devices.1.name: duplicate device "a"');
  });

  test('MSI range exhaustion (power-of-two aligned allocation)', () => {
    // 2048 + 2048 > 3328 MSIs.
    expect(
      errorOf('vcpus: 1\ndevices: [{name: a, msis: 2048}, {name: b, msis: 2048}]\nworkload: {triggers: 1}\n'),
    ).toBe(
      's.yaml:2:50 devices.1.msis: no room for 2048 more MSIs (the MSI range holds 3328, power-of-two aligned)',
    );
  });

  test('unknown keys are named at the key', () => {
    expect(errorOf('vcpus: 1\nworkload:\n  triggers: 1\n  ipis: {rate: 1}\n  trigers: 5\n')).toBe(
      's.yaml:5:3 workload: unknown key "trigers"',
    );
  });

  test('a workload needs a stop condition', () => {
    expect(errorOf('vcpus: 1\nworkload:\n  ipis: {rate: 1}\n')).toBe(
      's.yaml:3:3 workload: a workload needs "triggers" or "duration"',
    );
  });

  test('missing required key points at the enclosing map', () => {
    expect(errorOf('workload: {triggers: 1}\n')).toBe(
      's.yaml:1:1 vcpus: Invalid input: expected number, received undefined',
    );
  });

  test('YAML syntax errors and duplicate keys', () => {
    expect(errorOf('vcpus: 2\n  bad: [\n')).toBe(
      's.yaml:1:8 Nested mappings are not allowed in compact mappings',
    );
    expect(errorOf('vcpus: 1\nvcpus: 2\n')).toBe('s.yaml:2:1 Map keys must be unique');
    expect(errorOf('')).toBe('s.yaml:1:1 empty scenario');
  });

  test('bad durations and rates', () => {
    expect(errorOf('vcpus: 1\nworkload: {duration: 5 parsecs, ipis: {rate: 1}}\n')).toBe(
      's.yaml:2:22 workload.duration: expected a duration like "250us", "10ms" or "1s"',
    );
    expect(errorOf('vcpus: 1\nworkload: {triggers: 1, ipis: {rate: 0}}\n')).toBe(
      's.yaml:2:38 workload.ipis.rate: Too small: expected number to be >0',
    );
  });

  test('RAM too small for the per-CPU queues', () => {
    expect(errorOf('vcpus: 64\nramSize: 0x300000\nworkload: {triggers: 1, ipis: {rate: 1}}\n')).toBe(
      's.yaml:2:10 ramSize: 64 vCPUs need at least 6291456 bytes of RAM',
    );
  });
});

describe('checkScenario', () => {
  test('validates objects; errors carry the path but no position', () => {
    expect(checkScenario({ vcpus: 1, workload: { triggers: 1, ipis: { rate: 1 } } }).vcpus).toBe(1);
    expect(() => checkScenario({ vcpus: 0, workload: { triggers: 1 } }, 'sweep')).toThrow(
      'sweep: vcpus: Too small: expected number to be >=1',
    );
  });
});
