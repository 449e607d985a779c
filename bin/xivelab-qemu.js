#!/usr/bin/env node
// The `xivelab-qemu` command: the QEMU-compatible qtest/HMP front end, bundled as CommonJS with V8
// code caches in dist/xivelab-qemu/ so that it starts fast (built by `npm run build`, which
// `npm ci`, `npm pack` and a git install run through `prepare`; see scripts/bundle-qemu.mjs).
import { runQemuFrontend } from '../dist/xivelab-qemu/main.js';

process.exitCode = await runQemuFrontend(process.argv.slice(2));
