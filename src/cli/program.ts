/**
 * The command line: thin commands over scenario/report. Each command parses and validates its
 * input, then calls the pure `runScenario(scenario, seed)`.
 *
 * Exit codes: 0 = ran and every invariant holds; 1 = ran and found violations (or `compare
 * --expect` differences); 2 = bad input (one line on stderr: `file:line:col message`); 70 =
 * internal error (a bug in xivelab); 130 = stopped by SIGINT (the partial result is printed).
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from '@commander-js/extra-typings';
import { raceScenarioJsonSchema } from '../check/explore/race-schema.ts';
import { DESIGN_NAMES, findDesign, kvmVcpuLimit, unknownDesign } from '../designs/index.ts';
import { textMatrix } from '../report/markdown.ts';
import { formatReport } from '../report/table.ts';
import { resultsJsonSchema } from '../scenario/cell.ts';
import { runDesignCell } from '../scenario/cell-dispatch.ts';
import { startWorker } from '../scenario/compare.ts';
import { loadScenario } from '../scenario/load.ts';
import { ScenarioError } from '../scenario/parse.ts';
import { type Result, resultJsonSchema } from '../scenario/result.ts';
import { type RunProgress, runScenario } from '../scenario/runner.ts';
import { type Scenario, scenarioJsonSchema } from '../scenario/schema.ts';
import { registerExplore } from './explore.ts';
import { checkOutputFile } from './out-paths.ts';
import { runQemuFrontend } from './qemu.ts';
import { ProgressLine, type RunWorkerData, type RunWorkerReply, virtualTime } from './run-progress.ts';
import { UsageError } from './usage-error.ts';

/** Where the CLI writes (tests capture it). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal: show progress (bars for compare, a line for run). */
  tty?: boolean;
  /**
   * The real entry point: `run` runs in a worker thread so that SIGINT stops it cleanly with
   * the partial result (default: in this thread).
   */
  interruptible?: boolean;
  /** Wall clock for progress, ms (default `performance.now`). */
  now?: () => number;
}

export const EXIT_OK = 0;
export const EXIT_VIOLATIONS = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;
/** Stopped by SIGINT (128 + 2, as a shell reports it). */
export const EXIT_INTERRUPTED = 130;

/** The package's version (package.json, next to `src/` and `dist/`). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Built-in scenario files, shipped in `scenarios/`. */
export function builtinScenarioPath(name: string): string {
  return fileURLToPath(new URL(`../../scenarios/${name}.yaml`, import.meta.url));
}

function parseJobs(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 256) {
    throw new InvalidArgumentError('expected a number of worker threads in 1..256');
  }
  return Number(v);
}

function parseList(v: string): string[] {
  const items = v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

/**
 * The compare command and the trace export, loaded when used: the report's plotting stack
 * (Observable Plot, linkedom, resvg) is most of the CLI's start-up otherwise.
 */
function loadCompare(): Promise<typeof import('./compare.ts')> {
  return import('./compare.ts');
}

/** `Example:` lines for a command's `--help`. */
function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}\n`).join('')}`;
}

/**
 * Run one scenario under a registered design and print its cell (`--json`: the cell as JSON);
 * returns the exit code.
 */
function runDesignAndPrint(
  file: string,
  s: Scenario,
  design: string,
  seed: number,
  json: boolean,
  io: CliIo,
): number {
  const d = findDesign(design);
  if (d === undefined) throw new UsageError(unknownDesign(design));
  const cell = runDesignCell({ name: s.name, file, scenario: s }, d, seed);
  const bad = Object.values(cell.invariants).reduce(
    (n, o) => n + (o.status === 'fail' ? o.violations : 0),
    0,
  );
  if (json) {
    io.out(`${JSON.stringify(cell, null, 2)}\n`);
    return bad === 0 ? EXIT_OK : EXIT_VIOLATIONS;
  }
  const lines = [textMatrix([cell]), '', ...cell.notes.map((n) => `note: ${n}`)];
  for (const [id, o] of Object.entries(cell.invariants)) {
    if (o.status !== 'fail') continue;
    lines.push(
      `${id}: ${o.violations} violation${o.violations === 1 ? '' : 's'}; first: ${o.first?.message ?? '?'}`,
    );
  }
  lines.push(bad === 0 ? 'invariants: all checked ones hold' : `invariants: ${bad} violations`);
  io.out(`${lines.join('\n')}\n`);
  return bad === 0 ? EXIT_OK : EXIT_VIOLATIONS;
}

function parsePort(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new InvalidArgumentError('expected a port in 0..65535');
  return Number(v);
}

function parseSeed(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0x7fff_ffff) {
    throw new InvalidArgumentError('expected an integer seed in 0..2147483647');
  }
  return Number(v);
}

