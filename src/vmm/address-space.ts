/**
 * QEMU's AddressSpace and FlatView: a memory-region tree rendered into sorted, non-overlapping
 * ranges, dispatch of loads/stores over them, and memory listeners told which ranges appeared
 * and disappeared (what the KVM memory listener turns into memslots).
 */

import * as mmio from '../hw/mmio.ts';
import { type AccessSize, type DmaSpace, type MmioDevice, Word64 } from '../hw/mmio.ts';
import { traceEvent } from '../sim/trace-events.ts';
import { NULL_TRACE, TRACE_VMM, type TraceSink } from '../sim/trace-sink.ts';
import * as memoryRegion from './memory-region.ts';
import {
  type MemoryRegion,
  type MemoryRegionObserver,
  memoryRegionTransactionBegin,
  memoryRegionTransactionCommit,
  UINT64_SPACE,
} from './memory-region.ts';

// Module-local copies of the constants the access path uses: V8 reads an imported binding
// through its module cell (a load and a hole check) at every use, a local const folds to an
// immediate in optimised code.
const { NO_CPU } = mmio;
const { MR_ALIAS, MR_IO, MR_RAM, MR_RAM_DEVICE } = memoryRegion;

/** One flat range as listeners see it (QEMU `MemoryRegionSection`). */
export interface MemoryRegionSection {
  /** The terminal region (RAM, I/O or RAM device) that answers in this range. */
  readonly mr: MemoryRegion;
  readonly offsetWithinRegion: number;
  readonly offsetWithinAddressSpace: number;
  readonly size: number;
}

/**
 * A memory listener (QEMU `MemoryListener`). On every topology change: `begin`, then
 * `regionDel` for each range that went away, then `regionAdd` / `regionNop` for each range of
 * the new view (in address order), then `commit`.
 */
export interface MemoryListener {
  begin?(): void;
  regionDel?(section: MemoryRegionSection): void;
  regionAdd?(section: MemoryRegionSection): void;
  regionNop?(section: MemoryRegionSection): void;
  commit?(): void;
}

/** {@link FlatView.access} bits 0–3 are the access sizes (1, 2, 4, 8) the range lets through. */
const ACC_SIZES = 0xf;
/** {@link FlatView.access}: unaligned accesses pass (`valid.unaligned`, RAM, RAM devices). */
const ACC_UNALIGNED = 0x10;
/** {@link FlatView.access}: VMM RAM, read and written by the address space itself. */
const ACC_RAM = 0x20;

/**
 * The accesses the memory core lets through to a range's region, as {@link FlatView.access}
 * bits. RAM and RAM devices accept any access, like QEMU's ram_device_mem_ops.
 *
 * @remarks Models softmmu/memory.c:memory_region_access_valid() (alignment, then size), decided
 * once per rendered range.
 */
function accessBits(mr: MemoryRegion): number {
  if (mr.kind === MR_RAM) return ACC_RAM | ACC_UNALIGNED | ACC_SIZES;
  if (mr.kind !== MR_IO) return ACC_UNALIGNED | ACC_SIZES;
  const valid = mr.valid;
  let bits = valid.unaligned ? ACC_UNALIGNED : 0;
  for (let size = 1; size <= 8; size <<= 1) if (size >= valid.min && size <= valid.max) bits |= size;
  return bits;
}

/**
 * `offset & -offset` as far as an access needs it: the largest power of two up to 8 that divides
 * `offset` (8 for 0, which bounds nothing). `%` rather than `&`: offsets run past 2^32.
 */
function alignOf(offset: number): number {
  let a = 8;
  while (a > 1 && offset % a !== 0) a >>= 1;
  return a;
}

/** A rendered flat view: parallel typed columns, sorted by start, non-overlapping. */
export class FlatView {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly count: number;
  declare readonly starts: Float64Array;
  /** Exclusive ends. */
  declare readonly ends: Float64Array;
  declare readonly offsets: Float64Array;
  /** `offsets[i] - starts[i]`: an address plus this is the offset in the range's region. */
  declare readonly deltas: Float64Array;
  /** Which accesses the range's region takes (see {@link accessBits}). */
  declare readonly access: Uint8Array;
  declare readonly regions: readonly MemoryRegion[];

