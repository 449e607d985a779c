#!/usr/bin/env node
// The `xivelab-qemu` command: the QEMU-compatible qtest/HMP front end, compiled in dist/ (built
// by `npm run build`, which `npm ci`, `npm pack` and a git install run through `prepare`).
import { runQemuFrontend } from '../dist/cli/qemu.js';

process.exitCode = await runQemuFrontend(process.argv.slice(2));
