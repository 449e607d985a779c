/**
 * Run a scenario on the real pieces, as a pipeline: the machine builder (`run-machine.ts`: the
 * sPAPR machine, emulated or under KVM on a host model), the guest booted on its vCPUs, the
 * workload driver (`workload.ts`: streams and guest operations from a seeded {@link Rng} on the
 * virtual clock), the quiescer (`quiescer.ts`: after each virtual instant, the guest's
 * interrupt handling on every vCPU whose line is high) and the result collector (`collect.ts`:
 * the counters and the accounting invariants). A run returns a {@link RunHandle}: the result and
 * the machine, host and trace it ran on, for the cells to read.
 *
 * Deterministic: the same scenario and seed give the same result, byte for byte.
 */

import type { Violation } from '../check/invariants.ts';
import { Engine } from '../sim/engine.ts';
import { Rng } from '../sim/rng.ts';
import type { Trace } from '../sim/trace.ts';
import { RunCollector } from './collect.ts';
import { bootGuest, type GuestPort } from './guest-port.ts';
import { Quiescer, StepLimitReached } from './quiescer.ts';
import type { Result } from './result.ts';
import { buildMachine, type KvmConfig, type KvmRunSetup, type RunSetup } from './run-machine.ts';
import type { Scenario } from './schema.ts';
import { WorkloadDriver } from './workload.ts';

/** Quiescent points between two intermediate invariant checks. */
const CHECK_EVERY = 4096;
/** Quiescent points between two {@link DriveOptions.onProgress} calls (and abort checks). */
const PROGRESS_EVERY = 1024;

/** How far a run is, for {@link DriveOptions.onProgress}. */
export interface RunProgress {
  readonly virtualTimeNs: number;
  readonly deviceTriggers: number;
  readonly ipisSent: number;
  readonly quiescePoints: number;
}

export interface DriveOptions {
  /** Check the invariants at intermediate quiescent points too (default true). */
  readonly checkQuiescent?: boolean;
  /** Called every {@link PROGRESS_EVERY} quiescent points (a progress display). */
  readonly onProgress?: (p: RunProgress) => void;
  /**
   * Checked at the same points: once aborted, the workload stops as at its limits (the run
   * drains and settles, and the result covers what ran).
   */
  readonly signal?: AbortSignal;
}

export interface RunOptions extends DriveOptions {
  /** A ring trace to receive the model's events too, stamped with the run's virtual time. */
  readonly trace?: Trace;
  /** Run under KVM (`-accel kvm,kernel-irqchip=on`) on a host made with this configuration. */
  readonly kvm?: KvmConfig;
}

/** What a run leaves: its result, and the machine, host and trace it ran on. */
export interface RunHandle<S extends RunSetup = RunSetup> {
  readonly result: Result;
  readonly machine: S['machine'];
  readonly host: S['host'];
  readonly view: S['view'];
  readonly trace: S['trace'];
  readonly guest: GuestPort;
}

/**
 * Drive the booted `guest` on `setup`'s machine through the scenario's workload, then drain,
 * restore and settle, and collect the result.
 *
 * @throws Error when the model breaks one of its own invariants (a bug in xivelab) — never for
 * anything the scenario asks for: its `options.maxSteps` reached is a `step-limit` violation.
 */
export function runGuest<S extends RunSetup>(
  setup: S,
  guest: GuestPort,
  opts: DriveOptions = {},
): RunHandle<S> {
  const rng = new Rng(setup.seed);
  const engine = new Engine(setup.clock);
  setup.probe.queueRead = (endIdx) => guest.queueRead(endIdx >>> 3, endIdx & 7);
  const workload = new WorkloadDriver(setup, guest, rng);
  const quiescer = new Quiescer(setup, guest);
  const collector = new RunCollector(setup, guest, workload);
  workload.start();
  const violations: Violation[] = [];
  const checkQuiescent = opts.checkQuiescent ?? true;
  const afterStep = (): void => {
    if (!quiescer.react()) return;
    const events = workload.events;
    const n = ++events.quiescePoints;
    if (n % PROGRESS_EVERY === 0) {
      const { deviceTriggers, ipisSent } = events;
      opts.onProgress?.({ virtualTimeNs: setup.clock.nanos, deviceTriggers, ipisSent, quiescePoints: n });
      if (opts.signal?.aborted === true) workload.stop();
    }
    if (checkQuiescent && n % CHECK_EVERY === 0 && violations.length === 0) {
      violations.push(...collector.check(false));
    }
  };
  try {
    quiescer.quiesce();
    engine.run(afterStep, workload.shouldStop);
    workload.stop();
    // Pending alarms: stream / operation alarms see the stop and do nothing; enables and
    // interrupt takes still run.
    engine.run(afterStep, () => false);
    workload.restore();
    quiescer.quiesce();
  } catch (e) {
    if (!(e instanceof StepLimitReached)) throw e;
    // The run stopped mid-way: the accounting invariants are about a settled run.
    violations.push(e.violation);
    return handle(setup, guest, collector.result(violations));
  }
  const seen = new Set(violations.map((v) => v.message));
  for (const v of collector.check(true)) if (!seen.has(v.message)) violations.push(v);
  return handle(setup, guest, collector.result(violations));
}

function handle<S extends RunSetup>(setup: S, guest: GuestPort, result: Result): RunHandle<S> {
  const { machine, host, view, trace } = setup;
  return { result, machine, host, view, trace, guest };
}

/**
 * Run `s` with `seed` on the Linux-like guest kernel: emulated, or under KVM with `opts.kvm`.
 *
 * @throws RangeError when KVM mode cannot run the scenario's vCPUs; Error for a bug in xivelab.
 */
export function runScenario(
  s: Scenario,
  seed: number,
  opts: RunOptions & { kvm: KvmConfig },
): RunHandle<KvmRunSetup>;
export function runScenario(s: Scenario, seed: number, opts?: RunOptions): RunHandle;
export function runScenario(s: Scenario, seed: number, opts: RunOptions = {}): RunHandle {
  const setup = buildMachine(s, seed, opts);
  return runGuest(setup, bootGuest(setup.machine, setup.probe), opts);
}