  constructor(ranges: readonly RenderRange[]) {
    this.count = ranges.length;
    this.starts = new Float64Array(ranges.length);
    this.ends = new Float64Array(ranges.length);
    this.offsets = new Float64Array(ranges.length);
    this.deltas = new Float64Array(ranges.length);
    this.access = new Uint8Array(ranges.length);
    const regions: MemoryRegion[] = [];
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      this.starts[i] = r.start;
      this.ends[i] = r.end;
      this.offsets[i] = r.offset;
      this.deltas[i] = r.offset - r.start;
      this.access[i] = accessBits(r.mr);
      regions.push(r.mr);
    }
    this.regions = regions;
  }

  /** Index of the range containing `addr`, or −1 (binary search). */
  find(addr: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    // hi = last range with start <= addr
    return hi >= 0 && addr < this.ends[hi]! ? hi : -1;
  }

  /** Index of the first range ending after `addr` (it may start after `addr`), or `count`. */
  findFrom(addr: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  section(i: number): MemoryRegionSection {
    return {
      mr: this.regions[i]!,
      offsetWithinRegion: this.offsets[i]!,
      offsetWithinAddressSpace: this.starts[i]!,
      size: this.ends[i]! - this.starts[i]!,
    };
  }

  sections(): MemoryRegionSection[] {
    const out: MemoryRegionSection[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.section(i));
    return out;
  }
}

/** A range while rendering. */
export interface RenderRange {
  start: number;
  end: number;
  mr: MemoryRegion;
  offset: number;
}

/**
 * Fill the parts of `[cs, ce)` not yet covered in `view` with `mr` (whose byte 0 sits at
 * absolute `base`). Earlier-rendered ranges have precedence.
 */
function fillGaps(view: RenderRange[], mr: MemoryRegion, base: number, cs: number, ce: number): void {
  // first range ending after cs
  let lo = 0;
  let hi = view.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (view[mid]!.end <= cs) lo = mid + 1;
    else hi = mid;
  }
  let i = lo;
  let cur = cs;
  while (cur < ce) {
    const r = view[i];
    if (r !== undefined && r.start <= cur) {
      if (r.end > cur) cur = r.end;
      i++;
      continue;
    }
    const next = r === undefined ? ce : Math.min(r.start, ce);
    view.splice(i, 0, { start: cur, end: next, mr, offset: cur - base });
    i++;
    cur = next;
  }
}

/**
 * Render `mr`, mapped at `base + mr.addr`, clipped to `[cs, ce)`, into `view`: subregions in
 * priority order first, then (for regions with content) the region itself into the gaps.
 *
 * @remarks Models softmmu/memory.c:render_memory_region().
 */
function renderMemoryRegion(
  view: RenderRange[],
  mr: MemoryRegion,
  base: number,
  cs: number,
  ce: number,
): void {
  if (!mr.enabled) return;
  const start = base + mr.addr;
  const s = Math.max(start, cs);
  const e = Math.min(start + mr.size, ce);
  if (s >= e) return;
  if (mr.kind === MR_ALIAS) {
    const target = mr.alias!;
    // target byte x appears at start - aliasOffset + x; the call adds target.addr back.
    renderMemoryRegion(view, target, start - mr.aliasOffset - target.addr, s, e);
    return;
  }
  for (const sub of mr.subregions) renderMemoryRegion(view, sub, start, s, e);
  if (!mr.terminates) return;
  fillGaps(view, mr, start, s, e);
}

/**
 * Render a whole tree and merge adjacent ranges that continue the same region.
 *
 * @remarks Models softmmu/memory.c:generate_memory_topology() and flatview_simplify().
 */
export function generateMemoryTopology(root: MemoryRegion): FlatView {
  const view: RenderRange[] = [];
  renderMemoryRegion(view, root, 0, 0, UINT64_SPACE);
  const merged: RenderRange[] = [];
  for (const r of view) {
    const last = merged[merged.length - 1];
    if (
      last !== undefined &&
      last.mr === r.mr &&
      last.end === r.start &&
      last.offset + (last.end - last.start) === r.offset
    ) {
      last.end = r.end;
    } else {
      merged.push({ start: r.start, end: r.end, mr: r.mr, offset: r.offset });
    }
  }
  return new FlatView(merged);
}

