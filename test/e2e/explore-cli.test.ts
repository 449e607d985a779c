import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './cli-env.ts';

const S12 = '0.0.0.1.1.1.1.1.1.1.1.1.0.0';

describe('xivelab explore', () => {
  it('S12 under rmap: the violation, the counts and the numbered counterexample; exit 1', async () => {
    const r = await cli('explore', 's12-fault-vs-bind', '--design', 'rmap');
    expect(r.code).toBe(1);
    const lines = r.out.split('\n');
    expect(lines).toContain('design rmap: VIOLATION FOUND');
    expect(lines).toContain(
      '  dpor, bound none: 8 executions (6 complete, 2 cut by sleep sets), 6 distinct traces; naive 2002 interleavings (250.3× fewer executions)',
    );
    expect(lines).toContain(`  14 steps, 1 preemption(s); replay: --design rmap --replay ${S12}`);
    expect(lines).toContain('    13. [fault] vmf_insert_pfn(file page 15) → PTE → pfn 0x601000021');
    expect(lines).toContain('  end state: girq 5: hw 0x1000000; pid 1 page 15 → pfn 0x601000021');
  });

  it('a deadlock is named as one: clr-mapped-error-hang under rmap; exit 1', async () => {
    const r = await cli('explore', 'clr-mapped-error-hang', '--design', 'rmap');
    expect(r.code).toBe(1);
    const lines = r.out.split('\n');
    expect(lines).toContain('design rmap: DEADLOCK FOUND');
    expect(lines).toContain(
      '  shortest counterexample: deadlock: fault blocked at "arch_spin_lock(sb0->lock), read the EOI page, arch_spin_unlock"',
    );
  });

  it('rmap-fixed is exhausted without a violation; exit 0; --json carries the same report', async () => {
    const r = await cli('explore', 's12-fault-vs-bind', '--design', 'rmap-fixed', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.scenario).toBe('s12-fault-vs-bind');
    expect(j.results[0].design).toBe('rmap-fixed');
    expect(j.results[0].report).toMatchObject({
      strategy: 'dpor',
      verdict: 'exhausted',
      traces: 3,
      failures: 0,
    });
  });

  it('--replay reproduces the schedule step by step; --trace writes one track per thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xivelab-explore-'));
    const trace = join(dir, 'ce.json');
    const r = await cli(
      'explore',
      's12-fault-vs-bind',
      '--design',
      'rmap',
      '--replay',
      S12,
      '--trace',
      trace,
    );
    expect(r.code).toBe(1);
    expect(r.out.split('\n').slice(0, 2)).toEqual([
      'replay of s12-fault-vs-bind under rmap: violation: I1: pid 1 maps the EOI page of girq 5 to pfn 0x601000021, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)',
      `  schedule ${S12} (14 steps, 1 preemption(s))`,
    ]);
    const doc = JSON.parse(readFileSync(trace, 'utf8'));
    const tracks = doc.traceEvents
      .filter((e: { name: string }) => e.name === 'thread_name')
      .map((e: { args: { name: string } }) => e.args.name);
    expect(tracks).toEqual(['fault', 'bind']);
    expect(doc.traceEvents.filter((e: { ph: string }) => e.ph === 'X')).toHaveLength(14);
    const serial = await cli('explore', 's12-fault-vs-bind', '--design', 'rmap', '--replay', '1');
    expect([serial.code, serial.out.split('\n')[0]]).toEqual([
      0,
      'replay of s12-fault-vs-bind under rmap: no violation',
    ]);
  });

  it('PCT and uniform random find S12 on rmap within their budget (seeded)', async () => {
    for (const strategy of ['pct', 'random']) {
      const r = await cli(
        'explore',
        's12-fault-vs-bind',
        '--design',
        'rmap',
        '--strategy',
        strategy,
        '--runs',
        '200',
        '--seed',
        '3',
      );
      expect([strategy, r.code]).toEqual([strategy, 1]);
      expect(r.out).toContain(`  ${strategy}: 200 executions`);
    }
  });

  it('help explore shows the examples', async () => {
    const r = await cli('help', 'explore');
    expect(r.code).toBe(0);
    expect(r.out).toContain('\nExamples:\n  $ xivelab explore s12-fault-vs-bind\n');
  });

  it('bad input is one line and exit 2', async () => {
    const bad = async (...argv: string[]): Promise<string> => {
      const r = await cli('explore', ...argv);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      return r.err.trim();
    };
    expect(await bad('s12-fault-vs-bind', '--design', 'rmap', '--replay', '0.1.9')).toBe(
      'xivelab: schedule step 3: "9" is not a thread id (0..1, dot-separated)',
    );
    expect(await bad('s12-fault-vs-bind', '--design', 'rmap', '--replay', '0.0.0.0.0.0')).toBe(
      'xivelab: schedule step 6: thread 0 (fault) cannot run there',
    );
    expect(await bad('s12-fault-vs-bind', '--replay', '0')).toBe(
      'xivelab: --replay needs --design (a schedule belongs to one design)',
    );
    expect(await bad('s12-fault-vs-bind', '--design', 'qemu-remap')).toBe(
      'xivelab: design "qemu-remap" is not in s12-fault-vs-bind (it has: rmap, rmap-fixed, rmap-fixed-no-memory-lock)',
    );
    expect(await bad('nosuch')).toMatch(
      /^nosuch: no such file, nor a built-in race scenario \(clr-mapped-error-hang, /,
    );
    const dir = mkdtempSync(join(tmpdir(), 'xivelab-explore-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'name: bad\nsummary: x\nsetup: { irqs: [5] }\nthreads:\n  - { name: t, op: spin }\n');
    expect(await bad(f)).toBe(
      `${f}:5:20 threads.0.op: Invalid discriminator value. Expected 'esb-fault' | 'partition-fault' | 'set-mapped' | 'clr-mapped' | 'munmap' | 'fork' | 'vcpu-access' | 'mremap' | 'mprotect' | 'source-config' | 'vfio-unplug' | 'tima-fault' | 'release'`,
    );
  });
});
