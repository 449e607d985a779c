/**
 * A VM's memory slots: guest frame ranges backed by a range of the VMM's virtual address space,
 * created, moved, re-flagged and deleted through `KVM_SET_USER_MEMORY_REGION`, looked up by gfn
 * on every partition-scoped fault, and by hva when the VMM's mm invalidates a range.
 *
 * Guest frames are host pages (64 KiB): gfn = gpa / 64 KiB.
 */

import { EEXIST, EINVAL } from '../errno.ts';
import { PAGE_SIZE } from '../mm/constants.ts';
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_MAX_NR_PAGES,
  KVM_MEM_READONLY,
  KVM_USER_MEM_SLOTS,
  type KvmUserspaceMemoryRegion,
} from './uapi.ts';

/** `enum kvm_mr_change`. */
export const KVM_MR_CREATE = 0;
export const KVM_MR_DELETE = 1;
export const KVM_MR_MOVE = 2;
export const KVM_MR_FLAGS_ONLY = 3;

/** Flags a powerpc memslot accepts (`check_memory_region_flags`: no READONLY, no guest_memfd). */
export const KVM_MEM_VALID_FLAGS = KVM_MEM_LOG_DIRTY_PAGES;

const PAGE = BigInt(PAGE_SIZE);
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** `struct kvm_memory_slot`. */
export class KvmMemorySlot {
  readonly id: number;
  baseGfn: number;
  readonly npages: number;
  readonly userspaceAddr: number;
  flags: number;
  /** One byte per page when dirty logging is on (`dirty_bitmap`), else null. */
  dirtyBitmap: Uint8Array | null;
  constructor(id: number, baseGfn: number, npages: number, userspaceAddr: number, flags: number) {
    this.id = id;
    this.baseGfn = baseGfn;
    this.npages = npages;
    this.userspaceAddr = userspaceAddr;
    this.flags = flags;
    this.dirtyBitmap = flags & KVM_MEM_LOG_DIRTY_PAGES ? new Uint8Array(npages) : null;
  }
  /** `__gfn_to_hva_memslot`. */
  gfnToHva(gfn: number): number {
    return this.userspaceAddr + (gfn - this.baseGfn) * PAGE_SIZE;
  }
  get endGfn(): number {
    return this.baseGfn + this.npages;
  }
}

/** What a successful `KVM_SET_USER_MEMORY_REGION` did (for the arch hooks of the caller). */
export interface MemslotChange {
  change: number;
  /** The slot before the change (DELETE, MOVE, FLAGS_ONLY), else null. */
  old: { id: number; baseGfn: number; npages: number; userspaceAddr: number; flags: number } | null;
  /** The slot after the change (null for DELETE). */
  slot: KvmMemorySlot | null;
}

/** Configuration of {@link KvmMemslots}. */
export interface KvmMemslotsConfig {
  /** `KVM_USER_MEM_SLOTS` (default 512, powerpc's). */
  limit?: number;
  /** `TASK_SIZE_MAX` for the userspace_addr `access_ok` check. */
  taskSize: number;
}

/**
 * The slot set of one address space (powerpc has one).
 *
 * @remarks Models virt/kvm/kvm_main.c: __kvm_set_memory_region(), kvm_check_memslot_overlap(),
 * id_to_memslot(), gfn_to_memslot() (with its one-entry cache).
 */
export class KvmMemslots {
  readonly limit: number;
  readonly taskSize: number;
  /** Slots with npages > 0, in use right now. */
  used!: number;
  /** Highest {@link used} ever. */
  peak: number;
  /** Successful changes by kind: create, delete, move, flags-only. */
  readonly changes: [number, number, number, number];
  private readonly byId: Map<number, KvmMemorySlot>;
  /** Sorted by baseGfn (non-overlapping). */
  private sorted!: KvmMemorySlot[];
  private last!: KvmMemorySlot | null;

  constructor(cfg: KvmMemslotsConfig) {
    this.limit = cfg.limit ?? KVM_USER_MEM_SLOTS;
    this.taskSize = cfg.taskSize;
    this.peak = 0;
    this.changes = [0, 0, 0, 0];
    this.byId = new Map();
    this.clear();
  }

  /** The slot with this id, or null (`id_to_memslot`). */
  byIdOf(id: number): KvmMemorySlot | null {
    return this.byId.get(id) ?? null;
  }

  /** All slots, sorted by base gfn. */
  all(): readonly KvmMemorySlot[] {
    return this.sorted;
  }