const hex = (n: number): string => n.toString(16).toUpperCase();

/** Page size of the address space's TLB: 4 KiB. */
const TLB_PAGE_SIZE = 0x1000;
const TLB_PAGE_INV = 2 ** -12;
/** TLB entries (direct mapped by page number). */
const TLB_SLOTS = 64;
/** Numbers per TLB entry. */
const TLB_STRIDE = 4;
const hex16 = (n: number): string => n.toString(16).padStart(16, '0');

/**
 * An address space over a root region.
 *
 * @remarks Models softmmu/memory.c AddressSpace / physmem.c address_space_rw dispatch.
 */
export class AddressSpace implements DmaSpace, MemoryRegionObserver {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  declare readonly name: string;
  declare readonly root: MemoryRegion;
  declare private readonly trace: TraceSink;
  declare private view: FlatView;
  /**
   * A software TLB over the flat view, direct mapped by 4 KiB page, {@link TLB_STRIDE} numbers
   * per slot: the page number (NaN: none), the end of its range, the range's delta and its
   * {@link FlatView.access} bits plus its index times 256. A page is entered only when its range
   * covers it from its first byte, so a hit needs one more test, that the access ends inside the
   * range; a hit then reaches the region with no look at the view's columns. A typed array: an
   * access writes no field (the explorer may freeze the objects of a world, see
   * `check/explore/heap-snapshot.ts`).
   */
  declare private readonly tlb: Float64Array;
  declare private readonly listeners: MemoryListener[];
  declare private readonly tmp: Word64;
  declare private readonly piece: Word64;
  /** The value of one access of {@link read} / {@link write}. */
  declare private readonly chunk: Word64;
  /** Number of flat-view rebuilds (each commit that touched this space counts once). */
  declare rebuilds: number;
  /** Accesses that hit no region (QEMU unassigned_mem_ops). */
  declare unassignedAccesses: number;
  /** Accesses the memory core rejected (`memory_region_access_valid` failed). */
  declare invalidAccesses: number;

  constructor(root: MemoryRegion, name: string, trace: TraceSink = NULL_TRACE) {
    this.name = name;
    this.root = root;
    this.trace = trace;
    this.view = generateMemoryTopology(root);
    this.tlb = new Float64Array(TLB_SLOTS * TLB_STRIDE).fill(Number.NaN);
    this.listeners = [];
    this.tmp = new Word64();
    this.piece = new Word64();
    this.chunk = new Word64();
    this.rebuilds = 0;
    this.unassignedAccesses = 0;
    this.invalidAccesses = 0;
    root.addObserver(this);
  }

  /** The current flat view. */
  get flatView(): FlatView {
    return this.view;
  }

  /** Open a (global) transaction: see {@link memoryRegionTransactionBegin}. */
  begin(): void {
    memoryRegionTransactionBegin();
  }

  /** Close it; the view is rebuilt once when the outermost transaction ends. */
  commit(): void {
    memoryRegionTransactionCommit();
  }

  /** Stop tracking the tree (the space must not be used afterwards). */
  destroy(): void {
    this.root.removeObserver(this);
  }

  /**
   * Register a listener; it is told about every existing range at once (`regionAdd`).
   *
   * @remarks Models softmmu/memory.c:memory_listener_register() / listener_add_address_space().
   */
  addListener(l: MemoryListener): void {
    this.listeners.push(l);
    l.begin?.();
    for (let i = 0; i < this.view.count; i++) l.regionAdd?.(this.view.section(i));
    l.commit?.();
  }

  /**
   * Unregister a listener; it is told every range goes away (`regionDel`).
   *
   * @remarks Models softmmu/memory.c:memory_listener_unregister() / listener_del_address_space().
   */
  removeListener(l: MemoryListener): void {
    const i = this.listeners.indexOf(l);
    if (i < 0) return;
    this.listeners.splice(i, 1);
    l.begin?.();
    for (let j = 0; j < this.view.count; j++) l.regionDel?.(this.view.section(j));
    l.commit?.();
  }

