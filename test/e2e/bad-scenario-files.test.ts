/**
 * Bad scenario files through the real entry point (`node src/cli/main.ts run FILE`): each one is
 * exit 2 with `file:line:col message` lines on stderr and nothing on stdout — never exit 70 (an
 * "internal error"), never a run that does not end.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { spawnCli } from './cli-env.ts';

const dir = mkdtempSync(join(tmpdir(), 'xivelab-bad-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DEV = 'vcpus: 1\ndevices: [{name: a, msis: 2}]\n';
const BOMB = [
  'a: &a [1, 1]',
  ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [*${'abcdefgh'[i]}, *${'abcdefgh'[i]}]`),
  'vcpus: 1',
].join('\n');

/** name, file text, the stderr lines after `FILE:` */
const cases: [string, string, string[]][] = [
  [
    'unresolved.yaml',
    'vcpus: *nowhere\nworkload: {triggers: 1}\n',
    ['1:8 Unresolved alias "*nowhere": no anchor "&nowhere" before it'],
  ],
  ['bomb.yaml', BOMB, ['3:8 Excessive alias count: the aliases expand to more than 100 nodes']],
  [
    'tiny-rate.yaml',
    `${DEV}workload: {triggers: 10, streams: [{device: a, rate: 1.0e-20}]}\n`,
    ['3:54 workload.streams.0.rate: a rate is at least 1 event per second of virtual time'],
  ],
  [
    'endless.yaml',
    `${DEV}workload: {duration: "1e400s"}\n`,
    [
      '3:22 workload.duration: "1e400s" is too long: at most 1 hour of virtual time (3600000000000 ns, "3600s")',
    ],
  ],
  [
    'never-stops.yaml',
    'vcpus: 1\nworkload: {triggers: 5, ipis: {rate: 1000}}\n',
    [
      '2:22 workload.triggers: no device trigger stream, so the run would never reach 5 triggers: add "duration"',
    ],
  ],
  [
    'trailing.json',
    '{\n  "vcpus": 1,\n  "workload": {"duration": 5, "ipis": {"rate": 5}},\n}\n',
    ['3:51 trailing comma is not allowed in JSON'],
  ],
  [
    'several.yaml',
    'vcpus: 0\nramSize: 64MB\nworkload: {duration: 1ms, ipis: {rate: 0}}\n',
    [
      '1:8 vcpus: Too small: expected number to be >=1',
      '2:10 ramSize: expected a size like "64MiB", "1GiB" or a byte count',
      '3:40 workload.ipis.rate: a rate is at least 1 event per second of virtual time',
    ],
  ],
];

describe('xivelab run <bad file>: exit 2, every error with its position', () => {
  test.each(cases)('%s', (name, text, lines) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = spawnCli('run', file);
    expect({ code: r.code, out: r.out, err: r.err }).toEqual({
      code: 2,
      out: '',
      err: lines.map((l) => `${file}:${l}\n`).join(''),
    });
  });

  test('the extreme values the limits allow run and end', () => {
    // Slowest rates, the longest burst interval (4096 triggers at 1/s: an 8e12 ns jitter range),
    // the fastest rates, and an hour of mask hold and latency.
    const file = join(dir, 'extremes.yaml');
    writeFileSync(
      file,
      [
        'vcpus: 2',
        'devices: [{name: a, msis: 2}]',
        'workload:',
        '  duration: 100us',
        '  streams: [{device: a, rate: 1, pattern: bursts, burst: 4096}, {device: a, rate: 1e9}]',
        '  ipis: {rate: 1}',
        '  masks: {rate: 1, hold: 3600s}',
        '  retargets: {rate: 1e9}',
        '  hotplug: {rate: 1}',
        '  latency: 3600s',
        '',
      ].join('\n'),
    );
    const r = spawnCli('run', file);
    expect([r.code, r.err, r.out.trimEnd().split('\n').at(-1)]).toEqual([0, '', 'invariants: all hold']);
  });

  test('a missing file', () => {
    const file = join(dir, 'missing.yaml');
    expect(spawnCli('run', file)).toEqual({ code: 2, out: '', err: `${file}:1:1 no such file\n` });
  });
});
