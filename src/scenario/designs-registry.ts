/**
 * The designs `xivelab compare` can run: name → {@link DesignEntry}. A design registers here; the
 * compare machinery, its worker threads and the CLI find it by name. Registration is static (a
 * module-level table filled when this module loads) so a worker thread that imports this module
 * sees the same designs: add a design by importing its runner here and adding a line to
 * `DESIGNS`.
 */

import { emulated } from '../designs/emulated.ts';
import { DESIGNS as DESIGN_OBJECTS } from '../designs/index.ts';
import type { TraceEvent } from '../sim/trace.ts';
import {
  type CellResult,
  type CellRunner,
  NO_COSTS,
  notApplicable,
  type ScenarioRef,
  withModeledTime,
} from './cell.ts';
import { runEmulatedCell, traceEmulated } from './cell-emulated.ts';
import { runKvmWorkloadCell, traceKvmWorkload } from './cell-kvm.ts';
import { runPassthroughCell, tracePassthrough } from './cell-passthrough.ts';
import { KVM_MAX_RUN_VCPUS } from './runner.ts';

/**
 * Runs one scenario under a design with a trace and returns the events (oldest first) and how
 * many older events the ring dropped (`xivelab run --design D --trace out.json`).
 */
export type TraceRunner = (scenario: ScenarioRef, seed: number) => { events: TraceEvent[]; dropped: number };

/** A registered design. */
export interface DesignEntry {
  /** Runs one cell (see {@link CellRunner}). */
  readonly run: CellRunner;
  /** Exports a run's trace, when the design supports it. */
  readonly trace?: TraceRunner;
  /** One line for `--help` and the report. */
  readonly description: string;
}

/**
 * A KVM design on a scenario with more vCPUs than the host chip has threads: the model runs each
 * vCPU on a host thread of its own, so there is no KVM run to check.
 */
function tooManyVcpusCell(ref: ScenarioRef, design: string, seed: number): CellResult {
  const na = notApplicable();
  return {
    scenario: ref.name,
    design,
    seed,
    invariants: { I1: na, I2: na, I3: na, I4: na, I5: na, I6: na, I7: na },
    costs: withModeledTime(NO_COSTS),
    series: [],
    notes: [
      `${ref.scenario.vcpus} vCPUs: KVM mode runs at most ${KVM_MAX_RUN_VCPUS} (one host thread each), so the design cannot run here`,
    ],
  };
}

/** Passthrough scenarios go to the passthrough runner, the others to `other`. */
function byScenario(other: CellRunner): CellRunner {
  return (ref, design, seed) =>
    ref.scenario.passthrough !== undefined ? runPassthroughCell(ref, design, seed) : other(ref, design, seed);
}

/** Registered designs, in the order reports show them. */
const DESIGNS = new Map<string, DesignEntry>([
  [
    'emulated',
    {
      run: byScenario(runEmulatedCell),
      trace: (ref, seed) =>
        ref.scenario.passthrough !== undefined
          ? tracePassthrough(ref, 'emulated', seed)
          : traceEmulated(ref, seed),
      description: emulated.summary,
    },
  ],
  // The KVM designs run a workload scenario under KVM (kernel_irqchip=on) with their seams.
  ...[...DESIGN_OBJECTS.values()].map((d): [string, DesignEntry] => [
    d.name,
    {
      run: (ref, design, seed) =>
        ref.scenario.vcpus > KVM_MAX_RUN_VCPUS
          ? tooManyVcpusCell(ref, design, seed)
          : byScenario(runKvmWorkloadCell)(ref, design, seed),
      trace: (ref: ScenarioRef, seed: number) =>
        ref.scenario.passthrough !== undefined
          ? tracePassthrough(ref, d.name, seed)
          : traceKvmWorkload(ref, d.name, seed),
      description: d.summary,
    },
  ]),
]);

/** Register (or replace) a design. */
export function registerDesign(name: string, entry: DesignEntry): void {
  DESIGNS.set(name, entry);
}

/** The entry of `name`, or undefined. */
export function designEntry(name: string): DesignEntry | undefined {
  return DESIGNS.get(name);
}

/** The cell runner of `name`, or undefined. */
export function designRunner(name: string): CellRunner | undefined {
  return DESIGNS.get(name)?.run;
}

/** Names of the registered designs, in registration order. */
export function designNames(): string[] {
  return [...DESIGNS.keys()];
}

/** The cell runner that dispatches on the design name (what compare uses by default). */
export const registryRunner: CellRunner = (scenario, design, seed) => {
  const entry = DESIGNS.get(design);
  if (entry === undefined) throw new Error(`unknown design "${design}" (known: ${designNames().join(', ')})`);
  return entry.run(scenario, design, seed);
};
