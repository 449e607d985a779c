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
  partitionEntryObj,
  vmasObj,
} from '../../../host/atomic-step.ts';
import { EIO } from '../../../host/errno.ts';
import {
  HOST_IRQS,
  irqBackingObj,
  KVM_ARCH_XIVE,
  sbLockObj,
  XIVE_MAPPING,
  XIVE_SOURCES,
} from '../../../host/kvm/xive-footprint.ts';
import type { XiveNativeFlags } from '../../../host/kvm/xive-native-flags.ts';
import {
  KVM_XIVE_SOURCE_EISN_SHIFT,
  KVM_XIVE_SOURCE_SERVER_SHIFT,
  MASKED,
} from '../../../host/kvm/xive-native-uapi.ts';
import { MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ } from '../../../host/mm/constants.ts';
import { faultSteps } from '../../../host/mm/fault.ts';
import { XiveIrqConfig } from '../../../hw/xive/p9-chip.ts';
import { NULL_TRACE, type TraceSink } from '../../../sim/trace-sink.ts';
import { isFrozenWrite } from '../heap-snapshot.ts';
import { RACE_NR_IRQS, type RaceScenario, type RaceSetup, type RaceThread } from '../race-schema.ts';
import type { RaceProgram, ThreadBody } from '../step.ts';
import { KernelWorld, MREMAP_TARGET, P } from './world.ts';

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
 * each execution restores it in place, visiting only what executions write unless
 * `dirtyTracking` is false (every captured object on every restore: the bench's baseline).
 * `trace` receives the host's trace events (a frozen sink, which the restores do not walk).
 */
export function kernelRaceProgram(
  s: RaceScenario,
  d: RaceDesign,
  dirtyTracking = true,
  trace: TraceSink = NULL_TRACE,
): RaceProgram<KernelWorld> {
  const design = designNamed(d.base);
  const build = (): KernelWorld => {
    const w = new KernelWorld(s.setup, design, d.flags, trace);
    // irq_set_vcpu_affinity(host_irq, NULL) fails for these vectors (the clr_mapped error path).
    const failing = new Set<number>();
    for (const t of s.threads)
      if (t.op === 'clr-mapped' && t.affinityFails) failing.add(w.hwOf(t.function, t.vector));
    if (failing.size > 0)
      w.host.xive.affinityHook = (hw, forward) => (!forward && failing.has(hw) ? -EIO : 0);
    w.vm.checkMmuNotifierRetry = d.mmuNotifierRetry;
    w.snapshotNow();
    return w;
  };
  // Dirty tracking: a first execution runs on the unfrozen world ('noting': after each step the
  // entries it changed join `writable`); then the world is restored and everything else frozen.
  // A step writing a frozen object is a restore miss: that execution runs again on a freshly
  // built world ('missed' → 'noting'), since a frozen object stays frozen.
  const writable = new Set<number>();
  let world = build();
  let phase: 'noting' | 'frozen' | 'missed' | 'off' = dirtyTracking ? 'noting' : 'off';
  let noted = false;
  let misses = 0;
  return {
    threads: s.threads.map((t) => t.name),
    setup(): KernelWorld {
      if (phase === 'missed') {
        world = build();
        phase = 'noting';
        noted = false;
      } else {
        world.restore();
        if (phase === 'noting' && noted) {
          // A build that does not reproduce the entry numbering would never settle: stop freezing.
          phase = misses < MAX_MISSES ? 'frozen' : 'off';
          if (phase === 'frozen') world.freezeExcept(writable);
        }
      }
      if (phase === 'noting') noted = true;
      return world;
    },
    start: (w, id) => {
      const body = threadBody(w, id, s.threads[id]!, s);
      return phase === 'noting' ? noting(body, () => world.changedEntries(), writable) : body;
    },
    check: (w) => checkWorld(w),
    digest: (w) => digestWorld(w),
    restoreMiss(e: unknown): boolean {
      if (phase !== 'frozen' || !isFrozenWrite(e)) return false;
      phase = 'missed';
      misses++;
      return true;
    },
  };
}

/** `body`, adding the entries `changed` reports after each of its steps to `into`. */
function* noting(body: ThreadBody, changed: () => number[], into: Set<number>): ThreadBody {
  for (;;) {
    const r = body.next();
    for (const k of changed()) into.add(k);
    if (r.done) return;
    yield r.value;
  }
}

/** Restore misses after which the world is no longer frozen (every restore visits everything). */
const MAX_MISSES = 32;

function threadBody(w: KernelWorld, tid: number, t: RaceThread, s: RaceScenario): ThreadBody {
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
    case 'vcpu-access':
      return vcpuAccess(w, tid, t.irq, t.page, t.accesses);
    case 'mremap':
    case 'mprotect':
      return splitSpan(w, t.op, t.process, t.irq, t.irqs);
    case 'source-config':
      return sourceConfig(w, t.irq, t.server, t.priority);
    case 'vfio-unplug':
      return vfioUnplug(w, tid, s.setup.bound, t.function);
    case 'tima-fault':
      return timaFault(w, t.process);
  }
}

