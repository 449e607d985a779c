/**
 * The command line: thin commands over scenario/report. Each command parses and validates its
 * input, then calls the pure `runScenario(scenario, seed)`.
 *
 * Exit codes: 0 = ran and every invariant holds; 1 = ran and found violations; 2 = bad input
 * (one line on stderr: `file:line:col message`); 70 = internal error (a bug in xivelab).
 */

import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from '@commander-js/extra-typings';
import { formatReport } from '../report/table.ts';
import { loadScenario } from '../scenario/load.ts';
import { ScenarioError } from '../scenario/parse.ts';
import { resultJsonSchema } from '../scenario/result.ts';
import { runScenario } from '../scenario/runner.ts';
import { type Scenario, scenarioJsonSchema } from '../scenario/schema.ts';

/** Where the CLI writes (tests capture it). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const EXIT_OK = 0;
export const EXIT_VIOLATIONS = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;

/** Built-in scenario files, shipped in `scenarios/`. */
export function builtinScenarioPath(name: string): string {
  return fileURLToPath(new URL(`../../scenarios/${name}.yaml`, import.meta.url));
}

function parseSeed(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0x7fff_ffff) {
    throw new InvalidArgumentError('expected an integer seed in 0..2147483647');
  }
  return Number(v);
}

/** Run one scenario and print it; returns the exit code. */
function runAndPrint(s: Scenario, seed: number | undefined, json: boolean, io: CliIo): number {
  const result = runScenario(s, seed ?? s.options.seed);
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
    .action((file, opts) => {
      code = runAndPrint(loadScenario(file), opts.seed, opts.json === true, io);
    });

  program
    .command('demo')
    .description('run the built-in demo scenario (scenarios/demo.yaml) and print its tables')
    .option('--seed <n>', 'seed of the run', parseSeed)
    .option('--json', 'print the result as JSON')
    .action((opts) => {
      code = runAndPrint(loadScenario(builtinScenarioPath('demo')), opts.seed, opts.json === true, io);
    });

  program
    .command('schema')
    .description('print the JSON Schema of scenario files (or, with --result, of run results)')
    .option('--result', 'the schema of `run --json` output instead')
    .action((opts) => {
      const schema = opts.result === true ? resultJsonSchema() : scenarioJsonSchema();
      io.out(`${JSON.stringify(schema, null, 2)}\n`);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its message; help and version are not errors.
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
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
