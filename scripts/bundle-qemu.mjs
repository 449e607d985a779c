#!/usr/bin/env node
// The `xivelab-qemu` command as one CommonJS bundle (plus the chunks only `-accel kvm` and
// `-xivelab-design` load) with V8 code caches, so that the time from spawn to the first qtest
// reply is mostly Node's own start-up:
// - one bundle instead of the ~50 modules of dist/cli/qemu.js, and CommonJS, not ESM: Node's ESM
//   loader costs ~25 ms on this path before the first line runs;
// - pure ASCII without comments, read as latin1 (no UTF-8 decoding, a one-byte string);
// - a V8 code cache per file, taken after a representative start-up (the differential driver's
//   command line, its monitor connection and first qtest command; then `-accel kvm` for the KVM
//   chunks), which main.js (scripts/qemu-loader.cjs) hands to vm.Script: no parse, no lazy
//   compile of what start-up runs.
// Built from the TypeScript sources by vite (rolldown; the sources use erasable syntax only, so
// this is type stripping), with a source map back to src/. The output directory is emptied first,
// so a cache never outlives the bundle it was taken from (V8 checks a cache's source length only).
//
// Usage: node scripts/bundle-qemu.mjs dist   (writes dist/xivelab-qemu/main.js, qemu.js, chunks,
//        their .cache files). `--code-cache DIR` is the child that writes the caches.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Bundle src/cli/qemu.ts into `outDir`, install the loader, check, then take the code caches. */
async function bundle(outDir) {
  const { build } = await import('vite');
  await build({
    configFile: false,
    root,
    logLevel: 'warn',
    build: {
      ssr: true,
      outDir,
      emptyOutDir: true,
      sourcemap: true,
      minify: false,
      target: 'node20',
      rolldownOptions: {
        // The monitor sockets' module is an entry of its own: main.js binds them before it loads
        // the front end.
        input: { qemu: 'src/cli/qemu.ts', 'qemu-monitors': 'src/cli/qemu-monitors.ts' },
        output: {
          format: 'cjs',
          entryFileNames: '[name].js',
          chunkFileNames: '[name]-[hash].js',
          charset: 'ascii',
          comments: false,
        },
      },
    },
  });
  writeFileSync(join(outDir, 'package.json'), '{ "type": "commonjs" }\n');
  copyFileSync(join(root, 'scripts', 'qemu-loader.cjs'), join(outDir, 'main.js'));
  for (const f of readdirSync(outDir).filter((f) => f.endsWith('.js'))) {
    const i = readFileSync(join(outDir, f)).findIndex((b) => b >= 0x80);
    if (i >= 0) throw new Error(`${outDir}/${f}: a non-ASCII byte at offset ${i} (main.js reads latin1)`);
  }
  // A fresh process with Node's default V8 flags, as `node main.js` runs: V8 rejects a cache
  // taken under other flags.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--code-cache', outDir], {
    stdio: 'inherit',
    env,
  });
  if (r.status !== 0) throw new Error(`scripts/bundle-qemu.mjs --code-cache ${outDir} failed`);
}

/**
 * One start-up as the differential driver makes it (its command line with a `-bios` image, the
 * monitor connected and its banner read, then the first qtest command answered); then stdin ends
 * and the front end exits.
 */
async function startUp(runQemuFrontend, extra) {
  const dir = mkdtempSync(join(tmpdir(), 'xivelab-cache-'));
  const mon = join(dir, 'mon.sock');
  const bios = join(dir, 'bios.bin'); // loaded into RAM as the driver's stub is (never run)
  writeFileSync(bios, new Uint8Array(0x400));
  const [stdin, stdout, stderr] = [new PassThrough(), new PassThrough(), new PassThrough()];
  let err = '';
  stderr.on('data', (d) => {
    err += d;
  });
  const machine = 'pseries,ic-mode=xive,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off';
  const args = ['-M', machine, '-display', 'none', '-nodefaults', '-m', '1G', '-smp', '1', '-bios', bios];
  args.push('-qtest', 'stdio', '-qtest-log', '/dev/null', '-monitor', `unix:${mon},server=on,wait=off`);
  const done = runQemuFrontend([...args, ...extra], { stdin, stdout, stderr });
  // The socket is bound once the options are checked (after an await): connect when it is.
  while (!existsSync(mon)) await new Promise((res) => setTimeout(res, 1));
  const sock = connect(mon);
  sock.setEncoding('utf8');
  let banner = '';
  await new Promise((res, rej) => {
    sock.on('data', (d) => {
      banner += d;
      if (banner.endsWith('(qemu) ')) res();
    });
    sock.on('error', rej);
  });
  const reply = new Promise((res) => stdout.once('data', (d) => res(String(d))));
  stdin.write('readq 0x8000\n');
  if (!(await reply).startsWith('OK ')) throw new Error(`code cache start-up ${extra.join(' ')}: ${err}`);
  sock.destroy();
  stdin.end();
  const code = await done;
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`code cache start-up ${extra.join(' ')}: exit ${code}: ${err}`);
}

/** Run the start-ups through `dir`/main.js and write each loaded file's cache beside it. */
async function writeCodeCaches(dir) {
  const { runQemuFrontend, codeCaches } = createRequire(import.meta.url)(join(dir, 'main.js'));
  await startUp(runQemuFrontend, []);
  // The TCG files' caches hold what a TCG start-up compiles, no more (less to deserialize).
  const tcg = codeCaches();
  await startUp(runQemuFrontend, ['-accel', 'kvm']);
  for (const [file, cache] of codeCaches()) writeFileSync(join(dir, `${file}.cache`), tcg.get(file) ?? cache);
}

if (process.argv[2] === '--code-cache') {
  await writeCodeCaches(process.argv[3]);
  process.exit(0);
}
const outDir = join(root, process.argv[2] ?? 'dist', 'xivelab-qemu');
await bundle(outDir);
console.log(`${outDir}/main.js: the xivelab-qemu bundle`);