/** The PTEs of every ESB page the scenario's girqs use (what a munmap or fork touches). */
function filePteObjects(w: KernelWorld): string[] {
  const esb = w.irqs.flatMap((n) => [filePteObj(4 + 2 * n), filePteObj(5 + 2 * n)]);
  return w.procs[0]!.tima >= 0 ? [filePteObj(2), ...esb] : esb;
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
  // The ghost counter of binds in flight on `irq` (what a vCPU access may see meanwhile).
  const ghost = [rebindingObj(irq)];
  yield w.kvmLock.acquire([], ghost);
  w.kvmLock.take(tid);
  w.log.rebinding[irq]!++;
  const rc = yield* bind ? w.dev.setMappedSteps(irq, hw) : w.dev.clrMappedSteps(irq, hw);
  const drop = w.kvmLock.release([], ghost);
  yield drop;
  w.kvmLock.drop(tid);
  w.log.rebinding[irq]!--;
  drop.effect = `${bind ? 'set' : 'clr'}_mapped returned ${rc}`;
}

/** Ghost object: set/clr_mapped of `irq` is between its `kvm->lock` acquire and release. */
function rebindingObj(irq: number): string {
  return `ghost:girq${irq}.rebinding`;
}

/** Ghost object: VFIO function `name` is present (its ESB pages exist). */
function functionObj(name: string): string {
  return `ghost:function-${name}`;
}

/**
 * vCPU 0 runs guest loads from girq `irq`'s ESB page (KVM_RUN holds `vcpu->mutex`): each load
 * walks the partition-scoped tree (one step: the hardware walk and the load, which a
 * partition-scoped invalidation's TLB flush orders); a miss runs KVM's partition-scoped fault
 * and loads again. Checked at the load: a load while no set/clr_mapped of `irq` is in flight
 * reaches the source backing `irq` now (I1), and never a removed function's page (I3).
 *
 * @remarks Models the guest's ESB MMIO under arch/powerpc/kvm/book3s_hv.c:kvmppc_vcpu_run_hv()
 * and its page fault in book3s_64_mmu_radix.c:kvmppc_book3s_radix_page_fault().
 */
function* vcpuAccess(w: KernelWorld, tid: number, irq: number, page: 'trig' | 'eoi', n: number): ThreadBody {
  const m = w.vcpuMutex[0]!;
  yield m.acquire();
  m.take(tid);
  const gfn = w.esbGfn(irq, page);
  const reads = [
    partitionEntryObj(w.vm.lpid, gfn),
    irqBackingObj(irq),
    rebindingObj(irq),
    ...w.fns.map((f) => functionObj(f.name)),
  ];
  for (let i = 0; i < n; i++) {
    let loaded = false;
    while (!loaded) {
      const ld = new AtomicStep(
        `guest load #${i + 1} from girq ${irq}'s ${page === 'eoi' ? 'EOI' : 'trigger'} page (partition-scoped walk)`,
        reads,
        [],
      );
      yield ld;
      const pfn = w.vm.pt.lookup(gfn, false);
      if (pfn < 0) {
        ld.effect = 'no partition-scoped entry: fault';
        const r = yield* w.vm.partitionFaultSteps(gfn, false);
        if (r < 0) {
          ld.effect = `partition-scoped fault failed: ${r}`;
          break;
        }
        continue;
      }
      loaded = true;
      ld.effect = `loads pfn 0x${pfn.toString(16)}`;
      const bad = accessViolation(w, irq, page, pfn);
      if (bad !== null && w.log.violation === '') w.log.violation = bad;
    }
  }
  yield m.release();
  m.drop(tid);
}

/** What is wrong with a guest load of girq `irq`'s page reaching `pfn` now, or null. */
function accessViolation(w: KernelWorld, irq: number, page: 'trig' | 'eoi', pfn: number): string | null {
  const name = page === 'eoi' ? 'EOI' : 'trigger';
  for (const f of w.fns)
    if (w.log.gone.includes(f.name) && f.pages.includes(pfn))
      return `I3: a guest load of girq ${irq}'s ${name} page reaches pfn 0x${pfn.toString(16)} of the removed function ${f.name}`;
  const st = w.dev.irqState(irq);
  if (st === null || w.log.rebinding[irq]! > 0) return null;
  const xd = st.ptNumber && st.ptData ? st.ptData : st.ipiData;
  const want = (page === 'eoi' ? xd.eoiPage : xd.trigPage) / P;
  if (pfn === want) return null;
  return `I1: a guest load of girq ${irq}'s ${name} page reaches pfn 0x${pfn.toString(16)}, but girq ${irq} is backed by ${st.ptNumber ? `hw 0x${st.ptNumber.toString(16)}` : 'its IPI'} (pfn 0x${want.toString(16)}) and no bind is in flight`;
}

