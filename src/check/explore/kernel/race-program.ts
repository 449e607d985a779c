/**
 * A race scenario under one design as a {@link RaceProgram}: each thread is a kernel path made
 * of the model's own atomic steps (the ESB fault, set/clr_mapped and the zap come from the KVM
 * device's step generators; the memory-manager and caller steps around them are here), and the
 * end state is checked for I1 (every present ESB PTE of every process reaches the source backing
 * its girq now), I2 (no PTE reaches an unbound function's page), I3 (no path ran in a released
 * device or a freed VMA: the model throws), and no lock held at exit.
 */

import { designNamed } from '../../../designs/index.ts';
import {
  AtomicStep,
  FILE_IMAP,
  filePteObj,
  MMU_NOTIFIERS,
  mmapLockObj,
  vmasObj,
} from '../../../host/atomic-step.ts';
import { EIO } from '../../../host/errno.ts';
import {
  irqBackingObj,
  KVM_ARCH_XIVE,
  XIVE_MAPPING,
  XIVE_SOURCES,
} from '../../../host/kvm/xive-footprint.ts';
import type { XiveNativeFlags } from '../../../host/kvm/xive-native-flags.ts';
import { faultSteps } from '../../../host/mm/fault.ts';
import { RACE_NR_IRQS, type RaceScenario, type RaceThread } from '../../../scenario/race-schema.ts';
import type { RaceProgram, ThreadBody } from '../step.ts';
import { KernelWorld, P } from './world.ts';

/** One design of a race scenario: a registered design, maybe with XIVE flags overridden. */
export interface RaceDesign {
  readonly name: string;
  readonly base: string;
  readonly flags: Partial<XiveNativeFlags>;
  /** KVM checks `mmu_notifier_retry` in the partition-scoped fault (the kernel always does). */
  readonly mmuNotifierRetry: boolean;
}

export function raceDesigns(s: RaceScenario): RaceDesign[] {
  return s.designs.map((d) =>
    typeof d === 'string'
      ? { name: d, base: d, flags: {}, mmuNotifierRetry: true }
      : {
          name: d.name,
          base: d.design,
          flags: d.flags as Partial<XiveNativeFlags>,
          mmuNotifierRetry: d.mmuNotifierRetry,
        },
  );
}

/**
 * The program of scenario `s` under design `d`. The world is built here, once (milliseconds);
 * each execution restores it in place.
 */
export function kernelRaceProgram(s: RaceScenario, d: RaceDesign): RaceProgram<KernelWorld> {
  const world = new KernelWorld(s.setup, designNamed(d.base), d.flags);
  // irq_set_vcpu_affinity(host_irq, NULL) fails for these vectors (the clr_mapped error path).
  const failing = new Set<number>();
  for (const t of s.threads)
    if (t.op === 'clr-mapped' && t.affinityFails) failing.add(world.hwOf(t.function, t.vector));
  if (failing.size > 0)
    world.host.xive.affinityHook = (hw, forward) => (!forward && failing.has(hw) ? -EIO : 0);
  world.vm.checkMmuNotifierRetry = d.mmuNotifierRetry;
  world.snapshotNow();
  return {
    threads: s.threads.map((t) => t.name),
    setup(): KernelWorld {
      world.restore();
      return world;
    },
    start: (w, id) => threadBody(w, id, s.threads[id]!),
    check: (w) => checkWorld(w),
    digest: (w) => digestWorld(w),
  };
}

function threadBody(w: KernelWorld, tid: number, t: RaceThread): ThreadBody {
  switch (t.op) {
    case 'esb-fault':
      return esbFault(w, t.process, t.irq, t.page);
    case 'partition-fault':
      return partitionFault(w, tid, t.irq, t.page);
    case 'set-mapped':
      return mapped(w, tid, true, t.irq, w.hwOf(t.function, t.vector));
    case 'clr-mapped':
      return mapped(w, tid, false, t.irq, w.hwOf(t.function, t.vector));
    case 'munmap':
      return munmap(w, t.process);
    case 'fork':
      return fork(w, t.process);
    case 'release':
      return release(w, tid);
  }
}

/** The PTEs of every ESB page the scenario's girqs use (what a munmap or fork touches). */
function filePteObjects(w: KernelWorld): string[] {
  return w.irqs.flatMap((n) => [filePteObj(4 + 2 * n), filePteObj(5 + 2 * n)]);
}

