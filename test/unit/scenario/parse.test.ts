import { describe, expect, test } from 'vitest';
import {
  checkScenario,
  MAX_REPORTED_ERRORS,
  parseScenario,
  type ScenarioError,
} from '../../../src/scenario/parse.ts';
import { scenarioErrorOf } from './scenario-error-of.ts';

/** The message a scenario text fails with. */
function errorOf(text: string, file = 's.yaml'): string {
  return scenarioErrorOf(() => parseScenario(text, file));
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
    const s = parseScenario('{"vcpus": 1, "workload": {"duration": 3000, "ipis": {"rate": 5}}}', 'x.json');
    expect(s.vcpus).toBe(1);
    expect(s.workload.duration).toBe(3000);
    expect(errorOf('{\n  "vcpus": 1,\n  "workload": {"triggers": -3}\n}', 'x.json')).toBe(
      [
        'x.json:3:15 workload: nothing to trigger: no device interrupts and no IPIs',
        'x.json:3:28 workload.triggers: Too small: expected number to be >=1',
      ].join('\n'),
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

  test('a huge MSI count is one range error, not a hang in the MSI allocator (fuzz seed 20261206, file 149)', () => {
    expect(errorOf('vcpus: 1\ndevices: [{name: a, msis: 1.0e+308}]\nworkload: {triggers: 1}\n')).toMatch(
      /^s\.yaml:2:27 devices\.0\.msis: Too big: expected int to be <=9007199254740991/,
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
      's.yaml:2:38 workload.ipis.rate: a rate is at least 1 event per second of virtual time',
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
    expect(checkScenario({ vcpus: 1, workload: { duration: 10, ipis: { rate: 1 } } }).vcpus).toBe(1);
    expect(() => checkScenario({ vcpus: 0, workload: { triggers: 1 } }, 'sweep')).toThrow(
      'sweep: vcpus: Too small: expected number to be >=1',
    );
    expect(() =>
      checkScenario({ vcpus: 0, workload: { duration: '1e400s', ipis: { rate: 0 } } }, 'sweep'),
    ).toThrow(
      [
        'sweep: vcpus: Too small: expected number to be >=1',
        'sweep: workload.duration: "1e400s" is too long: at most 1 hour of virtual time (3600000000000 ns, "3600s")',
        'sweep: workload.ipis.rate: a rate is at least 1 event per second of virtual time',
      ].join('\n'),
    );
  });
});

/** A machine with one 2-MSI device, for workloads that need a trigger stream. */
const DEV = 'vcpus: 1\ndevices: [{name: a, msis: 2}]\n';

describe('every error in a file is reported', () => {
  test('one line per error, in file order, with the first one on the error itself', () => {
    const text = `vcpus: 0\nramSize: 64MB\n${DEV.slice(9)}workload: {triggers: 0, ipis: {rate: 0}}\noptions: {maxSteps: 0, seed: -1}\n`;
    let err: ScenarioError | undefined;
    try {
      parseScenario(text, 'm.yaml');
    } catch (e) {
      err = e as ScenarioError;
    }
    expect(err?.message.split('\n')).toEqual([
      'm.yaml:1:8 vcpus: Too small: expected number to be >=1',
      'm.yaml:2:10 ramSize: expected a size like "64MiB", "1GiB" or a byte count',
      'm.yaml:4:22 workload.triggers: Too small: expected number to be >=1',
      'm.yaml:4:38 workload.ipis.rate: a rate is at least 1 event per second of virtual time',
      'm.yaml:5:21 options.maxSteps: Too small: expected number to be >=1',
      'm.yaml:5:30 options.seed: Too small: expected number to be >=0',
    ]);
    expect([err?.line, err?.col, err?.detail]).toEqual([1, 8, 'vcpus: Too small: expected number to be >=1']);
    expect(err?.issues).toHaveLength(6);
  });

  test(`at most ${MAX_REPORTED_ERRORS} lines, then a count of the rest`, () => {
    const streams = Array.from({ length: 25 }, () => '  - {device: a, rate: 0}\n').join('');
    const lines = errorOf(`${DEV}workload:\n  duration: 1ms\n  streams:\n${streams}`).split('\n');
    expect(lines).toHaveLength(MAX_REPORTED_ERRORS + 1);
    expect(lines[0]).toBe(
      's.yaml:6:23 workload.streams.0.rate: a rate is at least 1 event per second of virtual time',
    );
    expect(lines[19]).toBe(
      's.yaml:25:23 workload.streams.19.rate: a rate is at least 1 event per second of virtual time',
    );
    expect(lines[20]).toBe('s.yaml: … and 5 more errors');
  });

  test('a cross-field check on a value that is already wrong is not repeated', () => {
    expect(errorOf('vcpus: 1\nramSize: "1MiB"\nworkload: {duration: 1, ipis: {rate: 1}}\n')).toBe(
      's.yaml:2:10 ramSize: Too small: expected number to be >=2097152',
    );
  });
});

describe('YAML aliases', () => {
  test('an alias with no anchor is named at the alias', () => {
    expect(errorOf('vcpus: *nowhere\nworkload: {triggers: 1}\n')).toBe(
      's.yaml:1:8 Unresolved alias "*nowhere": no anchor "&nowhere" before it',
    );
  });

  test('nested anchors (an alias bomb) are refused at the first alias of an alias', () => {
    const bomb = [
      'a: &a [1, 1]',
      ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [*${'abcdefgh'[i]}, *${'abcdefgh'[i]}]`),
    ];
    expect(errorOf(`${bomb.join('\n')}\nvcpus: 1\n`)).toBe(
      's.yaml:3:8 Excessive alias count: the aliases expand to more than 100 nodes',
    );
  });

  test('more than 100 uses of one anchor are refused at the first alias', () => {
    const many = Array.from({ length: 101 }, () => '*x').join(', ');
    expect(errorOf(`x: &x 1\nvcpus: [${many}]\n`)).toBe(
      's.yaml:2:9 Excessive alias count: the aliases expand to more than 100 nodes',
    );
  });

  test('plain anchors and aliases still work', () => {
    const s = parseScenario(`${DEV}workload:\n  duration: &d 1ms\n  latency: *d\n`, 's.yaml');
    expect([s.workload.duration, s.workload.latency]).toEqual([1_000_000, 1_000_000]);
  });
});

describe('limits that keep a run finite', () => {
  test.each([
    ['1.0e-20', 'a rate is at least 1 event per second of virtual time'],
    ['1e-12', 'a rate is at least 1 event per second of virtual time'],
    ['0.5', 'a rate is at least 1 event per second of virtual time'],
    ['2e9', 'a rate is at most 1000000000 per second (one event per virtual ns)'],
  ])('rate %s is refused at its position', (rate, msg) => {
    for (const [key, col] of [
      ['ipis', 40],
      ['masks', 41],
      ['retargets', 45],
      ['hotplug', 43],
    ] as const) {
      expect(errorOf(`${DEV}workload: {duration: 1ms, ${key}: {rate: ${rate}}}\n`)).toBe(
        `s.yaml:3:${col} workload.${key}.rate: ${msg}`,
      );
    }
    expect(errorOf(`${DEV}workload: {duration: 1ms, streams: [{device: a, rate: ${rate}}]}\n`)).toBe(
      `s.yaml:3:55 workload.streams.0.rate: ${msg}`,
    );
  });

  test('the rate limits themselves are accepted', () => {
    const s = parseScenario(
      `${DEV}workload: {duration: 1ms, ipis: {rate: 1}, masks: {rate: 1e9}}\n`,
      's.yaml',
    );
    expect([s.workload.ipis?.rate, s.workload.masks?.rate]).toEqual([1, 1e9]);
  });

  test.each([
    ['duration', '"1e400s"'],
    ['duration', '"2e308ms"'],
    ['duration', '"1e309ns"'],
    ['duration', '3601s'],
    ['latency', '1e309ns'],
  ])('%s %s overflows: refused, not Infinity', (key, value) => {
    const text = `${DEV}workload:\n  triggers: 1\n  ${key}: ${value}\n`;
    const shown = value.replaceAll('"', '');
    expect(errorOf(text)).toBe(
      `s.yaml:5:${key.length + 5} workload.${key}: "${shown}" is too long: at most 1 hour of virtual time (3600000000000 ns, "3600s")`,
    );
  });

  test('a huge mask hold and a huge number of nanoseconds are refused', () => {
    expect(errorOf(`${DEV}workload: {triggers: 1, masks: {rate: 10, hold: 1e300}}\n`)).toBe(
      's.yaml:3:49 workload.masks.hold: at most 1 hour of virtual time (3600000000000 ns, "3600s")',
    );
    const hour = `${DEV}workload: {duration: 3600s, streams: [{device: a, rate: 1}]}\n`;
    expect(parseScenario(hour, 's.yaml').workload.duration).toBe(3600e9);
  });

  test('a trigger count with no trigger stream would never stop', () => {
    expect(errorOf('vcpus: 1\nworkload: {triggers: 5, ipis: {rate: 1000}}\n')).toBe(
      's.yaml:2:22 workload.triggers: no device trigger stream, so the run would never reach 5 triggers: add "duration"',
    );
    expect(errorOf(`${DEV}workload: {triggers: 1, streams: []}\n`)).toBe(
      's.yaml:3:22 workload.triggers: no device trigger stream, so the run would never reach 1 trigger: add "duration"',
    );
  });

  test('a workload of more than 1e7 events is refused at its stop condition', () => {
    expect(errorOf(`${DEV}workload: {triggers: 10000000, ipis: {rate: 1e9}}\n`)).toBe(
      's.yaml:3:22 workload.triggers: the workload would run about 1e10 events, more than 1e7: lower its rates or its stop condition',
    );
    expect(errorOf(`${DEV}workload: {duration: 3600s, retargets: {rate: 1e5}}\n`)).toBe(
      's.yaml:3:22 workload.duration: the workload would run about 4e9 events, more than 1e7: lower its rates or its stop condition',
    );
    // 1e7 triggers at the implicit 1e6/s take 10 s of virtual time: 1e7 events, the limit itself.
    expect(parseScenario(`${DEV}workload: {triggers: 10000000}\n`, 's.yaml').workload.triggers).toBe(1e7);
    expect(
      errorOf(
        `${DEV}passthrough: {devices: [a], cycles: 1000, msisPerCycle: 1000000}\nworkload: {triggers: 1}\n`,
      ),
    ).toBe('s.yaml:3:57 passthrough.msisPerCycle: 1000 cycles × 1000000 MSIs is more than 1e7 MSIs');
  });

  test('more than 1e6 CPU offline/online events are refused at the hotplug rate', () => {
    // 20000 triggers at 3.1e6/s take 6.5 ms: at 1e9/s that is 6.5e6 hotplug events.
    const w = 'workload: {triggers: 20000, streams: [{device: a, rate: 3.1e6}], hotplug: {rate: 1e9}}';
    expect(errorOf(`${DEV}${w}\n`)).toBe(
      's.yaml:3:82 workload.hotplug.rate: the workload would take about 6.5e6 CPUs offline or online, more than 1e6: lower the rate or the stop condition',
    );
  });

  test('counts have ceilings', () => {
    expect(errorOf(`${DEV}workload: {triggers: 1000000000000000}\n`)).toBe(
      's.yaml:3:22 workload.triggers: Too big: expected number to be <=10000000',
    );
    expect(errorOf(`${DEV}workload: {triggers: 1}\noptions: {maxSteps: 1e12}\n`)).toBe(
      's.yaml:4:21 options.maxSteps: Too big: expected number to be <=10000000',
    );
    const devices = Array.from({ length: 33 }, (_, i) => `{name: d${i}}`).join(', ');
    expect(errorOf(`vcpus: 1\ndevices: [${devices}]\nworkload: {duration: 1}\n`)).toBe(
      's.yaml:2:10 devices: a PHB bus has 32 device slots',
    );
  });
});

describe('ramSize', () => {
  test.each([
    ['"64MiB"', 0x400_0000],
    ['"1GiB"', 0x4000_0000],
    ['"1.5 GiB"', 0x6000_0000],
    ['"67108864"', 0x400_0000],
    ['0x4000000', 0x400_0000],
    ['"1TiB"', 2 ** 40],
  ])('%s → %d bytes', (value, bytes) => {
    expect(parseScenario(`${DEV}ramSize: ${value}\nworkload: {triggers: 1}\n`, 's.yaml').ramSize).toBe(bytes);
  });

  test.each([
    ['64MB', 'expected a size like "64MiB", "1GiB" or a byte count'],
    ['"1.00001GiB"', '"1.00001GiB" is not a whole number of bytes'],
    ['"2TiB"', '"2TiB" is too large: at most 1 TiB of guest RAM'],
    ['"99999999999999999999999TiB"', '"99999999999999999999999TiB" is too large: at most 1 TiB of guest RAM'],
    ['"65537KiB"', 'guest RAM is a multiple of 64 KiB'],
    ['1e400', 'expected a number or a size like "64MiB", "1GiB" or a byte count'],
  ])('%s is refused: %s', (value, msg) => {
    expect(errorOf(`${DEV}ramSize: ${value}\nworkload: {triggers: 1}\n`)).toBe(`s.yaml:3:10 ramSize: ${msg}`);
  });
});

describe('.json files are strict JSON', () => {
  const ok = '{\n  "vcpus": 1,\n  "workload": {"duration": 5, "ipis": {"rate": 5}}\n}\n';

  test.each([
    [
      'a trailing comma in an object',
      ok.replace('5}}', '5},}'),
      'x.json:3:50 trailing comma is not allowed in JSON',
    ],
    [
      'a trailing comma at the end',
      ok.replace('5}}\n', '5}},\n'),
      'x.json:3:51 trailing comma is not allowed in JSON',
    ],
    [
      'a trailing comma in an array',
      '{"vcpus": 1, "x": [1, 2,]}',
      'x.json:1:24 trailing comma is not allowed in JSON',
    ],
    ['a // comment', ok.replace('1,', '1, // one'), 'x.json:2:15 comments are not allowed in JSON'],
    ['a /* comment */', `/* c */${ok}`, 'x.json:1:1 comments are not allowed in JSON'],
    ['a # comment', ok.replace('1,', '1, # one'), 'x.json:2:15 comments are not allowed in JSON'],
    [
      'a single-quoted string',
      ok.replace('"vcpus"', "'vcpus'"),
      'x.json:2:3 JSON strings take double quotes',
    ],
    ['an unquoted key', ok.replace('"vcpus"', 'vcpus'), 'x.json:2:3 expected a key in double quotes'],
    ['a YAML document', 'vcpus: 1\n', 'x.json:1:1 unexpected "v"'],
    ['two values', `${ok}{}`, 'x.json:5:1 unexpected text after the JSON value'],
    ['a missing brace', ok.slice(0, -2), 'x.json:4:1 unexpected end of input'],
  ])('%s', (_what, text, msg) => {
    expect(errorOf(text, 'x.json')).toBe(msg);
  });

  test('valid JSON (a byte-order mark too) parses; the same text as .yaml is YAML', () => {
    expect(parseScenario(`\ufeff${ok}`, 'x.JSON').workload.duration).toBe(5);
    expect(parseScenario(ok.replace('5}}', '5},}'), 'x.yaml').vcpus).toBe(1);
    expect(() => parseScenario(ok.replace('5}}', '5},}'), 'from-stdin', 'json')).toThrow(
      'from-stdin:3:50 trailing comma is not allowed in JSON',
    );
  });

  test('duplicate keys are refused', () => {
    expect(errorOf('{"vcpus": 1, "vcpus": 2}', 'x.json')).toBe('x.json:1:14 Map keys must be unique');
  });
});

describe('hostile structure', () => {
  test.each([
    ['flow sequences', (d: number) => `vcpus: ${'['.repeat(d)}${']'.repeat(d)}\n`],
    ['flow mappings', (d: number) => `vcpus: ${'{a: '.repeat(d)}1${'}'.repeat(d)}\n`],
  ])('%s nested 10000 deep: an error with a position, not a crash', (_what, make) => {
    expect(errorOf(make(10_000))).toMatch(
      /^s\.yaml:1:\d+ nested too deeply \(the parser ran out of stack\)$/,
    );
  });

  test('a file of comments is an empty scenario', () => {
    expect(errorOf('# nothing\n')).toBe('s.yaml:1:1 empty scenario');
    expect(errorOf(' \n', 'x.json')).toBe('x.json:1:1 empty scenario');
  });
});