/** `--accel`: QEMU's accelerators as xivelab models them. */
type Accel = 'emulated' | 'kvm';

function parseAccel(v: string): Accel {
  if (v !== 'emulated' && v !== 'kvm') throw new InvalidArgumentError('expected emulated or kvm');
  return v;
}

/** A run's result, and whether SIGINT cut it short. */
interface RunOutcome {
  readonly result: Result;
  readonly interrupted: boolean;
}

/** Run `s` in this thread, with a progress line on a terminal. */
function runHere(s: Scenario, seed: number, accel: Accel, io: CliIo): RunOutcome {
  const line = io.tty === true ? new ProgressLine(s, io.err, io.now ?? (() => performance.now())) : null;
  const { result } = runScenario(s, seed, {
    ...(accel === 'kvm' ? { kvm: {} } : {}),
    ...(line === null ? {} : { onProgress: (p: RunProgress) => line.update(p) }),
  });
  line?.clear();
  return { result, interrupted: false };
}

/**
 * Run `s` in a worker thread: the first SIGINT asks it to stop at the next quiescent point (the
 * partial result follows), a second one exits at once with 130.
 */
function runInWorker(s: Scenario, seed: number, accel: Accel, io: CliIo): Promise<RunOutcome> {
  const stop = new SharedArrayBuffer(4);
  const data: RunWorkerData = { scenario: s, seed, kvm: accel === 'kvm', stop };
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const worker = startWorker(new URL(`./run-worker.${ext}`, import.meta.url), { workerData: data });
  const line = io.tty === true ? new ProgressLine(s, io.err, io.now ?? (() => performance.now())) : null;
  let signals = 0;
  const onSigint = (): void => {
    if (++signals > 1) process.exit(EXIT_INTERRUPTED);
    Atomics.store(new Int32Array(stop), 0, 1);
    line?.clear();
    io.err('xivelab: interrupted: stopping the workload (Ctrl-C again to quit at once)\n');
  };
  process.on('SIGINT', onSigint);
  return new Promise<RunOutcome>((resolve, reject) => {
    worker.on('message', (m: RunWorkerReply) => {
      if (m.kind === 'progress') {
        if (signals === 0) line?.update(m.progress);
        return;
      }
      line?.clear();
      if (m.kind === 'result') resolve({ result: m.result, interrupted: m.interrupted });
      else reject(new Error(m.message));
      void worker.terminate();
    });
    worker.on('error', reject);
  }).finally(() => process.off('SIGINT', onSigint));
}

/** Run one scenario and print it; returns the exit code. */
async function runAndPrint(
  s: Scenario,
  seed: number | undefined,
  json: boolean,
  accel: Accel,
  io: CliIo,
): Promise<number> {
  const why = accel === 'kvm' ? kvmVcpuLimit(s.vcpus) : null;
  if (why !== null) throw new UsageError(`--accel kvm: ${why} (${s.name})`);
  const run = seed ?? s.options.seed;
  const { result, interrupted } =
    io.interruptible === true ? await runInWorker(s, run, accel, io) : runHere(s, run, accel, io);
  io.out(json ? `${JSON.stringify(result, null, 2)}\n` : `${formatReport(result)}\n`);
  if (interrupted) {
    io.err(
      `xivelab: interrupted at virtual time ${virtualTime(result.virtualTimeNs)}: the result covers the run so far\n`,
    );
    return EXIT_INTERRUPTED;
  }
  return result.violations.length === 0 ? EXIT_OK : EXIT_VIOLATIONS;
}

/** Where each command reports its exit code. */
type Done = (code: number) => void;

/** `run`'s options, as Commander parses them. */
interface RunOptions {
  readonly seed?: number | undefined;
  readonly json?: true | undefined;
  readonly accel?: Accel | undefined;
  readonly design?: string | undefined;
  readonly trace?: string | undefined;
}

/**
 * `xivelab run <scenario>`: a plain run, or a design's cell when `--design` names one or the
 * scenario has a passthrough section; `--trace` also writes the run's Chrome trace. Returns the
 * exit code.
 */
