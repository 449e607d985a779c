/**
 * Vitest global setup: the bins (`bin/xivelab.js`, `bin/xivelab-qemu.js`) run the compiled
 * `dist/`, so rebuild it when a source file is newer than the build (or there is none), before
 * any test spawns them. `npm ci` builds it too (`prepare`); this keeps it current while editing.
 * A run of unit-test files only (`vitest run test/unit/…`) spawns no bin and skips it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

/** The newest modification time under `dir` (ms). */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) t = Math.max(t, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return t;
}

/** True when the command line names test files and all of them are unit tests. */
function unitTestsOnly(): boolean {
  const files = process.argv.slice(2).filter((a) => !a.startsWith('-') && a !== 'run');
  return files.length > 0 && files.every((f) => f.startsWith('test/unit/'));
}

export default function setup(): void {
  if (unitTestsOnly()) return;
  const built = join(root, 'dist', 'index.js');
  const inputs = Math.max(
    newest(join(root, 'src')),
    statSync(join(root, 'tsconfig.build.json')).mtimeMs,
    statSync(join(root, 'tsconfig.json')).mtimeMs,
  );
  if (existsSync(built) && statSync(built).mtimeMs >= inputs) return;
  // A type error still emits: the tests then show what it breaks (npm run typecheck names it).
  const r = spawnSync('npm', ['run', '--silent', 'build'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0)
    process.stderr.write('test/global-setup.ts: `npm run build` failed; dist/ may be stale\n');
}
