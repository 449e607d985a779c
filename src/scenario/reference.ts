/**
 * The emulated reference of one scenario and seed (QEMU's `kernel_irqchip=off`), which every
 * design of a compare row is checked against for I6. It is an explicit object the compare
 * machinery makes once per scenario × seed and hands to each cell of the row; each run it holds
 * is made the first time a cell asks for it.
 */

import { emulated } from '../designs/emulated.ts';
import { bootGuestOnSlots, GuestTraceDigest } from './guest-port.ts';
import { type PassthroughRun, runPassthrough } from './passthrough-runner.ts';
import { buildMachine } from './run-machine.ts';
import { runGuest } from './runner.ts';
import type { Scenario } from './schema.ts';

export class Reference {
  readonly scenario: Scenario;
  readonly seed: number;
  private digest: GuestTraceDigest | null;
  private run: PassthroughRun | null;

  constructor(scenario: Scenario, seed: number) {
    this.scenario = scenario;
    this.seed = seed;
    this.digest = null;
    this.run = null;
  }

  /**
   * A workload scenario's guest-visible trace, emulated: every load, store and hcall with its
   * results and every handler delivery per vCPU, as digests; with `window`, a fresh run that
   * also keeps those entries.
   */
  guestTrace(window: [number, number] | null = null): GuestTraceDigest {
    if (window === null && this.digest !== null) return this.digest;
    const digest = new GuestTraceDigest(window);
    const setup = buildMachine(this.scenario, this.seed);
    runGuest(setup, bootGuestOnSlots(setup.machine, setup.probe, digest).kernel, { checkQuiescent: false });
    digest.finish();
    if (window === null) this.digest = digest;
    return digest;
  }

  /**
   * Keep `digest` as the guest-visible trace of the emulated run of `scenario` and `seed`, when
   * they are this reference's and it has none yet: the emulated cell's run records it on the way.
   */
  keepGuestTrace(scenario: Scenario, seed: number, digest: GuestTraceDigest): void {
    if (scenario === this.scenario && seed === this.seed && this.digest === null) this.digest = digest;
  }

  /** A passthrough scenario's emulated run (its prefixes: `runPrefix`). */
  passthrough(): PassthroughRun {
    this.run ??= runPassthrough(this.scenario, emulated, this.seed);
    return this.run;
  }
}
