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
  /** Passthrough runs by the cycles they stopped after (−1: all). */
  private readonly runs: Map<number, PassthroughRun>;

  constructor(scenario: Scenario, seed: number) {
    this.scenario = scenario;
    this.seed = seed;
    this.digest = null;
    this.runs = new Map();
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

  /** A passthrough scenario's emulated run, stopped after `maxCycles` cycles (default: all). */
  passthrough(maxCycles?: number): PassthroughRun {
    const key = maxCycles ?? -1;
    let r = this.runs.get(key);
    if (r === undefined) {
      r = runPassthrough(this.scenario, emulated, this.seed, maxCycles === undefined ? {} : { maxCycles });
      this.runs.set(key, r);
    }
    return r;
  }
}
