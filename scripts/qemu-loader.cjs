'use strict';
// dist/xivelab-qemu/main.js (copied here by scripts/bundle-qemu.mjs): the `xivelab-qemu` entry
// point. It loads the CommonJS bundle (qemu.js and its chunks) through V8 code caches written at
// build time, so that start-up neither parses nor compiles the bundle: each file is compiled as a
// vm.Script with the `.cache` beside it (a cache V8 rejects, from another Node version or other V8
// flags, only costs the compile). The bundle is pure ASCII (checked at build), read as latin1.
//
// Usage: node dist/xivelab-qemu/main.js <QEMU options>   (or require() it: { runQemuFrontend })

const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

/** Loaded bundle files by name: their module objects and scripts (for {@link codeCaches}). */
const loaded = new Map();

/** The exports of bundle file `name` (`qemu.js`, `./chunk-hash.js`), loaded once. */
function load(name) {
  const file = name.startsWith('./') ? name.slice(2) : name;
  const seen = loaded.get(file);
  if (seen !== undefined) return seen.module.exports;
  const filename = join(__dirname, file);
  let cachedData;
  try {
    cachedData = readFileSync(`${filename}.cache`);
  } catch {
    // no cache (a build without one): V8 compiles
  }
  const script = new Script(Module.wrap(readFileSync(filename, 'latin1')), { filename, cachedData });
  const module = { exports: {} };
  loaded.set(file, { module, script });
  const req = (id) => (id.startsWith('./') ? load(id) : require(id));
  script.runInThisContext()(module.exports, req, module, filename, __dirname);
  return module.exports;
}

/**
 * The front end (`runQemuFrontend` of src/cli/qemu.ts). The monitor sockets are bound first, from
 * the command line, before the bundle loads: a client polling for the socket file (the
 * differential driver looks every 10 ms) connects while the rest starts, and is served once the
 * machine is up. Start-up runs each of its loops once (the XIVE tables' reset walks 8192 EASs), and
 * V8's on-stack replacement of such a loop costs more than the loop: it compiles it with TurboFan
 * meanwhile, polling for the result at every iteration. So OSR is off until the machine is built
 * (before the first turn of the event loop), and on again for the guest's loops. node:v8 is loaded
 * after node:net (cheaper than before it).
 */
function runQemuFrontend(argv, io) {
  const listening = load('qemu-monitors.js').listenMonitorsOf(argv);
  const bundle = load('qemu.js');
  const v8 = require('node:v8');
  v8.setFlagsFromString('--no-use-osr');
  setImmediate(() => v8.setFlagsFromString('--use-osr'));
  return bundle.runQemuFrontend(argv, io, listening);
}

/**
 * The V8 code cache of every bundle file loaded so far, by file name: taken after a start-up has
 * run, it holds the functions that start-up compiled (scripts/bundle-qemu.mjs writes them).
 */
function codeCaches() {
  return new Map([...loaded].map(([file, { script }]) => [file, script.createCachedData()]));
}

exports.runQemuFrontend = runQemuFrontend;
exports.codeCaches = codeCaches;

if (require.main === module) {
  runQemuFrontend(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
