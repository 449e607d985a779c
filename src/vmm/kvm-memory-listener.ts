/**
 * The KVM memory listener: turns the RAM and RAM-device ranges of an address space's flat view
 * into KVM memslots with `KVM_SET_USER_MEMORY_REGION` on the VM fd, as QEMU's accel/kvm does.
 *
 * The flat view already resolves overlaps and priorities (`address-space.ts`), so a priority-1
 * RAM device laid over the middle of a larger RAM device shows up as three sections and gives
 * three slots; removing the overlay gives one again. Topology changes arrive as `regionDel` for
 * every range that went away, then `regionAdd` for every new one (QEMU's two update passes):
 * a slot is freed before its id can be reused.
 *
 * I/O regions have no memslot: guest accesses there exit to the VMM (KVM_EXIT_MMIO).
 */

import {
  encodeKvmUserspaceMemoryRegion,
  KVM_SET_USER_MEMORY_REGION,
  KVM_USERSPACE_MEMORY_REGION_SIZE,
} from '../host/kvm/uapi.ts';
import type { FlatView, MemoryListener, MemoryRegionSection } from './address-space.ts';

/** ppc64 host page size (`qemu_real_host_page_size()`): KVM works in these. */
export const KVM_HOST_PAGE_SIZE = 0x1_0000;

/** The syscalls the listener needs from the VMM's process (`HostProcess` satisfies this). */
export interface KvmListenerProcess {
  ioctl(fd: number, request: number, arg: number | bigint): number;
  userAlloc(len: number): number;
  putBytes(addr: number, b: Uint8Array): void;
}

/** One memslot as the VMM keeps it (`KVMSlot`). */
export interface KvmSlotInfo {
  readonly slot: number;
  readonly guestPhysAddr: number;
  readonly memorySize: number;
  readonly userspaceAddr: number;
  readonly flags: number;
  /** Name of the region the slot maps (for tests and `info mtree`-style output). */
  readonly region: string;
}

export interface KvmMemoryListenerOptions {
  /** Number of usable slots (`KVM_CAP_NR_MEMSLOTS`). */
  nrSlots: number;
  /** Address space id (`kml->as_id`; 0 = memory). */
  asId?: number;
  /** Largest slot (`kvm_max_slot_size`; default unlimited). */
  maxSlotSize?: number;
}

/**
 * A KVM memory listener over one address space.
 *
 * @remarks Models accel/kvm/kvm-all.c (QEMU 7.2): KVMMemoryListener, kvm_region_add(),
 * kvm_region_del(), kvm_set_phys_mem(), kvm_align_section(), kvm_alloc_slot(),
 * kvm_lookup_matching_slot() and kvm_set_user_memory_region().
 */
export class KvmMemoryListener implements MemoryListener {
  readonly asId: number;
  readonly nrSlots: number;
  readonly maxSlotSize: number;
  /** `KVM_SET_USER_MEMORY_REGION` calls made (adds and deletes). */
  ioctls: number;
  /** Slots in use now / at most so far. */
  used: number;
  peak: number;
  private readonly proc: KvmListenerProcess;
  private readonly vmFd: number;
  private readonly start: Float64Array;
  private readonly size: Float64Array;
  private readonly ram: Float64Array;
  private readonly flags: Uint32Array;
  private readonly names: string[];
  /** User buffer for the ioctl struct (QEMU's stack variable). */
  private readonly buf: number;

