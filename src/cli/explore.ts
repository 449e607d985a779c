/**
 * `xivelab explore <file|name>`: every interleaving of a race scenario's kernel threads, per
 * design — the verdict, executions and distinct traces explored, the reduction against the naive
 * interleaving count, time and executions/s, and the shortest counterexample as a numbered step
 * list with the schedule that `--replay` reproduces.
 */

import { writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from '@commander-js/extra-typings';
import { type ExploreReport, explore, replay, STRATEGIES, type Strategy } from '../check/explore/explore.ts';
import { kernelRaceProgram, type RaceDesign, raceDesigns } from '../check/explore/kernel/race-program.ts';
import type { RaceScenario } from '../check/explore/race-schema.ts';
import type { Counterexample } from '../check/explore/recorder.ts';
import { parseSchedule, ScheduleError } from '../check/explore/schedule.ts';
import { builtinRaceNames, loadRaceScenario } from '../scenario/race-load.ts';
import { counterexampleTrace } from '../scenario/race-table.ts';
import type { CliIo } from './program.ts';
import { UsageError } from './usage-error.ts';

function parseCount(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1e9)
    throw new InvalidArgumentError('expected a count in 1..1e9');
  return Number(v);
}

function parseBound(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 1000)
    throw new InvalidArgumentError('expected a preemption bound in 0..1000');
  return Number(v);
}

function parseStrategy(v: string): Strategy {
  if (!(STRATEGIES as readonly string[]).includes(v))
    throw new InvalidArgumentError(`expected one of ${STRATEGIES.join(', ')}`);
  return v as Strategy;
}

function parseSeedArg(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0x7fff_ffff)
    throw new InvalidArgumentError('expected an integer seed in 0..2147483647');
  return Number(v);
}

/** A counterexample (or a replay) as a numbered step list. */
export function formatSteps(c: Counterexample): string[] {
  const w = String(c.steps.length).length;
  return c.steps.map((s, i) => {
    const n = String(i + 1).padStart(w);
    return `    ${n}. [${s.threadName}] ${s.label}${s.effect ? ` → ${s.effect}` : ''}`;
  });
}

const VERDICT_TEXT: Record<ExploreReport['verdict'], string> = {
  violation: 'VIOLATION FOUND',
  exhausted: 'no violation (exhausted: every interleaving explored)',
  'none-within-bound': 'no violation within the preemption bound',
  'none-within-budget': 'no violation within the run budget',
};

function formatReportText(design: string, r: ExploreReport, bound: number | null): string[] {
  const rate = r.elapsedMs > 0 ? Math.round((r.executions * 1000) / r.elapsedMs) : 0;
  // A failing execution is a violated check, a deadlock, a model exception or a livelock: the
  // headline names the kind of the shortest one.
  const found =
    r.verdict === 'violation' && r.shortest !== null ? `${r.shortest.kind.toUpperCase()} FOUND` : null;
  const lines = [
    `design ${design}: ${found ?? VERDICT_TEXT[r.verdict]}`,
    `  ${r.strategy}${r.strategy === 'dpor' ? `, bound ${bound ?? 'none'}` : ''}: ${r.executions} executions (${r.complete} complete${r.redundant ? `, ${r.redundant} cut by sleep sets` : ''}), ${r.traces} distinct traces; naive ${r.naive} interleavings (${r.reduction.toFixed(1)}× fewer executions)`,
    `  ${r.elapsedMs.toFixed(1)} ms, ${rate} executions/s${r.firstFailureAt > 0 ? `; first failure at execution ${r.firstFailureAt} (${r.firstFailureMs.toFixed(1)} ms)` : ''}`,
  ];
  const c = r.shortest;
  if (c !== null) {
    lines.push(
      `  shortest counterexample: ${c.kind}: ${c.message}`,
      `  ${c.steps.length} steps, ${c.preemptions} preemption(s); replay: --design ${design} --replay ${c.schedule}`,
      ...formatSteps(c),
      `  end state: ${c.digest}`,
    );
  }
  return lines;
}

