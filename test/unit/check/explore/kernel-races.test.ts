/**
 * The built-in race scenarios under each of their designs, explored exhaustively (DPOR): every
 * verdict pinned, with the reason in the test name; the S12 counterexample pinned step by step
 * and replayed, on the restored world and on a freshly built one.
 */

import { describe, expect, it } from 'vitest';
import { explore, replay } from '../../../../src/check/explore/explore.ts';
import {
  kernelRaceProgram,
  type RaceDesign,
  raceDesigns,
} from '../../../../src/check/explore/kernel/race-program.ts';
import { parseSchedule } from '../../../../src/check/explore/schedule.ts';
import { loadRaceScenario } from '../../../../src/scenario/race-load.ts';
import type { RaceScenario } from '../../../../src/scenario/race-schema.ts';

function load(name: string): { s: RaceScenario; d: (n: string) => RaceDesign } {
  const { scenario: s } = loadRaceScenario(name);
  return {
    s,
    d: (n) => {
      const d = raceDesigns(s).find((x) => x.name === n);
      if (d === undefined) throw new Error(`${name} has no design ${n}`);
      return d;
    },
  };
}

/** DPOR verdict, failure kind and message of scenario × design. */
function verdict(name: string, design: string): [string, string | null, string | null] {
  const { s, d } = load(name);
  const r = explore(kernelRaceProgram(s, d(design)));
  return [r.verdict, r.shortest?.kind ?? null, r.shortest?.message ?? null];
}

const STALE_IPI =
  'I1: pid 1 maps the EOI page of girq 5 to pfn 0x603000001, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)';
const STALE_DEVICE =
  'I1: pid 1 maps the EOI page of girq 5 to pfn 0x605000001, but girq 5 is backed by its IPI (pfn 0x603000001) (I2: an unbound function page)';

