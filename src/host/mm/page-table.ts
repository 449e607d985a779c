/**
 * A process page table: a 4-level radix tree shaped like ppc64 radix with 64 KiB pages
 * (PGD 13 bits, PUD 9, PMD 9, PTE 5, page offset 16: 52-bit virtual addresses). Levels are
 * sparse: a directory or table page exists only while something below it is present.
 *
 * Each leaf table page is typed arrays of pfns and one of flags, 6 bytes a PTE (Linux's is 8).
 * pfns of MMIO frames exceed 2^32 (ESB pages at 0x6_0000_0000_0000): a pfn is kept as its low
 * 32 bits in a u32 and the rest in a byte. A host physical address is below 2^51
 * (arch/powerpc/include/asm/book3s/64/mmu.h MAX_PHYSMEM_BITS), so a pfn is below 2^35; the flags
 * fit a byte.
 * Everything is indexed by virtual page number (`vpn = address / PAGE_SIZE`).
 */

/** Model PTE bits (the layout is ours; the meanings are Linux's pte_present/write/special/dirty). */
export const PTE_PRESENT = 0x1;
export const PTE_WRITE = 0x2;
/** `pte_special`: a raw pfn with no struct page behind it (VM_PFNMAP / vmf_insert_pfn). */
export const PTE_SPECIAL = 0x4;
export const PTE_DIRTY = 0x8;
export const PTE_ACCESSED = 0x10;
/** Model bit: the frame is a private anonymous page owned by this PTE, freed when it goes. */
export const PTE_ANON = 0x20;
/**
 * Model bit: present but inaccessible to user accesses (a PROT_NONE VMA keeps its pages, as
 * Linux's `pte_protnone`); the access faults and the VMA check raises SIGSEGV.
 */
export const PTE_PROTNONE = 0x40;

export const PTE_INDEX_SIZE = 5;
export const PMD_INDEX_SIZE = 9;
export const PUD_INDEX_SIZE = 9;
export const PGD_INDEX_SIZE = 13;
const PTRS_PER_PTE = 2 ** PTE_INDEX_SIZE;
const PTRS_PER_PMD = 2 ** PMD_INDEX_SIZE;
const PTRS_PER_PUD = 2 ** PUD_INDEX_SIZE;
const PTRS_PER_PGD = 2 ** PGD_INDEX_SIZE;
/** Pages covered by one entry of each level. */
const PMD_SPAN = PTRS_PER_PTE;
const PUD_SPAN = PMD_SPAN * PTRS_PER_PMD;
const PGD_SPAN = PUD_SPAN * PTRS_PER_PUD;
const PGD_SCALE = 1 / PGD_SPAN;
/** Largest virtual page number + 1. */
export const MAX_VPN = PGD_SPAN * PTRS_PER_PGD;

/**
 * Slot of the PTE of `vpn` in its leaf table (`vpn mod 32`). vpns of the top of the address
 * space exceed 2^31: the remainder is taken by subtraction, not by a float modulo.
 */
export function pteIndex(vpn: number): number {
  return vpn - Math.floor(vpn * (1 / PTRS_PER_PTE)) * PTRS_PER_PTE;
}

const U32 = 2 ** 32;
/** pfns {@link PageTable.set} takes: below 2^40 (the high byte's range). */
const PFN_LIMIT = 2 ** 40;

/** Leaf tables in a page table's first slab, and at most in one slab (each slab doubles). */
const SLAB_FIRST = 8;
const SLAB_MAX = 512;

/**
 * A leaf table page: `pfnLo[base + i]`, `pfnHi[base + i]` (the pfn's low 32 bits and the rest)
 * and `flags[base + i]` (0 = none) of its 32 PTEs, in slabs
 * its page table shares among its leaves ({@link PageTable.set}): a typed array (or a view) of
 * each leaf's own costs V8 an object or an ArrayBuffer and a malloc, and a full VM's ESB mapping
 * needs 65,536 leaves. A slab is freed with the last table of it.
 */
export class PteTable {
  readonly pfnLo: Uint32Array;
  readonly pfnHi: Uint8Array;
  readonly flags: Uint8Array;
  /** Slot of this table's first PTE in the slabs. */
  readonly base: number;
  used: number;
  constructor(slab: Slab, base: number) {
    this.pfnLo = slab.pfnLo;
    this.pfnHi = slab.pfnHi;
    this.flags = slab.flags;
    this.base = base;
    this.used = 0;
  }

  /** The pfn at slot `i`. */
  pfn(i: number): number {
    return this.pfnHi[i]! * U32 + this.pfnLo[i]!;
  }
}

