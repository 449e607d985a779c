/**
 * A race counterexample's schedule run again with the machine traced: the trace events of the
 * race world's set-up and of every step, each event stamped with the schedule step that emitted
 * it as its time (0: the set-up; step k: 1…n). What `xivelab ui` replays into the state panel
 * beside a counterexample's lanes.
 */

import { replay } from '../check/explore/explore.ts';
import { kernelRaceProgram, raceDesigns } from '../check/explore/kernel/race-program.ts';
import type { RaceScenario } from '../check/explore/race-schema.ts';
import type { Counterexample } from '../check/explore/recorder.ts';
import { parseSchedule } from '../check/explore/schedule.ts';
import type { ThreadBody } from '../check/explore/step.ts';
import type { TraceEvent } from '../sim/trace.ts';
import type { TraceKind } from '../sim/trace-events.ts';
import { TRACE_ALL } from '../sim/trace-sink.ts';

/** The traced replay of one schedule. */
export interface RaceTrace {
  readonly events: TraceEvent[];
  /** The replay's own account of the steps (what the counterexample file lists). */
  readonly counterexample: Counterexample;
}

/** `body`, calling `stepStarts` before each step it takes (each resume but the first). */
function* marking(body: ThreadBody, stepStarts: () => void): ThreadBody {
  for (let r = body.next(); !r.done; ) {
    yield r.value;
    stepStarts();
    r = body.next();
  }
}

/**
 * Replay `schedule` (thread ids, dot-separated) of scenario `s` under its design `design`, the
 * host traced.
 * @throws ScheduleError for a schedule that does not fit; Error for a design `s` does not have.
 */
export function traceRaceSchedule(s: RaceScenario, design: string, schedule: string): RaceTrace {
  const d = raceDesigns(s).find((x) => x.name === design);
  if (d === undefined) throw new Error(`race scenario ${s.name} has no design ${design}`);
  const events: TraceEvent[] = [];
  let step = 0;
  // A frozen sink: the world's snapshot restores do not walk (or rewind) it.
  const sink = Object.freeze({
    mask: TRACE_ALL,
    emit(cat: number, kind: TraceKind, a0: number, a1: number, a2: number, a3: number): void {
      events.push({ seq: events.length, time: step, cat, kind, args: [a0, a1, a2, a3] });
    },
    guestError(): void {},
  });
  const program = kernelRaceProgram(s, d, false, sink);
  const counterexample = replay(
    {
      ...program,
      start: (w, id) =>
        marking(program.start(w, id), () => {
          step++;
        }),
    },
    parseSchedule(schedule, s.threads.length),
  );
  return { events, counterexample };
}
