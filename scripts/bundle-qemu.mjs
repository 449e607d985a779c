#!/usr/bin/env node
// The `xivelab-qemu` command as one bundled module (plus the chunks only `-accel kvm` and
// `-xivelab-design` import), so that its start-up resolves and links a handful of files instead
// of the ~50 modules of dist/cli/qemu.js: Node's ESM loader costs about a millisecond per module,
// a large share of the time from spawn to the first qtest reply. Built from the TypeScript
// sources by vite (rolldown; the sources use erasable syntax only, so this is type stripping),
// with a source map back to src/.
//
// Usage: node scripts/bundle-qemu.mjs dist   (writes dist/xivelab-qemu/main.js and its chunks)

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, process.argv[2] ?? 'dist', 'xivelab-qemu');
await build({
  configFile: false,
  root,
  logLevel: 'warn',
  build: {
    ssr: 'src/cli/qemu.ts',
    outDir,
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    target: 'node20',
    rolldownOptions: { output: { entryFileNames: 'main.js', chunkFileNames: '[name]-[hash].js' } },
  },
});
console.log(`${outDir}/main.js: the xivelab-qemu bundle`);
