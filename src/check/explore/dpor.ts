/**
 * Exhaustive exploration: stateless depth-first search over schedules with source-set DPOR and
 * sleep sets (Abdulla, Aronis, Jonsson, Sagonas, "Optimal dynamic partial order reduction",
 * POPL 2014, Algorithm 1), and an optional CHESS preemption bound (Musuvathi & Qadeer 2007).
 *
 * Races are checked at every new state against the announced next step of every thread,
 * blocked ones included (Flanagan & Godefroid 2005), which is how a lock's second acquirer
 * races with the first one across the release between them. When no initial of the reversed
 * sequence is enabled at the race point, every enabled thread is added there (sound, not
 * minimal). With a bound, schedules above it are cut, so the verdict is "none within the bound".
 */

import type { AtomicStep } from '../../host/atomic-step.ts';
import { Execution } from './execution.ts';
import { outcomeOf, Recorder } from './recorder.ts';
import { dependent, type RaceProgram } from './step.ts';

/** One state of the current execution on the DFS stack. */
interface Node {
  readonly enabled: boolean[];
  readonly pending: (AtomicStep | null)[];
  readonly backtrack: Set<number>;
  readonly done: Set<number>;
  readonly sleep: Set<number>;
  /** Thread of the previous step (−1 at the root). */
  readonly prev: number;
  /** Preemptions on the path to this state. */
  readonly preemptions: number;
  chosen: number;
}

export interface DporOptions {
  /** Preemption bound (CHESS), or null for none. */
  readonly bound: number | null;
  /** Stop after this many executions (the verdict then says so). */
  readonly maxExecutions: number;
  /** Livelock guard: steps per execution. */
  readonly maxSteps: number;
  readonly now: () => number;
}

/** Did the search cover every schedule within the bound? */
export interface DporResult<W> {
  readonly recorder: Recorder<W>;
  /** The search stopped at {@link DporOptions.maxExecutions}. */
  readonly truncated: boolean;
  /** Some schedule was cut by the preemption bound. */
  readonly boundHit: boolean;
}

function preemptionCost(n: Node, t: number): number {
  return n.prev >= 0 && t !== n.prev && n.enabled[n.prev] ? 1 : 0;
}

export function exploreDpor<W>(program: RaceProgram<W>, opts: DporOptions): DporResult<W> {
  const rec = new Recorder(program, opts.now);
  const stack: Node[] = [];
  const bound = opts.bound ?? Number.POSITIVE_INFINITY;
  let checkedUpTo = -1;
  let boundHit = false;
  for (;;) {
    const ex = new Execution(program);
    const replayed = stack.length;
    const checked = checkedUpTo;
    for (const nd of stack) if (ex.end === 'running') ex.run(nd.chosen);
    let livelock = false;
    let redundant = false;
    for (;;) {
      const k = ex.events.length;
      if (ex.end !== 'running') break;
      if (k > checkedUpTo) findRaces(ex, stack, k);
      if (ex.finished()) break;
      const enabled: boolean[] = [];
      let any = false;
      for (let t = 0; t < ex.n; t++) {
        enabled.push(ex.enabled(t));
        any ||= enabled[t]!;
      }
      if (!any) break;
      if (k >= opts.maxSteps) {
        livelock = true;
        break;
      }
      const parent = stack[k - 1];
      const prev = parent === undefined ? -1 : parent.chosen;
      const node: Node = {
        enabled,
        pending: ex.pending.slice(),
        backtrack: new Set(),
        done: new Set(),
        sleep: parent === undefined ? new Set() : childSleep(parent),
        prev,
        preemptions: parent === undefined ? 0 : parent.preemptions + preemptionCost(parent, parent.chosen),
        chosen: -1,
      };
      // Non-preemptive first: keep running the previous thread while it can.
      let pick = -1;
      if (prev >= 0 && enabled[prev] && !node.sleep.has(prev)) pick = prev;
      for (let t = 0; pick < 0 && t < ex.n; t++) {
        if (!enabled[t] || node.sleep.has(t)) continue;
        if (node.preemptions + preemptionCost(node, t) > bound) {
          boundHit = true;
          continue;
        }
        pick = t;
      }
      if (pick < 0) {
        redundant = true;
        break;
      }
      node.chosen = pick;
      node.backtrack.add(pick);
      stack.push(node);
      ex.run(pick);
    }
    if (ex.end === 'retry') {
      // The restore missed an object: run this execution again (the races found stay valid).
      stack.length = replayed;
      checkedUpTo = checked;
      continue;
    }
    const schedule = stack.map((nd) => nd.chosen);
    const last = stack.at(-1);
    const preemptions = last === undefined ? 0 : last.preemptions + preemptionCost(last, last.chosen);
    rec.record(
      ex,
      schedule,
      preemptions,
      redundant ? { kind: 'redundant', message: '' } : outcomeOf(program, ex, livelock),
    );
    if (rec.executions >= opts.maxExecutions) return { recorder: rec, truncated: stack.length > 0, boundHit };
    // Backtrack to the deepest state with an unexplored alternative.
    let resumed = false;
    while (stack.length > 0) {
      const top = stack.at(-1)!;
      top.done.add(top.chosen);
      let next = -1;
      for (const t of top.backtrack) {
        if (top.done.has(t) || top.sleep.has(t) || !top.enabled[t]) continue;
        if (top.preemptions + preemptionCost(top, t) > bound) {
          boundHit = true;
          continue;
        }
        next = t;
        break;
      }
      if (next >= 0) {
        top.chosen = next;
        checkedUpTo = stack.length - 1;
        resumed = true;
        break;
      }
      stack.pop();
    }
    if (!resumed) return { recorder: rec, truncated: false, boundHit };
  }
}

