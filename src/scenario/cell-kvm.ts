/**
 * A KVM design on a workload scenario (no passthrough functions: `demo`, `foundation`, a user's
 * file): the scenario's guest and workload run unchanged under KVM (`kernel_irqchip=on`) on a
 * host whose XIVE device carries the design's kernel seam and flags, and the run is checked:
 * - I4 (no lost interrupt) and I5 (no spurious delivery): the runner's accounting invariants,
 *   counted on the host chip's paths;
 * - I1 (routing): at the end, every guest interrupt's EOI page, touched by the guest, reaches
 *   the IPI the KVM device backs it with (a PQ GET through the partition-scoped tree);
 * - I2 (isolation): no PTE of any process and no partition-scoped entry reaches a page of the
 *   host's own — the TIMA's HW/HV/USER pages, an IPI that backs none of this VM's sources, an
 *   END's escalation ESB (the chip says which: `P9Chip.isHostOnlyPage`);
 * - I3: the design's use-after-free count; I7: memslots and the VMM's VMAs within their limits;
 * - I6 (guest ABI): the guest-visible trace — every load, store and hcall with its results and
 *   every handler delivery per vCPU — equals the emulated reference's for the same seed, entry
 *   for entry. The one known difference between the modes, an LSI load-EOI (H_INT_ESB) that
 *   finds the line still asserted (1 emulated, 0 under KVM: QEMU's kvmppc_xive_esb_rw(); pinned
 *   by test/e2e/kvm-mode.test.ts), does not arise here: the runner's devices drop their line in
 *   the handler, before the EOI. Were it to, I6 would report it — it is guest-visible.
 *
 * The designs differ only in how a passthrough irq's pages are re-pointed; with no passthrough
 * function their runs differ only by the latent-bug flags they carry, which is what this cell
 * shows: the merged code's and the fixed variants' KVM paths keep the guest's view intact.
 */

import { isolationViolations, routingViolations } from '../check/passthrough.ts';
import { type Design, DesignStats } from '../designs/design.ts';
import { designNamed } from '../designs/index.ts';
import type { Host } from '../host/host.ts';
import { Word64 } from '../hw/mmio.ts';
import { type CapturedTrace, Trace } from '../sim/trace.ts';
import { spaprEoiPageGpa } from '../vmm/spapr-xive.ts';
import {
  type CellResult,
  type CostCounts,
  cellResult,
  findingsOutcome,
  type InvariantId,
  type InvariantOutcome,
  type ScenarioRef,
} from './cell.ts';
import { accountingOutcomes, EXPORT_TRACE_MASK, shortestWorkloadTrace } from './cell-trace.ts';
import { bootGuestOnSlots, GuestTraceDigest } from './guest-port.ts';
import { Reference } from './reference.ts';
import type { Result } from './result.ts';
import { buildMachine, type KvmRunSetup } from './run-machine.ts';
import { type RunHandle, runGuest } from './runner.ts';
import type { Scenario } from './schema.ts';

/** The state invariants a KVM run checks at its end. */
type StateFindings = Record<'I1' | 'I2' | 'I3' | 'I7', string[]>;

/** What one KVM run of a workload scenario produced. */
interface KvmRun {
  readonly result: Result;
  readonly digest: GuestTraceDigest;
  /** I1, I2, I3, I7 findings, one message each. */
  readonly state: StateFindings;
  readonly costs: CostCounts;
  /** The chip's IPI source number behind each LISN (traces number events by it), −1 none. */
  readonly srcnoOf: (lisn: number) => number;
}

/** How a KVM run is made: traced, keeping a window of the guest-visible trace, with a fault. */
interface KvmRunOptions {
  trace?: Trace;
  window?: [number, number];
  /** Called with the host before the guest boots (tests inject faults here). */
  inject?: (host: Host) => void;
}