/**
 * A user access to girq `irq`'s page in `process`: the fault path's own steps (`mmap_read_lock`,
 * `find_vma`, the device's `vm_ops.faultSteps` ending with `vmf_insert_pfn`, `mmap_read_unlock`).
 */
function* esbFault(w: KernelWorld, process: string, irq: number, page: 'trig' | 'eoi'): ThreadBody {
  const pr = w.proc(process);
  yield* faultSteps(pr.p.proc.mm, w.esbAddr(pr, irq, page), 0, process);
}

/**
 * A vCPU's guest access to girq `irq`'s page missing the partition-scoped tree: KVM_RUN holds
 * `vcpu->mutex`; KVM's partition-scoped fault runs its own steps.
 */
function* partitionFault(w: KernelWorld, tid: number, irq: number, page: 'trig' | 'eoi'): ThreadBody {
  const m = w.vcpuMutex[0]!;
  yield m.acquire();
  m.take(tid);
  yield* w.vm.partitionFaultSteps(w.esbGfn(irq, page), false);
  yield m.release();
  m.drop(tid);
}

/**
 * irq bypass binding or unbinding a vector: `kvmppc_{set,clr}_passthru_irq` takes `kvm->lock`,
 * then `kvmppc_xive_{set,clr}_mapped` runs its own steps.
 *
 * @remarks Models arch/powerpc/kvm/book3s_hv.c:kvmppc_set_passthru_irq() / kvmppc_clr_passthru_irq().
 */
function* mapped(w: KernelWorld, tid: number, bind: boolean, irq: number, hw: number): ThreadBody {
  yield w.kvmLock.acquire();
  w.kvmLock.take(tid);
  const rc = yield* bind ? w.dev.setMappedSteps(irq, hw) : w.dev.clrMappedSteps(irq, hw);
  const drop = w.kvmLock.release();
  yield drop;
  w.kvmLock.drop(tid);
  drop.effect = `${bind ? 'set' : 'clr'}_mapped returned ${rc}`;
}

/** munmap of the process's whole ESB mapping (one `mmap_write_lock` section). */
function* munmap(w: KernelWorld, process: string): ThreadBody {
  const pr = w.proc(process);
  const mm = pr.p.proc.mm;
  const st = new AtomicStep(
    `${process}: munmap(ESB range)`,
    [],
    [mmapLockObj(mm.pid), vmasObj(mm.pid), FILE_IMAP, MMU_NOTIFIERS, ...filePteObjects(w)],
    () => mm.mmapLock.canWrite,
  );
  yield st;
  st.effect = `rc ${pr.p.munmap(pr.esb, 2 * RACE_NR_IRQS * P)}`;
}

/** fork of the process: the child copies its VMAs and (VM_PFNMAP) PTEs under `mmap_write_lock`. */
function* fork(w: KernelWorld, process: string): ThreadBody {
  const pr = w.proc(process);
  const mm = pr.p.proc.mm;
  const st = new AtomicStep(
    `${process}: fork (copy VMAs and PFN-map PTEs)`,
    [vmasObj(mm.pid), ...filePteObjects(w)],
    [mmapLockObj(mm.pid), FILE_IMAP],
    () => mm.mmapLock.canWrite,
  );
  yield st;
  const child = pr.p.fork();
  st.effect = typeof child === 'number' ? `fork failed: ${child}` : `child pid ${child.proc.pid}`;
}

/**
 * The last close of the device fd: every process's ESB mapping goes first (the file is pinned
 * while mapped), then `kvmppc_xive_native_release` under `kvm->lock`, excluding each vCPU by its
 * `vcpu->mutex`.
 *
 * @remarks Models virt/kvm/kvm_main.c:kvm_device_release() →
 * book3s_xive_native.c:kvmppc_xive_native_release().
 */
function* release(w: KernelWorld, tid: number): ThreadBody {
  for (const pr of w.procs) yield* munmap(w, pr.name);
  yield w.kvmLock.acquire();
  w.kvmLock.take(tid);
  for (const m of w.vcpuMutex) {
    yield m.acquire();
    m.take(tid);
  }
  const st = new AtomicStep(
    'kvmppc_xive_native_release',
    [],
    [XIVE_MAPPING, XIVE_SOURCES, KVM_ARCH_XIVE, ...w.irqs.map(irqBackingObj)],
  );
  yield st;
  w.dev.release();
  st.effect = 'device released';
  for (const m of w.vcpuMutex) {
    yield m.release();
    m.drop(tid);
  }
  yield w.kvmLock.release();
  w.kvmLock.drop(tid);
}