  /**
   * Rebuild the view and tell listeners the difference.
   *
   * @remarks Models softmmu/memory.c:address_space_set_flatview() /
   * address_space_update_topology_pass() (deletions first, then additions and no-ops).
   */
  regionChanged(): void {
    const old = this.view;
    const next = generateMemoryTopology(this.root);
    this.view = next;
    this.tlb.fill(Number.NaN);
    this.rebuilds++;
    if (this.trace.mask & TRACE_VMM)
      traceEvent(this.trace, 'as.rebuild', { ranges: next.count, oldRanges: old.count });
    if (this.listeners.length === 0) return;
    for (const l of this.listeners) l.begin?.();
    this.updateTopologyPass(old, next, false);
    this.updateTopologyPass(old, next, true);
    for (const l of this.listeners) l.commit?.();
  }

  private updateTopologyPass(old: FlatView, next: FlatView, adding: boolean): void {
    let io = 0;
    let inew = 0;
    while (io < old.count || inew < next.count) {
      const haveOld = io < old.count;
      const haveNew = inew < next.count;
      const equal =
        haveOld &&
        haveNew &&
        old.starts[io] === next.starts[inew] &&
        old.ends[io] === next.ends[inew] &&
        old.regions[io] === next.regions[inew] &&
        old.offsets[io] === next.offsets[inew];
      if (
        haveOld &&
        (!haveNew || old.starts[io]! < next.starts[inew]! || (old.starts[io] === next.starts[inew] && !equal))
      ) {
        if (!adding) {
          const s = old.section(io);
          for (const l of this.listeners) l.regionDel?.(s);
        }
        io++;
      } else if (equal) {
        if (adding) {
          const s = next.section(inew);
          for (const l of this.listeners) l.regionNop?.(s);
        }
        io++;
        inew++;
      } else {
        if (adding) {
          const s = next.section(inew);
          for (const l of this.listeners) l.regionAdd?.(s);
        }
        inew++;
      }
    }
  }

  /** The section containing `addr` (QEMU `memory_region_find` on the flat view), or null. */
  translate(addr: number): MemoryRegionSection | null {
    const i = this.view.find(addr);
    return i < 0 ? null : this.view.section(i);
  }

  /** Big-endian load of `size` bytes at `addr` on behalf of vCPU `cpu` (or {@link NO_CPU}). */
  load(addr: number, size: AccessSize, cpu: number, out: Word64): void {
    const t = this.tlb;
    const pn = Math.floor(addr * TLB_PAGE_INV);
    // `&` takes the page number modulo 2^32: exact low bits for any page number.
    const k = (pn & (TLB_SLOTS - 1)) * TLB_STRIDE;
    if (t[k] === pn && addr + size <= t[k + 1]!) this.loadRange(t[k + 3]!, addr + t[k + 2]!, size, cpu, out);
    else this.loadMiss(addr, size, cpu, out);
  }

  /** {@link load} past the TLB: search the view (and enter the page). */
  private loadMiss(addr: number, size: AccessSize, cpu: number, out: Word64): void {
    const i = this.rangeMiss(addr, size);
    if (i < 0) this.loadSlow(addr, size, cpu, out);
    else this.loadRange(this.view.access[i]! | (i << 8), addr + this.view.deltas[i]!, size, cpu, out);
  }

  /**
   * A load that range `info >> 8` holds, at `off` in its region; `info & 0xff` are the range's
   * access bits.
   */
  private loadRange(info: number, off: number, size: AccessSize, cpu: number, out: Word64): void {
    const mr = this.view.regions[info >> 8]!;
    if (info & ACC_RAM) {
      mr.ramLoad(off, size, out);
      return;
    }
    // `&` takes the offset modulo 2^32, so its low bits are exact even past 2^31.
    if ((info & size) === 0 || ((info & ACC_UNALIGNED) === 0 && (off & (size - 1)) !== 0)) {
      this.invalidAccess(mr, off, size);
      out.hi = 0;
      out.lo = 0;
      return;
    }
    (mr.ops as MmioDevice).load(off, size, cpu, out);
  }

  /**
   * Big-endian store of the low `size` bytes of `hi`:`lo` at `addr` on behalf of `cpu`. Returns
   * false on a MEMTX error (nothing answers, or the access is invalid).
   */
  store(addr: number, size: AccessSize, hi: number, lo: number, cpu: number): boolean {
    const t = this.tlb;
    const pn = Math.floor(addr * TLB_PAGE_INV);
    const k = (pn & (TLB_SLOTS - 1)) * TLB_STRIDE;
    if (t[k] === pn && addr + size <= t[k + 1]!)
      return this.storeRange(t[k + 3]!, addr + t[k + 2]!, size, hi, lo, cpu);
    return this.storeMiss(addr, size, hi, lo, cpu);
  }

