import type { TraceKind } from './trace-events.ts';
import type { TraceSink } from './trace-sink.ts';

/** One materialised trace event (for output only; the ring stores columns). */
export interface TraceEvent {
  seq: number;
  time: number;
  cat: number;
  kind: string;
  args: [number, number, number, number];
}

/** A traced run's events still in the ring (oldest first), and how many older ones were overwritten. */
export interface CapturedTrace {
  readonly events: TraceEvent[];
  readonly dropped: number;
}

/** Events the columns of a new {@link Trace} hold before they first grow. */
const INITIAL_COLUMNS = 1 << 12;

/**
 * The trace stream: a ring of typed columns (time, category, kind id, four numeric args) plus a
 * separate ring of guest-error lines. Objects are only built by {@link Trace.events}.
 */
export class Trace implements TraceSink {
  mask: number;
  private readonly cap: number;
  // The columns grow (doubling) to `cap` as events come: a run that records few events does not
  // allocate and clear the whole ring.
  private time: Float64Array;
  private cat: Uint16Array;
  private kindId: Uint16Array;
  private args: Float64Array;
  private readonly kinds: TraceKind[] = [];
  private readonly kindIds = new Map<TraceKind, number>();
  private count = 0;
  private readonly errors: string[] = [];
  /** Time source; the simulation sets it to its clock. */
  now: () => number = () => 0;
  /** Called for each guest-error line (the qtest front end writes them to `-D`). */
  onGuestError: ((msg: string) => void) | null = null;

  /**
   * Trace one run: `run` records into a fresh ring of `capacity` events with `mask`; returns the
   * events still in the ring (oldest first) and how many older ones it overwrote.
   */
  static capture(mask: number, run: (trace: Trace) => void, capacity = 1 << 20): CapturedTrace {
    const trace = new Trace(mask, capacity);
    run(trace);
    const events = trace.events();
    return { events, dropped: trace.total - events.length };
  }

  constructor(mask = 0, capacity = 1 << 16) {
    this.mask = mask;
    this.cap = capacity;
    const n = Math.min(capacity, INITIAL_COLUMNS);
    this.time = new Float64Array(n);
    this.cat = new Uint16Array(n);
    this.kindId = new Uint16Array(n);
    this.args = new Float64Array(n * 4);
  }

  /** Double the columns (at most to the capacity), keeping what they hold. */
  private grow(): void {
    const n = Math.min(this.cap, this.time.length * 2);
    const time = new Float64Array(n);
    time.set(this.time);
    this.time = time;
    const cat = new Uint16Array(n);
    cat.set(this.cat);
    this.cat = cat;
    const kindId = new Uint16Array(n);
    kindId.set(this.kindId);
    this.kindId = kindId;
    const args = new Float64Array(n * 4);
    args.set(this.args);
    this.args = args;
  }

  emit(cat: number, kind: TraceKind, a0: number, a1: number, a2: number, a3: number): void {
    let id = this.kindIds.get(kind);
    if (id === undefined) {
      id = this.kinds.length;
      this.kinds.push(kind);
      this.kindIds.set(kind, id);
    }
    const i = this.count % this.cap;
    if (i === this.time.length) this.grow();
    this.time[i] = this.now();
    this.cat[i] = cat;
    this.kindId[i] = id;
    this.args[i * 4] = a0;
    this.args[i * 4 + 1] = a1;
    this.args[i * 4 + 2] = a2;
    this.args[i * 4 + 3] = a3;
    this.count++;
  }

  guestError(msg: string): void {
    if (this.errors.length === 1024) this.errors.shift();
    this.errors.push(msg);
    this.onGuestError?.(msg);
  }

  /** Total events emitted (including those overwritten in the ring). */
  get total(): number {
    return this.count;
  }

  /** Guest-error lines kept (the last 1024). */
  get guestErrors(): readonly string[] {
    return this.errors;
  }

  /** The last `n` events still in the ring, oldest first. */
  events(n = this.cap): TraceEvent[] {
    const kept = Math.min(this.count, this.cap, n);
    const out: TraceEvent[] = [];
    for (let s = this.count - kept; s < this.count; s++) {
      const i = s % this.cap;
      out.push({
        seq: s,
        time: this.time[i]!,
        cat: this.cat[i]!,
        kind: this.kinds[this.kindId[i]!]!,
        args: [this.args[i * 4]!, this.args[i * 4 + 1]!, this.args[i * 4 + 2]!, this.args[i * 4 + 3]!],
      });
    }
    return out;
  }

  /** Human-readable lines of the last `n` events, for failure messages. */
  format(n = 32): string {
    return this.events(n)
      .map((e) => `#${e.seq} t=${e.time} ${e.kind} ${e.args.map((a) => `0x${a.toString(16)}`).join(' ')}`)
      .join('\n');
  }
}
