/**
 * Schedule strings: the thread id of every step, dot-separated (`0.0.1.0`). The explorer prints
 * one with each counterexample and `--replay` takes it back.
 */

/** `[0, 0, 1, 0]` → `0.0.1.0`. */
export function formatSchedule(schedule: readonly number[]): string {
  return schedule.join('.');
}

/** Bad `--replay` text. */
export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

/**
 * `0.0.1.0` → `[0, 0, 1, 0]` for a program of `threads` threads.
 * @throws ScheduleError on anything else.
 */
export function parseSchedule(text: string, threads: number): number[] {
  const t = text.trim();
  if (t === '') return [];
  return t.split('.').map((part, i) => {
    if (!/^\d+$/.test(part) || Number(part) >= threads) {
      throw new ScheduleError(
        `schedule step ${i + 1}: "${part}" is not a thread id (0..${threads - 1}, dot-separated)`,
      );
    }
    return Number(part);
  });
}
