import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import type { XiveRouterBackend } from '../../../../src/hw/xive/router.ts';
import type { XiveTctx } from '../../../../src/hw/xive/tctx.ts';
import type { TraceSink } from '../../../../src/sim/trace-sink.ts';

/**
 * A table of `words`-word entries keyed by (block, index), each made on first use; writes
 * back one word, or all with `word` −1, and logs [blk, idx, word].
 */
class WordTable {
  readonly rows = new Map<number, Uint32Array>();
  readonly writes: [number, number, number][] = [];
  readonly words: number;
  constructor(words: number) {
    this.words = words;
  }
  static key(blk: number, idx: number): number {
    return blk * 0x1000_0000 + idx;
  }
  row(blk: number, idx: number): Uint32Array {
    const k = WordTable.key(blk, idx);
    let r = this.rows.get(k);
    if (!r) {
      r = new Uint32Array(this.words);
      this.rows.set(k, r);
    }
    return r;
  }
  read(blk: number, idx: number, into: Uint32Array): boolean {
    const r = this.rows.get(WordTable.key(blk, idx));
    if (!r) return false;
    into.set(r);
    return true;
  }
  write(blk: number, idx: number, from: Uint32Array, word: number): void {
    this.writes.push([blk, idx, word]);
    const r = this.row(blk, idx);
    if (word < 0) r.set(from);
    else r[word] = from[word]!;
  }
}

/** A table-backed router backend (a stand-in for the sPAPR controller) for unit tests. */
export class FakeBackend implements XiveRouterBackend {
  readonly eas = new WordTable(2);
  readonly ends = new WordTable(8);
  readonly nvts = new WordTable(16);
  readonly tctxs: XiveTctx[] = [];
  readonly endWrites = this.ends.writes;
  readonly nvtWrites = this.nvts.writes;
  readonly matchCalls: unknown[][] = [];
  /** Force the match count (duplicate CAM simulation). */
  forceCount: number | null = null;

  setEas(lisn: number, hi: number, lo: number): void {
    this.eas.row(0, lisn).set([hi, lo]);
  }
  end(blk: number, idx: number): Uint32Array {
    return this.ends.row(blk, idx);
  }
  nvt(blk: number, idx: number): Uint32Array {
    return this.nvts.row(blk, idx);
  }
  getEas(blk: number, idx: number, eas: Uint32Array): boolean {
    return this.eas.read(blk, idx, eas);
  }
  getEnd(blk: number, idx: number, end: Uint32Array): boolean {
    return this.ends.read(blk, idx, end);
  }
  writeEnd(blk: number, idx: number, end: Uint32Array, word: number): void {
    this.ends.write(blk, idx, end, word);
  }
  getNvt(blk: number, idx: number, nvt: Uint32Array): boolean {
    return this.nvts.read(blk, idx, nvt);
  }
  writeNvt(blk: number, idx: number, nvt: Uint32Array, word: number): void {
    this.nvts.write(blk, idx, nvt, word);
  }
  matchNvt(...args: Parameters<XiveRouterBackend['matchNvt']>): number {
    const [format, nvtBlk, nvtIdx, ignore, priority, logicServ, out] = args;
    this.matchCalls.push([format, nvtBlk, nvtIdx, ignore, priority, logicServ]);
    let count = 0;
    for (const t of this.tctxs) {
      const ring = t.match(format, nvtBlk, nvtIdx, ignore, logicServ);
      if (ring >= 0) {
        if (count === 0) {
          out.tctx = t;
          out.ring = ring;
        }
        count++;
      }
    }
    return this.forceCount ?? count;
  }
}

/** 16 MiB of RAM at 0. */
export function ram(trace: TraceSink): PhysMem {
  const m = new PhysMem(trace);
  m.addRam(0, 16 << 20, 'ram');
  return m;
}