  /**
   * The slot holding `gfn`, or null.
   *
   * @remarks Models include/linux/kvm_host.h:__gfn_to_memslot() / search_memslots().
   */
  lookup(gfn: number): KvmMemorySlot | null {
    const l = this.last;
    if (l !== null && gfn >= l.baseGfn && gfn < l.baseGfn + l.npages) return l;
    const s = this.sorted;
    let lo = 0;
    let hi = s.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = s[mid]!;
      if (gfn < m.baseGfn) hi = mid - 1;
      else if (gfn >= m.baseGfn + m.npages) lo = mid + 1;
      else {
        this.last = m;
        return m;
      }
    }
    return null;
  }

  /**
   * `KVM_SET_USER_MEMORY_REGION` on a decoded struct: the change made, or −errno. Checks in the
   * kernel's order: slot id vs `KVM_USER_MEM_SLOTS` (the ioctl's own check) → flags → size
   * alignment → gpa alignment → userspace_addr alignment and `access_ok` → address space id →
   * gpa + size overflow → size > KVM_MEM_MAX_NR_PAGES pages (all −EINVAL); delete of an empty
   * slot −EINVAL; changing the size, the userspace address or READONLY of a live slot −EINVAL;
   * an unchanged slot is a successful no-op (`change` −1); create/move onto another slot's gfns
   * −EEXIST.
   *
   * Decisions where the kernel is config-dependent: userspace_addr must satisfy
   * `addr + size <= TASK_SIZE` (powerpc `__access_ok`); only address space 0 exists.
   *
   * @remarks Models virt/kvm/kvm_main.c:kvm_vm_ioctl_set_memory_region() +
   * __kvm_set_memory_region() + check_memory_region_flags().
   */
  set(mem: KvmUserspaceMemoryRegion): MemslotChange | number {
    const slotId = mem.slot >>> 0;
    if ((slotId & 0xffff) >= this.limit) return -EINVAL;
    if (mem.flags & ~KVM_MEM_VALID_FLAGS) return -EINVAL;
    const asId = Math.floor(slotId / 0x1_0000);
    const id = slotId & 0xffff;
    if (mem.memorySize % PAGE !== 0n) return -EINVAL;
    if (mem.guestPhysAddr % PAGE !== 0n) return -EINVAL;
    const task = BigInt(this.taskSize);
    if (
      mem.userspaceAddr % PAGE !== 0n ||
      !(mem.userspaceAddr < task && mem.memorySize <= task - mem.userspaceAddr)
    ) {
      return -EINVAL;
    }
    if (asId >= 1 || id >= this.limit) return -EINVAL;
    if (mem.guestPhysAddr + mem.memorySize > U64_MAX) return -EINVAL;
    const npagesBig = mem.memorySize / PAGE;
    if (npagesBig > BigInt(KVM_MEM_MAX_NR_PAGES)) return -EINVAL;
    const old = this.byId.get(id) ?? null;
    if (mem.memorySize === 0n) {
      if (old === null) return -EINVAL;
      this.remove(old);
      this.changes[KVM_MR_DELETE]++;
      return { change: KVM_MR_DELETE, old: snapshot(old), slot: null };
    }
    const baseGfn = Number(mem.guestPhysAddr / PAGE);
    const npages = Number(npagesBig);
    const uaddr = Number(mem.userspaceAddr);
    let change: number;
    if (old === null) {
      change = KVM_MR_CREATE;
    } else {
      if (
        uaddr !== old.userspaceAddr ||
        npages !== old.npages ||
        (mem.flags ^ old.flags) & KVM_MEM_READONLY
      ) {
        return -EINVAL;
      }
      if (baseGfn !== old.baseGfn) change = KVM_MR_MOVE;
      else if (mem.flags !== old.flags) change = KVM_MR_FLAGS_ONLY;
      else return { change: -1, old: snapshot(old), slot: old };
    }
    if (
      (change === KVM_MR_CREATE || change === KVM_MR_MOVE) &&
      this.overlaps(id, baseGfn, baseGfn + npages)
    ) {
      return -EEXIST;
    }
    const before = old === null ? null : snapshot(old);
    if (change === KVM_MR_CREATE) {
      const s = new KvmMemorySlot(id, baseGfn, npages, uaddr, mem.flags);
      this.byId.set(id, s);
      this.insertSorted(s);
      this.used++;
      if (this.used > this.peak) this.peak = this.used;
      this.changes[KVM_MR_CREATE]++;
      return { change, old: null, slot: s };
    }
    const s = old!;
    if (change === KVM_MR_MOVE) {
      this.sorted.splice(this.sorted.indexOf(s), 1);
      s.baseGfn = baseGfn;
      this.insertSorted(s);
      this.last = null;
    } else {
      s.flags = mem.flags;
      s.dirtyBitmap = mem.flags & KVM_MEM_LOG_DIRTY_PAGES ? new Uint8Array(s.npages) : null;
    }
    this.changes[change as 2 | 3]++;
    return { change, old: before, slot: s };
  }

  /** `kvm_check_memslot_overlap`: another slot covers part of `[start, end)`. */
  private overlaps(id: number, start: number, end: number): boolean {
    for (const s of this.sorted) {
      if (s.id !== id && start < s.baseGfn + s.npages && s.baseGfn < end) return true;
    }
    return false;
  }

  private insertSorted(s: KvmMemorySlot): void {
    let i = 0;
    while (i < this.sorted.length && this.sorted[i]!.baseGfn < s.baseGfn) i++;
    this.sorted.splice(i, 0, s);
  }

  private remove(s: KvmMemorySlot): void {
    this.byId.delete(s.id);
    this.sorted.splice(this.sorted.indexOf(s), 1);
    if (this.last === s) this.last = null;
    this.used--;
  }

  /** Drop every slot (VM destruction). */
  clear(): void {
    this.byId.clear();
    this.sorted = [];
    this.last = null;
    this.used = 0;
  }
}

function snapshot(s: KvmMemorySlot): MemslotChange['old'] {
  return { id: s.id, baseGfn: s.baseGfn, npages: s.npages, userspaceAddr: s.userspaceAddr, flags: s.flags };
}
