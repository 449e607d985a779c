#!/usr/bin/env -S NODE_EXTRA_CA_CERTS= node
'use strict';
// The `xivelab-qemu` command: the QEMU-compatible qtest/HMP front end. CommonJS, as the bundle it
// runs (dist/xivelab-qemu/, built by `npm run build`, which `npm ci`, `npm pack` and a git install
// run through `prepare`; see scripts/bundle-qemu.mjs): an ES module here would start Node's ESM
// loader, about 25 ms of a start-up that must match QEMU's.
//
// The interpreter line empties NODE_EXTRA_CA_CERTS: this command opens no TLS connection, and
// Node 20 reads and parses that file, plus its bundled root store, before the first line of
// JavaScript runs (made eager by nodejs/node#23354; the OpenSSL 3 cost is nodejs/node#40524; later
// Node lines load certificates only when `tls` is loaded, nodejs/node#59856). With a 220 KB system
// bundle there that is ~50 ms of a ~0.1 s start-up. `env -S` is GNU coreutils 8.30+ and the BSDs.
require('../dist/xivelab-qemu/main.js')
  .runQemuFrontend(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
