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
import type { RaceScenario } from '../../../../src/check/explore/race-schema.ts';
import { parseSchedule } from '../../../../src/check/explore/schedule.ts';
import { loadRaceScenario } from '../../../../src/scenario/race-load.ts';

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
  'I1: pid 1 maps the EOI page of girq 5 to pfn 0x601000021, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)';
const STALE_DEVICE =
  'I1: pid 1 maps the EOI page of girq 5 to pfn 0x605000001, but girq 5 is backed by its IPI (pfn 0x601000021) (I2: an unbound function page)';

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
        'I1: pid 3 maps the EOI page of girq 5 to pfn 0x601000021, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)',
      ]);
    });
});

describe('clr-mapped-error-hang', () => {
  it('rmap: violation — the failed clr_mapped keeps sb->lock: the fault on girq 6 of the same block deadlocks', () => {
    expect(verdict('clr-mapped-error-hang', 'rmap')).toEqual([
      'violation',
      'deadlock',
      'fault blocked at "arch_spin_lock(sb0->lock), read the EOI page, arch_spin_unlock"',
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
      'I1: pid 1 maps the EOI page of girq 6 to pfn 0x601000023, but girq 6 is backed by hw 0x1000001 (pfn 0x605000003)',
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
      "I1: the partition-scoped entry of girq 5's EOI page maps pfn 0x601000021, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)",
    ]);
  });
});

const STALE_IPI_LOAD =
  "I1: a guest load of girq 5's EOI page reaches pfn 0x601000021, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001) and no bind is in flight";
const REMOVED_DEVICE =
  'I1: pid 1 maps the EOI page of girq 5 to pfn 0x605000001, but girq 5 is backed by its IPI (pfn 0x601000021) (I3: a page of the removed function nic)';

