#!/usr/bin/env node
// After `tsc -p tsconfig.build.json`: the compiler rewrites the sources' relative `.ts` import
// specifiers to `.js` in the emitted JavaScript (rewriteRelativeImportExtensions) but leaves
// them as written in the declaration files, which a consumer's TypeScript rejects (TS5097 unless
// it sets allowImportingTsExtensions). Rewrite them in every `.d.ts` under the given directory.
//
// Usage: node scripts/dts-extensions.mjs dist

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'dist';
const SPEC = /((?:from|import)\s*\(?\s*['"])(\.\.?\/[^'"]*?)\.ts(['"])/g;
let files = 0;
for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const path = join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(path, 'utf8');
  const out = text.replace(SPEC, '$1$2.js$3');
  if (out !== text) {
    writeFileSync(path, out);
    files++;
  }
}
console.log(`${dir}: .ts → .js import specifiers in ${files} declaration files`);