/** The counted paths of a finished KVM run (before the checks touch pages themselves). */
function kvmCosts(run: RunHandle<KvmRunSetup>, dstats: DesignStats): CostCounts {
  const { host, machine } = run;
  const vm = host.kvm.vms[0];
  const proc = machine.vmm?.proc;
  if (vm === undefined || proc === undefined) throw new Error('the KVM run left no VM or VMM process');
  let hostFaults = 0;
  let ptesZapped = 0;
  for (const p of host.mm.processes) {
    hostFaults += p.mm.stats.fileFaults;
    ptesZapped += p.mm.stats.ptesZapped;
  }
  return {
    memslotsPeak: vm.stats.memslotsPeak,
    memslotUpdates: machine.kvm?.listener?.ioctls ?? 0,
    vmasPeak: proc.proc.mm.vmas.count,
    hostFaults,
    partitionFaults: vm.stats.partitionFaults,
    ptesZapped,
    vmasVisited: dstats.vmasVisited,
    vmmExits: vm.stats.mmioExits + vm.stats.hcallExits,
    hcalls: Object.values(run.result.hcalls).reduce((a, b) => a + b, 0),
  };
}

/**
 * I1: every guest interrupt's EOI page reaches the IPI behind it; I2: no page of the host's own
 * is reachable (the chip says which); I3: the design's use-after-free count; I7: memslots and
 * the VMM's VMAs within their limits.
 */
function stateFindings(
  run: RunHandle<KvmRunSetup>,
  dstats: DesignStats,
  vmas: number,
  seed: number,
): StateFindings {
  const { host, view } = run;
  const vm = host.kvm.vms[0]!;
  const w = new Word64();
  const cpu = run.machine.cpus[0]!;
  const irqs = run.result.irqs.map((q) => ({
    label: `${q.kind} ${q.device}:${q.vector}`,
    lisn: q.lisn,
    mgmtGpa: spaprEoiPageGpa(q.lisn),
    retired: false,
  }));
  const tag = (x: string): string => `${x} (seed ${seed})`;
  const i1 = routingViolations(host, vm, irqs, (gpa) => cpu.load(gpa, 8, w)).map(tag);
  const hostOnly = (pfn: number): boolean =>
    host.chip.isHostOnlyPage(pfn, (ipi) => view.lisnOfSrc[ipi]! >= 0);
  const i2 = isolationViolations(host, vm, hostOnly, 'the host').map(tag);
  const i3 =
    dstats.useAfterFree > 0
      ? [tag(`re-point through a VMA freed by munmap (${dstats.useAfterFree} time(s))`)]
      : [];
  const i7: string[] = [];
  if (vm.stats.memslotsPeak > host.kvm.maxMemslots)
    i7.push(tag(`${vm.stats.memslotsPeak} memslots exceed KVM's ${host.kvm.maxMemslots}`));
  if (vmas > host.mm.maxMapCount)
    i7.push(tag(`${vmas} VMAs in the VMM exceed vm.max_map_count ${host.mm.maxMapCount}`));
  return { I1: i1, I2: i2, I3: i3, I7: i7 };
}

/** Run `s` under `design` in KVM mode with `seed`. */
function runKvm(s: Scenario, design: Design, seed: number, opts: KvmRunOptions = {}): KvmRun {
  const dstats = new DesignStats();
  const seam = design.kernelSeam(dstats);
  const digest = new GuestTraceDigest(opts.window ?? null);
  const setup = buildMachine(s, seed, {
    kvm: { xiveFlags: design.xiveFlags, ...(seam !== null ? { xiveRecordMapping: seam } : {}) },
    ...(opts.trace !== undefined ? { trace: opts.trace } : {}),
  });
  opts.inject?.(setup.host);
  const run = runGuest(setup, bootGuestOnSlots(setup.machine, setup.probe, digest).kernel);
  digest.finish();
  const costs = kvmCosts(run, dstats);
  const view = run.view;
  return {
    result: run.result,
    digest,
    state: stateFindings(run, dstats, costs.vmasPeak, seed),
    costs,
    srcnoOf: (lisn) => view.srcOfLisn[lisn] ?? -1,
  };
}

