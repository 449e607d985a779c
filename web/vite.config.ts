import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The web app of `xivelab ui`: built into dist/web, which the CLI serves; no external assets. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    assetsInlineLimit: 0,
  },
});
