/**
 * xivelab's public API: run scenarios programmatically, check invariants, format reports, and
 * reach the model's main pieces.
 */

export {
  checkInvariants,
  type IrqCounters,
  type QueueCounters,
  type RunCounters,
  type Violation,
} from './check/invariants.ts';
export { DESIGN_NAMES, DESIGNS, findDesign, kvmVcpuLimit } from './designs/index.ts';
export { createHost, Host, type HostConfig } from './host/host.ts';
export * as kvmUapi from './host/kvm/uapi.ts';
export type { KvmExitHandler, KvmGuestContext, KvmVcpuRun } from './host/kvm/vcpu.ts';
export * as mmConstants from './host/mm/constants.ts';
export { HostProcess } from './host/syscalls.ts';
export { Word64 } from './hw/mmio.ts';
export { type ChromeTrace, toChromeTrace } from './report/chrome-trace.ts';
export { renderHtml } from './report/html.ts';
export { evaluateHypotheses, type Hypothesis, type Verdict } from './report/hypotheses.ts';
export { renderMarkdown, textMatrix } from './report/markdown.ts';
export { reportPlots, svgToPng } from './report/plots.ts';
export { cpuTable, formatReport, formatTable, irqTable } from './report/table.ts';
export {
  CellResult,
  type CellRunner,
  COST_TABLE_NS,
  type Costs,
  INVARIANTS,
  type InvariantId,
  type InvariantOutcome,
  modeledTimeNs,
  Results,
  resultsJsonSchema,
  type ScenarioRef,
  SERIES,
} from './scenario/cell.ts';
export { registryRunner, runDesignCell, traceDesignRun } from './scenario/cell-dispatch.ts';
export { runEmulatedCell } from './scenario/cell-emulated.ts';
export { type CellPlan, type CompareProgress, planCells, runCells } from './scenario/compare.ts';
export type { GuestIrq, GuestPort } from './scenario/guest-port.ts';
export { loadScenario } from './scenario/load.ts';
export { checkScenario, parseScenario, ScenarioError } from './scenario/parse.ts';
export { type CpuResult, type IrqResult, Result, resultJsonSchema } from './scenario/result.ts';
export { type RunOptions, type RunProgress, runScenario } from './scenario/runner.ts';
export {
  type DeviceSpec,
  PATTERNS,
  type Pattern,
  Scenario,
  type ScenarioInput,
  type StreamSpec,
  scenarioJsonSchema,
  type WorkloadSpec,
} from './scenario/schema.ts';
export { SimClock } from './sim/clock.ts';
export { Engine } from './sim/engine.ts';
export { Rng } from './sim/rng.ts';
export { Trace, type TraceEvent } from './sim/trace.ts';
export * from './sim/trace-sink.ts';
export { SpaprCpu } from './vmm/spapr-cpu.ts';
export { type SpaprDeviceConfig, SpaprMachine, type SpaprMachineConfig } from './vmm/spapr-machine.ts';
