/**
 * A lock for explored threads whose model has none of its own (a mutex or spinlock: the holder is
 * a thread id). It hands out the {@link AtomicStep}s that take and drop it, so a thread blocks on it the
 * way the real one does, and the explorer sees acquire and release as writes of the lock object.
 * Reader-writer locks are the model's own {@link RwSem} (host/mm/rwsem.ts).
 */

import { AtomicStep } from '../../host/atomic-step.ts';

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
  acquire(extraReads: readonly string[] = [], extraWrites: readonly string[] = []): AtomicStep {
    return new AtomicStep(
      `take ${this.name}`,
      extraReads,
      [...this.obj, ...extraWrites],
      () => this.holder < 0,
    );
  }

  /** The step that drops it. */
  release(extraReads: readonly string[] = [], extraWrites: readonly string[] = []): AtomicStep {
    return new AtomicStep(`drop ${this.name}`, extraReads, [...this.obj, ...extraWrites]);
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
