/**
 * A VM's partition-scoped translations (the radix partition table's leaf entries on POWER9):
 * gfn → host pfn, installed on a guest access that misses, from the memslot's host virtual
 * address resolved through the VMM's page tables (and, on a miss there, the VMA's fault handler:
 * the XIVE device's ESB/TIMA `vm_ops.fault`); removed when the VMM's mm invalidates the host
 * virtual range (MMU notifier), when a memslot is deleted or moved, and at VM teardown.
 *
 * Entries are keyed by gfn; each holds the pfn and whether the host PTE allowed writes.
 */

import {
  AtomicStep,
  type EffectFormat,
  MMU_NOTIFIERS,
  partitionEntryObj,
  pteObj,
  StepPool,
} from '../atomic-step.ts';

/** Result of a partition-scoped fault on a gfn no memslot covers: the access is emulated MMIO. */
export const KVM_PT_NO_SLOT = -0x1_0000;

/** Which step of the partition-scoped fault (`KvmVm.partitionFaultSteps`) a {@link PartitionFaultStep} is. */
export const PT_LOOK = 0;
export const PT_REREAD = 1;
export const PT_INSTALL = 2;

/** The effect `gfn 0x… → pfn 0x…`. */
export const gfnPfnEffect: EffectFormat = (gfn, pfn) =>
  `gfn 0x${gfn.toString(16)} → pfn 0x${pfn.toString(16)}`;

/**
 * A step of the partition-scoped fault: read `mmu_notifier_seq` and the host PTE of the hva
 * (virtual page `vpn` of process `pid`, file page `pgoff` or −1); read the PTE again after
 * faulting it in; under `kvm->mmu_lock`, `mmu_notifier_retry` and the install of `gfn`. Keeps the
 * numbers its text is made of (see {@link AtomicStep}); {@link PartitionFaultStep.of} makes one.
 */
export class PartitionFaultStep extends AtomicStep {
  declare private kind: number;
  declare private lpid: number;
  declare private gfn: number;
  declare private pid: number;
  declare private vpn: number;
  declare private pgoff: number;

  private constructor(kind: number, lpid: number, gfn: number, pid: number, vpn: number, pgoff: number) {
    super();
    this.kind = kind;
    this.lpid = lpid;
    this.gfn = gfn;
    this.pid = pid;
    this.vpn = vpn;
    this.pgoff = pgoff;
  }

  /** A step of `kind` ({@link PT_LOOK} …): new, or recycled under a sequential driver. */
  static of(
    kind: number,
    lpid: number,
    gfn: number,
    pid: number,
    vpn: number,
    pgoff: number,
  ): PartitionFaultStep {
    const s = partitionFaultStepPool.take(kind);
    if (s === null)
      return partitionFaultStepPool.keep(kind, new PartitionFaultStep(kind, lpid, gfn, pid, vpn, pgoff));
    s.lpid = lpid;
    s.gfn = gfn;
    s.pid = pid;
    s.vpn = vpn;
    s.pgoff = pgoff;
    return s;
  }

  protected override describe(): string {
    const g = this.gfn.toString(16);
    if (this.kind === PT_LOOK)
      return `partition fault gfn 0x${g}: mmu_seq = mmu_notifier_seq, read the host PTE`;
    if (this.kind === PT_REREAD) return 'hva_to_pfn: read the host PTE again';
    return `kvm->mmu_lock: mmu_notifier_retry, install gfn 0x${g}`;
  }

  protected override describeReads(): readonly string[] {
    const pte = pteObj(this.pid, this.vpn, this.pgoff);
    if (this.kind === PT_LOOK) return [MMU_NOTIFIERS, pte];
    return this.kind === PT_REREAD ? [pte] : [MMU_NOTIFIERS];
  }

  protected override describeWrites(): readonly string[] {
    return this.kind === PT_INSTALL ? [partitionEntryObj(this.lpid, this.gfn)] : [];
  }
}

const partitionFaultStepPool = new StepPool<PartitionFaultStep>();

/** Entries per leaf (a 256 MiB window of guest physical space). */
const CHUNK = 4096;
const CHUNK_INV = 1 / CHUNK;
const U32 = 2 ** 32;
/**
 * pfns are below 2^35: a host physical address is below 2^51
 * (arch/powerpc/include/asm/book3s/64/mmu.h MAX_PHYSMEM_BITS), pages are 64 KiB.
 */
