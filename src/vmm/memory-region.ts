/**
 * QEMU's MemoryRegion: the VMM's description of a guest physical address space as a tree.
 *
 * Containers hold subregions at offsets with priorities; terminal regions are RAM (host memory
 * the VMM owns), I/O (an {@link MmioDevice} that sees offsets relative to the region), or RAM
 * devices (host memory mapped from a device file — what KVM turns into a memslot but what the
 * VMM itself reaches through an accessor); aliases render a window of another region. The tree
 * is rendered into a flat view by `address-space.ts`.
 *
 * Changes follow QEMU's transaction model: every mutation runs inside a (possibly implicit)
 * transaction, and the flat views of the affected address spaces are rebuilt once at the
 * outermost commit.
 */

import type { AccessSize, MmioDevice } from '../hw/mmio.ts';

/** A pure container: no content of its own, gaps stay unassigned. */
export const MR_CONTAINER = 0;
/** RAM owned by the VMM (lazily allocated 64 KiB pages of a Uint8Array). */
export const MR_RAM = 1;
/** MMIO dispatched to an {@link MmioDevice}. */
export const MR_IO = 2;
/** `memory_region_init_ram_device_ptr`: RAM for KVM (memslot), accessed by the VMM via ops. */
export const MR_RAM_DEVICE = 3;
/** `memory_region_init_alias`. */
export const MR_ALIAS = 4;

/** The size of a full 64-bit address space (exact as a double). */
export const UINT64_SPACE = 2 ** 64;

/** RAM backing page size (lazy allocation granule). */
const RAM_PAGE_SHIFT = 16;
const RAM_PAGE_SIZE = 1 << RAM_PAGE_SHIFT;
const RAM_PAGE_INV = 2 ** -RAM_PAGE_SHIFT;

/** `MemoryRegionOps.valid`: which accesses the memory core lets through to the device. */
export interface MemoryRegionValid {
  readonly min: AccessSize;
  readonly max: AccessSize;
  /** `valid.unaligned`: QEMU rejects unaligned accesses unless the ops allow them. */
  readonly unaligned: boolean;
}

/** Default `valid` of an I/O region: any size, naturally aligned (QEMU's defaults). */
export const VALID_ANY: MemoryRegionValid = { min: 1, max: 8, unaligned: false };

/**
 * Where the bytes of a RAM region live when they are not the VMM's own pages: under KVM, guest
 * RAM is anonymous memory of the VMM process (`mmap` in its HostProcess), which the guest
 * reaches through a memslot and the VMM through its own page tables. Offsets are relative to
 * the region; values big-endian as in {@link MemoryRegion.ramLoad}.
 */
export interface RamBacking {
  load(offset: number, size: AccessSize, out: { hi: number; lo: number }): void;
  store(offset: number, size: AccessSize, hi: number, lo: number): void;
}

/**
 * Receives "something changed below this region" notifications; `address-space.ts` registers
 * its address spaces on their root region through this.
 */
export interface MemoryRegionObserver {
  regionChanged(): void;
}

let transactionDepth = 0;
const pendingObservers: MemoryRegionObserver[] = [];
const pendingSet = new Set<MemoryRegionObserver>();

/**
 * Open a transaction: flat-view rebuilds are deferred until the outermost commit.
 *
 * @remarks Models softmmu/memory.c:memory_region_transaction_begin(). Like QEMU the depth is
 * global (one memory map per process); JS runs one stack at a time, so only an actor yielding
 * between begin and commit can observe it, and it then sees the old view, as a QEMU thread would.
 */
export function memoryRegionTransactionBegin(): void {
  transactionDepth++;
}

/**
 * Close a transaction; at depth 0 rebuild every address space touched meanwhile (in the order
 * they were first touched) and notify their listeners.
 *
 * @remarks Models softmmu/memory.c:memory_region_transaction_commit().
 */
export function memoryRegionTransactionCommit(): void {
  if (transactionDepth <= 0) throw new Error('memory region transaction commit without begin');
  transactionDepth--;
  if (transactionDepth > 0) return;
  // Rebuilding can run listeners that mutate the tree again: they open their own transaction
  // (depth back to 1) and land here again; drain until quiet.
  while (pendingObservers.length > 0) {
    const o = pendingObservers.shift()!;
    pendingSet.delete(o);
    o.regionChanged();
  }
}