/** Register `explore` on the CLI; `done` receives the exit code (0: no violation, 1: violation). */
export function registerExplore(program: Command, io: CliIo, done: (code: number) => void): void {
  program
    .command('explore')
    .description("explore every interleaving of a race scenario's kernel threads, per design")
    .argument('<scenario>', `race scenario file, or a built-in name (${builtinRaceNames().join(', ')})`)
    .option('--design <name>', "one design (a name from the scenario's designs)")
    .option('--strategy <s>', 'dpor (exhaustive, default), pct or random', parseStrategy)
    .option('--bound <n>', "preemption bound for dpor (default: the scenario's, else none)", parseBound)
    .option('--runs <n>', 'executions for pct/random (default 10000); a cap for dpor', parseCount)
    .option('--seed <n>', 'seed of pct/random (default 1)', parseSeedArg)
    .option('--replay <schedule>', 'run one schedule (thread ids, dot-separated) and print its steps')
    .option(
      '--trace <file>',
      'write the counterexample (or the replay) as Chrome trace JSON, one track per thread',
    )
    .option('--json', 'print the reports as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ xivelab explore s12-fault-vs-bind\n' +
        '  $ xivelab explore s12-fault-vs-bind --design rmap --replay 0.0.0.1.1.1.1.1.1.1.0.0\n',
    )
    .action((arg, opts) => {
      const { file, scenario: s } = loadRaceScenario(arg);
      let designs = raceDesigns(s);
      if (opts.design !== undefined) {
        designs = designs.filter((d) => d.name === opts.design);
        if (designs.length === 0)
          throw new UsageError(
            `design "${opts.design}" is not in ${s.name} (it has: ${raceDesigns(s)
              .map((d) => d.name)
              .join(', ')})`,
          );
      }
      const now = (): number => performance.now();
      if (opts.replay !== undefined) {
        if (designs.length !== 1)
          throw new UsageError('--replay needs --design (a schedule belongs to one design)');
        done(replayOne(s, designs[0]!, opts.replay, opts.trace, opts.json === true, io));
        return;
      }
      const strategy = opts.strategy ?? 'dpor';
      const bound = opts.bound ?? s.bound;
      const out: { design: string; report: ExploreReport }[] = [];
      const text: string[] = [
        `explore ${s.name} (${file}): ${s.summary}`,
        `threads: ${s.threads.map((t, i) => `${i} ${t.name} (${t.op})`).join(', ')}`,
      ];
      let traced = false;
      for (const d of designs) {
        const r = explore(kernelRaceProgram(s, d), {
          strategy,
          bound,
          runs: opts.runs ?? (strategy === 'dpor' ? 1_000_000 : 10_000),
          seed: opts.seed ?? 1,
          now,
        });
        out.push({ design: d.name, report: r });
        text.push('', ...formatReportText(d.name, r, bound));
        if (opts.trace !== undefined && !traced && r.shortest !== null) {
          writeFileSync(opts.trace, `${JSON.stringify(counterexampleTrace(s, d.name, r.shortest))}\n`);
          io.err(`wrote the counterexample of ${d.name} to ${opts.trace}\n`);
          traced = true;
        }
      }
      if (opts.trace !== undefined && !traced) io.err(`no counterexample: ${opts.trace} not written\n`);
      io.out(
        opts.json === true
          ? `${JSON.stringify({ scenario: s.name, file, results: out }, null, 2)}\n`
          : `${text.join('\n')}\n`,
      );
      done(out.some((o) => o.report.verdict === 'violation') ? 1 : 0);
    });
}

function replayOne(
  s: RaceScenario,
  d: RaceDesign,
  schedule: string,
  trace: string | undefined,
  json: boolean,
  io: CliIo,
): number {
  let c: Counterexample;
  try {
    c = replay(kernelRaceProgram(s, d), parseSchedule(schedule, s.threads.length));
  } catch (e) {
    if (e instanceof ScheduleError) throw new UsageError(e.message);
    throw e;
  }
  if (trace !== undefined) writeFileSync(trace, `${JSON.stringify(counterexampleTrace(s, d.name, c))}\n`);
  if (json) io.out(`${JSON.stringify({ scenario: s.name, design: d.name, replay: c }, null, 2)}\n`);
  else
    io.out(
      `${[
        `replay of ${s.name} under ${d.name}: ${c.kind === 'ok' ? 'no violation' : `${c.kind}: ${c.message}`}`,
        `  schedule ${c.schedule} (${c.steps.length} steps, ${c.preemptions} preemption(s))`,
        ...formatSteps(c),
        `  end state: ${c.digest}`,
      ].join('\n')}\n`,
    );
  return c.kind === 'ok' ? 0 : 1;
}
