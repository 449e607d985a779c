import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { raceScenarioJsonSchema } from '../../../../src/check/explore/race-schema.ts';
import { ScenarioError } from '../../../../src/scenario/parse.ts';
import { builtinRaceNames, loadRaceScenario, parseRaceScenario } from '../../../../src/scenario/race-load.ts';

const GOOD = `name: t
summary: a test
setup:
  irqs: [5]
  functions: [{ name: nic }]
threads:
  - { name: fault, op: esb-fault, process: qemu, irq: 5, page: eoi }
  - { name: bind, op: set-mapped, irq: 5, function: nic }
`;

function errorOf(text: string): string {
  try {
    parseRaceScenario(text, 'r.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.message;
    throw e;
  }
  return 'no error';
}

describe('race scenario files', () => {
  it('the built-ins load, with their defaults applied', () => {
    expect(builtinRaceNames()).toEqual([
      'clr-mapped-error-hang',
      'fork-munmap-vs-bind',
      'mprotect-split-vs-fault',
      'mremap-vs-bind',
      'partition-fault-vs-bind',
      's12-fault-vs-bind',
      's12-fault-vs-unbind',
      's18-release',
      's18-release-vs-vcpu',
      'source-config-vs-bind',
      'tima-fault-vs-release',
      'two-binds-same-block',
      'vcpu-access-vs-bind',
      'vfio-unplug-vs-fault',
      'zap-two-vmas-vs-fault',
    ]);
    for (const n of builtinRaceNames()) expect(loadRaceScenario(n).scenario.name).toBe(n);
    const s = parseRaceScenario(GOOD, 'r.yaml');
    expect(s.setup.processes).toEqual([{ name: 'qemu' }]);
    expect(s.threads[1]).toEqual({ name: 'bind', op: 'set-mapped', irq: 5, function: 'nic', vector: 0 });
    expect([s.designs, s.bound, s.setup.vcpus]).toEqual([['rmap', 'rmap-fixed'], null, 1]);
  });

  it('errors are one line at file:line:col', () => {
    expect(errorOf(GOOD.replace('page: eoi', 'page: odd'))).toBe(
      'r.yaml:7:64 threads.0.page: Invalid option: expected one of "trig"|"eoi"',
    );
    expect(errorOf(GOOD.replace('process: qemu', 'process: qemu2'))).toBe(
      'r.yaml:7:44 threads.0.process: no process "qemu2"',
    );
    expect(errorOf(GOOD.replace('function: nic', 'function: gpu'))).toBe(
      'r.yaml:8:53 threads.1.function: no function "gpu"',
    );
    expect(errorOf(GOOD.replace('irqs: [5]', 'irqs: [5]\n  cpus: 2'))).toBe(
      'r.yaml:5:3 setup: unknown key "cpus"',
    );
    expect(errorOf(`${GOOD}designs: [qemu-remap]\n`)).toBe('r.yaml:9:11 designs.0: Invalid input');
    expect(errorOf('name: [')).toMatch(/^r\.yaml:1:8 /);
    expect(
      errorOf(
        GOOD.replace('op: esb-fault, process: qemu, irq: 5, page: eoi', 'op: tima-fault, process: qemu'),
      ),
    ).toBe('r.yaml:7:24 threads.0.op: a TIMA fault needs the TIMA mapped (setup.tima: true)');
    expect(errorOf(GOOD.replace('op: set-mapped, irq: 5, function: nic', 'op: source-config, irq: 5'))).toBe(
      'r.yaml:8:5 threads.1.server: SOURCE_CONFIG targets a connected vCPU (setup.queues: true, server < setup.vcpus)',
    );
    expect(() => loadRaceScenario('no/such/file.yaml')).toThrow('no/such/file.yaml:1:1 no such file');
  });

  it('a run scenario is named as one, with the command that takes it', () => {
    expect(errorOf('vcpus: 2\ndevices: [{name: a, msis: 1}]\nworkload: {triggers: 3}\n')).toBe(
      'r.yaml:1:1 a run scenario (vcpus, devices, workload), not a race scenario: `xivelab run` takes it',
    );
  });

  it('schema/race-scenario.json is up to date (regenerate: xivelab schema --race > schema/race-scenario.json)', () => {
    const onDisk = JSON.parse(
      readFileSync(new URL('../../../../schema/race-scenario.json', import.meta.url), 'utf8'),
    );
    expect(onDisk).toEqual(raceScenarioJsonSchema());
  });

  it('the JSON Schema names the thread operations', () => {
    const text = JSON.stringify(raceScenarioJsonSchema());
    for (const op of [
      'esb-fault',
      'partition-fault',
      'set-mapped',
      'clr-mapped',
      'munmap',
      'fork',
      'release',
      'vcpu-access',
      'mremap',
      'mprotect',
      'source-config',
      'vfio-unplug',
      'tima-fault',
    ])
      expect(text).toContain(`"const":"${op}"`);
  });
});