/** Current transaction depth (tests, assertions). */
export function memoryRegionTransactionDepth(): number {
  return transactionDepth;
}

/** The big-endian u32 at `page[po]`. */
function getBe32(page: Uint8Array, po: number): number {
  return ((page[po]! << 24) | (page[po + 1]! << 16) | (page[po + 2]! << 8) | page[po + 3]!) >>> 0;
}

/** Store the u32 (or int32) `v` big-endian at `page[po]`. */
function putBe32(page: Uint8Array, po: number, v: number): void {
  page[po] = v >>> 24;
  page[po + 1] = v >>> 16;
  page[po + 2] = v >>> 8;
  page[po + 3] = v;
}

/** Scratch for byte accesses to host-backed RAM. */
const byteScratch = { hi: 0, lo: 0 };

function schedule(o: MemoryRegionObserver): void {
  if (pendingSet.has(o)) return;
  pendingSet.add(o);
  pendingObservers.push(o);
}

/** A QEMU MemoryRegion. Construct through the static factories. */
export class MemoryRegion {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly name: string;
  declare readonly kind: number;
  /** Size in bytes (a container may span the whole 64-bit space: {@link UINT64_SPACE}). */
  declare readonly size: number;
  /**
   * Host-pointer-like address of the backing: for RAM the VMM's host virtual address of byte 0
   * (set by whoever maps it; −1 while unknown), for RAM devices the address `mmap` returned.
   * The KVM memory listener uses it as `userspace_addr`.
   */
  declare ramOffset: number;
  /** I/O and RAM-device accessor (offsets relative to this region). */
  declare readonly ops: MmioDevice | null;
  declare readonly valid: MemoryRegionValid;
  /** Alias target and offset into it. */
  declare readonly alias: MemoryRegion | null;
  declare aliasOffset: number;

  /** Containing region (QEMU `mr->container`), null when not mapped. */
  declare container: MemoryRegion | null;
  /** Offset in the container (QEMU `mr->addr`). */
  declare addr: number;
  declare priority: number;
  declare mayOverlap: boolean;
  declare enabled: boolean;
  /** Subregions in rendering order: priority descending, later-added first among equals. */
  declare readonly subregions: MemoryRegion[];

  /** Aliases pointing at this region (their views change when this one does). */
  declare readonly aliasedBy: MemoryRegion[];
  /** Address spaces rooted here. */
  declare readonly observers: MemoryRegionObserver[];

  /** Host-process backing of a RAM region (KVM mode), or null for VMM-owned pages. */
  declare readonly backing: RamBacking | null;

  declare private readonly pages: (Uint8Array | null)[];

  private constructor(
    name: string,
    kind: number,
    size: number,
    ops: MmioDevice | null,
    valid: MemoryRegionValid,
    alias: MemoryRegion | null,
    aliasOffset: number,
    ramOffset: number,
    backing: RamBacking | null = null,
  ) {
    if (!(size >= 0) || size > UINT64_SPACE) throw new RangeError(`memory region ${name}: bad size ${size}`);
    this.name = name;
    this.kind = kind;
    this.size = size;
    this.ramOffset = ramOffset;
    this.ops = ops;
    this.valid = valid;
    this.alias = alias;
    this.aliasOffset = aliasOffset;
    this.container = null;
    this.addr = 0;
    this.priority = 0;
    this.mayOverlap = false;
    this.enabled = true;
    this.subregions = [];
    this.aliasedBy = [];
    this.observers = [];
    this.backing = backing;
    this.pages =
      kind === MR_RAM && backing === null
        ? new Array<Uint8Array | null>(Math.ceil(size * RAM_PAGE_INV)).fill(null)
        : [];
  }

  /** @remarks Models softmmu/memory.c:memory_region_init(). */
  static container(name: string, size: number): MemoryRegion {
    return new MemoryRegion(name, MR_CONTAINER, size, null, VALID_ANY, null, 0, -1);
  }

  /** @remarks Models softmmu/memory.c:memory_region_init_ram(). */
  static ram(name: string, size: number): MemoryRegion {
    if (!Number.isSafeInteger(size)) throw new RangeError(`memory region ${name}: RAM size ${size}`);
    return new MemoryRegion(name, MR_RAM, size, null, VALID_ANY, null, 0, -1);
  }

