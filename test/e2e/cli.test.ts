import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CellResult } from '../../src/scenario/cell.ts';
import { Result } from '../../src/scenario/result.ts';
import { cli, cliWith, root, spawnCli, xivelabBin } from './cli-env.ts';

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
      'vcpus: 0\ndevices: [{name: a, msis: 1}]\nworkload: {triggers: 1}\n',
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
    expect(r.err).toBe(`${join(dir, 'nope.yaml')}:1:1 no such file\n`);
  });

  test('bad --seed and unknown commands are usage errors', async () => {
    const r = await cli('run', 'x.yaml', '--seed', '-3');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect((await cli('frobnicate')).code).toBe(2);
  });

  test('the real entry point: exit status 2, no stack trace', () => {
    const p = file('smp0b.yaml', 'vcpus: 0\ndevices: [{name: a, msis: 1}]\nworkload: {triggers: 1}\n');
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

  test('options.maxSteps reached: a step-limit violation and exit 1, not an internal error', async () => {
    const p = file(
      'steps.yaml',
      'vcpus: 2\ndevices: [{name: nic, msis: 4}]\nworkload: {triggers: 200, streams: [{device: nic, rate: 1e6, pattern: bursts, burst: 8}]}\noptions: {maxSteps: 1}\n',
    );
    const r = await cli('run', p);
    expect([r.code, r.err]).toEqual([1, '']);
    expect(r.out).toContain(
      '  [step-limit] seed 1: vCPU 0 was still interrupted after 1 handler runs (options.maxSteps); the run stopped there\n',
    );
  });

  test('--accel kvm or a KVM design with more vCPUs than host threads: a usage error', async () => {
    const p = file(
      'big.yaml',
      'vcpus: 129\nramSize: 0x4000000\ndevices: [{name: d, msis: 1}]\nworkload: {triggers: 1}\n',
    );
    const r = await cli('run', p, '--accel', 'kvm');
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'xivelab: --accel kvm: KVM mode runs at most 128 vCPUs (one host thread each), not 129 (scenario)\n',
    );
    const t = await cli('run', p, '--design', 'rmap', '--trace', join(dir, 'big.json'));
    expect(t.code).toBe(2);
    expect(t.out).toMatch(
      /note: KVM mode runs at most 128 vCPUs \(one host thread each\), not 129: the design cannot run here/,
    );
    expect(t.err).toBe(
      'xivelab: design "rmap" runs under KVM: KVM mode runs at most 128 vCPUs (one host thread each), not 129 (scenario)\n',
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

describe('version and help', () => {
  test("--version prints package.json's version (the real entry point)", () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string };
    const r = spawnCli('--version');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${pkg.version}\n`);
  });

  test('--help lists every command, qtest included, with examples and the exit statuses', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    const commands = [...r.out.matchAll(/^ {2}(\w+) /gm)].map((m) => m[1]);
    expect(commands).toEqual(['run', 'demo', 'schema', 'compare', 'qtest', 'explore', 'ui', 'help']);
    expect(r.out).toContain('\nExamples:\n  $ xivelab demo\n');
    expect(r.out).toContain('130 interrupted');
  });

  test.each([
    ['run', '$ xivelab run scenarios/demo.yaml --seed 7\n'],
    ['demo', '$ xivelab demo --accel kvm --seed 3\n'],
    ['schema', '$ xivelab schema --result\n'],
    ['compare', '$ xivelab compare --expect report/results.json --out /tmp/report\n'],
    ['qtest', '$ xivelab qtest -machine pseries -accel tcg -display none -qtest stdio -nodefaults\n'],
    ['ui', '$ xivelab ui report/\n'],
  ])('help %s shows an example', async (command, example) => {
    const r = await cli('help', command);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\nExamples?:\n/);
    expect(r.out).toContain(example);
  });

  test('compare --help says it exits 0 whatever the verdicts unless --expect', async () => {
    const r = await cli('compare', '--help');
    expect(r.out.replace(/\s+/g, ' ')).toContain('exits 0 whatever the verdicts unless --expect is given');
  });
});

describe('run: designs, passthrough sections, output paths', () => {
  test('--design D --json prints the cell as JSON; a passthrough violation names its seed once', async () => {
    const r = await cli('run', 'scenarios/pt-split-vma.yaml', '--design', 'vma-pointer', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(1);
    const cell = CellResult.parse(JSON.parse(r.out));
    expect([cell.scenario, cell.design, cell.seed]).toEqual(['pt-split-vma', 'vma-pointer', 1]);
    expect(cell.invariants.I2.status).toBe('fail');
    const msg = cell.invariants.I2.first!.message;
    // The seed once; pfns and addresses in hex.
    expect(msg).toMatch(/^pid 1 still maps nic0's page pfn 0x[0-9a-f]+ at 0x[0-9a-f]+ \(cycle 0, seed 1\)$/);
    expect(cell.invariants.I1.first!.message).toMatch(
      /^nic0 vector 0 \(LISN 0x1300, IPI\): the guest's EOI page reaches [\w.-]+ pfn 0x[0-9a-f]+, not pfn 0x[0-9a-f]+ \(cycle 0, seed 1\)$/,
    );
  });

  test('a passthrough section without --design runs its cycles under the merged kernel (rmap)', async () => {
    const p = file(
      'pt.yaml',
      'vcpus: 2\ndevices: [{name: nic0, msis: 4}]\npassthrough: {devices: [nic0], cycles: 2, msisPerCycle: 20}\nworkload: {triggers: 10}\n',
    );
    const r = await cli('run', p);
    expect(r.err).toBe(
      `xivelab: ${p} has a passthrough section: running its 2 cycles under design rmap (--design picks another)\n`,
    );
    expect(r.out.split('\n')[2]).toMatch(/^scenario +rmap +pass +pass +pass +/);
    expect(r.out).toMatch(/\ninvariants: (all checked ones hold|\d+ violations)\n$/);
    const e = await cli('run', p, '--accel', 'emulated', '--json');
    expect(e.err).toMatch(/under design emulated \(--design picks another\)\n$/);
    expect(CellResult.parse(JSON.parse(e.out)).design).toBe('emulated');
  });

  test('an output path that cannot be written: one line, exit 2, before the run', async () => {
    const p = file('tiny-out.yaml', TINY);
    const r = await cli('run', p, '--trace', 'no/such/dir/x.json');
    expect(r).toEqual({
      code: 2,
      out: '',
      err: 'xivelab: --trace no/such/dir/x.json: no such directory no/such/dir\n',
    });
    const d = await cli('run', p, '--trace', dir);
    expect(d).toEqual({ code: 2, out: '', err: `xivelab: --trace ${dir}: is a directory\n` });
    const s = spawnCli('run', p, '--trace', 'no/such/dir/x.json');
    expect([s.code, s.out, s.err]).toEqual([
      2,
      '',
      'xivelab: --trace no/such/dir/x.json: no such directory no/such/dir\n',
    ]);
  });
});

describe('run: progress and Ctrl-C', () => {
  test('on a terminal: a progress line on stderr (virtual time, events, rate, ETA), erased at the end', async () => {
    const p = file(
      'progress.yaml',
      'vcpus: 2\ndevices: [{name: nic0, msis: 4}]\nworkload:\n  triggers: 20000\n  ipis: {rate: 1.0e5}\n',
    );
    let t = 0;
    const r = await cliWith({ tty: true, now: () => (t += 100) }, 'run', p);
    expect(r.code).toBe(0);
    const lines = r.err.split('\r\x1b[K');
    expect(lines[0]).toBe('');
    expect(lines[1]).toBe('run: virtual 2.805 ms, 3.1k events, 10.2k events/s, ETA 0:02');
    expect(lines.at(-1)).toBe('');
    expect(
      lines
        .slice(1, -1)
        .every((l) => /^run: virtual [\d.]+ ms, [\d.]+k events, [\d.]+k events\/s, ETA 0:0\d$/.test(l)),
    ).toBe(true);
    // Not a terminal: no progress at all.
    expect((await cli('run', p)).err).toBe('');
  });

  test('SIGINT stops the run cleanly: the partial result, exit 130 (the real entry point)', async () => {
    const p = file(
      'endless.yaml',
      // A long run within the limits (5.5e6 events): minutes, not the half second before SIGINT.
      'vcpus: 2\ndevices: [{name: nic0, msis: 4}]\nworkload:\n  triggers: 5000000\n  ipis: {rate: 1.0e5}\n',
    );
    // --trace's file is created once the command line is checked, just before the run starts;
    // an interrupted run writes no trace.
    const trace = join(dir, 'endless.trace.json');
    const child = spawn(process.execPath, [xivelabBin, 'run', p, '--json', '--trace', trace], { cwd: root });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    while (!existsSync(trace)) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(code).toBe(130);
    const res = Result.parse(JSON.parse(out));
    expect(res.events.deviceTriggers).toBeGreaterThan(0);
    expect(res.events.deviceTriggers).toBeLessThan(5_000_000);
    expect(res.violations).toEqual([]);
    const lines = err.trimEnd().split('\n');
    expect(lines[0]).toBe('xivelab: interrupted: stopping the workload (Ctrl-C again to quit at once)');
    expect(lines[1]).toMatch(
      /^xivelab: interrupted at virtual time [\d.]+ (ns|µs|ms|s): the result covers the run so far$/,
    );
    expect(lines).toHaveLength(2);
    expect(readFileSync(trace, 'utf8')).toBe('');
  });
});
