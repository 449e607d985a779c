#!/usr/bin/env node
'use strict';
// The `xivelab-qemu` command: the QEMU-compatible qtest/HMP front end. CommonJS, as the bundle it
// runs (dist/xivelab-qemu/, built by `npm run build`, which `npm ci`, `npm pack` and a git install
// run through `prepare`; see scripts/bundle-qemu.mjs): an ES module here would start Node's ESM
// loader, about 25 ms of a start-up that must match QEMU's.
require('../dist/xivelab-qemu/main.js')
  .runQemuFrontend(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
