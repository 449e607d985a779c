import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Result } from '../../src/scenario/result.ts';
import { cli, root, spawnCli } from './cli-env.ts';

const dir = mkdtempSync(join(tmpdir(), 'xivelab-cli-'));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('xivelab schema', () => {
  test('prints the scenario JSON Schema (= schema/scenario.json)', async () => {
    const r = await cli('schema');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(
      JSON.parse(readFileSync(new URL('schema/scenario.json', root), 'utf8')),
    );
  });
  test('--result prints the result JSON Schema (= schema/result.json)', async () => {
    const r = await cli('schema', '--result');
    expect(JSON.parse(r.out)).toEqual(JSON.parse(readFileSync(new URL('schema/result.json', root), 'utf8')));
  });
});

describe('bad input: one line file:line:col, exit 2', () => {
  test.each([
    [
      'smp0.yaml',
      'vcpus: 0\nworkload: {triggers: 1}\n',
      'smp0.yaml:1:8 vcpus: Too small: expected number to be >=1',
    ],
    [
      'lsi.yaml',
      'vcpus: 1\ndevices:\n  - name: a\n    lsis: 5\nworkload: {triggers: 1}\n',
      'lsi.yaml:4:11 devices.0.lsis: a PHB device has at most 4 LSIs (INTx pins)',
    ],
    [
      'syntax.yaml',
      'vcpus: [1\n',
      'syntax.yaml:2:1 Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
    [
      'bad.json',
      '{"vcpus": 1, "workload": {"triggers": 1, "ipis": {"rate": 1}}, "x": 2}',
      'bad.json:1:64 unknown key "x"',
    ],
  ])('%s', async (name, text, line) => {
    const p = file(name, text);
    const r = await cli('run', p);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`${join(dir, line)}\n`);
  });

  test('missing file', async () => {
    const r = await cli('run', join(dir, 'nope.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toBe(`${join(dir, 'nope.yaml')}: no such file\n`);
  });

  test('bad --seed and unknown commands are usage errors', async () => {
    const r = await cli('run', 'x.yaml', '--seed', '-3');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect((await cli('frobnicate')).code).toBe(2);
  });

  test('the real entry point: exit status 2, no stack trace', () => {
    const p = file('smp0b.yaml', 'vcpus: 0\nworkload: {triggers: 1}\n');
    const r = spawnCli('run', p);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`${p}:1:8 vcpus: Too small: expected number to be >=1\n`);
  });
});

const TINY =
  'vcpus: 2\ndevices:\n  - {name: nic0, msis: 4, lsis: 1}\nworkload:\n  triggers: 200\n  ipis: {rate: 1.0e5}\n';

describe('xivelab run', () => {
  test('--json output validates against the result schema, same seed → same bytes', async () => {
    const p = file('tiny.yaml', TINY);
    const a = await cli('run', p, '--seed', '5', '--json');
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    const res = Result.parse(JSON.parse(a.out));
    expect(res.seed).toBe(5);
    expect(res.violations).toEqual([]);
    expect(res.cpus.map((c) => c.id)).toEqual([0, 1]);
    expect(res.events.deviceTriggers).toBe(200);
    const b = await cli('run', p, '--seed', '5', '--json');
    expect(b.out).toBe(a.out);
    const c = await cli('run', p, '--seed', '6', '--json');
    expect(c.out).not.toBe(a.out);
  });

  test('the table names every CPU and irq and the verdict', async () => {
    const r = await cli('run', file('tiny2.yaml', TINY));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^scenario scenario, seed 1, emulated XIVE: 200 device triggers/);
    expect(r.out).toMatch(/\nCPU {2}online {2}delivered/);
    expect(r.out).toMatch(/\ninvariants: all hold\n$/);
  });

  test('--accel kvm: the same scenario under KVM, the same deliveries, its own first line', async () => {
    const p = file('tiny-kvm.yaml', TINY);
    const emu = Result.parse(JSON.parse((await cli('run', p, '--seed', '5', '--json')).out));
    const r = await cli('run', p, '--seed', '5', '--json', '--accel', 'kvm');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const kvm = Result.parse(JSON.parse(r.out));
    expect([emu.accel, kvm.accel]).toEqual(['emulated', 'kvm']);
    expect(kvm.violations).toEqual([]);
    expect(kvm.irqs.map((q) => q.delivered)).toEqual(emu.irqs.map((q) => q.delivered));
    expect(kvm.hcalls).toEqual(emu.hcalls);
    const t = await cli('demo', '--accel', 'kvm');
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^scenario demo, seed 1, KVM \(kernel_irqchip=on\): 20000 device triggers/);
    expect(t.out).toMatch(/invariants: all hold\n$/);
  });

  test('--accel: a bad mode, or with --design (the design picks it), is a usage error', async () => {
    const p = file('tiny-accel.yaml', TINY);
    const bad = await cli('run', p, '--accel', 'tcg');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/expected emulated or kvm/);
    const both = await cli('run', p, '--accel', 'kvm', '--design', 'rmap');
    expect(both.code).toBe(2);
    expect(both.err).toBe(
      'xivelab: --accel and --design do not go together: a design picks its accelerator\n',
    );
  });

  test('--design on a workload scenario runs it under KVM with the design and prints the cell', async () => {
    const p = file('tiny-design.yaml', TINY);
    const out = join(dir, 'tiny-design.trace.json');
    const r = await cli('run', p, '--design', 'vma-walk', '--trace', out);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\nnote: kernel_irqchip=on: /);
    expect(r.out).toMatch(/\ninvariants: all checked ones hold\n$/);
    expect(r.err).toMatch(/^wrote \d+ trace events to /);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: { name: string }[] };
    expect(doc.traceEvents.some((e) => e.name === 'router.enqueue')).toBe(true);
  });

  test('--accel kvm or a KVM design with more vCPUs than host threads: a usage error', async () => {
    const p = file(
      'big.yaml',
      'vcpus: 129\nramSize: 0x4000000\ndevices: [{name: d, msis: 1}]\nworkload: {triggers: 1}\n',
    );
    const r = await cli('run', p, '--accel', 'kvm');
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'xivelab: --accel kvm runs at most 128 vCPUs (one host thread each); scenario has 129\n',
    );
    const t = await cli('run', p, '--design', 'rmap', '--trace', join(dir, 'big.json'));
    expect(t.code).toBe(2);
    expect(t.out).toMatch(/note: 129 vCPUs: KVM mode runs at most 128/);
    expect(t.err).toBe(
      'xivelab: design "rmap" runs under KVM, which runs at most 128 vCPUs (one host thread each); scenario has 129\n',
    );
  });

  test('demo through the real entry point', () => {
    const r = spawnCli('demo');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^scenario demo, seed 1, emulated XIVE: 20000 device triggers/);
    expect(r.out).toMatch(/invariants: all hold\n$/);
  });
});