async function runCommand(file: string, opts: RunOptions, io: CliIo): Promise<number> {
  const s = loadScenario(file);
  const seed = opts.seed ?? s.options.seed;
  if (opts.design !== undefined && opts.accel !== undefined)
    throw new UsageError('--accel and --design do not go together: a design picks its accelerator');
  if (opts.trace !== undefined) checkOutputFile('--trace', opts.trace);
  // A passthrough section runs under a design: the merged kernel (rmap), or the emulated
  // reference with --accel emulated.
  const design =
    opts.design ??
    (s.passthrough === undefined ? undefined : opts.accel === 'emulated' ? 'emulated' : 'rmap');
  if (design !== undefined && opts.design === undefined)
    io.err(
      `xivelab: ${file} has a passthrough section: running its ${s.passthrough!.cycles} cycles under design ${design} (--design picks another)\n`,
    );
  const code =
    design === undefined
      ? await runAndPrint(s, seed, opts.json === true, opts.accel ?? 'emulated', io)
      : runDesignAndPrint(file, s, design, seed, opts.json === true, io);
  if (opts.trace !== undefined && code !== EXIT_INTERRUPTED) {
    const { exportTrace } = await loadCompare();
    const n = exportTrace(
      { name: s.name, file, scenario: s },
      // --accel kvm runs the merged kernel (mainline flags and record): the rmap design.
      design ?? (opts.accel === 'kvm' ? 'rmap' : 'emulated'),
      seed,
      opts.trace,
    );
    io.err(`wrote ${n} trace events to ${opts.trace}\n`);
  }
  return code;
}

/** The program with its name, version, output and top-level help; no commands yet. */
function newProgram(io: CliIo): Command {
  return new Command()
    .name('xivelab')
    .description('An executable, checkable model of POWER9 XIVE interrupt virtualization')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .addHelpText(
      'after',
      `${examples('xivelab demo', 'xivelab run scenarios/foundation.yaml --seed 7 --json', 'xivelab compare --designs rmap,emulated --out report')}` +
        '\nExit status: 0 all invariants hold, 1 violations (or `compare --expect` differences), 2 bad input, 70 internal error, 130 interrupted.\n',
    );
}

/** Register `run` on the CLI. */
function registerRun(program: Command, io: CliIo, done: Done): void {
  program
    .command('run')
    .description(
      'run a scenario (YAML or JSON) and print its per-CPU and per-irq tables; a scenario with a ' +
        'passthrough section runs its passthrough cycles under the merged kernel (design rmap) unless --design or --accel emulated says otherwise',
    )
    .argument('<scenario>', 'scenario file (.yaml, .yml or .json)')
    .option('--seed <n>', "seed of the run (default: the scenario's options.seed)", parseSeed)
    .option('--json', 'print the result as JSON (schema: xivelab schema --result; with --design: the cell)')
    .option(
      '--accel <mode>',
      'emulated (kernel_irqchip=off, the default) or kvm (the in-kernel XIVE on the host model, kernel_irqchip=on)',
      parseAccel,
    )
    .option(
      '--design <name>',
      `run under a passthrough-page design and print its cell (invariants I1-I7, costs); the design picks the accelerator (${DESIGN_NAMES.join(', ')})`,
    )
    .option('--trace <file>', "also write the run's trace as Chrome trace-event JSON (opens in Perfetto)")
    .addHelpText(
      'after',
      examples(
        'xivelab run scenarios/demo.yaml --seed 7',
        'xivelab run scenarios/demo.yaml --design rmap --json --trace demo.trace.json',
      ) +
        '\nOn a terminal a progress line shows on stderr; Ctrl-C stops the run and prints the partial result (exit 130).\n',
    )
    .action(async (file, opts) => done(await runCommand(file, opts, io)));
}

/** Register `demo` on the CLI. */
function registerDemo(program: Command, io: CliIo, done: Done): void {
  program
    .command('demo')
    .description('run the built-in demo scenario (scenarios/demo.yaml) and print its tables')
    .option('--seed <n>', 'seed of the run', parseSeed)
    .option('--json', 'print the result as JSON (schema: xivelab schema --result)')
    .option('--accel <mode>', 'emulated (default) or kvm', parseAccel)
    .addHelpText('after', examples('xivelab demo --accel kvm --seed 3'))
    .action(async (opts) => {
      done(
        await runAndPrint(
          loadScenario(builtinScenarioPath('demo')),
          opts.seed,
          opts.json === true,
          opts.accel ?? 'emulated',
          io,
        ),
      );
    });
}

/** Register `schema` on the CLI. */
function registerSchema(program: Command, io: CliIo): void {
  program
    .command('schema')
    .description('print the JSON Schema of scenario files (or, with --result, of run results)')
    .option('--result', 'the schema of `run --json` output instead')
    .option('--results', "the schema of compare's results.json instead")
    .option('--race', 'the schema of race scenario files (xivelab explore) instead')
    .addHelpText('after', examples('xivelab schema > scenario.schema.json', 'xivelab schema --result'))
    .action((opts) => {
      const schema =
        opts.race === true
          ? raceScenarioJsonSchema()
          : opts.results === true
            ? resultsJsonSchema()
            : opts.result === true
              ? resultJsonSchema()
              : scenarioJsonSchema();
      io.out(`${JSON.stringify(schema, null, 2)}\n`);
    });
}

