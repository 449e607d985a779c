/**
 * The `emulated` design's cell runner: the reference every other design is compared with, QEMU's
 * `kernel_irqchip=off`.
 * The VMM emulates XIVE; every guest ESB/TIMA access and every hcall is an exit to the VMM;
 * a passthrough device's interrupts reach the emulated source through the VMM.
 *
 * It runs the scenario on the existing runner (`runner.ts` + `check/invariants.ts`) and maps
 * what that run can check onto I1–I7:
 * - I4 (no lost interrupt) and I5 (no spurious delivery): the accounting invariants;
 * - I1 (routing): every guest access in the ESB window is followed through the VMM's flat view
 *   and must reach the emulated source, on the page pair of an interrupt the guest set up;
 * - I2, I3, I7: n/a — this run has no host kernel objects (no KVM device mappings, memslots,
 *   VMM process or VMAs) for them to be about;
 * - I6: n/a — `emulated` is the reference the other designs are compared with.
 *
 * Costs are counts of the run's own paths: guest MMIO exits and hcalls are counted at the
 * vCPU (the vCPU's loads/stores and `sc 1`), hcalls also by the machine's dispatch.
 */

import { XIVE_TM_SIZE } from '../hw/xive/tima.ts';
import { type CapturedTrace, Trace } from '../sim/trace.ts';
import type { SpaprMachine } from '../vmm/spapr-machine.ts';
import { SPAPR_XIVE_ESB_SHIFT, SPAPR_XIVE_TM_BASE, SPAPR_XIVE_VC_BASE } from '../vmm/spapr-xive.ts';
import {
  type CellResult,
  type CellRunner,
  cellResult,
  findingsOutcome,
  type InvariantId,
  type InvariantOutcome,
  NO_COSTS,
  notApplicable,
  type ScenarioRef,
} from './cell.ts';
import { accountingOutcomes, EXPORT_TRACE_MASK, shortestWorkloadTrace } from './cell-trace.ts';
import { bootGuest, bootGuestOnSlots, type GuestBoot, GuestTraceDigest } from './guest-port.ts';
import type { Reference } from './reference.ts';
import type { Result } from './result.ts';
import { buildMachine } from './run-machine.ts';
import { runGuest } from './runner.ts';
import type { Scenario } from './schema.ts';

/** What the instrumented vCPUs saw. */
interface VcpuCounts {
  mmioExits: number;
  hcalls: number;
  esbAccesses: number;
  timaAccesses: number;
  /** First guest address used on each LISN's ESB page pair. */
  readonly esbLisns: Map<number, number>;
  readonly routingViolations: string[];
}

/**
 * Count the guest's exits and follow its ESB accesses at the vCPU: wrap each vCPU's
 * load/store/hcall (the guest reaches the machine only through them) before the guest boots.
 */
function instrument(machine: SpaprMachine, seed: number, counts: VcpuCounts): void {
  const esbEnd = SPAPR_XIVE_VC_BASE + machine.xive.esbSize;
  const onAccess = (addr: number): void => {
    const sec = machine.sysmem.translate(addr);
    if (sec !== null && sec.mr === machine.ram) return;
    counts.mmioExits++;
    if (addr >= SPAPR_XIVE_TM_BASE && addr < SPAPR_XIVE_TM_BASE + XIVE_TM_SIZE) counts.timaAccesses++;
    if (addr < SPAPR_XIVE_VC_BASE || addr >= esbEnd) return;
    counts.esbAccesses++;
    const lisn = Math.floor((addr - SPAPR_XIVE_VC_BASE) * 2 ** -SPAPR_XIVE_ESB_SHIFT);
    if (!counts.esbLisns.has(lisn)) counts.esbLisns.set(lisn, addr);
    if (sec === null || sec.mr !== machine.esbEmulated) {
      counts.routingViolations.push(
        `seed ${seed}: guest ESB access at 0x${addr.toString(16)} (LISN 0x${lisn.toString(16)}) reached ` +
          `${sec === null ? 'no region' : sec.mr.name}, not the emulated source`,
      );
    }
  };
  for (const cpu of machine.cpus) {
    const load = cpu.load.bind(cpu);
    const store = cpu.store.bind(cpu);
    const hcall = cpu.hcall.bind(cpu);
    cpu.load = (addr, size, out) => {
      onAccess(addr);
      load(addr, size, out);
    };
    cpu.store = (addr, size, hi, lo) => {
      onAccess(addr);
      store(addr, size, hi, lo);
    };
    cpu.hcall = (opcode, args, out) => {
      counts.hcalls++;
      return hcall(opcode, args, out);
    };
  }
}

interface EmulatedRun {
  result: Result;
  counts: VcpuCounts;
}