  /**
   * RAM whose bytes are host memory of the VMM process at `hostAddr` (QEMU's guest RAM is
   * always such memory; this model's plain {@link ram} keeps its own pages for speed). The KVM
   * memory listener registers it as a memslot with `userspace_addr = hostAddr`.
   *
   * @remarks Models softmmu/memory.c:memory_region_init_ram_ptr().
   */
  static ramBacked(name: string, size: number, hostAddr: number, backing: RamBacking): MemoryRegion {
    if (!Number.isSafeInteger(size)) throw new RangeError(`memory region ${name}: RAM size ${size}`);
    return new MemoryRegion(name, MR_RAM, size, null, VALID_ANY, null, 0, hostAddr, backing);
  }

  /** @remarks Models softmmu/memory.c:memory_region_init_io(). */
  static io(name: string, size: number, ops: MmioDevice, valid: MemoryRegionValid = VALID_ANY): MemoryRegion {
    return new MemoryRegion(name, MR_IO, size, ops, valid, null, 0, -1);
  }

  /**
   * A RAM device: `hostAddr` is the VMM's mapping of the device memory (the memslot's
   * `userspace_addr`), `ops` how the VMM itself accesses it (through its own page tables).
   *
   * @remarks Models softmmu/memory.c:memory_region_init_ram_device_ptr().
   */
  static ramDevice(name: string, size: number, hostAddr: number, ops: MmioDevice): MemoryRegion {
    return new MemoryRegion(name, MR_RAM_DEVICE, size, ops, VALID_ANY, null, 0, hostAddr);
  }

  /** @remarks Models softmmu/memory.c:memory_region_init_alias(). */
  static alias(name: string, target: MemoryRegion, offset: number, size: number): MemoryRegion {
    const mr = new MemoryRegion(name, MR_ALIAS, size, null, VALID_ANY, target, offset, -1);
    target.aliasedBy.push(mr);
    return mr;
  }

  /** True for regions that terminate rendering (have content of their own). */
  get terminates(): boolean {
    return this.kind === MR_RAM || this.kind === MR_IO || this.kind === MR_RAM_DEVICE;
  }

  /** `memory_region_is_ram`: RAM and RAM devices (what KVM makes memslots of). */
  get isRam(): boolean {
    return this.kind === MR_RAM || this.kind === MR_RAM_DEVICE;
  }

  /**
   * @remarks Models softmmu/memory.c:memory_region_add_subregion() (priority 0, no overlap
   * expected).
   */
  addSubregion(offset: number, sub: MemoryRegion): void {
    this.insertSubregion(offset, sub, 0, false);
  }

  /** @remarks Models softmmu/memory.c:memory_region_add_subregion_overlap(). */
  addSubregionOverlap(offset: number, sub: MemoryRegion, priority: number): void {
    this.insertSubregion(offset, sub, priority, true);
  }

  /** @remarks Models softmmu/memory.c:memory_region_del_subregion(). */
  delSubregion(sub: MemoryRegion): void {
    if (sub.container !== this) throw new Error(`${sub.name} is not a subregion of ${this.name}`);
    memoryRegionTransactionBegin();
    const i = this.subregions.indexOf(sub);
    this.subregions.splice(i, 1);
    sub.container = null;
    this.changed();
    memoryRegionTransactionCommit();
  }

  /** @remarks Models softmmu/memory.c:memory_region_set_enabled(). */
  setEnabled(enabled: boolean): void {
    if (enabled === this.enabled) return;
    memoryRegionTransactionBegin();
    this.enabled = enabled;
    this.changed();
    memoryRegionTransactionCommit();
  }

  /** Move within the container. @remarks Models softmmu/memory.c:memory_region_set_address(). */
  setAddress(addr: number): void {
    if (addr === this.addr) return;
    const c = this.container;
    if (c === null) {
      this.addr = addr;
      return;
    }
    // QEMU re-adds the region: it becomes the latest-added among its priority peers.
    memoryRegionTransactionBegin();
    c.delSubregion(this);
    c.insertSubregion(addr, this, this.priority, this.mayOverlap);
    memoryRegionTransactionCommit();
  }

  /** @remarks Models softmmu/memory.c:memory_region_set_alias_offset(). */
  setAliasOffset(offset: number): void {
    if (this.kind !== MR_ALIAS) throw new Error(`${this.name} is not an alias`);
    if (offset === this.aliasOffset) return;
    memoryRegionTransactionBegin();
    this.aliasOffset = offset;
    this.changed();
    memoryRegionTransactionCommit();
  }

