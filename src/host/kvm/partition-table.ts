/**
 * A VM's partition-scoped translations (the radix partition table's leaf entries on POWER9):
 * gfn → host pfn, installed on a guest access that misses, from the memslot's host virtual
 * address resolved through the VMM's page tables (and, on a miss there, the VMA's fault handler:
 * the XIVE device's ESB/TIMA `vm_ops.fault`); removed when the VMM's mm invalidates the host
 * virtual range (MMU notifier), when a memslot is deleted or moved, and at VM teardown.
 *
 * Entries are keyed by gfn; each holds the pfn and whether the host PTE allowed writes.
 */

/** Result of a partition-scoped fault on a gfn no memslot covers: the access is emulated MMIO. */
export const KVM_PT_NO_SLOT = -0x1_0000;

/** Entries per lookup leaf (a 256 MiB window of guest physical space). */
const CHUNK = 4096;
const CHUNK_INV = 1 / CHUNK;
/** Leaf lookups remembered (a guest's interrupt path alternates RAM, ESB and TIMA windows). */
const LEAF_CACHE = 4;

/** Counters of the partition-scoped paths. */
export class PartitionTableStats {
  /** Misses that installed an entry (`kvmppc_book3s_radix_page_fault` → instantiate). */
  faults = 0;
  /** Misses whose host-side resolution failed (no VMA, SIGBUS from a fault handler…). */
  faultErrors = 0;
  /** Entries removed by invalidations (notifiers, memslot flush, teardown). */
  invalidations = 0;
  /** Invalidation calls (each an `kvm_unmap_gfn_range` / memslot flush). */
  invalidateCalls = 0;
}

/**
 * @remarks Models arch/powerpc/kvm/book3s_64_mmu_radix.c: the partition-scoped tree
 * (kvmppc_create_pte / kvmppc_unmap_pte / kvm_unmap_radix) at 64 KiB granularity.
 */
export class PartitionTable {
  readonly stats: PartitionTableStats;
  /** gfn → pfn·2 + writable, in installation order (what {@link dump} lists). */
  private readonly entries: Map<number, number>;
  /**
   * The same entries for {@link lookup}, as a radix of {@link CHUNK}-entry leaves holding
   * `pfn·2 + writable + 1` (0: none), keyed by `gfn / CHUNK`: small-integer keys where MMIO
   * gfns (ESB pages near 2^34) would make the map box every key on each lookup.
   */
  private readonly leaves: Map<number, number>;
  /** The leaves, indexed by the values of {@link leaves}. */
  private readonly leafList: Float64Array[];
  /**
   * The last {@link LEAF_CACHE} leaf lookups, hits and misses: keys (−1: an empty slot) and leaf
   * indices (−1: no leaf), replaced round robin (`cacheNext[0]`); a leaf created for a key
   * remembered as missing is put in its slot. Typed arrays only: a lookup writes no field, so it
   * may run on a world the explorer froze (see `check/explore/heap-snapshot.ts`).
   */
  private readonly cacheKeys: Float64Array;
  private readonly cacheLeaf: Int32Array;
  private readonly cacheNext: Uint8Array;

  constructor() {
    this.stats = new PartitionTableStats();
    this.entries = new Map();
    this.leaves = new Map();
    this.leafList = [];
    this.cacheKeys = new Float64Array(LEAF_CACHE).fill(-1);
    this.cacheLeaf = new Int32Array(LEAF_CACHE).fill(-1);
    this.cacheNext = new Uint8Array(1);
  }

  private leaf(key: number): Float64Array | null {
    const keys = this.cacheKeys;
    let j = -1;
    let i = 0;
    while (i < LEAF_CACHE && keys[i] !== key) i++;
    if (i < LEAF_CACHE) j = this.cacheLeaf[i]!;
    else {
      j = this.leaves.get(key) ?? -1;
      const k = this.cacheNext[0]!;
      this.cacheNext[0] = (k + 1) % LEAF_CACHE;
      keys[k] = key;
      this.cacheLeaf[k] = j;
    }
    return j < 0 ? null : this.leafList[j]!;
  }

  private setLeafEntry(gfn: number, v: number): void {
    const key = Math.floor(gfn * CHUNK_INV);
    let l = this.leaf(key);
    if (l === null) {
      if (v === 0) return;
      l = new Float64Array(CHUNK);
      const j = this.leafList.length;
      this.leafList.push(l);
      this.leaves.set(key, j);
      for (let i = 0; i < LEAF_CACHE; i++) if (this.cacheKeys[i] === key) this.cacheLeaf[i] = j;
    }
    l[gfn - key * CHUNK] = v;
  }

  /** Entries present. */
  get size(): number {
    return this.entries.size;
  }

  /** The pfn mapped at `gfn` (for a write: only if writable), or −1. */
  lookup(gfn: number, write: boolean): number {
    const key = Math.floor(gfn * CHUNK_INV);
    const l = this.leaf(key);
    if (l === null) return -1;
    const v = l[gfn - key * CHUNK]!;
    if (v === 0) return -1;
    const e = v - 1;
    if (write && e % 2 === 0) return -1;
    return Math.floor(e / 2);
  }

  /** Install (or upgrade) the entry of `gfn`. */
  insert(gfn: number, pfn: number, writable: boolean): void {
    const e = pfn * 2 + (writable ? 1 : 0);
    this.entries.set(gfn, e);
    this.setLeafEntry(gfn, e + 1);
    this.stats.faults++;
  }

  /** Remove the entries of gfns `[start, end)`; returns how many were present. */
  unmapRange(start: number, end: number): number {
    this.stats.invalidateCalls++;
    let n = 0;
    if (end - start <= this.entries.size) {
      for (let g = start; g < end; g++) {
        if (this.entries.delete(g)) {
          this.setLeafEntry(g, 0);
          n++;
        }
      }
    } else {
      for (const g of [...this.entries.keys()]) {
        if (g >= start && g < end) {
          this.entries.delete(g);
          this.setLeafEntry(g, 0);
          n++;
        }
      }
    }
    this.stats.invalidations += n;
    return n;
  }

  /** Make the entries of gfns `[start, end)` read-only (dirty-log re-protection). */
  writeProtectRange(start: number, end: number): void {
    for (const [g, e] of this.entries) {
      if (g >= start && g < end && e % 2 === 1) {
        this.entries.set(g, e - 1);
        this.setLeafEntry(g, e);
      }
    }
  }

  /** Remove everything (VM teardown). */
  clear(): void {
    this.stats.invalidations += this.entries.size;
    this.entries.clear();
    this.leaves.clear();
    this.leafList.length = 0;
    this.cacheKeys.fill(-1);
    this.cacheLeaf.fill(-1);
  }

  /** Every entry as [gfn, pfn], for inspection. */
  dump(): [number, number][] {
    const out: [number, number][] = [];
    for (const [g, e] of this.entries) out.push([g, Math.floor(e / 2)]);
    return out;
  }

  /** Entries whose pfn satisfies `pred` (tests: "no entry points at these pages"). */
  entriesPointingAt(pred: (pfn: number) => boolean): [number, number][] {
    return this.dump().filter(([, pfn]) => pred(pfn));
  }
}
