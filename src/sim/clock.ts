/**
 * The injected clock: virtual nanoseconds advanced only by the simulation, with alarms fired in
 * time order (ties in scheduling order). Nothing in the core reads the wall clock.
 */
export class SimClock {
  private now = 0;
  private seq = 0;
  private readonly alarms: { at: number; seq: number; fn: () => void }[] = [];

  /** Current virtual time in nanoseconds. */
  get nanos(): number {
    return this.now;
  }

  /** Run `fn` when the clock reaches `now + delay` (ns, ≥ 0). */
  schedule(delay: number, fn: () => void): void {
    if (!(delay >= 0)) throw new RangeError(`negative delay ${delay}`);
    const alarm = { at: this.now + delay, seq: this.seq++, fn };
    let i = this.alarms.length;
    while (i > 0) {
      const prev = this.alarms[i - 1]!;
      if (prev.at < alarm.at || (prev.at === alarm.at && prev.seq < alarm.seq)) break;
      i--;
    }
    this.alarms.splice(i, 0, alarm);
  }

  /** Time of the next alarm, or `Infinity`. */
  get nextAt(): number {
    return this.alarms[0]?.at ?? Number.POSITIVE_INFINITY;
  }

  /** Advance to `t` (≥ now), firing every alarm due on the way, re-entrant schedules included. */
  advanceTo(t: number): void {
    if (t < this.now) throw new RangeError('Unable to travel back in time');
    for (;;) {
      const first = this.alarms[0];
      if (first === undefined || first.at > t) break;
      this.alarms.shift();
      this.now = first.at;
      first.fn();
    }
    this.now = t;
  }

  /** Advance by `dt` nanoseconds. */
  advance(dt: number): void {
    this.advanceTo(this.now + dt);
  }
}
