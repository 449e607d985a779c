/**
 * The npm package as a user gets it: `npm pack` (which builds dist/ through `prepare`), the
 * tarball installed offline into an empty project, then the bins run with plain node, a `.mjs`
 * runs the README's host example, and `tsc` (strict) type-checks the docs/api.md examples, which
 * then run with node against the installed package.
 *
 * Offline: `npm install ./xivelab.tgz --offline` needs the registry's package documents, which
 * `npm ci` does not cache, so the empty project gets a package-lock.json made from this
 * project's (the tarball plus the lock's non-dev packages and @types/node) and `npm ci --offline`
 * installs it from the npm cache that this project's own `npm ci` filled.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { Result } from '../../src/scenario/result.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  author: string;
  bin: Record<string, string>;
  engines: Record<string, string>;
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
};

interface LockEntry {
  version?: string;
  dev?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  [k: string]: unknown;
}

/** A package-lock.json for a project depending on the tarball `tgz` (and @types/node). */
function consumerLock(tgz: string, bytes: Buffer): { manifest: object; lock: object } {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const typesNode = lock.packages['node_modules/@types/node']!.version!;
  const dependencies = { [pkg.name]: `file:${tgz}`, '@types/node': typesNode };
  const packages: Record<string, LockEntry> = {
    '': { name: 'consumer', dependencies },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: `file:${tgz}`,
      integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  const typesOnly = new Set(['node_modules/@types/node', 'node_modules/undici-types']);
  for (const [path, e] of Object.entries(lock.packages)) {
    if (path === '' || (e.dev === true && !typesOnly.has(path))) continue;
    const { dev: _d, devOptional: _o, peer: _p, ...entry } = e;
    packages[path] = entry;
  }
  return {
    manifest: { name: 'consumer', private: true, type: 'module', dependencies },
    lock: { name: 'consumer', lockfileVersion: 3, requires: true, packages },
  };
}

/** The ```ts blocks of a Markdown text. */
function tsBlocks(md: string): string[] {
  return [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const work = mkdtempSync(join(tmpdir(), 'xivelab-pack-'));
const project = join(work, 'consumer');
let tarball = '';
let listing: string[] = [];

// Under `npm test` the environment names this project as npm's local prefix: not the consumer's.
const { npm_config_local_prefix: _, ...env } = process.env;

function run(cmd: string, args: string[], input = ''): { code: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd: project, env, input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  // dist/ is current (test/global-setup.ts); `prepare` would rebuild it under the feet of the
  // other e2e files, which run the bins on it at the same time.
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], {
    cwd: root,
    stdio: 'ignore',
  });
  tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  listing = execFileSync('tar', ['tzf', join(work, tarball)], { encoding: 'utf8' })
    .trim()
    .split('\n');
  mkdirSync(project);
  const bytes = readFileSync(join(work, tarball));
  writeFileSync(join(project, tarball), bytes);
  const { manifest, lock } = consumerLock(tarball, bytes);
  writeFileSync(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(project, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: project, env, stdio: 'ignore' });
}, 600_000);

describe('npm pack', () => {
  test('the tarball: compiled ESM with declarations and source maps, the bins, LICENSE; no tests', () => {
    expect(tarball).toBe(`${pkg.name}-${pkg.version}.tgz`);
    // npm ci, npm pack and a git install build dist/ through `prepare`.
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.scripts.build).toBe(
      'tsc -p tsconfig.build.json && node scripts/plain-twins.mjs dist && node scripts/dts-extensions.mjs dist && node scripts/bundle-qemu.mjs dist && npm run build:web',
    );
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/cli/main.js',
      'dist/cli/qemu.js',
      'dist/xivelab-qemu/main.js',
      'dist/cli/ui.js',
      'dist/web/index.html',
      'bin/xivelab.js',
      'bin/xivelab-qemu.cjs',
      'LICENSE',
      'README.md',
      'scenarios/demo.yaml',
      'schema/result.json',
    ]) {
      expect(listing).toContain(`package/${f}`);
    }
    expect(listing.filter((f) => /^package\/test\/|\.test\.[jt]s$|^package\/dist-bench\//.test(f))).toEqual(
      [],
    );
    // The declarations import .js files (a consumer's tsc rejects .ts specifiers, TS5097).
    const dts = readFileSync(join(project, 'node_modules/xivelab/dist/index.d.ts'), 'utf8');
    expect(dts).toContain("from './host/host.js'");
    expect(dts).not.toMatch(/from '\.[^']*\.ts'/);
    // The sequential partition-scoped fault runs the plain twin of its step generator.
    const kvm = readFileSync(join(project, 'node_modules/xivelab/dist/host/kvm/kvm.js'), 'utf8');
    expect(kvm).toContain('return driveSteps(this.partitionFaultPlain, lockHeldForever, this, gfn, write);');
    expect(kvm).toMatch(/^\s*\*partitionFaultSteps\(gfn, write\) \{/m);
  });

  test('LICENSE is the MIT license of package.json, held by the xivelab authors', () => {
    expect([pkg.license, pkg.author]).toEqual(['MIT', 'the xivelab authors']);
    const text = readFileSync(join(project, 'node_modules/xivelab/LICENSE'), 'utf8');
    expect(text.split('\n').slice(0, 3)).toEqual([
      'MIT License',
      '',
      'Copyright (c) 2026 the xivelab authors',
    ]);
  });
});