/** Run `s` emulated on the guest `boot` boots, its vCPUs instrumented (and traced into `trace`). */
function runInstrumented(s: Scenario, seed: number, boot: GuestBoot, trace?: Trace): EmulatedRun {
  const counts: VcpuCounts = {
    mmioExits: 0,
    hcalls: 0,
    esbAccesses: 0,
    timaAccesses: 0,
    esbLisns: new Map(),
    routingViolations: [],
  };
  const setup = buildMachine(s, seed, trace ? { trace } : {});
  instrument(setup.machine, seed, counts);
  const guest = boot(setup.machine, setup.probe);
  const setUp = new Set(guest.irqs().map((q) => q.lisn));
  const { result } = runGuest(setup, guest);
  // An access on the page pair of an interrupt the guest never set up reaches a source that
  // backs no girq of the guest's.
  for (const [lisn, addr] of counts.esbLisns) {
    if (!setUp.has(lisn)) {
      counts.routingViolations.push(
        `seed ${seed}: guest ESB access at 0x${addr.toString(16)} is on LISN 0x${lisn.toString(16)}, which backs no interrupt the guest set up`,
      );
    }
  }
  return { result, counts };
}

/** Run one scenario under the emulated design, traced (`xivelab run --trace out.json`). */
export function traceEmulated(ref: ScenarioRef, seed: number): CapturedTrace {
  return Trace.capture(EXPORT_TRACE_MASK, (trace) => runInstrumented(ref.scenario, seed, bootGuest, trace));
}

/**
 * Run one scenario under the emulated (reference) design, with the Linux-like guest. Its run is
 * also the emulated run `reference` holds the guest-visible trace of (`Reference.guestTrace`):
 * the guest boots on recording vCPU slots, and the row's KVM cells compare with what it recorded.
 */
export function runEmulatedCell(
  ref: ScenarioRef,
  design: string,
  seed: number,
  reference?: Reference,
): CellResult {
  const digest = new GuestTraceDigest(null);
  const recording: GuestBoot = (machine, trace) => bootGuestOnSlots(machine, trace, digest).kernel;
  const cell = emulatedCell(ref, design, seed, bootGuest, recording);
  reference?.keepGuestTrace(ref.scenario, seed, digest.finish());
  return cell;
}

/** The emulated design's cell runner with another guest (tests: a guest that loses entries). */
export function emulatedCellRunner(boot: GuestBoot): CellRunner {
  return (ref, design, seed) => emulatedCell(ref, design, seed, boot);
}

/** The emulated cell: its run boots the guest with `mainBoot`, a bisection's runs with `boot`. */
function emulatedCell(
  ref: ScenarioRef,
  design: string,
  seed: number,
  boot: GuestBoot,
  mainBoot: GuestBoot = boot,
): CellResult {
  const { result, counts } = runInstrumented(ref.scenario, seed, mainBoot);
  const accounting = accountingOutcomes(result, (v) =>
    shortestWorkloadTrace(ref.scenario, v, (sc, trace) => runInstrumented(sc, seed, boot, trace).result),
  );
  const invariants: Record<InvariantId, InvariantOutcome> = {
    I1: findingsOutcome(counts.routingViolations),
    I2: notApplicable(),
    I3: notApplicable(),
    I4: accounting.I4,
    I5: accounting.I5,
    I6: notApplicable(),
    I7: notApplicable(),
  };
  const hcalls = Object.values(result.hcalls).reduce((a, b) => a + b, 0);
  if (hcalls !== counts.hcalls) {
    throw new Error(`seed ${seed}: ${counts.hcalls} hcalls at the vCPUs but ${hcalls} dispatched`);
  }
  const costs = { ...NO_COSTS, vmmExits: counts.mmioExits + hcalls, hcalls };
  const t = result.totals;
  return cellResult(ref, design, seed, {
    invariants,
    costs,
    series: [],
    notes: [
      `kernel_irqchip=off: ${counts.mmioExits} guest MMIO exits (${counts.esbAccesses} ESB, ${counts.timaAccesses} TIMA, ${counts.mmioExits - counts.esbAccesses - counts.timaAccesses} other) and ${hcalls} hcalls, each an exit to the VMM`,
      `I1: ${counts.esbAccesses} guest ESB accesses followed through the VMM flat view to the emulated source`,
      `I4/I5: ${t.triggered} triggers, ${t.delivered} deliveries, ${t.coalesced} coalesced, ${result.events.lsiLevelsLost} LSI levels left pending at enable_irq (accounted)`,
      'I2, I3, I7 n/a: no host kernel objects in this run (no KVM device mappings, memslots or VMM VMAs); their costs are 0',
      'I6 n/a: emulated is the reference the other designs are compared with',
    ],
  });
}