/** A slab: the PTE arrays of {@link PteTable}s, in one buffer. */
class Slab {
  readonly pfnLo: Uint32Array;
  readonly pfnHi: Uint8Array;
  readonly flags: Uint8Array;
  constructor(n: number) {
    const buf = new ArrayBuffer(6 * n);
    this.pfnLo = new Uint32Array(buf, 0, n);
    this.pfnHi = new Uint8Array(buf, 4 * n, n);
    this.flags = new Uint8Array(buf, 5 * n, n);
  }
}

/** A directory page (PGD, PUD or PMD level). */
class Dir<T> {
  readonly slots: (T | null)[];
  used: number;
  constructor(n: number) {
    this.slots = new Array<T | null>(n).fill(null);
    this.used = 0;
  }
}

type Pmd = Dir<PteTable>;
type Pud = Dir<Pmd>;

/** Callback of {@link PageTable.scan}: may clear or change the entry it is given. */
export type PteVisitor = (vpn: number, pfn: number, flags: number) => void;

/** Slots of {@link PageTable.tlb}. */
export const TLB_VPN = 0;
export const TLB_PFN = 1;
export const TLB_FLAGS = 2;

export class PageTable {
  private readonly pgd: Dir<Pud>;
  /** Present PTEs. */
  present: number;
  /** Allocated table pages below the PGD (directories and leaves). */
  tablePages: number;
  /**
   * The last user translation (`uaccess.ts`): `[TLB_VPN]` (−1: none), `[TLB_PFN]`,
   * `[TLB_FLAGS]`, a copy of that PTE. Every change of a PTE through this table drops it (unmap,
   * zap, mprotect, a new PTE), so while it is valid it equals the PTE: the kernel's many small
   * `copy_from_user`s of one struct skip the walk. A typed array: a hit writes no field, so it
   * may run on a world the explorer froze.
   */
  readonly tlb: Float64Array;
  /**
   * The slab new leaves are cut from, and the next free slot of it. Per page table, so that a
   * slab holds one process's PTEs only (the explorer's snapshot of a world captures whole typed
   * arrays: a slab shared with another world would be rolled back with this one).
   */
  private slab: Slab;
  private slabNext: number;

  constructor() {
    this.pgd = new Dir<Pud>(PTRS_PER_PGD);
    this.present = 0;
    this.tablePages = 0;
    this.tlb = new Float64Array(3);
    this.tlb[TLB_VPN] = -1;
    this.slab = new Slab(0);
    this.slabNext = 0;
  }

  /** A new leaf table, from the slab (a new one, twice the last, when it is full). */
  private newTable(): PteTable {
    if (this.slabNext === this.slab.flags.length) {
      const n =
        Math.min(Math.max(SLAB_FIRST, (2 * this.slab.flags.length) / PTRS_PER_PTE), SLAB_MAX) * PTRS_PER_PTE;
      this.slab = new Slab(n);
      this.slabNext = 0;
    }
    const t = new PteTable(this.slab, this.slabNext);
    this.slabNext += PTRS_PER_PTE;
    return t;
  }

  /** The leaf table holding `vpn`, or null (the hardware walk). */
  walk(vpn: number): PteTable | null {
    const gi = Math.floor(vpn * PGD_SCALE);
    const pud = this.pgd.slots[gi];
    if (!pud) return null;
    // Below the PGD level the indices are bit fields of a small integer.
    const r = vpn - gi * PGD_SPAN;
    const pmd = pud.slots[r >>> (PMD_INDEX_SIZE + PTE_INDEX_SIZE)];
    if (!pmd) return null;
    return pmd.slots[(r >>> PTE_INDEX_SIZE) & (PTRS_PER_PMD - 1)] ?? null;
  }

  /** Flags of the PTE for `vpn` (0 when none). */
  flags(vpn: number): number {
    const t = this.walk(vpn);
    return t === null ? 0 : t.flags[t.base + pteIndex(vpn)]!;
  }

  /** pfn of the present PTE for `vpn`, or -1. */
  pfn(vpn: number): number {
    const t = this.walk(vpn);
    if (t === null) return -1;
    const i = t.base + pteIndex(vpn);
    return t.flags[i]! & PTE_PRESENT ? t.pfn(i) : -1;
  }

