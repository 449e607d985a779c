/**
 * The layer rule of the architecture (docs/architecture.md): imports point down the stack and
 * never up, the guest sees nothing of the host or the VMM, and the core stays free of `node:*`
 * so that it runs in worker threads and in a browser.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../src');

/** Rank of each layer: a file may import its own layer or a lower rank only. */
const RANK: Readonly<Record<string, number>> = {
  sim: 0,
  hw: 1,
  host: 2,
  guest: 2,
  vmm: 3,
  designs: 4,
  check: 4,
  scenario: 5,
  report: 6,
  cli: 7,
};

/** Layers the guest may import: it defines its own vCPU interface and uses only the engine. */
const GUEST_MAY_IMPORT = new Set(['guest', 'sim']);
/** Layers of equal rank that may import each other (the designs and the checks sit side by side). */
const PEERS = new Set(['check>designs', 'designs>check']);
const CORE = new Set(['sim', 'hw', 'host', 'guest', 'vmm', 'designs', 'check']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function layerOf(file: string): string {
  return relative(SRC, file).split('/')[0] ?? '';
}

/** Every relative import of `file` that breaks the layer rule, as `from → to`. */
function upwardImports(file: string, text: string): string[] {
  const from = layerOf(file);
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = normalize(join(dirname(file), m[1] ?? ''));
    const to = layerOf(target);
    const a = RANK[from];
    const b = RANK[to];
    if (a === undefined || b === undefined || from === to) continue;
    const bad =
      from === 'guest' ? !GUEST_MAY_IMPORT.has(to) : b > a || (b === a && !PEERS.has(`${from}>${to}`));
    if (bad) out.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
  }
  return out;
}

describe('layers', () => {
  const files = sources(SRC);

  it('finds the source tree (every layer present)', () => {
    const layers = new Set(files.map(layerOf));
    for (const l of Object.keys(RANK)) expect(layers.has(l), l).toBe(true);
  });

  it('no import points up a layer (hw < host, guest < vmm < designs/check < scenario < report < cli)', () => {
    const bad = files.flatMap((f) => upwardImports(f, readFileSync(f, 'utf8')));
    expect(bad).toEqual([]);
  });

  it('the core imports no node:* module', () => {
    const bad = files.filter(
      (f) => CORE.has(layerOf(f)) && /from\s+'node:|import\(\s*'node:/.test(readFileSync(f, 'utf8')),
    );
    expect(bad.map((f) => relative(SRC, f))).toEqual([]);
  });

  it('the checker itself flags an upward import and a guest import of the host', () => {
    expect(upwardImports(join(SRC, 'hw/x.ts'), "import { a } from '../host/y.ts';")).toEqual([
      'hw/x.ts → host/y.ts',
    ]);
    expect(upwardImports(join(SRC, 'guest/x.ts'), "import { a } from '../hw/y.ts';")).toEqual([
      'guest/x.ts → hw/y.ts',
    ]);
    expect(upwardImports(join(SRC, 'vmm/x.ts'), "import { a } from '../host/y.ts';")).toEqual([]);
    expect(upwardImports(join(SRC, 'check/x.ts'), "import { a } from '../designs/y.ts';")).toEqual([]);
    expect(upwardImports(join(SRC, 'host/x.ts'), "import { a } from '../guest/y.ts';")).toEqual([
      'host/x.ts → guest/y.ts',
    ]);
  });
});
