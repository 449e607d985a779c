/**
 * The quiescer of a run: after each virtual instant, the vCPUs whose external-interrupt line is
 * high run the guest's interrupt handling — at once (latency 0: until no line is high) or each
 * `latency` ns after its line rose — bounded by the scenario's `options.maxSteps`. A vCPU still
 * interrupted after that many handler runs, or a machine that does not settle within that many
 * rounds, ends the run with a `step-limit` violation: the limit is the user's, so reaching it is
 * a result, not a fault of the model.
 */

import type { Violation } from '../check/invariants.ts';
import type { GuestPort } from './guest-port.ts';
import type { RunSetup } from './run-machine.ts';

/** Thrown out of the run loop when `options.maxSteps` is reached; the runner ends the run there. */
export class StepLimitReached extends Error {
  readonly violation: Violation;
  constructor(violation: Violation) {
    super(violation.message);
    this.violation = violation;
  }
}

export class Quiescer {
  private readonly setup: RunSetup;
  private readonly guest: GuestPort;
  private readonly maxSteps: number;
  private readonly latency: number;
  /** Per vCPU: a take is scheduled (latency > 0). */
  private readonly scheduled: Uint8Array;
  /** How many of {@link scheduled} are set (read after every instant). */
  private pending: number;
  /** The machine's vCPUs (the run's machine never changes). */
  private readonly cpus: RunSetup['machine']['cpus'];

  constructor(setup: RunSetup, guest: GuestPort) {
    this.setup = setup;
    this.guest = guest;
    this.maxSteps = setup.scenario.options.maxSteps;
    this.latency = setup.scenario.workload.latency;
    this.scheduled = new Uint8Array(setup.scenario.vcpus);
    this.pending = 0;
    this.cpus = setup.machine.cpus;
  }

  /** Run every vCPU with its line high until none is (latency 0). */
  quiesce(): void {
    let rounds = 0;
    for (;;) {
      let any = 0;
      for (const c of this.cpus)
        if (c.externalInterrupt && this.guest.isOnline(c.id)) any += this.takeInterrupts(c.id);
      if (any === 0) break;
      if (++rounds > this.maxSteps) {
        this.limit(undefined, `the vCPUs were still interrupted after ${this.maxSteps} rounds`);
      }
    }
  }

  /**
   * React to an instant: quiesce (latency 0) or schedule the takes. Returns whether the machine
   * is quiescent now (no take pending).
   */
  react(): boolean {
    if (this.latency === 0) {
      this.quiesce();
      return true;
    }
    this.scheduleTakes();
    return this.pending === 0;
  }

  /** Take `cpu`'s external interrupt until its line drops; returns the handler runs. */
  private takeInterrupts(cpu: number): number {
    let n = 0;
    const c = this.cpus[cpu]!;
    while (c.externalInterrupt && this.guest.isOnline(cpu)) {
      this.guest.handleInterrupt(cpu);
      if (++n > this.maxSteps) {
        this.limit(cpu, `vCPU ${cpu} was still interrupted after ${this.maxSteps} handler runs`);
      }
    }
    return n;
  }

  /** With a latency: each vCPU takes its interrupt `latency` ns after its line rose. */
  private scheduleTakes(): void {
    for (const c of this.cpus) {
      if (!c.externalInterrupt || this.scheduled[c.id] || !this.guest.isOnline(c.id)) continue;
      this.scheduled[c.id] = 1;
      this.pending++;
      this.setup.clock.schedule(this.latency, () => {
        this.scheduled[c.id] = 0;
        this.pending--;
        this.takeInterrupts(c.id);
      });
    }
  }

  private limit(cpu: number | undefined, what: string): never {
    const message = `seed ${this.setup.seed}: ${what} (options.maxSteps); the run stopped there`;
    throw new StepLimitReached(
      cpu === undefined ? { invariant: 'step-limit', message } : { invariant: 'step-limit', message, cpu },
    );
  }
}