  /** Register an observer (an address space rooted here). */
  addObserver(o: MemoryRegionObserver): void {
    this.observers.push(o);
  }

  removeObserver(o: MemoryRegionObserver): void {
    const i = this.observers.indexOf(o);
    if (i >= 0) this.observers.splice(i, 1);
  }

  /** Schedule a rebuild of every address space whose view may include this region. */
  changed(): void {
    memoryRegionTransactionBegin();
    this.markDirty(0);
    memoryRegionTransactionCommit();
  }

  // --- RAM backing -------------------------------------------------------------------------

  /** Big-endian load of `size` bytes at `offset` of a RAM region into `hi`/`lo` of `out`. */
  ramLoad(offset: number, size: AccessSize, out: { hi: number; lo: number }): void {
    const pn = Math.floor(offset * RAM_PAGE_INV);
    const po = offset - pn * RAM_PAGE_SIZE;
    // Host-backed RAM has no pages: `page` is undefined there too.
    const page = this.pages[pn];
    if (page === null || page === undefined || po + size > RAM_PAGE_SIZE) {
      this.ramLoadSlow(offset, size, out);
      return;
    }
    if (size === 8) {
      out.hi = getBe32(page, po);
      out.lo = getBe32(page, po + 4);
      return;
    }
    out.hi = 0;
    out.lo = size === 4 ? getBe32(page, po) : size === 2 ? (page[po]! << 8) | page[po + 1]! : page[po]!;
  }

  /**
   * {@link ramLoad} of host-backed RAM, of a page never written (zeros) or across a backing
   * page (byte by byte). Out of line, as {@link ramStoreSlow}: the one-page paths stay small
   * enough for the JIT to inline.
   */
  private ramLoadSlow(offset: number, size: AccessSize, out: { hi: number; lo: number }): void {
    if (this.backing !== null) {
      this.backing.load(offset, size, out);
      return;
    }
    let hi = 0;
    let lo = 0;
    for (let i = 0; i < size; i++) {
      const b = this.ramByte(offset + i);
      hi = ((hi << 8) | (lo >>> 24)) >>> 0;
      lo = ((lo << 8) | b) >>> 0;
    }
    out.hi = size === 8 ? hi : 0;
    out.lo = lo;
  }

  /**
   * Big-endian store of the low `size` bytes of `hi`:`lo` at `offset` of a RAM region. The
   * halves may be u32s or int32s (the same bits); a backing gets u32s.
   */
  ramStore(offset: number, size: AccessSize, hi: number, lo: number): void {
    const pn = Math.floor(offset * RAM_PAGE_INV);
    const po = offset - pn * RAM_PAGE_SIZE;
    const page = this.pages[pn];
    if (page === null || page === undefined || po + size > RAM_PAGE_SIZE) {
      this.ramStoreSlow(offset, size, hi, lo);
      return;
    }
    if (size === 4) putBe32(page, po, lo);
    else if (size === 8) {
      putBe32(page, po, hi);
      putBe32(page, po + 4, lo);
    } else if (size === 2) {
      page[po] = lo >>> 8;
      page[po + 1] = lo;
    } else page[po] = lo;
  }

  /** {@link ramStore} of 4 bytes (the EQ writes' path: see `AddressSpace.storeBe32`). */
  ramStoreBe32(offset: number, v: number): void {
    const pn = Math.floor(offset * RAM_PAGE_INV);
    const po = offset - pn * RAM_PAGE_SIZE;
    const page = this.pages[pn];
    if (page === null || page === undefined || po + 4 > RAM_PAGE_SIZE) this.ramStoreSlow(offset, 4, 0, v);
    else putBe32(page, po, v);
  }

  /** {@link ramStore} to host-backed RAM, to a page never written, or across a backing page. */
  private ramStoreSlow(offset: number, size: AccessSize, hi: number, lo: number): void {
    if (this.backing !== null) {
      this.backing.store(offset, size, hi >>> 0, lo >>> 0);
      return;
    }
    for (let i = 0; i < size; i++) {
      const shift = (size - 1 - i) * 8;
      const b = shift >= 32 ? hi >>> (shift - 32) : lo >>> shift;
      this.ramSetByte(offset + i, b & 0xff);
    }
  }