describe('s12-fault-vs-bind', () => {
  it('rmap: violation — the fault selects the IPI before the bind publishes and inserts it after the zap', () => {
    expect(verdict('s12-fault-vs-bind', 'rmap')).toEqual(['violation', 'violation', STALE_IPI]);
  });
  it('rmap-fixed: exhausted — memory_lock orders select+insert against publish+zap', () => {
    expect(verdict('s12-fault-vs-bind', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
  it('rmap-fixed without memory_lock: violation — selecting under sb->lock leaves the unlock→insert window', () => {
    expect(verdict('s12-fault-vs-bind', 'rmap-fixed-no-memory-lock')).toEqual([
      'violation',
      'violation',
      STALE_IPI,
    ]);
  });
});

describe('s12-fault-vs-unbind', () => {
  it('rmap: violation — the fault inserts the device page it read before clr_mapped forgot it (I1, I2)', () => {
    expect(verdict('s12-fault-vs-unbind', 'rmap')).toEqual(['violation', 'violation', STALE_DEVICE]);
  });
  it('rmap-fixed: exhausted — memory_lock held across forget+zap', () => {
    expect(verdict('s12-fault-vs-unbind', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
  it('rmap-fixed without memory_lock: violation — the same window on unbind', () => {
    expect(verdict('s12-fault-vs-unbind', 'rmap-fixed-no-memory-lock')).toEqual([
      'violation',
      'violation',
      STALE_DEVICE,
    ]);
  });
});

describe('s18-release', () => {
  for (const d of ['rmap', 'rmap-fixed'])
    it(`${d}: exhausted — mmap_lock orders the fault before the munmap release needs, kvm->lock orders set_mapped (then -ENODEV)`, () => {
      expect(verdict('s18-release', d)).toEqual(['exhausted', null, null]);
    });
});

describe('fork-munmap-vs-bind', () => {
  for (const d of ['rmap', 'rmap-fixed'])
    it(`${d}: exhausted — the file-offset zap reaches the forked child's copied PTE`, () => {
      expect(verdict('fork-munmap-vs-bind', d)).toEqual(['exhausted', null, null]);
    });
  for (const d of ['vma-pointer', 'vma-walk'])
    it(`${d}: violation — the zap misses the child a concurrent fork made, which keeps the IPI page`, () => {
      expect(verdict('fork-munmap-vs-bind', d)).toEqual([
        'violation',
        'violation',
        'I1: pid 3 maps the EOI page of girq 5 to pfn 0x603000001, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)',
      ]);
    });
});

describe('clr-mapped-error-hang', () => {
  it('rmap: violation — the failed clr_mapped keeps sb->lock: the fault on girq 6 of the same block deadlocks', () => {
    expect(verdict('clr-mapped-error-hang', 'rmap')).toEqual([
      'violation',
      'deadlock',
      'deadlock: fault blocked at "arch_spin_lock(sb0->lock), read the EOI page, arch_spin_unlock"',
    ]);
  });
  it('rmap-fixed: exhausted — the error path drops the lock', () => {
    expect(verdict('clr-mapped-error-hang', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
});

describe('two-binds-same-block', () => {
  it('rmap: violation — the fault on girq 6 inserts its IPI page after bind6 zapped (S12 on a shared block)', () => {
    expect(verdict('two-binds-same-block', 'rmap')).toEqual([
      'violation',
      'violation',
      'I1: pid 1 maps the EOI page of girq 6 to pfn 0x603000003, but girq 6 is backed by hw 0x1000001 (pfn 0x605000003)',
    ]);
  });
  it('rmap-fixed: exhausted — the binds serialise on sb->lock and memory_lock, each girq ends on its own vector', () => {
    expect(verdict('two-binds-same-block', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
});

describe('partition-fault-vs-bind', () => {
  it('rmap: violation — hva_to_pfn faults the page in and hits the host S12 window (stale IPI PTE)', () => {
    expect(verdict('partition-fault-vs-bind', 'rmap')).toEqual(['violation', 'violation', STALE_IPI]);
  });
  it('rmap-fixed: exhausted — mmu_notifier_retry sends the fault back after the zap, memory_lock orders the refault', () => {
    expect(verdict('partition-fault-vs-bind', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
  it('rmap-fixed without mmu_notifier_retry: violation — KVM installs the IPI pfn it read before the invalidation', () => {
    expect(verdict('partition-fault-vs-bind', 'rmap-fixed-no-notifier-retry')).toEqual([
      'violation',
      'violation',
      "I1: the partition-scoped entry of girq 5's EOI page maps pfn 0x603000001, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)",
    ]);
  });
});

describe('the S12 counterexample on rmap', () => {
  const { s, d } = load('s12-fault-vs-bind');

  it('is 12 steps with 1 preemption: select, read, then the whole bind, then the stale insert', () => {
    const c = explore(kernelRaceProgram(s, d('rmap'))).shortest!;
    expect([c.schedule, c.preemptions]).toEqual(['0.0.0.1.1.1.1.1.1.1.0.0', 1]);
    expect(
      c.steps.map(
        (st) => `${st.threadName}: ${st.label.replace(/[ (:,].*$/, '')}${st.effect ? ` → ${st.effect}` : ''}`,
      ),
    ).toEqual([
      'fault: qemu',
      'fault: esb_fault → selected the IPI',
      'fault: arch_spin_lock → pfn 0x603000001',
      'bind: take',
      'bind: set_mapped → hw 0x1000000 forwarded',
      'bind: xive_lock_and_mask',
      'bind: reset_mapped → their PTEs removed in every mapping',
      'bind: publish → girq 5 is backed by hw 0x1000000',
      'bind: route',
      'bind: drop → set_mapped returned 0',
      'fault: vmf_insert_pfn → PTE → pfn 0x603000001',
      'fault: qemu',
    ]);
  });

  it('replays exactly, on the restored world and on a freshly built one', () => {
    const prog = kernelRaceProgram(s, d('rmap'));
    const c = explore(prog).shortest!;
    const schedule = parseSchedule(c.schedule, 2);
    expect(replay(prog, schedule)).toEqual(c);
    expect(replay(kernelRaceProgram(s, d('rmap')), schedule)).toEqual(c);
    // The same schedule under the memory_lock fix cannot even run: the fault holds memory_lock.
    expect(() => replay(kernelRaceProgram(s, d('rmap-fixed')), schedule)).toThrow(/cannot run there/);
  });

  it('needs one preemption: bound 0 finds nothing, bound 1 finds it', () => {
    const prog = kernelRaceProgram(s, d('rmap'));
    expect(explore(prog, { bound: 0 }).verdict).toBe('none-within-bound');
    expect(explore(prog, { bound: 1 }).verdict).toBe('violation');
  });

  it('DPOR misses no trace: 400 uniform random runs (seed 5) see exactly the traces DPOR explores', () => {
    for (const name of ['rmap', 'rmap-fixed', 'rmap-fixed-no-memory-lock']) {
      const prog = kernelRaceProgram(s, d(name));
      const dpor = explore(prog);
      const rnd = explore(prog, { strategy: 'random', runs: 400, seed: 5 });
      expect([name, rnd.traces]).toEqual([name, dpor.traces]);
    }
  });

  it('PCT (depth 2, seed 1) finds it within 50 runs', () => {
    const r = explore(kernelRaceProgram(s, d('rmap')), { strategy: 'pct', runs: 50, seed: 1, depth: 2 });
    expect(r.verdict).toBe('violation');
  });
});