/**
 * mremap (moving the span to {@link MREMAP_TARGET}) or mprotect(PROT_READ) of the span of
 * girqs `[irq, irq + irqs)` in the process's ESB mapping: one `mmap_write_lock` section that
 * splits the VMA (`__split_vma` takes `i_mmap_rwsem` for write) and, for mremap, moves its PTEs
 * (`move_page_tables`, VM_PFNMAP entries included).
 *
 * @remarks Models mm/mremap.c:mremap() (move_vma) and mm/mprotect.c:mprotect_fixup().
 */
function* splitSpan(
  w: KernelWorld,
  op: 'mremap' | 'mprotect',
  process: string,
  irq: number,
  irqs: number,
): ThreadBody {
  const pr = w.proc(process);
  const mm = pr.p.proc.mm;
  const addr = pr.esb + 2 * irq * P;
  const len = 2 * irqs * P;
  const st = new AtomicStep(
    `${process}: ${op}(girqs ${irq}..${irq + irqs - 1} of the ESB range)`,
    [],
    [mmapLockObj(mm.pid), vmasObj(mm.pid), FILE_IMAP, MMU_NOTIFIERS, ...filePteObjects(w)],
    () => mm.mmapLock.canWrite && w.fileMapping.iMmapRwsem.canWrite,
  );
  yield st;
  const rc =
    op === 'mremap'
      ? pr.p.mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, MREMAP_TARGET)
      : pr.p.mprotect(addr, len, PROT_READ);
  st.effect = rc < 0 ? `failed: ${rc}` : op === 'mremap' ? `moved to 0x${rc.toString(16)}` : 'read-only';
}

/**
 * `KVM_DEV_XIVE_GRP_SOURCE_CONFIG` targeting girq `irq` at (server, priority), EISN = irq (as
 * Linux guests configure it). One step: the source look-up, the `valid` check and get_user
 * read nothing the other threads write; the rest runs under `sb->lock`
 * (`kvmppc_xive_native_update_source_config`: select the HW irq, configure it).
 *
 * @remarks Models book3s_xive_native.c:kvmppc_xive_native_set_source_config().
 */
function* sourceConfig(w: KernelWorld, irq: number, server: number, priority: number): ThreadBody {
  const sb = w.dev.findSource(irq)!;
  const st = new AtomicStep(
    `SOURCE_CONFIG(girq ${irq} → server ${server}, priority ${priority}): arch_spin_lock(sb${sb.id}->lock), select the HW irq, configure it, unlock`,
    [XIVE_SOURCES, irqBackingObj(irq)],
    [sbLockObj(sb.id), HOST_IRQS],
    () => !sb.lockHeld,
  );
  yield st;
  const vmm = w.procs[0]!.p;
  const a = vmm.userAlloc(8);
  vmm.putU64(
    a,
    (BigInt(irq) << KVM_XIVE_SOURCE_EISN_SHIFT) |
      (BigInt(server) << KVM_XIVE_SOURCE_SERVER_SHIFT) |
      BigInt(priority),
  );
  const rc = w.dev.setSourceConfig(BigInt(irq), a, vmm);
  const state = w.dev.irqState(irq)!;
  st.effect = `rc ${rc}; ${state.ptNumber ? `hw 0x${state.ptNumber.toString(16)}` : 'the IPI'} configured`;
}

/**
 * Hot-unplug of VFIO function `fn`: `VFIO_DEVICE_SET_IRQS` DATA_NONE unregisters each vector's
 * irq bypass producer (`del_producer` → `kvmppc_clr_passthru_irq` → clr_mapped for each of its
 * bound girqs), then `free_irq` and the removal: the function's ESB pages are gone.
 *
 * @remarks Models drivers/vfio/pci/vfio_pci_intrs.c:vfio_msi_set_vector_signal() →
 * virt/lib/irqbypass.c:irq_bypass_unregister_producer() →
 * arch/powerpc/kvm/powerpc.c:kvm_arch_irq_bypass_del_producer(), then the PCI removal.
 */
function* vfioUnplug(w: KernelWorld, tid: number, bound: RaceSetup['bound'], fn: string): ThreadBody {
  const f = w.fn(fn);
  for (const b of bound) if (b.function === fn) yield* mapped(w, tid, false, b.irq, f.hw[b.vector]!);
  const st = new AtomicStep(
    `free_irq, remove ${fn} from slot ${f.slot} (its ESB pages go)`,
    [],
    [HOST_IRQS, functionObj(fn)],
  );
  yield st;
  w.host.phbs[0]!.unplug(f.slot);
  w.log.gone.push(fn);
  st.effect = `${fn} removed`;
}

