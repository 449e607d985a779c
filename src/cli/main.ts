/**
 * `xivelab` entry point (`bin/xivelab.js`, `npm start` = `xivelab compare`): the command line on
 * the process's stdout and stderr, `run` in a worker thread so that Ctrl-C stops it cleanly.
 * `xivelab qtest …` goes straight to the QEMU-compatible front end, importing only its modules
 * (not the commands, the scenario runner and the designs), so that it starts as fast as it can.
 */

const argv = process.argv.slice(2);
if (argv[0] === 'qtest') {
  const { runQemuFrontend } = await import('./qemu.ts');
  process.exitCode = await runQemuFrontend(argv.slice(1));
} else {
  const { runCli } = await import('./program.ts');
  process.exitCode = await runCli(argv, {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    tty: process.stderr.isTTY === true,
    interruptible: true,
  });
}
