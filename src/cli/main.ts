/**
 * `xivelab` entry point (`bin/xivelab.js`, `npm start` = `xivelab compare`): the command line on
 * the process's stdout and stderr, `run` in a worker thread so that Ctrl-C stops it cleanly.
 */

import { runCli } from './program.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  tty: process.stderr.isTTY === true,
  interruptible: true,
});
