#!/usr/bin/env node
// Put back the platform-gated optional packages that `npm install` leaves out of
// package-lock.json when the registry serves only the Linux builds (see README, "Notes for
// maintainers"). For every package in the lock that lists optionalDependencies, each optional
// dependency missing from the lock gets an entry with the parent's pinned version and the
// os/cpu/libc fields its name encodes (`cli-darwin-arm64`, `resvg-js-linux-x64-musl`, …), so that
// `npm ci` accepts the lock on every platform and never fetches those packages here.
//
// Usage: node scripts/fix-lock.mjs [--check] [path/to/package-lock.json]
//   --check: change nothing; exit 1 and list what is missing.
// No dependencies; idempotent.

import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const check = args.includes('--check');
const file = args.find((a) => !a.startsWith('--')) ?? 'package-lock.json';

const OS = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'sunos', 'win32', 'aix', 'netbsd'];
const CPU = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'];

/**
 * os/cpu/libc from a platform package name, or null when the name names no platform.
 * @param {string} name
 */
export function platformOf(name) {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const parts = base.split('-');
  const os = parts.find((p) => OS.includes(p));
  if (!os) return null;
  const osAt = parts.indexOf(os);
  const cpu = parts.slice(osAt + 1).find((p) => CPU.includes(p));
  if (!cpu) return null;
  const out = { os: [os], cpu: [cpu] };
  if (os === 'linux') {
    // As the packages declare it: `-musl` → musl; `-gnu` or no suffix (Biome) → glibc;
    // `-gnueabihf` declares none.
    if (parts.includes('musl')) out.libc = ['musl'];
    else if (parts.includes('gnu') || parts.length === osAt + 2) out.libc = ['glibc'];
  }
  return out;
}

const lock = JSON.parse(readFileSync(file, 'utf8'));
const pkgs = lock.packages ?? {};
const missing = [];
for (const [path, entry] of Object.entries(pkgs)) {
  if (path === '' || !entry.optionalDependencies) continue;
  const prefix = path.slice(0, path.lastIndexOf('node_modules/'));
  for (const [dep, spec] of Object.entries(entry.optionalDependencies)) {
    const nested = `${path}/node_modules/${dep}`;
    const hoisted = `${prefix}node_modules/${dep}`;
    if (pkgs[nested] || pkgs[hoisted] || pkgs[`node_modules/${dep}`]) continue;
    const plat = platformOf(dep);
    if (!plat) continue;
    const version = String(spec).replace(/^[~^=]/, '');
    const add = { version, ...plat, optional: true };
    if (entry.dev) add.dev = true;
    if (entry.license) add.license = entry.license;
    if (entry.engines) add.engines = entry.engines;
    missing.push([`node_modules/${dep}`, add]);
  }
}

if (check) {
  for (const [p] of missing) console.log(`missing: ${p}`);
  process.exit(missing.length === 0 ? 0 : 1);
}
for (const [p, add] of missing) pkgs[p] = add;
// npm keeps `packages` sorted by path.
lock.packages = Object.fromEntries(
  Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)),
);
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`${file}: ${missing.length} platform entr${missing.length === 1 ? 'y' : 'ies'} added`);
for (const [p] of missing) console.log(`  ${p}`);