/**
 * A user access to the TIMA OS page (device file page 2): `mmap_read_lock`, `find_vma`,
 * `xive_native_tima_fault` with its `vmf_insert_pfn` (it reads no device state: one step),
 * `mmap_read_unlock`.
 */
function* timaFault(w: KernelWorld, process: string): ThreadBody {
  const pr = w.proc(process);
  yield* faultSteps(pr.p.proc.mm, pr.tima + 2 * P, 0, process);
}

/** munmap of the process's whole ESB mapping (one `mmap_write_lock` section). */
function* munmap(w: KernelWorld, process: string): ThreadBody {
  const pr = w.proc(process);
  const mm = pr.p.proc.mm;
  const st = new AtomicStep(
    `${process}: munmap(ESB range)`,
    [],
    [mmapLockObj(mm.pid), vmasObj(mm.pid), FILE_IMAP, MMU_NOTIFIERS, ...filePteObjects(w)],
    () => mm.mmapLock.canWrite && w.fileMapping.iMmapRwsem.canWrite,
  );
  yield st;
  st.effect = `rc ${pr.p.munmap(pr.esb, 2 * RACE_NR_IRQS * P)}`;
}

/** munmap of every mapping of the device file in the process (one `mmap_write_lock` section). */
function* munmapDevice(w: KernelWorld, process: string): ThreadBody {
  const pr = w.proc(process);
  const mm = pr.p.proc.mm;
  const st = new AtomicStep(
    `${process}: munmap every mapping of the device file`,
    [],
    [mmapLockObj(mm.pid), vmasObj(mm.pid), FILE_IMAP, MMU_NOTIFIERS, ...filePteObjects(w)],
    () => mm.mmapLock.canWrite && w.fileMapping.iMmapRwsem.canWrite,
  );
  yield st;
  const rcs = mm.vmas
    .all()
    .filter((v) => v.file?.mapping === w.fileMapping)
    .map((v) => pr.p.munmap(v.start, v.end - v.start));
  st.effect = `rc ${rcs.join(', ')}`;
}

/** fork of the process: the child copies its VMAs and (VM_PFNMAP) PTEs under `mmap_write_lock`. */
function* fork(w: KernelWorld, process: string): ThreadBody {
  const pr = w.proc(process);
  const mm = pr.p.proc.mm;
  const st = new AtomicStep(
    `${process}: fork (copy VMAs and PFN-map PTEs)`,
    [vmasObj(mm.pid), ...filePteObjects(w)],
    [mmapLockObj(mm.pid), FILE_IMAP],
    () => mm.mmapLock.canWrite && w.fileMapping.iMmapRwsem.canWrite,
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
  for (const pr of w.procs) yield* munmapDevice(w, pr.name);
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
  if (w.log.violation !== '') return w.log.violation;
  const dev = w.dev;
  const gone = new Map<number, string>();
  for (const f of w.fns) if (w.log.gone.includes(f.name)) for (const pg of f.pages) gone.set(pg, f.name);
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
            const i2 = gone.has(got)
              ? ` (I3: a page of the removed function ${gone.get(got)})`
              : boundPages.has(got) && !(st?.ptNumber && st.ptData)
                ? ' (I2: an unbound function page)'
                : '';
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
      if (gone.has(got))
        return `I3: the partition-scoped entry of girq ${n}'s ${page === 'eoi' ? 'EOI' : 'trigger'} page maps pfn 0x${got.toString(16)} of the removed function ${gone.get(got)}`;
      if (got !== want)
        return `I1: the partition-scoped entry of girq ${n}'s ${page === 'eoi' ? 'EOI' : 'trigger'} page maps pfn 0x${got.toString(16)}, but girq ${n} is backed by ${st.ptNumber ? `hw 0x${st.ptNumber.toString(16)}` : 'its IPI'} (pfn 0x${want.toString(16)})`;
    }
  }
  // The HW irq backing each targeted girq is routed as the source's configuration says.
  const cfg = new XiveIrqConfig();
  for (const n of w.irqs) {
    const st = dev.irqState(n);
    if (st === null || !st.valid || st.actPriority === MASKED) continue;
    const hw = st.ptNumber || st.ipiNumber;
    w.host.chip.getIrqConfig(hw, cfg);
    if (cfg.prio !== st.actPriority || cfg.vp !== dev.vp(st.actServer))
      return `routing: girq ${n} targets server ${st.actServer} priority ${st.actPriority}, but hw 0x${hw.toString(16)} is routed to VP 0x${cfg.vp.toString(16)} priority ${cfg.prio}`;
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