describe('vcpu-access-vs-bind', () => {
  it('rmap: violation — hva_to_pfn faults the IPI page in through the S12 window; the load after set_mapped returns reaches the IPI', () => {
    expect(verdict('vcpu-access-vs-bind', 'rmap')).toEqual(['violation', 'violation', STALE_IPI_LOAD]);
  });
  it('rmap-fixed: exhausted — memory_lock closes the host window, the notifier invalidates the partition-scoped entry', () => {
    expect(verdict('vcpu-access-vs-bind', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
  it('rmap-fixed without mmu_notifier_retry: violation — a partition-scoped entry installed from a PTE read before the zap', () => {
    expect(verdict('vcpu-access-vs-bind', 'rmap-fixed-no-notifier-retry')).toEqual([
      'violation',
      'violation',
      STALE_IPI_LOAD,
    ]);
  });
});

describe('s18-release-vs-vcpu', () => {
  for (const d of ['rmap', 'rmap-fixed'])
    it(`${d}: exhausted — release takes vcpu->mutex, which KVM_RUN holds across the loads and their faults`, () => {
      expect(verdict('s18-release-vs-vcpu', d)).toEqual(['exhausted', null, null]);
    });
});

describe('mremap-vs-bind', () => {
  for (const d of ['rmap', 'rmap-fixed'])
    it(`${d}: exhausted — the reverse map reaches the moved VMA; i_mmap_rwsem orders the split against the zap`, () => {
      expect(verdict('mremap-vs-bind', d)).toEqual(['exhausted', null, null]);
    });
  it('vma-walk: exhausted — the moved VMA stays in the VMM, whose VMAs the walk visits', () => {
    expect(verdict('mremap-vs-bind', 'vma-walk')).toEqual(['exhausted', null, null]);
  });
  it('vma-pointer: violation — zap_vma_ptes on the recorded VMA misses the moved PTE', () => {
    expect(verdict('mremap-vs-bind', 'vma-pointer')).toEqual(['violation', 'violation', STALE_IPI]);
  });
});

describe('mprotect-split-vs-fault', () => {
  it('rmap: violation — in the tail VMA the fault computes the irq relative to vm_pgoff and maps girq 0 at girq 6', () => {
    expect(verdict('mprotect-split-vs-fault', 'rmap')).toEqual([
      'violation',
      'violation',
      'I1: pid 1 maps the EOI page of girq 6 to pfn 0x601000021, but girq 6 is backed by its IPI (pfn 0x601000025)',
    ]);
  });
  for (const d of ['rmap-fixed', 'vma-walk'])
    it(`${d}: exhausted — the fault uses the file offset; the zap reaches the split-off VMA`, () => {
      expect(verdict('mprotect-split-vs-fault', d)).toEqual(['exhausted', null, null]);
    });
  it('vma-pointer: exhausted — mprotect_fixup leaves the recorded VMA struct on the protected span, which holds the PTE', () => {
    expect(verdict('mprotect-split-vs-fault', 'vma-pointer')).toEqual(['exhausted', null, null]);
  });
});

describe('source-config-vs-bind', () => {
  for (const d of ['rmap', 'rmap-fixed'])
    it(`${d}: exhausted — both configure under sb->lock; set_mapped routes from act_server/act_priority there`, () => {
      expect(verdict('source-config-vs-bind', d)).toEqual(['exhausted', null, null]);
    });
});

describe('vfio-unplug-vs-fault', () => {
  it('rmap: violation — the fault inserts the device page after clr_mapped zapped: a PTE to the removed function (I3)', () => {
    expect(verdict('vfio-unplug-vs-fault', 'rmap')).toEqual(['violation', 'violation', REMOVED_DEVICE]);
  });
  it("rmap-fixed: exhausted — memory_lock orders select+insert against del_producer's forget+zap", () => {
    expect(verdict('vfio-unplug-vs-fault', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
  it('rmap-fixed without memory_lock: violation — the unlock→insert window on unplug', () => {
    expect(verdict('vfio-unplug-vs-fault', 'rmap-fixed-no-memory-lock')).toEqual([
      'violation',
      'violation',
      REMOVED_DEVICE,
    ]);
  });
});

describe('tima-fault-vs-release', () => {
  for (const d of ['rmap', 'rmap-fixed'])
    it(`${d}: exhausted — the mapping pins the file, its munmap excludes the fault (mmap_lock), the TIMA fault reads no device state`, () => {
      expect(verdict('tima-fault-vs-release', d)).toEqual(['exhausted', null, null]);
    });
});

describe('zap-two-vmas-vs-fault', () => {
  const HELPER_STALE =
    'I1: pid 2 maps the EOI page of girq 5 to pfn 0x601000021, but girq 5 is backed by hw 0x1000000 (pfn 0x605000001)';
  it('rmap: violation — the helper faults the IPI page in behind the per-VMA zap sections', () => {
    expect(verdict('zap-two-vmas-vs-fault', 'rmap')).toEqual(['violation', 'violation', HELPER_STALE]);
  });
  it('rmap-fixed: exhausted — memory_lock spans the whole zap', () => {
    expect(verdict('zap-two-vmas-vs-fault', 'rmap-fixed')).toEqual(['exhausted', null, null]);
  });
  it('rmap-fixed without memory_lock: violation — a fault between the zap and its insert in the second VMA', () => {
    expect(verdict('zap-two-vmas-vs-fault', 'rmap-fixed-no-memory-lock')).toEqual([
      'violation',
      'violation',
      HELPER_STALE,
    ]);
  });
  it('the fault in the second VMA can run between the per-VMA zap sections (up to sb->lock, which the bind holds)', () => {
    const { s, d } = load('zap-two-vmas-vs-fault');
    // bind up to its first VMA's section, the helper's fault twice, then the bind's second section.
    const c = replay(kernelRaceProgram(s, d('rmap')), parseSchedule('1.1.1.1.1.0.0.1', 2));
    expect(
      c.steps.slice(4, 8).map((st) => `${st.threadName}: ${st.label.replace(/\(0x[0-9a-f]+\)/, '')}`),
    ).toEqual([
      'bind: reset_mapped(girq 5): zap pid 1 VMA 0x7ffff7700000: file pages 14..15 (PTE lock)',
      'fault: helper: mmap_read_lock, find_vma',
      'fault: esb_fault(girq 5): find the source, kvmppc_xive_select_irq',
      'bind: reset_mapped(girq 5): zap pid 2 VMA 0x7ffff7700000: file pages 14..15 (PTE lock)',
    ]);
  });
});

describe('the S12 counterexample on rmap', () => {
  const { s, d } = load('s12-fault-vs-bind');

  it('is 14 steps with 1 preemption: select, read, then the whole bind (its zap: i_mmap_rwsem, one VMA), then the stale insert', () => {
    const c = explore(kernelRaceProgram(s, d('rmap'))).shortest!;
    expect([c.schedule, c.preemptions]).toEqual(['0.0.0.1.1.1.1.1.1.1.1.1.0.0', 1]);
    expect(
      c.steps.map(
        (st) => `${st.threadName}: ${st.label.replace(/[ (:,].*$/, '')}${st.effect ? ` → ${st.effect}` : ''}`,
      ),
    ).toEqual([
      'fault: qemu',
      'fault: esb_fault → selected the IPI',
      'fault: arch_spin_lock → pfn 0x601000021',
      'bind: take',
      'bind: set_mapped → hw 0x1000000 forwarded',
      'bind: xive_lock_and_mask',
      'bind: reset_mapped → 1 VMA(s) map the range',
      'bind: reset_mapped → 0 PTE(s) removed',
      'bind: reset_mapped',
      'bind: publish → girq 5 is backed by hw 0x1000000',
      'bind: route',
      'bind: drop → set_mapped returned 0',
      'fault: vmf_insert_pfn → PTE → pfn 0x601000021',
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
