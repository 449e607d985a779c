import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EFAULT, EINVAL, ENOMEM } from '../../../../src/host/errno.ts';
import {
  MAP_FIXED,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  SIGSEGV,
  VM_READ,
  VM_WRITE,
} from '../../../../src/host/mm/constants.ts';
import type { Process } from '../../../../src/host/mm/process.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { ANON, FakeDevice, makeHost, P, RW } from './helpers.ts';

/** The window the operations play in: 32 pages at A. */
const A = 0x4000_0000;
const N = 32;

/** What the naive model knows of a page. */
interface Slot {
  prot: number;
  /** File page offset, or -1 for private anonymous memory. */
  pgoff: number;
  /** Last value stored (anonymous pages). */
  tag: number;
}
type Model = (Slot | null)[];

type Op =
  | { t: 'anon'; k: number; n: number; prot: number }
  | { t: 'file'; k: number; n: number; prot: number; pgoff: number }
  | { t: 'munmap'; k: number; n: number }
  | { t: 'mprotect'; k: number; n: number; prot: number }
  | { t: 'mremap'; k: number; n: number; m: number; to: number; fixed: boolean }
  | { t: 'store'; k: number; tag: number };

const prot = fc.constantFrom(PROT_NONE, PROT_READ, RW);
const span = fc.tuple(fc.integer({ min: 0, max: N - 1 }), fc.integer({ min: 1, max: 8 })).map(([k, n]) => ({
  k,
  n: Math.min(n, N - k),
}));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ s: span, prot }).map(({ s, prot }) => ({ t: 'anon' as const, ...s, prot })),
  fc
    .record({ s: span, prot, pgoff: fc.integer({ min: 0, max: 16 }) })
    .map(({ s, prot, pgoff }) => ({ t: 'file' as const, ...s, prot, pgoff })),
  span.map((s) => ({ t: 'munmap' as const, ...s })),
  fc.record({ s: span, prot }).map(({ s, prot }) => ({ t: 'mprotect' as const, ...s, prot })),
  fc
    .record({
      s: span,
      m: fc.integer({ min: 1, max: 8 }),
      to: fc.integer({ min: 0, max: N - 1 }),
      fixed: fc.boolean(),
    })
    .map(({ s, m, to, fixed }) => ({
      t: 'mremap' as const,
      ...s,
      m: Math.min(m, N - (fixed ? to : s.k)),
      to,
      fixed,
    }))
    .filter((o) => o.m >= 1),
  fc.record({ k: fc.integer({ min: 0, max: N - 1 }), tag: fc.integer({ min: 1, max: 0xffff }) }).map((o) => ({
    t: 'store' as const,
    ...o,
  })),
);

const addr = (k: number) => A + k * P;

function clear(model: Model, k: number, n: number): void {
  for (let i = k; i < Math.min(k + n, N); i++) model[i] = null;
}

/** Apply `o` to the model; returns the result the syscall must give. `p` answers "which VMA". */
function step(model: Model, p: Process, o: Op): number {
  switch (o.t) {
    case 'anon':
      for (let i = 0; i < o.n; i++) model[o.k + i] = { prot: o.prot, pgoff: -1, tag: 0 };
      return addr(o.k);
    case 'file':
      for (let i = 0; i < o.n; i++) model[o.k + i] = { prot: o.prot, pgoff: o.pgoff + i, tag: 0 };
      return addr(o.k);
    case 'munmap':
      clear(model, o.k, o.n);
      return 0;
    case 'mprotect': {
      // Pieces up to the first hole change; the hole gives ENOMEM.
      for (let i = o.k; i < o.k + o.n; i++) {
        const s = model[i];
        if (!s) return -ENOMEM;
        s.prot = o.prot;
      }
      return 0;
    }
    case 'store': {
      const s = model[o.k];
      if (!s || !(s.prot & PROT_WRITE)) return SIGSEGV;
      if (s.pgoff < 0) s.tag = o.tag;
      return 0;
    }
    case 'mremap': {
      const { k, n: oldN, m: newN } = o;
      // The VMA oracle: the real index answers which VMA holds the old range (merging decides it).
      const inOneVma = (len: number) => {
        const v = p.mm.vmas.lookup(addr(k));
        return v !== null && addr(k) + len * P <= v.end ? v : null;
      };
      if (!o.fixed) {
        if (newN <= oldN) {
          clear(model, k + newN, oldN - newN);
          return addr(k);
        }
        const v = inOneVma(oldN);
        if (v === null || v.file !== null) return -EFAULT; // no VMA, crosses VMAs, or pfnmap growth
        if (addr(k + oldN) !== v.end || k + newN > N) return -ENOMEM;
        for (let i = k + oldN; i < k + newN; i++) if (model[i]) return -ENOMEM;
        const s = model[k]!;
        for (let i = k + oldN; i < k + newN; i++) model[i] = { prot: s.prot, pgoff: -1, tag: 0 };
        return addr(k);
      }
      const to = o.to;
      if (k + oldN > to && to + newN > k) return -EINVAL;
      const v = inOneVma(Math.min(oldN, newN));
      clear(model, to, newN);
      let len = oldN;
      if (oldN >= newN) {
        clear(model, k + newN, oldN - newN);
        len = newN;
      }
      if (v === null || (newN > len && v.file !== null)) return -EFAULT;
      const moved = model.slice(k, k + len);
      clear(model, k, len);
      for (let i = 0; i < len; i++) model[to + i] = moved[i]!;
      const s = moved[0]!;
      for (let i = len; i < newN; i++) model[to + i] = { prot: s.prot, pgoff: -1, tag: 0 };
      return addr(to);
    }
  }
}

