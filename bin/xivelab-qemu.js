#!/usr/bin/env node
// Thin launcher: the QEMU-compatible qtest/HMP front end, run through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
const { runQemuFrontend } = await import('../src/cli/qemu.ts');
process.exitCode = await runQemuFrontend(process.argv.slice(2));
