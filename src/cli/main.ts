/**
 * `xivelab` entry point (`bin/xivelab.js`, `npm start` = `xivelab demo`).
 */

import { runCli } from './program.ts';

const code = await runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
process.exitCode = code;