const PFN_LIMIT = 2 ** 35;
/** {@link Leaf.tag} bits: present, writable, and the pfn's bits above 32 from bit 2. */
const TAG_PRESENT = 1;
const TAG_WRITE = 2;
const TAG_HI_SHIFT = 2;

/**
 * A leaf: 5 bytes an entry (the kernel's radix leaf entry is 8; a full VM's ESB window takes
 * two million, and each MiB of fresh memory costs its first touch). `pfnLo[i]` is the low 32
 * bits of the pfn of entry `i`, `tag[i]` the {@link TAG_PRESENT} … bits and the rest of the pfn
 * (0: none).
 */
class Leaf {
  readonly pfnLo: Uint32Array;
  readonly tag: Uint8Array;
  constructor() {
    const buf = new ArrayBuffer(CHUNK * 5);
    this.pfnLo = new Uint32Array(buf, 0, CHUNK);
    this.tag = new Uint8Array(buf, 4 * CHUNK, CHUNK);
  }

  pfn(i: number): number {
    return (this.tag[i]! >>> TAG_HI_SHIFT) * U32 + this.pfnLo[i]!;
  }
}
/** Leaf lookups remembered (a guest's interrupt path alternates RAM, ESB and TIMA windows). */
const LEAF_CACHE = 4;
/** {@link PartitionTable.counts}: entries present. */
const COUNT_SIZE = 0;

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
  /**
   * The entries, as a radix of {@link CHUNK}-entry leaves keyed by `gfn / CHUNK`: small-integer
   * keys, where a map keyed by gfn would box every MMIO gfn (ESB pages near 2^34). Leaf `j` is
   * `leafList[j]`; its entry `i` is gfn `key·CHUNK + i`.
   */
  private readonly leaves: Map<number, number>;
  private readonly leafList: Leaf[];
  /** `[COUNT_SIZE]` entries present. */
  private readonly counts: Float64Array;
  /**
   * The last {@link LEAF_CACHE} leaf lookups, hits and misses: keys (−1: an empty slot) and leaf
   * indices (−1: no leaf), replaced round robin (`cacheNext[0]`); a leaf created for a key
   * remembered as missing is put in its slot. Typed arrays only: a lookup writes no field, so it
   * may run on a world the explorer froze (see `check/explore/heap-snapshot.ts`).
   */
  private readonly cacheKeys: Float64Array;
  private readonly cacheLeaf: Int32Array;
  private readonly cacheNext: Uint8Array;
  /**
   * Bumped by every change of a present entry (removal, write-protection, an insert over it,
   * teardown): a vCPU's translation cache over {@link lookup} holds only while it is unchanged.
   * A typed array, as the leaf cache.
   */
  readonly generation: Float64Array;
  /** {@link lookup}'s result. */
  private readonly found: Float64Array;

  constructor() {
    this.stats = new PartitionTableStats();
    this.leaves = new Map();
    this.leafList = [];
    this.counts = new Float64Array(2);
    this.cacheKeys = new Float64Array(LEAF_CACHE).fill(-1);
    this.cacheLeaf = new Int32Array(LEAF_CACHE).fill(-1);
    this.cacheNext = new Uint8Array(1);
    this.generation = new Float64Array(1);
    this.found = new Float64Array(1);
  }

  private leaf(key: number): Leaf | null {
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

  private newLeaf(key: number): Leaf {
    const l = new Leaf();
    const j = this.leafList.length;
    this.leafList.push(l);
    this.leaves.set(key, j);
    for (let i = 0; i < LEAF_CACHE; i++) if (this.cacheKeys[i] === key) this.cacheLeaf[i] = j;
    return l;
  }

  /** Remove the entry at `i` of leaf `l` if there is one; returns whether there was. */
  private remove(l: Leaf, i: number): boolean {
    if (l.tag[i] === 0) return false;
    l.tag[i] = 0;
    l.pfnLo[i] = 0;
    this.generation[0]!++;
    this.counts[COUNT_SIZE]!--;
    return true;
  }

  /** Every present entry of leaves whose gfns meet `[start, end)`: `(gfn, leaf, index)`. */
  private each(start: number, end: number, f: (gfn: number, l: Leaf, i: number) => void): void {
    for (const [key, j] of this.leaves) {
      const base = key * CHUNK;
      if (base >= end || base + CHUNK <= start) continue;
      const l = this.leafList[j]!;
      const i0 = Math.max(0, start - base);
      const i1 = Math.min(CHUNK, end - base);
      for (let i = i0; i < i1; i++) if (l.tag[i] !== 0) f(base + i, l, i);
    }
  }

  /** Entries present. */
  get size(): number {
    return this.counts[COUNT_SIZE]!;
  }

  /** The pfn mapped at `gfn` (for a write: only if writable), or −1. */
  lookup(gfn: number, write: boolean): number {
    return this.lookupInto(gfn, write, this.found, 0) ? this.found[0]! : -1;
  }

  /**
   * {@link lookup} into `out[at]`: whether `gfn` is mapped (for a write: writable). A vCPU's
   * translation cache is filled this way: an MMIO pfn is past the JIT's small integers, and
   * one returned from a call it does not inline is a heap number, one per miss.
   */
  lookupInto(gfn: number, write: boolean, out: Float64Array, at: number): boolean {
    const key = Math.floor(gfn * CHUNK_INV);
    const l = this.leaf(key);
    if (l === null) return false;
    const i = gfn - key * CHUNK;
    const t = l.tag[i]!;
    if (t === 0 || (write && (t & TAG_WRITE) === 0)) return false;
    // Leaf.pfn() written out: a call the JIT leaves out of line returns the pfn boxed.
    out[at] = (t >>> TAG_HI_SHIFT) * U32 + l.pfnLo[i]!;
    return true;
  }

  /** Install (or upgrade) the entry of `gfn`. */
  insert(gfn: number, pfn: number, writable: boolean): void {
    if (!(Number.isInteger(pfn) && pfn >= 0 && pfn < PFN_LIMIT)) {
      throw new Error(`PartitionTable.insert: pfn 0x${pfn.toString(16)} is not a page below 2^51`);
    }
    const key = Math.floor(gfn * CHUNK_INV);
    const l = this.leaf(key) ?? this.newLeaf(key);
    const i = gfn - key * CHUNK;
    if (l.tag[i] === 0) this.counts[COUNT_SIZE]!++;
    else {
      // A present entry changes: what a vCPU cached of it no longer holds. (A new entry cannot
      // be cached anywhere yet.)
      this.generation[0]!++;
    }
    const hi = Math.floor(pfn / U32);
    l.pfnLo[i] = pfn - hi * U32;
    l.tag[i] = (hi << TAG_HI_SHIFT) | (writable ? TAG_WRITE : 0) | TAG_PRESENT;
    this.stats.faults++;
  }

  /** Remove the entries of gfns `[start, end)`; returns how many were present. */
  unmapRange(start: number, end: number): number {
    this.stats.invalidateCalls++;
    let n = 0;
    if (end - start <= this.size) {
      for (let g = start; g < end; g++) {
        const key = Math.floor(g * CHUNK_INV);
        const l = this.leaf(key);
        if (l !== null && this.remove(l, g - key * CHUNK)) n++;
      }
    } else {
      this.each(start, end, (_g, l, i) => {
        this.remove(l, i);
        n++;
      });
    }
    this.stats.invalidations += n;
    return n;
  }

  /** Make the entries of gfns `[start, end)` read-only (dirty-log re-protection). */
  writeProtectRange(start: number, end: number): void {
    this.each(start, end, (_g, l, i) => {
      if (l.tag[i]! & TAG_WRITE) {
        l.tag[i]! &= ~TAG_WRITE;
        this.generation[0]!++;
      }
    });
  }

  /** Remove everything (VM teardown). */
  clear(): void {
    this.generation[0]!++;
    this.stats.invalidations += this.size;
    this.leaves.clear();
    this.leafList.length = 0;
    this.counts[COUNT_SIZE] = 0;
    this.cacheKeys.fill(-1);
    this.cacheLeaf.fill(-1);
  }

  /** Every entry as [gfn, pfn], in gfn order (a walk of the radix tree), for inspection. */
  dump(): [number, number][] {
    const out: [number, number][] = [];
    this.each(0, Number.MAX_SAFE_INTEGER, (g, l, i) => {
      out.push([g, l.pfn(i)]);
    });
    return out.sort((a, b) => a[0] - b[0]);
  }

  /** Entries whose pfn satisfies `pred` (tests: "no entry points at these pages"). */
  entriesPointingAt(pred: (pfn: number) => boolean): [number, number][] {
    return this.dump().filter(([, pfn]) => pred(pfn));
  }
}