  /** {@link store} past the TLB, as {@link loadMiss}. */
  private storeMiss(addr: number, size: AccessSize, hi: number, lo: number, cpu: number): boolean {
    const i = this.rangeMiss(addr, size);
    if (i < 0) {
      this.storeSlow(addr, size, hi, lo, cpu);
      return false;
    }
    return this.storeRange(this.view.access[i]! | (i << 8), addr + this.view.deltas[i]!, size, hi, lo, cpu);
  }

  /** A store that range `info >> 8` holds, as {@link loadRange}. */
  private storeRange(
    info: number,
    off: number,
    size: AccessSize,
    hi: number,
    lo: number,
    cpu: number,
  ): boolean {
    const mr = this.view.regions[info >> 8]!;
    if (info & ACC_RAM) {
      mr.ramStore(off, size, hi, lo);
      return true;
    }
    if ((info & size) === 0 || ((info & ACC_UNALIGNED) === 0 && (off & (size - 1)) !== 0)) {
      this.invalidAccess(mr, off, size);
      return false;
    }
    // RAM takes the halves as int32 or u32 (see DmaSpace.storeBe32); devices get u32s.
    (mr.ops as MmioDevice).store(off, size, hi >>> 0, lo >>> 0, cpu);
    return true;
  }

  /**
   * The range holding all of `[addr, addr + size)`, or −1 (the access straddles ranges or hits
   * none), from the view; its page goes into the TLB.
   */
  private rangeMiss(addr: number, size: number): number {
    const v = this.view;
    const i = v.find(addr);
    if (i < 0 || addr + size > v.ends[i]!) return -1;
    const pn = Math.floor(addr * TLB_PAGE_INV);
    if (v.starts[i]! <= pn * TLB_PAGE_SIZE) {
      const t = this.tlb;
      const k = (pn & (TLB_SLOTS - 1)) * TLB_STRIDE;
      t[k] = pn;
      t[k + 1] = v.ends[i]!;
      t[k + 2] = v.deltas[i]!;
      t[k + 3] = v.access[i]! | (i << 8);
    }
    return i;
  }

  // --- DmaSpace ----------------------------------------------------------------------------

  /** `address_space_ldl_be` (no vCPU). Unassigned reads 0. */
  loadBe32(addr: number): number {
    this.load(addr, 4, NO_CPU, this.tmp);
    return this.tmp.lo;
  }

  /**
   * `address_space_stl_be` (no vCPU). Returns false on a MEMTX error: nothing answers at `addr`
   * or the region rejected the access.
   */
  storeBe32(addr: number, value: number): boolean {
    // The router's EQ writes: a TLB hit on RAM goes straight to the page (what storeRange does
    // for RAM, in less code for the JIT to inline); anything else takes the whole store path.
    const t = this.tlb;
    const pn = Math.floor(addr * TLB_PAGE_INV);
    const k = (pn & (TLB_SLOTS - 1)) * TLB_STRIDE;
    const info = t[k + 3]!;
    if (t[k] === pn && addr + 4 <= t[k + 1]! && (info & ACC_RAM) !== 0) {
      this.view.regions[info >> 8]!.ramStoreBe32(addr + t[k + 2]!, value);
      return true;
    }
    return this.store(addr, 4, 0, value | 0, NO_CPU);
  }

  /**
   * `address_space_read` with no vCPU behind it (qtest): `dst` filled from `addr` on, in memory
   * order, one {@link accessSize} access at a time. An access to a device has its side effects
   * (an 8-byte ESB load moves PQ); a byte no region answers reads 0.
   *
   * @remarks Models physmem.c:flatview_read_continue(): RAM is copied, anything else is read
   * with memory_region_dispatch_read() in pieces of memory_access_size() and stored with
   * stn_he_p() after the device-endianness swap, which leaves the value's bytes in the order a
   * big-endian CPU sees them (what {@link load} returns).
   */
  read(addr: number, dst: Uint8Array, cpu: number): void {
    const w = this.chunk;
    for (let done = 0; done < dst.length; ) {
      const p = addr + done;
      const l = this.accessSize(p, dst.length - done);
      this.load(p, l, cpu, w);
      for (let k = 0; k < l; k++) {
        const shift = (l - 1 - k) * 8;
        dst[done + k] = shift >= 32 ? w.hi >>> (shift - 32) : w.lo >>> shift;
      }
      done += l;
    }
  }

