/**
 * `xivelab run` on long work: a progress line on a terminal (virtual time, workload events,
 * their rate, an ETA from the scenario's limits) and, from the real entry point, the run in a
 * worker thread so that Ctrl-C (SIGINT) stops it cleanly: the workload stops at the next
 * quiescent point, the run drains and settles, and the partial result is printed (exit 130).
 */

import type { Result } from '../scenario/result.ts';
import type { RunProgress } from '../scenario/runner.ts';
import type { Scenario } from '../scenario/schema.ts';

/** Wall-clock ms between two progress lines. */
const PROGRESS_INTERVAL_MS = 250;

/** A count with a k/M/G suffix: 1234 → `1.2k`. */
function short(n: number): string {
  if (n < 1e3) return String(Math.round(n));
  for (const [d, u] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (n >= d) return `${(n / d).toFixed(1)}${u}`;
  }
  return String(n);
}

/** Virtual nanoseconds in the largest unit that keeps the number ≥ 1. */
export function virtualTime(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(3)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(3)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(3)} µs`;
  return `${ns} ns`;
}

/** Wall seconds as `h:mm:ss` or `m:ss`. */
function clock(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * One progress line: `run: virtual 1.500 ms, 3.0k events, 1.5k events/s, ETA 0:02`. The ETA
 * comes from how much of the scenario's trigger count or duration is done (`?` when it has
 * neither).
 */
export function progressLine(s: Scenario, p: RunProgress, elapsedMs: number): string {
  const events = p.deviceTriggers + p.ipisSent;
  const done = Math.max(
    s.workload.triggers === undefined ? 0 : p.deviceTriggers / s.workload.triggers,
    s.workload.duration === undefined ? 0 : p.virtualTimeNs / s.workload.duration,
  );
  const eta = done > 0 ? clock(((elapsedMs / 1000) * (1 - done)) / done) : '?';
  const rate = elapsedMs > 0 ? short((events * 1000) / elapsedMs) : '?';
  return `run: virtual ${virtualTime(p.virtualTimeNs)}, ${short(events)} events, ${rate} events/s, ETA ${eta}`;
}

/** A progress line on a terminal, redrawn in place at most every {@link PROGRESS_INTERVAL_MS}. */
export class ProgressLine {
  private readonly write: (s: string) => void;
  private readonly now: () => number;
  private readonly scenario: Scenario;
  private readonly t0: number;
  private last: number;
  private shown: boolean;

  constructor(scenario: Scenario, write: (s: string) => void, now: () => number) {
    this.scenario = scenario;
    this.write = write;
    this.now = now;
    this.t0 = now();
    this.last = this.t0;
    this.shown = false;
  }

  update(p: RunProgress): void {
    const t = this.now();
    if (t - this.last < PROGRESS_INTERVAL_MS) return;
    this.last = t;
    this.shown = true;
    this.write(`\r\x1b[K${progressLine(this.scenario, p, t - this.t0)}`);
  }

  /** Erase the line (before the result is printed). */
  clear(): void {
    if (this.shown) this.write('\r\x1b[K');
    this.shown = false;
  }
}

/** Message from the run worker to the CLI. */
export type RunWorkerReply =
  | { readonly kind: 'progress'; readonly progress: RunProgress }
  | { readonly kind: 'result'; readonly result: Result; readonly interrupted: boolean }
  | { readonly kind: 'error'; readonly message: string };

/** What the run worker is given. */
export interface RunWorkerData {
  readonly scenario: Scenario;
  readonly seed: number;
  readonly kvm: boolean;
  /** One Int32: set to 1 by the CLI on SIGINT. */
  readonly stop: SharedArrayBuffer;
}
