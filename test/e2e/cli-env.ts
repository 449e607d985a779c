/** Running the `xivelab` CLI from the e2e tests: in process, or through the real entry point. */
import { spawnSync } from 'node:child_process';
import { runCli } from '../../src/cli/program.ts';

/** The repository root. */
export const root = new URL('../../', import.meta.url);

/** `xivelab argv…` in this process: exit code and what it wrote. */
export async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/** The real entry point, as `npx xivelab` runs it. */
export function spawnCli(...argv: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...argv], {
    cwd: root,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
