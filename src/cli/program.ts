/**
 * The command line: thin commands over scenario/report. Each command parses and validates its
 * input, then calls the pure `runScenario(scenario, seed)`.
 *
 * Exit codes: 0 = ran and every invariant holds; 1 = ran and found violations; 2 = bad input
 * (one line on stderr: `file:line:col message`); 70 = internal error (a bug in xivelab).
 */

import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from '@commander-js/extra-typings';
import { textMatrix } from '../report/markdown.ts';
import { formatReport } from '../report/table.ts';
import { resultsJsonSchema } from '../scenario/cell.ts';
import { designEntry, designNames } from '../scenario/designs-registry.ts';
import { loadScenario } from '../scenario/load.ts';
import { ScenarioError } from '../scenario/parse.ts';
import { resultJsonSchema } from '../scenario/result.ts';
import { KVM_MAX_RUN_VCPUS, runScenario } from '../scenario/runner.ts';
import { type Scenario, scenarioJsonSchema } from '../scenario/schema.ts';
import { barProgress, compareCommand, exportTrace, lineProgress, UsageError } from './compare.ts';

/** Where the CLI writes (tests capture it). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal: show progress bars (default: plain progress lines). */
  tty?: boolean;
}

export const EXIT_OK = 0;
export const EXIT_VIOLATIONS = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;

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

/** Run one scenario under a registered design and print its cell; returns the exit code. */
function runDesignAndPrint(file: string, s: Scenario, design: string, seed: number, io: CliIo): number {
  const entry = designEntry(design);
  if (entry === undefined)
    throw new UsageError(`unknown design "${design}" (known: ${designNames().join(', ')})`);
  const cell = entry.run({ name: s.name, file, scenario: s }, design, seed);
  const lines = [textMatrix([cell]), '', ...cell.notes.map((n) => `note: ${n}`)];
  let bad = 0;
  for (const [id, o] of Object.entries(cell.invariants)) {
    if (o.status !== 'fail') continue;
    bad += o.violations;
    lines.push(
      `${id}: ${o.violations} violation${o.violations === 1 ? '' : 's'}; first: ${o.first?.message ?? '?'}`,
    );
  }
  lines.push(bad === 0 ? 'invariants: all checked ones hold' : `invariants: ${bad} violations`);
  io.out(`${lines.join('\n')}\n`);
  return bad === 0 ? EXIT_OK : EXIT_VIOLATIONS;
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

/** Run one scenario and print it; returns the exit code. */
function runAndPrint(s: Scenario, seed: number | undefined, json: boolean, accel: Accel, io: CliIo): number {
  if (accel === 'kvm' && s.vcpus > KVM_MAX_RUN_VCPUS)
    throw new UsageError(
      `--accel kvm runs at most ${KVM_MAX_RUN_VCPUS} vCPUs (one host thread each); ${s.name} has ${s.vcpus}`,
    );
  const result = runScenario(s, seed ?? s.options.seed, accel === 'kvm' ? { kvm: {} } : {});
  io.out(json ? `${JSON.stringify(result, null, 2)}\n` : `${formatReport(result)}\n`);
  return result.violations.length === 0 ? EXIT_OK : EXIT_VIOLATIONS;
}

/** Parse `argv` (without node and script) and run the command; resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code = EXIT_OK;
  const program = new Command()
    .name('xivelab')
    .description('An executable, checkable model of POWER9 XIVE interrupt virtualization')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  program
    .command('run')
    .description('run a scenario (YAML or JSON) and print its per-CPU and per-irq tables')
    .argument('<scenario>', 'scenario file (.yaml, .yml or .json)')
    .option('--seed <n>', "seed of the run (default: the scenario's options.seed)", parseSeed)
    .option('--json', 'print the result as JSON (schema: xivelab schema --result)')
    .option(
      '--accel <mode>',
      'emulated (kernel_irqchip=off, the default) or kvm (the in-kernel XIVE on the host model, kernel_irqchip=on)',
      parseAccel,
    )
    .option(
      '--design <name>',
      'run under a passthrough-page design and print its cell (invariants I1-I7, costs); the design picks the accelerator',
    )
    .option('--trace <file>', "also write the run's trace as Chrome trace-event JSON (opens in Perfetto)")
    .action((file, opts) => {
      const s = loadScenario(file);
      const seed = opts.seed ?? s.options.seed;
      if (opts.design !== undefined && opts.accel !== undefined)
        throw new UsageError('--accel and --design do not go together: a design picks its accelerator');
      code =
        opts.design === undefined
          ? runAndPrint(s, seed, opts.json === true, opts.accel ?? 'emulated', io)
          : runDesignAndPrint(file, s, opts.design, seed, io);
      if (opts.trace !== undefined) {
        const n = exportTrace(
          { name: s.name, file, scenario: s },
          // --accel kvm runs the merged kernel (mainline flags and record): the rmap design.
          opts.design ?? (opts.accel === 'kvm' ? 'rmap' : 'emulated'),
          seed,
          opts.trace,
        );
        io.err(`wrote ${n} trace events to ${opts.trace}\n`);
      }
    });

  program
    .command('demo')
    .description('run the built-in demo scenario (scenarios/demo.yaml) and print its tables')
    .option('--seed <n>', 'seed of the run', parseSeed)
    .option('--json', 'print the result as JSON')
    .option('--accel <mode>', 'emulated (default) or kvm', parseAccel)
    .action((opts) => {
      code = runAndPrint(
        loadScenario(builtinScenarioPath('demo')),
        opts.seed,
        opts.json === true,
        opts.accel ?? 'emulated',
        io,
      );
    });

  program
    .command('schema')
    .description('print the JSON Schema of scenario files (or, with --result, of run results)')
    .option('--result', 'the schema of `run --json` output instead')
    .option('--results', "the schema of compare's results.json instead")
    .action((opts) => {
      const schema =
        opts.results === true
          ? resultsJsonSchema()
          : opts.result === true
            ? resultJsonSchema()
            : scenarioJsonSchema();
      io.out(`${JSON.stringify(schema, null, 2)}\n`);
    });

  program
    .command('compare')
    .description(
      'run every design on every scenario, print the matrix and write report/ (what `npm start` runs)',
    )
    .option(
      '--designs <list>',
      `comma-separated designs (default: all: ${designNames().join(', ')})`,
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
    .action(async (opts) => {
      const progress = io.tty === true ? barProgress() : lineProgress((s) => io.err(s));
      await compareCommand(
        {
          out: opts.out,
          ...(opts.designs ? { designs: opts.designs } : {}),
          ...(opts.scenarios ? { scenarios: opts.scenarios } : {}),
          ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
          ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
        },
        io,
        progress,
      );
      code = EXIT_OK;
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
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
}