/** I1, I2 and the locks, at the end of an execution. */
function checkWorld(w: KernelWorld): string | null {
  const dev = w.dev;
  const boundPages = new Set<number>();
  for (const f of w.fns)
    for (const hw of f.hw) {
      const d = w.host.xive.irqOfHw(hw)?.data;
      if (d) boundPages.add(d.eoiPage / P).add(d.trigPage / P);
    }
  for (const proc of w.host.mm.processes) {
    for (const vma of proc.mm.vmas.all()) {
      if (vma.file === null || vma.ops !== dev.esbVmOps) continue;
      for (const n of w.irqs) {
        const st = dev.irqState(n);
        for (const odd of [0, 1]) {
          const vpn = Math.floor(vma.start / P) + 4 + 2 * n + odd - vma.pgoff;
          if (vpn < vma.start / P || vpn >= vma.end / P) continue;
          const got = proc.mm.pgtable.pfn(vpn);
          if (got < 0) continue;
          const xd = st === null ? null : st.ptNumber && st.ptData ? st.ptData : st.ipiData;
          const want = xd === null ? -1 : (odd ? xd.eoiPage : xd.trigPage) / P;
          if (got !== want) {
            const page = odd ? 'EOI' : 'trigger';
            const now = st?.ptNumber ? `hw 0x${st.ptNumber.toString(16)}` : 'its IPI';
            const i2 =
              boundPages.has(got) && !(st?.ptNumber && st.ptData) ? ' (I2: an unbound function page)' : '';
            return `I1: pid ${proc.pid} maps the ${page} page of girq ${n} to pfn 0x${got.toString(16)}, but girq ${n} is backed by ${now} (pfn 0x${want.toString(16)})${i2}`;
          }
        }
      }
    }
  }
  for (const n of w.irqs) {
    const st = dev.irqState(n);
    for (const page of ['trig', 'eoi'] as const) {
      const got = w.vm.pt.lookup(w.esbGfn(n, page), false);
      if (got < 0 || st === null) continue;
      const xd = st.ptNumber && st.ptData ? st.ptData : st.ipiData;
      const want = (page === 'eoi' ? xd.eoiPage : xd.trigPage) / P;
      if (got !== want)
        return `I1: the partition-scoped entry of girq ${n}'s ${page === 'eoi' ? 'EOI' : 'trigger'} page maps pfn 0x${got.toString(16)}, but girq ${n} is backed by ${st.ptNumber ? `hw 0x${st.ptNumber.toString(16)}` : 'its IPI'} (pfn 0x${want.toString(16)})`;
    }
  }
  for (let i = 0; i <= dev.maxSbid; i++)
    if (dev.srcBlocks[i]?.lockHeld) return `source block ${i}'s lock (sb->lock) is held at exit`;
  for (const l of [w.kvmLock, ...w.vcpuMutex]) if (l.holder >= 0) return `${l.name} is held at exit`;
  if (dev.memoryLock.locked) return 'xive->memory_lock is held at exit';
  return null;
}

/** The backing of every girq and every present ESB PTE, one line. */
function digestWorld(w: KernelWorld): string {
  const parts: string[] = [];
  for (const n of w.irqs) {
    const st = w.dev.irqState(n);
    parts.push(
      `girq ${n}: ${st === null ? 'no source' : st.ptNumber ? `hw 0x${st.ptNumber.toString(16)}` : 'IPI'}`,
    );
  }
  for (const proc of w.host.mm.processes)
    for (const vma of proc.mm.vmas.all()) {
      if (vma.ops !== w.dev.esbVmOps) continue;
      proc.mm.pgtable.scan(vma.start / P, vma.end / P, (vpn, pfn) => {
        parts.push(`pid ${proc.pid} page ${vpn - vma.start / P + vma.pgoff} → pfn 0x${pfn.toString(16)}`);
      });
    }
  for (const n of w.irqs)
    for (const page of ['trig', 'eoi'] as const) {
      const pfn = w.vm.pt.lookup(w.esbGfn(n, page), false);
      if (pfn >= 0) parts.push(`partition-scoped girq ${n} ${page} → pfn 0x${pfn.toString(16)}`);
    }
  return parts.join('; ');
}
