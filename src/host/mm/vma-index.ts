/**
 * The per-process VMA index: a sorted array of non-overlapping VMAs with binary search. It plays
 * the role of the mm's maple tree (rbtree + list in 5.2); only its lookup semantics matter.
 */

import type { Vma } from './vma.ts';

export class VmaIndex {
  private readonly v: Vma[];

  constructor() {
    this.v = [];
  }

  /** `mm->map_count`. */
  get count(): number {
    return this.v.length;
  }

  at(i: number): Vma | null {
    return this.v[i] ?? null;
  }

  /** Index of the first VMA with `end > addr` (may be `count`). */
  lowerBound(addr: number): number {
    const v = this.v;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** `find_vma`: the first VMA with `end > addr`, which may start above `addr`. */
  find(addr: number): Vma | null {
    return this.v[this.lowerBound(addr)] ?? null;
  }

  /** The VMA containing `addr`, or null. */
  lookup(addr: number): Vma | null {
    const vma = this.find(addr);
    return vma !== null && vma.start <= addr ? vma : null;
  }

  /** `find_vma_intersection`: the first VMA overlapping `[start, end)`. */
  findIntersection(start: number, end: number): Vma | null {
    const vma = this.find(start);
    return vma !== null && vma.start < end ? vma : null;
  }

  /** Position of a linked VMA (throws if it is not linked: a model bug). */
  indexOf(vma: Vma): number {
    const i = this.lowerBound(vma.start);
    if (this.v[i] !== vma) throw new Error(`VmaIndex: VMA ${vma.id} is not linked`);
    return i;
  }

  prev(vma: Vma): Vma | null {
    return this.v[this.indexOf(vma) - 1] ?? null;
  }

  next(vma: Vma): Vma | null {
    return this.v[this.indexOf(vma) + 1] ?? null;
  }

  /** Link a VMA; it must not overlap any linked one. */
  insert(vma: Vma): void {
    if (!(vma.start < vma.end)) throw new Error(`VmaIndex: empty VMA ${vma.id}`);
    const i = this.lowerBound(vma.start);
    const after = this.v[i];
    const before = this.v[i - 1];
    if ((after !== undefined && after.start < vma.end) || (before !== undefined && before.end > vma.start)) {
      throw new Error(`VmaIndex: VMA ${vma.id} [${vma.start}, ${vma.end}) overlaps a linked VMA`);
    }
    this.v.splice(i, 0, vma);
  }

  remove(vma: Vma): void {
    this.v.splice(this.indexOf(vma), 1);
  }

  /** The VMAs overlapping `[start, end)`, in address order (a copy: safe to mutate the index). */
  range(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    for (let i = this.lowerBound(start); i < this.v.length && this.v[i]!.start < end; i++)
      out.push(this.v[i]!);
    return out;
  }

  /** All VMAs in address order (a copy). */
  all(): Vma[] {
    return this.v.slice();
  }

  /** Throws unless the VMAs are sorted, non-empty and non-overlapping (model self-check). */
  check(): void {
    for (let i = 0; i < this.v.length; i++) {
      const a = this.v[i]!;
      if (!(a.start < a.end)) throw new Error(`VmaIndex: empty VMA ${a.id}`);
      const b = this.v[i + 1];
      if (b !== undefined && a.end > b.start) throw new Error(`VmaIndex: VMAs ${a.id} and ${b.id} overlap`);
    }
  }
}