  /**
   * `address_space_write` with no vCPU behind it (qtest `write` / `memset`): `src` stored from
   * `addr` on in the pieces {@link read} reads.
   *
   * @remarks Models physmem.c:flatview_write_continue() (ldn_he_p() and
   * memory_region_dispatch_write() in pieces of memory_access_size()).
   */
  write(addr: number, src: Uint8Array, cpu: number): void {
    for (let done = 0; done < src.length; ) {
      const p = addr + done;
      const l = this.accessSize(p, src.length - done);
      let hi = 0;
      let lo = 0;
      for (let k = 0; k < l; k++) {
        hi = ((hi << 8) | (lo >>> 24)) >>> 0;
        lo = ((lo << 8) | src[done + k]!) >>> 0;
      }
      this.store(p, l, hi, lo, cpu);
      done += l;
    }
  }

  /**
   * The size of the next access of a {@link read} / {@link write} at `addr` with `len` bytes
   * left: the rest of the flat range (or of the gap), capped at what the region takes at once
   * (8 for RAM and RAM devices, `valid.max` for I/O, 4 for unassigned memory), then at the
   * alignment of the offset in the region unless the region takes unaligned accesses (the
   * offset is the address itself in a gap), then rounded down to a power of two.
   *
   * @remarks Models physmem.c:memory_access_size() on the section flatview_translate() finds;
   * unassigned_mem_ops has no max_access_size (so 4) and is not unaligned. `valid.unaligned`
   * stands for `impl.unaligned`: the model's regions have one flag for both.
   */
  private accessSize(addr: number, len: number): AccessSize {
    const v = this.view;
    const i = v.find(addr);
    let rest: number;
    let max = 8;
    let off = addr;
    let unaligned = true;
    if (i < 0) {
      const j = v.findFrom(addr);
      rest = j < v.count ? v.starts[j]! - addr : len;
      max = 4;
      unaligned = false;
    } else {
      const mr = v.regions[i]!;
      rest = v.ends[i]! - addr;
      off = addr + v.deltas[i]!;
      if (mr.kind === MR_IO) {
        max = mr.valid.max;
        unaligned = mr.valid.unaligned;
      }
    }
    let l = Math.min(len, rest, max);
    if (!unaligned) l = Math.min(l, alignOf(off));
    let s = 8;
    while (s > l) s >>= 1;
    return s as AccessSize;
  }

  /** True when every byte of `[addr, addr+len)` is VMM RAM. */
  isRam(addr: number, len: number): boolean {
    const v = this.view;
    let a = addr;
    const end = addr + len;
    while (a < end) {
      const i = v.find(a);
      if (i < 0 || v.regions[i]!.kind !== MR_RAM) return false;
      a = v.ends[i]!;
    }
    return true;
  }

  // --- internals ---------------------------------------------------------------------------

  /** Count and report an access {@link accessBits} refused (the cold half of the check). */
  private invalidAccess(mr: MemoryRegion, off: number, size: AccessSize): void {
    const valid = mr.valid;
    this.invalidAccesses++;
    const unaligned = !valid.unaligned && (off & (size - 1)) !== 0;
    const reason = unaligned ? 'unaligned' : `invalid size (min:${valid.min} max:${valid.max})`;
    this.trace.guestError(
      `Invalid access at addr 0x${hex(off)}, size ${size}, region '${mr.name}', reason: ${reason}`,
    );
  }