/** Sleep set of the child of `parent` reached by its chosen step. */
function childSleep(parent: Node): Set<number> {
  const out = new Set<number>();
  const c = parent.pending[parent.chosen]!;
  for (const set of [parent.sleep, parent.done]) {
    for (const q of set) {
      const s = parent.pending[q];
      if (q !== parent.chosen && s && !dependent(s, c)) out.add(q);
    }
  }
  return out;
}

/** Every race between an executed event and some thread's announced next step at state `k`. */
function findRaces<W>(ex: Execution<W>, stack: Node[], k: number): void {
  for (let p = 0; p < ex.n; p++) {
    const s = ex.pending[p];
    if (!s) continue;
    for (const i of ex.conflicts(s)) {
      if (ex.events[i]!.thread === p || ex.happensBeforeThread(i, p)) continue;
      reverse(ex, stack[i]!, i, p, s, k);
    }
  }
}

/**
 * Make sure the state before event `i` explores some initial of v = notdep(i) · (p's step): the
 * events after `i` that do not depend on it, then `p`'s announced step.
 */
function reverse<W>(ex: Execution<W>, node: Node, i: number, p: number, s: AtomicStep, k: number): void {
  const notdep: number[] = [];
  const initials = new Set<number>();
  for (let j = i + 1; j < k; j++) {
    if (ex.happensBefore(i, j)) continue;
    let initial = true;
    for (const jj of notdep) {
      if (ex.happensBefore(jj, j)) {
        initial = false;
        break;
      }
    }
    if (initial) initials.add(ex.events[j]!.thread);
    notdep.push(j);
  }
  let pInitial = !ex.conflictsWithAny(s, notdep);
  for (const jj of notdep) if (pInitial && ex.happensBeforeThread(jj, p)) pInitial = false;
  if (pInitial) initials.add(p);
  for (const q of initials) if (node.backtrack.has(q)) return;
  if (initials.has(p) && node.enabled[p]) {
    node.backtrack.add(p);
    return;
  }
  for (const q of initials) {
    if (node.enabled[q]) {
      node.backtrack.add(q);
      return;
    }
  }
  for (let t = 0; t < node.enabled.length; t++) if (node.enabled[t]) node.backtrack.add(t);
}