  /** Copy `dst.length` bytes of RAM from `offset` (bulk reads: qtest `read`, dumps). */
  ramRead(offset: number, dst: Uint8Array): void {
    this.checkRam(offset, dst.length);
    if (this.backing !== null) {
      for (let i = 0; i < dst.length; i++) dst[i] = this.ramByte(offset + i);
      return;
    }
    // The VMM's own pages: a copy per page (a page never written reads as zeros).
    let done = 0;
    while (done < dst.length) {
      const a = offset + done;
      const pn = Math.floor(a * RAM_PAGE_INV);
      const po = a - pn * RAM_PAGE_SIZE;
      const n = Math.min(RAM_PAGE_SIZE - po, dst.length - done);
      const page = this.pages[pn];
      if (page === null || page === undefined) dst.fill(0, done, done + n);
      else dst.set(page.subarray(po, po + n), done);
      done += n;
    }
  }

  /** Copy `src` into RAM at `offset` (bulk writes: firmware images, qtest `write`). */
  ramWrite(offset: number, src: Uint8Array): void {
    this.checkRam(offset, src.length);
    for (let i = 0; i < src.length; i++) this.ramSetByte(offset + i, src[i]!);
  }

  /** Fill RAM with `value` (qtest `memset`); zero-fill of untouched pages allocates nothing. */
  ramFill(offset: number, len: number, value: number): void {
    this.checkRam(offset, len);
    for (let i = 0; i < len; i++) {
      const a = offset + i;
      if (value === 0 && this.backing === null && this.pages[Math.floor(a * RAM_PAGE_INV)] === null) continue;
      this.ramSetByte(a, value & 0xff);
    }
  }

  /** Zero the whole RAM (drops the backing pages; host-backed RAM is zeroed byte by byte). */
  ramClear(): void {
    if (this.backing !== null) {
      for (let a = 0; a < this.size; a += 8) this.backing.store(a, 8, 0, 0);
      return;
    }
    this.pages.fill(null);
  }

  /** Number of backing pages allocated so far. */
  get ramPagesAllocated(): number {
    let n = 0;
    for (const p of this.pages) if (p !== null) n++;
    return n;
  }

  // --- internals ---------------------------------------------------------------------------

  private insertSubregion(offset: number, sub: MemoryRegion, priority: number, mayOverlap: boolean): void {
    if (sub.container !== null) throw new Error(`${sub.name} is already mapped in ${sub.container.name}`);
    if (sub === this) throw new Error(`${sub.name} cannot contain itself`);
    memoryRegionTransactionBegin();
    sub.container = this;
    sub.addr = offset;
    sub.priority = priority;
    sub.mayOverlap = mayOverlap;
    // Insert before the first region of lower or equal priority: among equal priorities the
    // newest comes first and therefore wins when rendering.
    let i = 0;
    while (i < this.subregions.length && this.subregions[i]!.priority > priority) i++;
    this.subregions.splice(i, 0, sub);
    this.changed();
    memoryRegionTransactionCommit();
  }

  private markDirty(depth: number): void {
    if (depth > 64) throw new Error(`memory region ${this.name}: alias/container cycle`);
    for (const o of this.observers) schedule(o);
    for (const a of this.aliasedBy) a.markDirty(depth + 1);
    this.container?.markDirty(depth + 1);
  }

  private checkRam(offset: number, len: number): void {
    if (this.kind !== MR_RAM) throw new Error(`${this.name} is not RAM`);
    if (offset < 0 || offset + len > this.size) {
      throw new RangeError(`${this.name}: [0x${offset.toString(16)}, +0x${len.toString(16)}) outside RAM`);
    }
  }

  private allocPage(pn: number): Uint8Array {
    const p = new Uint8Array(RAM_PAGE_SIZE);
    this.pages[pn] = p;
    return p;
  }

  private ramByte(a: number): number {
    if (this.backing !== null) {
      this.backing.load(a, 1, byteScratch);
      return byteScratch.lo;
    }
    const pn = Math.floor(a * RAM_PAGE_INV);
    const page = this.pages[pn];
    return page === null || page === undefined ? 0 : page[a - pn * RAM_PAGE_SIZE]!;
  }

  private ramSetByte(a: number, b: number): void {
    if (this.backing !== null) {
      this.backing.store(a, 1, 0, b);
      return;
    }
    const pn = Math.floor(a * RAM_PAGE_INV);
    const page = this.pages[pn] ?? this.allocPage(pn);
    page[a - pn * RAM_PAGE_SIZE] = b;
  }
}