  /**
   * Accesses that straddle ranges or hit no range: split at range boundaries into naturally
   * aligned pieces, unassigned pieces read 0 and drop writes.
   *
   * @remarks Models physmem.c:flatview_read_continue() / memory_access_size() and
   * softmmu/memory.c unassigned_mem_ops.
   */
  private loadSlow(addr: number, size: AccessSize, cpu: number, out: Word64): void {
    if (this.unassignedWhole(addr, size)) {
      this.unassignedAccesses++;
      this.trace.guestError(`Unassigned mem read ${hex16(addr)}`);
      out.hi = 0;
      out.lo = 0;
      return;
    }
    let hi = 0;
    let lo = 0;
    const piece = this.piece;
    let p = addr;
    const end = addr + size;
    while (p < end) {
      const l = this.pieceSize(p, end);
      const i = this.view.find(p);
      if (i < 0) {
        piece.hi = 0;
        piece.lo = 0;
        this.unassignedAccesses++;
        this.trace.guestError(`Unassigned mem read ${hex16(p)}`);
      } else {
        this.load(p, l, cpu, piece);
      }
      for (let k = l - 1; k >= 0; k--) {
        const b = k >= 4 ? (piece.hi >>> ((k - 4) * 8)) & 0xff : (piece.lo >>> (k * 8)) & 0xff;
        hi = ((hi << 8) | (lo >>> 24)) >>> 0;
        lo = ((lo << 8) | b) >>> 0;
      }
      p += l;
    }
    out.hi = size === 8 ? hi : 0;
    out.lo = lo;
  }

  private storeSlow(addr: number, size: AccessSize, hi: number, lo: number, cpu: number): void {
    if (this.unassignedWhole(addr, size)) {
      this.unassignedAccesses++;
      const v = size === 8 ? (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0) : BigInt(lo >>> 0);
      this.trace.guestError(`Unassigned mem write ${hex16(addr)} = 0x${v.toString(16)}`);
      return;
    }
    let p = addr;
    const end = addr + size;
    while (p < end) {
      const l = this.pieceSize(p, end);
      // bytes [p - addr, p - addr + l) of the big-endian value
      let phi = 0;
      let plo = 0;
      for (let k = 0; k < l; k++) {
        const shift = (size - 1 - (p - addr) - k) * 8;
        const b = shift >= 32 ? (hi >>> (shift - 32)) & 0xff : (lo >>> shift) & 0xff;
        phi = ((phi << 8) | (plo >>> 24)) >>> 0;
        plo = ((plo << 8) | b) >>> 0;
      }
      if (this.view.find(p) < 0) {
        this.unassignedAccesses++;
        const pv = (BigInt(phi) << 32n) | BigInt(plo);
        this.trace.guestError(`Unassigned mem write ${hex16(p)} = 0x${pv.toString(16)}`);
      } else {
        this.store(p, l, l === 8 ? phi : 0, plo, cpu);
      }
      p += l;
    }
  }

  private unassignedWhole(addr: number, size: number): boolean {
    const j = this.view.findFrom(addr);
    return j >= this.view.count || this.view.starts[j]! >= addr + size;
  }

  /** Largest naturally aligned power-of-two piece at `p` that stays inside one range. */
  private pieceSize(p: number, end: number): AccessSize {
    const v = this.view;
    const i = v.find(p);
    let lim: number;
    if (i >= 0) lim = Math.min(end, v.ends[i]!);
    else {
      const j = v.findFrom(p);
      lim = j < v.count ? Math.min(end, v.starts[j]!) : end;
    }
    const l = lim - p;
    let s = 8;
    while (s > l || p % s !== 0) s >>= 1;
    return s as AccessSize;
  }

  /** `info mtree -f`-style listing of the flat view. */
  formatFlatView(): string {
    const v = this.view;
    const lines = [
      'FlatView #0',
      ` AS "${this.name}", root: ${this.root.name}`,
      ` Root memory region: ${this.root.name}`,
    ];
    for (let i = 0; i < v.count; i++) {
      const mr = v.regions[i]!;
      const kind =
        mr.kind === MR_RAM ? 'ram' : mr.kind === MR_RAM_DEVICE ? 'ramd' : mr.kind === MR_IO ? 'i/o' : '?';
      const off = v.offsets[i]! !== 0 ? ` @${hex16(v.offsets[i]!)}` : '';
      lines.push(
        `  ${hex16(v.starts[i]!)}-${hex16(v.ends[i]! - 1)} (prio ${mr.priority}, ${kind}): ${mr.name}${off}`,
      );
    }
    return lines.join('\n');
  }
}
