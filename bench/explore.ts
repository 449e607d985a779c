/**
 * `npm run bench`, interleaving explorer part: on every built-in race scenario (scenarios/races/)
 * and each of its designs, an exhaustive DPOR run — executions, distinct traces, the reduction
 * against the naive interleaving count, time; on S12 (fault vs bind) the time DPOR takes to find
 * the race on `rmap` (world build apart) and the executions per second of uniform random
 * exploration (each execution restores the model in place and runs both threads), with the
 * restore's dirty tracking and without it (every captured object restored: the figure before).
 */

import { readdirSync } from 'node:fs';
import { explore } from '../src/check/explore/explore.ts';
import { kernelRaceProgram, raceDesigns } from '../src/check/explore/kernel/race-program.ts';
import { loadRaceScenario } from '../src/scenario/race-load.ts';

const now = (): number => performance.now();

/** The bench lines; `repoRoot` ends with `/`. */
export function benchExplore(repoRoot: string): string[] {
  const dir = `${repoRoot}scenarios/races/`;
  const out: string[] = [];
  const s12 = loadRaceScenario(`${dir}s12-fault-vs-bind.yaml`).scenario;
  const [rmap, fixed] = raceDesigns(s12);
  // Time to find S12 on rmap: a fresh explorer each time (the world build is timed apart).
  const finds: number[] = [];
  const builds: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    const prog = kernelRaceProgram(s12, rmap!);
    builds.push(now() - t0);
    const r = explore(prog, { now });
    finds.push(r.firstFailureMs);
  }
  finds.sort((a, b) => a - b);
  builds.sort((a, b) => a - b);
  out.push(
    `explore  S12 on rmap: found by DPOR in ${finds[2]!.toFixed(1)} ms (median of 5; world build ${builds[2]!.toFixed(0)} ms)`,
  );
  for (const d of [rmap!, fixed!]) {
    const rate = (dirty: boolean): [number, number, number] => {
      const prog = kernelRaceProgram(s12, d, dirty);
      explore(prog, { strategy: 'random', runs: 2000, seed: 1, now }); // warm-up (and learning)
      const r = explore(prog, { strategy: 'random', runs: 20_000, seed: 1, now });
      return [Math.round((r.executions * 1000) / r.elapsedMs), r.traces, prog.setup().snapshotObjects];
    };
    const [before] = rate(false);
    const [after, traces, objects] = rate(true);
    out.push(
      `explore  S12 on ${d.name}: ${after} executions/s (uniform random, 20000 runs, ${traces} traces; full restore of ${objects} objects: ${before}/s)`,
    );
  }
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.yaml'))
    .sort()) {
    const s = loadRaceScenario(`${dir}${f}`).scenario;
    for (const d of raceDesigns(s)) {
      const r = explore(kernelRaceProgram(s, d), { now });
      out.push(
        `explore  ${s.name} × ${d.name}: ${r.verdict}, ${r.executions} executions, ${r.traces} traces, naive ${r.naive} (reduction ${r.reduction.toFixed(1)}×), ${r.elapsedMs.toFixed(1)} ms`,
      );
    }
  }
  return out;
}
