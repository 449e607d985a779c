/**
 * Which cell runner runs a design on a scenario: a passthrough scenario goes to the passthrough
 * runner (every design, the reference included), a workload scenario to the emulated runner or
 * the KVM one by the design's `accel`. The designs themselves are listed once, in
 * `designs/index.ts`; worker threads import both and find the same designs by name.
 */

import type { Design } from '../designs/design.ts';
import { designNamed, designVcpuLimit } from '../designs/index.ts';
import type { CapturedTrace } from '../sim/trace.ts';
import {
  type CellResult,
  type CellRunner,
  cellResult,
  NO_COSTS,
  notApplicable,
  type ScenarioRef,
} from './cell.ts';
import { runEmulatedCell, traceEmulated } from './cell-emulated.ts';
import { runKvmWorkloadCell, traceKvmWorkload } from './cell-kvm.ts';
import { runPassthroughCell, tracePassthrough } from './cell-passthrough.ts';
import { Reference } from './reference.ts';

/** A design that cannot run the scenario (see {@link designVcpuLimit}): every invariant n/a. */
function cannotRunCell(ref: ScenarioRef, design: string, seed: number, why: string): CellResult {
  const na = notApplicable();
  return cellResult(ref, design, seed, {
    invariants: { I1: na, I2: na, I3: na, I4: na, I5: na, I6: na, I7: na },
    costs: NO_COSTS,
    series: [],
    notes: [`${why}: the design cannot run here`],
  });
}

/**
 * Run one cell of `design` (the compare machinery, `xivelab run --design`), checked against
 * `reference`, the emulated reference of the scenario and seed.
 */
export function runDesignCell(
  ref: ScenarioRef,
  design: Design,
  seed: number,
  reference: Reference = new Reference(ref.scenario, seed),
): CellResult {
  const why = designVcpuLimit(design, ref.scenario.vcpus);
  if (why !== null) return cannotRunCell(ref, design.name, seed, why);
  if (ref.scenario.passthrough !== undefined) return runPassthroughCell(ref, design.name, seed, reference);
  return design.accel === 'emulated'
    ? runEmulatedCell(ref, design.name, seed, reference)
    : runKvmWorkloadCell(ref, design.name, seed, reference);
}

/**
 * Run one scenario under `design` with a trace: the events (oldest first) and how many older
 * events the ring dropped (`xivelab run --design D --trace out.json`).
 */
export function traceDesignRun(ref: ScenarioRef, design: Design, seed: number): CapturedTrace {
  if (ref.scenario.passthrough !== undefined) return tracePassthrough(ref, design.name, seed);
  return design.accel === 'emulated' ? traceEmulated(ref, seed) : traceKvmWorkload(ref, design.name, seed);
}

/** The cell runner that finds the design by name (what compare and its workers use). */
export const registryRunner: CellRunner = (scenario, design, seed, reference) =>
  runDesignCell(scenario, designNamed(design), seed, reference);
