import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import type { XiveRouterBackend, XiveTctxMatch } from '../../../../src/hw/xive/router.ts';
import type { XiveTctx } from '../../../../src/hw/xive/tctx.ts';
import type { TraceSink } from '../../../../src/sim/trace-sink.ts';

/** A table-backed router backend (a stand-in for the sPAPR controller) for unit tests. */
export class FakeBackend implements XiveRouterBackend {
  readonly eas = new Map<number, Uint32Array>();
  readonly ends = new Map<number, Uint32Array>();
  readonly nvts = new Map<number, Uint32Array>();
  readonly tctxs: XiveTctx[] = [];
  readonly endWrites: [number, number, number][] = [];
  readonly nvtWrites: [number, number, number][] = [];
  readonly matchCalls: unknown[][] = [];
  /** Force the match count (duplicate CAM simulation). */
  forceCount: number | null = null;

  static key(blk: number, idx: number): number {
    return blk * 0x1000_0000 + idx;
  }
  setEas(lisn: number, hi: number, lo: number): void {
    this.eas.set(lisn, Uint32Array.of(hi, lo));
  }
  end(blk: number, idx: number): Uint32Array {
    const k = FakeBackend.key(blk, idx);
    let e = this.ends.get(k);
    if (!e) {
      e = new Uint32Array(8);
      this.ends.set(k, e);
    }
    return e;
  }
  nvt(blk: number, idx: number): Uint32Array {
    const k = FakeBackend.key(blk, idx);
    let n = this.nvts.get(k);
    if (!n) {
      n = new Uint32Array(16);
      this.nvts.set(k, n);
    }
    return n;
  }
  getEas(blk: number, idx: number, eas: Uint32Array): boolean {
    const e = this.eas.get(blk * 0x1000_0000 + idx);
    if (!e) return false;
    eas.set(e);
    return true;
  }
  getEnd(blk: number, idx: number, end: Uint32Array): boolean {
    const e = this.ends.get(FakeBackend.key(blk, idx));
    if (!e) return false;
    end.set(e);
    return true;
  }
  writeEnd(blk: number, idx: number, end: Uint32Array, word: number): void {
    this.endWrites.push([blk, idx, word]);
    const e = this.end(blk, idx);
    if (word < 0) e.set(end);
    else e[word] = end[word]!;
  }
  getNvt(blk: number, idx: number, nvt: Uint32Array): boolean {
    const n = this.nvts.get(FakeBackend.key(blk, idx));
    if (!n) return false;
    nvt.set(n);
    return true;
  }
  writeNvt(blk: number, idx: number, nvt: Uint32Array, word: number): void {
    this.nvtWrites.push([blk, idx, word]);
    const n = this.nvt(blk, idx);
    if (word < 0) n.set(nvt);
    else n[word] = nvt[word]!;
  }
  matchNvt(
    format: number,
    nvtBlk: number,
    nvtIdx: number,
    ignore: boolean,
    priority: number,
    logicServ: number,
    out: XiveTctxMatch,
  ): number {
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