describe('the installed package (plain node, no tsx)', () => {
  test('no tsx in the installed tree', () => {
    expect(existsSync(join(project, 'node_modules/tsx'))).toBe(false);
    expect(existsSync(join(project, 'node_modules/xivelab/dist/index.js'))).toBe(true);
  });

  test('npx xivelab --version', () => {
    const r = run('npx', ['--offline', 'xivelab', '--version']);
    expect(r.err).toBe('');
    expect([r.code, r.out]).toEqual([0, `${pkg.version}\n`]);
  });

  test('xivelab demo --json validates against the result schema', () => {
    const r = run(join(project, 'node_modules/.bin/xivelab'), ['demo', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const res = Result.parse(JSON.parse(r.out));
    expect([res.scenario, res.seed, res.accel, res.events.deviceTriggers]).toEqual([
      'demo',
      1,
      'emulated',
      20000,
    ]);
    expect(res.violations).toEqual([]);
  });

  test('xivelab-qemu answers qtest: writel then readl of guest RAM', () => {
    const r = run(
      join(project, 'node_modules/.bin/xivelab-qemu'),
      ['-M', 'pseries,ic-mode=xive', '-display', 'none', '-nodefaults', '-S', '-qtest', 'stdio'],
      'writel 0x200000 0x12345678\nreadl 0x200000\n',
    );
    expect(r.err).toBe('');
    expect([r.code, r.out]).toEqual([0, 'OK\nOK 0x0000000012345678\n']);
  });

  test("a plain .mjs imports createHost and runs the README's host example", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = tsBlocks(readme.slice(readme.indexOf('## The host API')))[0]!;
    writeFileSync(
      join(project, 'readme-host.mjs'),
      [
        "import assert from 'node:assert/strict';",
        "import { createHost, kvmUapi, mmConstants } from 'xivelab';",
        'const { KVM_API_VERSION, KVM_CREATE_DEVICE, KVM_CREATE_VM, KVM_DEV_TYPE_XIVE, KVM_GET_API_VERSION, encodeKvmCreateDevice } = kvmUapi;',
        'const { MAP_SHARED, PROT_READ, PROT_WRITE } = mmConstants;',
        'const expect = (a) => ({ toBe: (b) => assert.equal(a, b) });',
        block,
        'console.log(JSON.stringify({ kvm, vm, xive, esb: esb > 0 }));',
        '',
      ].join('\n'),
    );
    const r = run(process.execPath, ['readme-host.mjs']);
    expect(r.err).toBe('');
    expect([r.code, r.out]).toEqual([0, '{"kvm":0,"vm":1,"xive":2,"esb":true}\n']);
  });

  test("docs/api.md's examples: tsc --noEmit with default strict settings passes, and each runs", () => {
    const examples = tsBlocks(readFileSync(join(root, 'docs/api.md'), 'utf8'));
    expect(examples.length).toBe(5);
    examples.forEach((src, i) => {
      writeFileSync(join(project, `example-${i}.ts`), src);
    });
    writeFileSync(
      join(project, 'tsconfig.json'),
      `${JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', target: 'es2022', types: ['node'], outDir: 'out' }, include: ['*.ts'] }, null, 2)}\n`,
    );
    // A Node project's settings: strict, and (TypeScript 6+ loads no @types by default) node's types.
    const tsc = join(root, 'node_modules/.bin/tsc');
    const check = run(tsc, ['--noEmit', '-p', '.']);
    expect(check.out + check.err).toBe('');
    expect(check.code).toBe(0);
    expect(run(tsc, ['-p', '.']).code).toBe(0);
    examples.forEach((_, i) => {
      const r = run(process.execPath, [`out/example-${i}.js`]);
      expect(r.err, `docs/api.md example ${i + 1}`).toBe('');
      expect(r.code, `docs/api.md example ${i + 1}`).toBe(0);
    });
  });
});