  constructor(proc: KvmListenerProcess, vmFd: number, opts: KvmMemoryListenerOptions) {
    if (!Number.isInteger(opts.nrSlots) || opts.nrSlots <= 0) throw new RangeError(`nrSlots ${opts.nrSlots}`);
    this.proc = proc;
    this.vmFd = vmFd;
    this.asId = opts.asId ?? 0;
    this.nrSlots = opts.nrSlots;
    this.maxSlotSize = opts.maxSlotSize ?? Number.MAX_SAFE_INTEGER;
    this.ioctls = 0;
    this.used = 0;
    this.peak = 0;
    this.start = new Float64Array(opts.nrSlots);
    this.size = new Float64Array(opts.nrSlots);
    this.ram = new Float64Array(opts.nrSlots);
    this.flags = new Uint32Array(opts.nrSlots);
    this.names = new Array<string>(opts.nrSlots).fill('');
    this.buf = proc.userAlloc(KVM_USERSPACE_MEMORY_REGION_SIZE);
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_region_add(). */
  regionAdd(section: MemoryRegionSection): void {
    this.setPhysMem(section, true);
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_region_del(). */
  regionDel(section: MemoryRegionSection): void {
    this.setPhysMem(section, false);
  }

  /** The slots in use, by slot id. */
  slots(): KvmSlotInfo[] {
    const out: KvmSlotInfo[] = [];
    for (let i = 0; i < this.nrSlots; i++) {
      if (this.size[i] === 0) continue;
      out.push({
        slot: i,
        guestPhysAddr: this.start[i]!,
        memorySize: this.size[i]!,
        userspaceAddr: this.ram[i]!,
        flags: this.flags[i]!,
        region: this.names[i]!,
      });
    }
    return out;
  }

  /**
   * The memslots the RAM ranges of `view` would take, counted as {@link regionAdd} would make
   * them (page-aligned, split at the largest slot size), with no slot allocated and no ioctl:
   * what a VM needs for a view, also past `nrSlots`, where a commit of it fails.
   *
   * @remarks The slot arithmetic of accel/kvm/kvm-all.c:kvm_set_phys_mem() (kvm_align_section(),
   * then one slot per kvm_max_slot_size piece), without kvm_alloc_slot().
   */
  slotsFor(view: FlatView): number {
    let n = 0;
    for (let i = 0; i < view.count; i++) {
      const section = view.section(i);
      if (!section.mr.isRam) continue;
      const { size } = this.alignSection(section);
      n += Math.ceil(size / this.maxSlotSize);
    }
    return n;
  }

  /**
   * Page-align a section: round the start up and the size down to host pages.
   *
   * @remarks Models accel/kvm/kvm-all.c:kvm_align_section().
   */
  private alignSection(section: MemoryRegionSection): { start: number; size: number } {
    const s = section.offsetWithinAddressSpace;
    const aligned = Math.ceil(s / KVM_HOST_PAGE_SIZE) * KVM_HOST_PAGE_SIZE;
    const delta = aligned - s;
    if (delta > section.size) return { start: aligned, size: 0 };
    const size = Math.floor((section.size - delta) / KVM_HOST_PAGE_SIZE) * KVM_HOST_PAGE_SIZE;
    return { start: aligned, size };
  }

  /**
   * Register or unregister the slots of one section. Non-RAM sections are ignored (no
   * read-only memslots: this machine has no ROM devices). A failed ioctl aborts QEMU; here it
   * throws with QEMU's message.
   *
   * @remarks Models accel/kvm/kvm-all.c:kvm_set_phys_mem().
   */
  private setPhysMem(section: MemoryRegionSection, add: boolean): void {
    const mr = section.mr;
    if (!mr.isRam) return;
    const { start, size } = this.alignSection(section);
    if (size === 0) return;
    const mrOffset = section.offsetWithinRegion + start - section.offsetWithinAddressSpace;
    if (mr.ramOffset < 0) throw new Error(`kvm_set_phys_mem: ${mr.name} has no host mapping`);
    let ram = mr.ramOffset + mrOffset;
    let startAddr = start;
    let left = size;
    if (!add) {
      while (left > 0) {
        const slotSize = Math.min(this.maxSlotSize, left);
        const slot = this.lookupMatchingSlot(startAddr, slotSize);
        if (slot < 0) return;
        this.size[slot] = 0;
        this.flags[slot] = 0;
        const err = this.setUserMemoryRegion(slot);
        if (err < 0) throw new Error(`kvm_set_phys_mem: error unregistering slot: errno ${-err}`);
        this.used--;
        this.names[slot] = '';
        startAddr += slotSize;
        left -= slotSize;
      }
      return;
    }
    while (left > 0) {
      const slotSize = Math.min(this.maxSlotSize, left);
      const slot = this.allocSlot();
      this.start[slot] = startAddr;
      this.size[slot] = slotSize;
      this.ram[slot] = ram;
      this.flags[slot] = 0;
      this.names[slot] = mr.name;
      const err = this.setUserMemoryRegion(slot);
      if (err < 0) {
        this.size[slot] = 0;
        this.names[slot] = '';
        throw new Error(
          `kvm_set_user_memory_region: KVM_SET_USER_MEMORY_REGION failed, slot=${slot}, ` +
            `start=0x${startAddr.toString(16)}, size=0x${slotSize.toString(16)}: errno ${-err}`,
        );
      }
      this.used++;
      if (this.used > this.peak) this.peak = this.used;
      startAddr += slotSize;
      ram += slotSize;
      left -= slotSize;
    }
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_alloc_slot() / kvm_get_free_slot(). */
  private allocSlot(): number {
    for (let i = 0; i < this.nrSlots; i++) if (this.size[i] === 0) return i;
    throw new Error('kvm_alloc_slot: no free slot available');
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_lookup_matching_slot(). */
  private lookupMatchingSlot(startAddr: number, size: number): number {
    for (let i = 0; i < this.nrSlots; i++) {
      if (this.start[i] === startAddr && this.size[i] === size) return i;
    }
    return -1;
  }

  /** @remarks Models accel/kvm/kvm-all.c:kvm_set_user_memory_region(). */
  private setUserMemoryRegion(slot: number): number {
    const b = encodeKvmUserspaceMemoryRegion({
      slot: slot | (this.asId << 16),
      flags: this.flags[slot]!,
      guestPhysAddr: this.start[slot]!,
      memorySize: this.size[slot]!,
      userspaceAddr: this.ram[slot]!,
    });
    this.proc.putBytes(this.buf, b);
    this.ioctls++;
    return this.proc.ioctl(this.vmFd, KVM_SET_USER_MEMORY_REGION, this.buf);
  }
}
