/**
 * Locks for explored threads: a sleeping lock (mutex or spinlock: the holder is a thread id) and
 * a reader-writer semaphore. Each hands out the {@link Step}s that take and drop it, so a thread
 * blocks on it the way the real one does, and the explorer sees acquire and release as writes of
 * the lock object.
 */

import { Step } from './step.ts';

/** A mutex or spinlock (`spin_lock`, `mutex_lock`): one holder at a time. */
export class ExploreLock {
  readonly name: string;
  /** Thread id of the holder, or −1. */
  holder = -1;
  private readonly obj: readonly string[];

  constructor(name: string) {
    this.name = name;
    this.obj = [`lock:${name}`];
  }

  /** The step that takes the lock (blocked while another thread holds it). */
  acquire(extraReads: readonly string[] = [], extraWrites: readonly string[] = []): Step {
    return new Step(`take ${this.name}`, extraReads, [...this.obj, ...extraWrites], () => this.holder < 0);
  }

  /** The step that drops it. */
  release(extraReads: readonly string[] = [], extraWrites: readonly string[] = []): Step {
    return new Step(`drop ${this.name}`, extraReads, [...this.obj, ...extraWrites]);
  }

  /** Perform the acquire (inside the step announced by {@link acquire}). */
  take(tid: number): void {
    if (this.holder >= 0)
      throw new Error(`${this.name}: thread ${tid} takes it while ${this.holder} holds it`);
    this.holder = tid;
  }

  /** Perform the release. */
  drop(tid: number): void {
    if (this.holder !== tid)
      throw new Error(`${this.name}: thread ${tid} drops it but ${this.holder} holds it`);
    this.holder = -1;
  }
}

/** A reader-writer semaphore (`down_read` / `down_write`): many readers or one writer. */
export class ExploreRwsem {
  readonly name: string;
  readers = 0;
  writer = -1;
  private readonly obj: readonly string[];

  constructor(name: string) {
    this.name = name;
    this.obj = [`lock:${name}`];
  }

  /** The `down_read` step: blocked while a writer holds it. */
  downReadStep(): Step {
    return new Step(`down_read ${this.name}`, [], this.obj, () => this.writer < 0);
  }

  /** The `down_write` step: blocked while anyone holds it. */
  downWriteStep(): Step {
    return new Step(`down_write ${this.name}`, [], this.obj, () => this.writer < 0 && this.readers === 0);
  }

  /** The `up_read` / `up_write` step. */
  upStep(write: boolean): Step {
    return new Step(`${write ? 'up_write' : 'up_read'} ${this.name}`, [], this.obj);
  }

  downRead(): void {
    if (this.writer >= 0) throw new Error(`${this.name}: down_read while written`);
    this.readers++;
  }

  upRead(): void {
    if (this.readers <= 0) throw new Error(`${this.name}: up_read without a reader`);
    this.readers--;
  }

  downWrite(tid: number): void {
    if (this.writer >= 0 || this.readers > 0) throw new Error(`${this.name}: down_write while held`);
    this.writer = tid;
  }

  upWrite(tid: number): void {
    if (this.writer !== tid) throw new Error(`${this.name}: up_write by ${tid}, writer ${this.writer}`);
    this.writer = -1;
  }

  /** Held by anyone. */
  get held(): boolean {
    return this.writer >= 0 || this.readers > 0;
  }
}