/** I6: where the KVM run's guest-visible trace first leaves the reference's, or null. */
function abiDifference(
  reference: Reference,
  design: Design,
  run: KvmRun,
  inject: KvmRunOptions['inject'],
): string | null {
  const { scenario: s, seed } = reference;
  const ref = reference.guestTrace();
  const block = GuestTraceDigest.firstDifferentBlock(run.digest, ref);
  if (block < 0) return null;
  const from = block * GuestTraceDigest.BLOCK;
  const window: [number, number] = [from, from + GuestTraceDigest.BLOCK];
  const a = runKvm(s, design, seed, inject ? { window, inject } : { window }).digest.kept;
  const b = reference.guestTrace(window).kept;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  const what =
    i < n
      ? `"${a[i]}" where the emulated reference has "${b[i]}"`
      : `${run.digest.count} entries against the reference's ${ref.count}`;
  return `guest-visible trace entry #${from + i} differs: ${what} (seed ${seed})`;
}

/** The design object of a KVM design name. */
function kvmDesign(name: string): Design {
  const d = designNamed(name);
  if (d.accel !== 'kvm') throw new Error(`design "${name}" does not run under KVM`);
  return d;
}

/**
 * Run one workload scenario under KVM design `designName`, traced (what `xivelab run --design D
 * --trace out.json` exports).
 */
export function traceKvmWorkload(ref: ScenarioRef, designName: string, seed: number): CapturedTrace {
  const design = kvmDesign(designName);
  return Trace.capture(EXPORT_TRACE_MASK, (trace) => runKvm(ref.scenario, design, seed, { trace }));
}

/**
 * Run one workload scenario under a KVM design, checked against `reference` (the emulated run
 * of the same scenario and seed). `inject` (tests) is called with the host of every run the
 * cell makes, before the guest boots.
 */
export function runKvmWorkloadCell(
  ref: ScenarioRef,
  designName: string,
  seed: number,
  reference: Reference = new Reference(ref.scenario, seed),
  inject?: (host: Host) => void,
): CellResult {
  const design = kvmDesign(designName);
  const s = ref.scenario;
  const base: KvmRunOptions = inject ? { inject } : {};
  const run = runKvm(s, design, seed, base);
  const accounting = accountingOutcomes(run.result, (v) =>
    shortestWorkloadTrace(
      s,
      v,
      (sc, trace) => runKvm(sc, design, seed, trace ? { ...base, trace } : base).result,
      run.srcnoOf,
    ),
  );
  const i6 = abiDifference(reference, design, run, inject);
  const invariants: Record<InvariantId, InvariantOutcome> = {
    I1: findingsOutcome(run.state.I1),
    I2: findingsOutcome(run.state.I2),
    I3: findingsOutcome(run.state.I3),
    I4: accounting.I4,
    I5: accounting.I5,
    I6: findingsOutcome(i6 === null ? [] : [i6]),
    I7: findingsOutcome(run.state.I7),
  };
  const r = run.result;
  const t = r.totals;
  return cellResult(ref, designName, seed, {
    invariants,
    costs: run.costs,
    series: [],
    notes: [
      `kernel_irqchip=on: the guest and workload of the scenario unchanged; ${run.costs.vmmExits} exits to the VMM (hcalls), ESB and TIMA accesses in the guest`,
      `I4/I5 on the host chip: ${t.triggered} triggers, ${t.delivered} deliveries, ${t.coalesced} coalesced, ${r.events.lsiLevelsLost} LSI levels left pending at enable_irq (accounted)`,
      `I6: ${run.digest.count} guest-visible trace entries (loads, stores, hcalls, deliveries) against the emulated reference's`,
      `I1/I2 at the end: ${r.irqs.length} EOI pages through the partition-scoped tree; no host page reachable`,
      'no passthrough function: the design has nothing to re-point; its latent-bug flags are what differs',
    ],
  });
}
