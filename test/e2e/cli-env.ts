/** Running the `xivelab` CLI from the e2e tests: in process, or through the real entry point. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type CliIo, runCli } from '../../src/cli/program.ts';

/** The repository root. */
export const root = new URL('../../', import.meta.url);

/** `bin/xivelab.js`: the installed command, on the compiled `dist/` (test/global-setup.ts builds it). */
export const xivelabBin = fileURLToPath(new URL('bin/xivelab.js', root));

/** `xivelab argv…` in this process: exit code and what it wrote. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return cliWith({}, ...argv);
}

/** {@link cli} with more of the {@link CliIo} (a terminal, a clock). */
export async function cliWith(
  io: Omit<CliIo, 'out' | 'err'>,
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { ...io, out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/** The real entry point, as `npx xivelab` runs it (plain node on the build). */
export function spawnCli(...argv: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [xivelabBin, ...argv], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