  /** Install (or overwrite) the PTE for `vpn`; `flags` must include PTE_PRESENT. */
  set(vpn: number, pfn: number, flags: number): void {
    if (
      !(flags & PTE_PRESENT) ||
      vpn < 0 ||
      vpn >= MAX_VPN ||
      !Number.isInteger(pfn) ||
      pfn < 0 ||
      pfn >= PFN_LIMIT
    ) {
      throw new Error(`PageTable.set: bad PTE vpn=${vpn} pfn=${pfn} flags=${flags}`);
    }
    this.tlb[TLB_VPN] = -1;
    const gi = Math.floor(vpn * PGD_SCALE);
    const r = vpn - gi * PGD_SPAN;
    let pud = this.pgd.slots[gi] ?? null;
    if (pud === null) {
      pud = new Dir<Pmd>(PTRS_PER_PUD);
      this.pgd.slots[gi] = pud;
      this.pgd.used++;
      this.tablePages++;
    }
    const ui = r >>> (PMD_INDEX_SIZE + PTE_INDEX_SIZE);
    let pmd = pud.slots[ui] ?? null;
    if (pmd === null) {
      pmd = new Dir<PteTable>(PTRS_PER_PMD);
      pud.slots[ui] = pmd;
      pud.used++;
      this.tablePages++;
    }
    const mi = (r >>> PTE_INDEX_SIZE) & (PTRS_PER_PMD - 1);
    let t = pmd.slots[mi] ?? null;
    if (t === null) {
      t = this.newTable();
      pmd.slots[mi] = t;
      pmd.used++;
      this.tablePages++;
    }
    const i = t.base + pteIndex(vpn);
    if (!(t.flags[i]! & PTE_PRESENT)) {
      t.used++;
      this.present++;
    }
    const hi = Math.floor(pfn / U32);
    t.pfnHi[i] = hi;
    t.pfnLo[i] = pfn - hi * U32;
    t.flags[i] = flags;
  }

  /** Change the flags of a present PTE (mprotect, dirty/accessed tracking). */
  setFlags(vpn: number, flags: number): void {
    const t = this.walk(vpn);
    const i = t === null ? 0 : t.base + pteIndex(vpn);
    if (t === null || !(t.flags[i]! & PTE_PRESENT) || !(flags & PTE_PRESENT)) {
      throw new Error(`PageTable.setFlags: no present PTE at vpn ${vpn}`);
    }
    this.tlb[TLB_VPN] = -1;
    t.flags[i] = flags;
  }

  /** Clear the PTE for `vpn`; returns its pfn, or -1 if none was present. Frees empty tables. */
  clear(vpn: number): number {
    const gi = Math.floor(vpn / PGD_SPAN);
    const pud = this.pgd.slots[gi];
    if (!pud) return -1;
    const ui = Math.floor(vpn / PUD_SPAN) % PTRS_PER_PUD;
    const pmd = pud.slots[ui];
    if (!pmd) return -1;
    const mi = Math.floor(vpn / PMD_SPAN) % PTRS_PER_PMD;
    const t = pmd.slots[mi];
    if (!t) return -1;
    const i = t.base + pteIndex(vpn);
    if (!(t.flags[i]! & PTE_PRESENT)) return -1;
    this.tlb[TLB_VPN] = -1;
    const pfn = t.pfn(i);
    t.pfnLo[i] = 0;
    t.pfnHi[i] = 0;
    t.flags[i] = 0;
    this.present--;
    if (--t.used === 0) {
      pmd.slots[mi] = null;
      this.tablePages--;
      if (--pmd.used === 0) {
        pud.slots[ui] = null;
        this.tablePages--;
        if (--pud.used === 0) {
          this.pgd.slots[gi] = null;
          this.pgd.used--;
          this.tablePages--;
        }
      }
    }
    return pfn;
  }

  /**
   * Visit every present PTE with `startVpn <= vpn < endVpn`, in ascending order, skipping
   * absent directories. The visitor may clear or change the entry it is visiting.
   */
  scan(startVpn: number, endVpn: number, visit: PteVisitor): void {
    let vpn = Math.max(0, startVpn);
    const end = Math.min(endVpn, MAX_VPN);
    while (vpn < end) {
      const pud = this.pgd.slots[Math.floor(vpn / PGD_SPAN)];
      if (!pud) {
        vpn = (Math.floor(vpn / PGD_SPAN) + 1) * PGD_SPAN;
        continue;
      }
      const pmd = pud.slots[Math.floor(vpn / PUD_SPAN) % PTRS_PER_PUD];
      if (!pmd) {
        vpn = (Math.floor(vpn / PUD_SPAN) + 1) * PUD_SPAN;
        continue;
      }
      const t = pmd.slots[Math.floor(vpn / PMD_SPAN) % PTRS_PER_PMD];
      const next = (Math.floor(vpn / PMD_SPAN) + 1) * PMD_SPAN;
      if (t) {
        const stop = Math.min(next, end);
        for (let v = vpn; v < stop; v++) {
          const i = t.base + pteIndex(v);
          const f = t.flags[i]!;
          if (f & PTE_PRESENT) visit(v, t.pfn(i), f);
        }
      }
      vpn = next;
    }
  }

  /** Number of present PTEs in `[startVpn, endVpn)`. */
  countPresent(startVpn: number, endVpn: number): number {
    let n = 0;
    this.scan(startVpn, endVpn, () => {
      n++;
    });
    return n;
  }
}
