/**
 * `xivelab` entry point (`bin/xivelab.js`, `npm start` = `xivelab compare`). `xivelab qtest …`
 * hands the rest of the command line to the QEMU-compatible front end (`xivelab-qemu`), whose
 * arguments are QEMU's, not commander's.
 */

import { runCli } from './program.ts';
import { runQemuFrontend } from './qemu.ts';

const argv = process.argv.slice(2);
process.exitCode =
  argv[0] === 'qtest'
    ? await runQemuFrontend(argv.slice(1))
    : await runCli(argv, {
        out: (s) => process.stdout.write(s),
        err: (s) => process.stderr.write(s),
        tty: process.stderr.isTTY === true,
      });