function run(p: Process, fd: number, o: Op): number {
  switch (o.t) {
    case 'anon':
      return p.mmap(addr(o.k), o.n * P, o.prot, ANON | MAP_FIXED, -1, 0);
    case 'file':
      return p.mmap(addr(o.k), o.n * P, o.prot, MAP_SHARED | MAP_FIXED, fd, o.pgoff * P);
    case 'munmap':
      return p.munmap(addr(o.k), o.n * P);
    case 'mprotect':
      return p.mprotect(addr(o.k), o.n * P, o.prot);
    case 'store':
      return p.store(addr(o.k) + 8, 4, 0, o.tag);
    case 'mremap':
      return o.fixed
        ? p.mremap(addr(o.k), o.n * P, o.m * P, MREMAP_MAYMOVE | MREMAP_FIXED, addr(o.to))
        : p.mremap(addr(o.k), o.n * P, o.m * P, 0);
  }
}

function check(model: Model, p: Process, fd: number, w: Word64): void {
  const mm = p.mm;
  mm.vmas.check();
  const vmas = mm.vmas.all();
  for (const v of vmas) {
    expect(v.start).toBeGreaterThanOrEqual(A);
    expect(v.end).toBeLessThanOrEqual(addr(N));
  }
  expect(mm.totalVm).toBe(vmas.reduce((s, v) => s + v.pages, 0));
  const file = p.fget(fd)!;
  const fileVmas = vmas.filter((v) => v.file !== null);
  expect(file.mapping.iMmap.size).toBe(fileVmas.length);
  for (const v of fileVmas) expect(file.mapping.iMmap.has(v)).toBe(true);
  expect(file.count).toBe(1 + fileVmas.length);
  for (let i = 0; i < N; i++) {
    const s = model[i];
    const v = mm.vmas.lookup(addr(i));
    if (!s) {
      expect(v, `page ${i} should be unmapped`).toBeNull();
      expect(mm.pgtable.pfn(addr(i) / P)).toBe(-1);
      continue;
    }
    expect(v, `page ${i} should be mapped`).not.toBeNull();
    const want = (s.prot & PROT_READ ? VM_READ : 0) | (s.prot & PROT_WRITE ? VM_WRITE : 0);
    expect(v!.flags & (VM_READ | VM_WRITE), `prot of page ${i}`).toBe(want);
    expect(v!.file !== null).toBe(s.pgoff >= 0);
    if (s.pgoff >= 0) expect(v!.pgoffOf(addr(i))).toBe(s.pgoff);
    // And through the page tables.
    const r = p.load(addr(i) + 8, 4, w);
    if (s.prot === PROT_NONE) expect(r).toBe(SIGSEGV);
    else {
      expect(r).toBe(0);
      expect(w.lo, `value at page ${i}`).toBe(s.pgoff >= 0 ? s.pgoff * P + 8 : s.tag);
    }
  }
}

describe('VMA index against a naive page model', () => {
  for (const seed of [1, 0x5eed, 20261124]) {
    it(`random mmap/munmap/mprotect/mremap/store sequences (seed ${seed})`, () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
          const { host, frames } = makeHost();
          const p = host.spawn();
          const dev = new FakeDevice();
          const fd = p.installFd(host.newFile('fake', dev.fops, null));
          const model: Model = new Array<Slot | null>(N).fill(null);
          const w = new Word64();
          for (const o of ops) {
            const want = step(model, p, o);
            expect(run(p, fd, o), JSON.stringify(o)).toBe(want);
            check(model, p, fd, w);
          }
          p.exit();
          expect(frames.allocated).toBe(0);
          expect(dev.released).toEqual(['fake']);
        }),
        { seed, numRuns: 150 },
      );
    });
  }
});