/** Register `compare` on the CLI (its code is loaded when it runs). */
function registerCompare(program: Command, io: CliIo, done: Done): void {
  program
    .command('compare')
    .description(
      'run every design on every scenario, print the matrix and write report/ (what `npm start` runs); ' +
        'exits 0 whatever the verdicts unless --expect is given',
    )
    .option(
      '--designs <list>',
      `comma-separated designs (default: all: ${DESIGN_NAMES.join(', ')})`,
      parseList,
    )
    .option(
      '--scenarios <list>',
      'comma-separated built-in scenario names or scenario files (default: all built-ins)',
      parseList,
    )
    .option('--seed <n>', "seed of every cell (default: each scenario's options.seed)", parseSeed)
    .option('--jobs <n>', 'worker threads (default: the cores available, at most the cells)', parseJobs)
    .option('--out <dir>', 'report directory', 'report')
    .option(
      '--expect <file>',
      'expected verdicts (a results.json, or YAML scenario → design → pass/fail/n/a or {I1: pass, …}): exit 1 and list the cells that differ',
    )
    .option('--no-races', 'skip exploring the built-in race scenarios (the report\'s "Races" section)')
    .addHelpText(
      'after',
      examples(
        'xivelab compare --scenarios foundation --designs emulated,rmap --jobs 2',
        'xivelab compare --expect report/results.json --out /tmp/report',
      ),
    )
    .action(async (opts) => {
      const { barProgress, compareCommand, lineProgress } = await loadCompare();
      const progress = io.tty === true ? barProgress() : lineProgress((s) => io.err(s));
      const { differences } = await compareCommand(
        {
          out: opts.out,
          ...(opts.designs ? { designs: opts.designs } : {}),
          ...(opts.scenarios ? { scenarios: opts.scenarios } : {}),
          ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
          ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
          ...(opts.expect !== undefined ? { expect: opts.expect } : {}),
          races: opts.races,
        },
        io,
        progress,
      );
      done(differences.length === 0 ? EXIT_OK : EXIT_VIOLATIONS);
    });
}

/**
 * Register `qtest` for its help only: `runCli` hands `qtest …` to the QEMU-compatible front end
 * before Commander sees it.
 */
function registerQtest(program: Command): void {
  program
    .command('qtest')
    .description("the QEMU-compatible qtest/HMP front end (= xivelab-qemu); its arguments are QEMU's")
    .argument('[qemu-args...]', 'a qemu-system-ppc64 command line (-machine pseries -qtest stdio …)')
    .addHelpText(
      'after',
      examples('xivelab qtest -machine pseries -accel tcg -display none -qtest stdio -nodefaults'),
    );
}

/** Register `ui` on the CLI. */
function registerUi(program: Command, io: CliIo): void {
  program
    .command('ui')
    .description('serve the step-through web view of a report, a trace or a scenario on 127.0.0.1')
    .argument('[input]', 'a report directory (xivelab compare --out), a trace .json or a scenario .yaml')
    .option('--port <n>', 'port (default: a free one)', parsePort)
    .addHelpText(
      'after',
      examples(
        'xivelab ui report/',
        'xivelab ui report/traces/pt-split-vma--rmap--I1.trace.json --port 8080',
      ),
    )
    .action(async (input, opts) => {
      // Loaded when used, like compare: the server pulls in the scenario runners.
      const { uiCommand } = await import('./ui.ts');
      await uiCommand(input, opts.port ?? 0, io);
    });
}

/**
 * The exit code of an error a command threw: Commander's own (it has printed its message), bad
 * input (one line, 2) or a bug in xivelab (70).
 */
function exitCodeOf(e: unknown, io: CliIo): number {
  if (e instanceof CommanderError) {
    // Commander already printed its message; help and version are not errors.
    return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (e instanceof UsageError) {
    io.err(`xivelab: ${e.message}\n`);
    return EXIT_USAGE;
  }
  if (e instanceof ScenarioError) {
    io.err(`${e.message}\n`);
    return EXIT_USAGE;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.err(`xivelab: internal error (a bug in xivelab): ${msg.split('\n')[0]}\n`);
  if (process.env.XIVELAB_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
  else io.err('(set XIVELAB_DEBUG=1 for the stack)\n');
  return EXIT_INTERNAL;
}

/**
 * Parse `argv` (without node and script) and run the command; resolves to the exit code.
 * `qtest …` hands the rest to the QEMU-compatible front end, whose arguments are QEMU's.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv[0] === 'qtest') return runQemuFrontend(argv.slice(1));
  let code = EXIT_OK;
  const done = (c: number): void => {
    code = c;
  };
  const program = newProgram(io);
  registerRun(program, io, done);
  registerDemo(program, io, done);
  registerSchema(program, io);
  registerCompare(program, io, done);
  registerQtest(program);
  registerExplore(program, io, done);
  registerUi(program, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    return exitCodeOf(e, io);
  }
}
