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
function pteIndex(vpn: number): number {
  return vpn - Math.floor(vpn * (1 / PTRS_PER_PTE)) * PTRS_PER_PTE;
}

const U32 = 2 ** 32;
/** pfns {@link PageTable.set} takes: below 2^40 (the high byte's range). */
const PFN_LIMIT = 2 ** 40;

/** Leaf tables in a page table's first slab, and at most in one slab (each slab doubles). */
const SLAB_FIRST = 8;
const SLAB_MAX = 512;
/**
 * A PTE's slot number ({@link PageTable.slot}): its leaf table's number times 32 plus its index
 * in the table; a table's number is its slab's place in the page table's list times
 * {@link SLAB_MAX} plus its place in the slab. So the slab is `slot >>> SLOT_SHIFT` and the
 * PTE's place in the slab's arrays `slot & SLOT_MASK`.
 */
const SLOT_SHIFT = Math.log2(SLAB_MAX * PTRS_PER_PTE);
const SLOT_MASK = SLAB_MAX * PTRS_PER_PTE - 1;

/**
 * The leaf table pages of a page table, in slabs: `pfnLo[i]`, `pfnHi[i]` (the pfn's low 32 bits
 * and the rest) and `flags[i]` (0 = none) of the PTEs, 32 a table, and `used[t]` the present
 * PTEs of table `t`. A leaf table is a number, not an object: a full VM's ESB mapping needs
 * 65,536 of them, which as objects would be as many for V8 to copy out of the young generation
 * and promote (enough to make it grow), and a typed array of each table's own would cost an
 * ArrayBuffer and a malloc each.
 */
class Slab {
  readonly pfnLo: Uint32Array;
  readonly pfnHi: Uint8Array;
  readonly flags: Uint8Array;
  readonly used: Uint8Array;
  constructor(tables: number) {
    const n = tables * PTRS_PER_PTE;
    const buf = new ArrayBuffer(6 * n + tables);
    this.pfnLo = new Uint32Array(buf, 0, n);
    this.pfnHi = new Uint8Array(buf, 4 * n, n);
    this.flags = new Uint8Array(buf, 5 * n, n);
    this.used = new Uint8Array(buf, 6 * n, tables);
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

/** A PMD page's entries: leaf table numbers. */
type Pmd = Dir<number>;
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
   * The last walk that found a leaf table: `[0]` the table's first vpn (−∞: none), `[1]` its
   * first PTE's slot. A fault reads and writes one PTE several times (the look, the insert, the
   * re-read), and neighbouring pages share a table; the pairing holds until the table is freed,
   * which drops it. A typed array, as {@link tlb}.
   */
  private readonly lastWalk: Float64Array;
  /**
   * The leaf tables' slabs: the list grows by one, twice the last, when the last is full. Per
   * page table, so that a slab holds one process's PTEs only (the explorer's snapshot of a world
   * captures whole typed arrays: a slab shared with another world would be rolled back with
   * this one).
   */
  private readonly slabs: Slab[];
  /** Tables of the last slab handed out. */
  private slabNext: number;
  /** Numbers of freed tables (all their PTEs are zero), handed out again first. */
  private readonly freeTables: number[];

  constructor() {
    this.pgd = new Dir<Pud>(PTRS_PER_PGD);
    this.present = 0;
    this.tablePages = 0;
    this.tlb = new Float64Array(3);
    this.tlb[TLB_VPN] = -1;
    this.lastWalk = new Float64Array(2);
    this.lastWalk[0] = -Infinity;
    this.slabs = [];
    this.slabNext = 0;
    this.freeTables = [];
  }

  /** A new leaf table's number: a freed one, or the next of the last slab (a new slab when full). */
  private newTable(): number {
    const free = this.freeTables.pop();
    if (free !== undefined) return free;
    const last = this.slabs[this.slabs.length - 1];
    if (last === undefined || this.slabNext === last.used.length) {
      const n = last === undefined ? SLAB_FIRST : Math.min(2 * last.used.length, SLAB_MAX);
      this.slabs.push(new Slab(n));
      this.slabNext = 0;
    }
    return (this.slabs.length - 1) * SLAB_MAX + this.slabNext++;
  }

  /**
   * The slot of the PTE for `vpn` (see {@link SLOT_SHIFT}), or −1 when no leaf table holds it:
   * the hardware walk. Read and mark the entry with {@link slotFlags}, {@link slotPfn} and
   * {@link markSlot}.
   */
  slot(vpn: number): number {
    const last = this.lastWalk;
    const d = vpn - last[0]!;
    if (d >= 0 && d < PTRS_PER_PTE) return last[1]! + d;
    const gi = Math.floor(vpn * PGD_SCALE);
    const pud = this.pgd.slots[gi];
    if (!pud) return -1;
    // Below the PGD level the indices are bit fields of a small integer.
    const r = vpn - gi * PGD_SPAN;
    const pmd = pud.slots[r >>> (PMD_INDEX_SIZE + PTE_INDEX_SIZE)];
    if (!pmd) return -1;
    const t = pmd.slots[(r >>> PTE_INDEX_SIZE) & (PTRS_PER_PMD - 1)];
    if (t === null || t === undefined) return -1;
    const i = r & (PTRS_PER_PTE - 1);
    last[0] = vpn - i;
    last[1] = t * PTRS_PER_PTE;
    return t * PTRS_PER_PTE + i;
  }

