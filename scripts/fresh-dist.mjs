#!/usr/bin/env node
// Rebuild dist/ (`npm run build`) when a source file or a build script is newer than the build, or
// there is none: `npm start` and the test suite run the compiled CLI (bin/xivelab.js → dist/), which
// must match the sources being edited. On a fresh clone `npm ci` has just built it (`prepare`):
// nothing to do.
//
// Usage: node scripts/fresh-dist.mjs

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

/** The newest modification time under `dir` (ms). */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) t = Math.max(t, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return t;
}

const built = join(root, 'dist', 'index.js');
const inputs = Math.max(
  newest(join(root, 'src')),
  newest(join(root, 'scripts')),
  statSync(join(root, 'tsconfig.build.json')).mtimeMs,
  statSync(join(root, 'tsconfig.json')).mtimeMs,
);
if (!existsSync(built) || statSync(built).mtimeMs < inputs) {
  // A type error still emits: what runs then shows what it breaks (npm run typecheck names it).
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) process.stderr.write('scripts/fresh-dist.mjs: `npm run build` failed; dist/ may be stale\n');
}