  /** The flags of the PTE in `slot` (0: none). */
  slotFlags(slot: number): number {
    return this.slabs[slot >>> SLOT_SHIFT]!.flags[slot & SLOT_MASK]!;
  }

  /** The pfn of the PTE in `slot`. */
  slotPfn(slot: number): number {
    const b = this.slabs[slot >>> SLOT_SHIFT]!;
    const i = slot & SLOT_MASK;
    return b.pfnHi[i]! * U32 + b.pfnLo[i]!;
  }

  /**
   * Set `bits` in the flags of the present PTE in `slot`: what the access path's hardware does
   * to the accessed and dirty bits (the caller keeps {@link tlb}).
   */
  markSlot(slot: number, bits: number): void {
    this.slabs[slot >>> SLOT_SHIFT]!.flags[slot & SLOT_MASK]! |= bits;
  }

  /** Flags of the PTE for `vpn` (0 when none). */
  flags(vpn: number): number {
    const s = this.slot(vpn);
    return s < 0 ? 0 : this.slotFlags(s);
  }

  /** pfn of the present PTE for `vpn`, or -1. */
  pfn(vpn: number): number {
    const s = this.slot(vpn);
    return s >= 0 && this.slotFlags(s) & PTE_PRESENT ? this.slotPfn(s) : -1;
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
    let slot = this.slot(vpn);
    if (slot < 0) slot = this.instantiate(vpn);
    const b = this.slabs[slot >>> SLOT_SHIFT]!;
    const i = slot & SLOT_MASK;
    if (!(b.flags[i]! & PTE_PRESENT)) {
      b.used[(slot >>> PTE_INDEX_SIZE) & (SLAB_MAX - 1)]!++;
      this.present++;
    }
    const hi = Math.floor(pfn / U32);
    b.pfnHi[i] = hi;
    b.pfnLo[i] = pfn - hi * U32;
    b.flags[i] = flags;
  }

  /** The slot for `vpn` where no leaf table holds it: the missing levels and table are made. */
  private instantiate(vpn: number): number {
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
      pmd = new Dir<number>(PTRS_PER_PMD);
      pud.slots[ui] = pmd;
      pud.used++;
      this.tablePages++;
    }
    const t = this.newTable();
    pmd.slots[(r >>> PTE_INDEX_SIZE) & (PTRS_PER_PMD - 1)] = t;
    pmd.used++;
    this.tablePages++;
    const i = r & (PTRS_PER_PTE - 1);
    this.lastWalk[0] = vpn - i;
    this.lastWalk[1] = t * PTRS_PER_PTE;
    return t * PTRS_PER_PTE + i;
  }

  /** Change the flags of a present PTE (mprotect, dirty/accessed tracking). */
  setFlags(vpn: number, flags: number): void {
    const s = this.slot(vpn);
    if (s < 0 || !(this.slotFlags(s) & PTE_PRESENT) || !(flags & PTE_PRESENT)) {
      throw new Error(`PageTable.setFlags: no present PTE at vpn ${vpn}`);
    }
    this.tlb[TLB_VPN] = -1;
    this.slabs[s >>> SLOT_SHIFT]!.flags[s & SLOT_MASK] = flags;
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
    const t = pmd.slots[mi] ?? null;
    if (t === null) return -1;
    const slot = t * PTRS_PER_PTE + pteIndex(vpn);
    const b = this.slabs[slot >>> SLOT_SHIFT]!;
    const i = slot & SLOT_MASK;
    if (!(b.flags[i]! & PTE_PRESENT)) return -1;
    this.tlb[TLB_VPN] = -1;
    const pfn = this.slotPfn(slot);
    b.pfnLo[i] = 0;
    b.pfnHi[i] = 0;
    b.flags[i] = 0;
    this.present--;
    if (--b.used[t & (SLAB_MAX - 1)]! === 0) {
      pmd.slots[mi] = null;
      this.freeTables.push(t);
      if (this.lastWalk[1] === t * PTRS_PER_PTE) this.lastWalk[0] = -Infinity;
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
      const t = pmd.slots[Math.floor(vpn / PMD_SPAN) % PTRS_PER_PMD] ?? null;
      const next = (Math.floor(vpn / PMD_SPAN) + 1) * PMD_SPAN;
      if (t !== null) {
        const stop = Math.min(next, end);
        for (let v = vpn; v < stop; v++) {
          const slot = t * PTRS_PER_PTE + pteIndex(v);
          const f = this.slotFlags(slot);
          if (f & PTE_PRESENT) visit(v, this.slotPfn(slot), f);
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
