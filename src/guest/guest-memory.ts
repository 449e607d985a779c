/**
 * The guest kernel's page allocator: 64 KiB pages (a ppc64 kernel with `PAGE_SHIFT` 16) over
 * guest RAM from the device tree's first free address to the end of RAM, buddy-style power-of-two
 * orders with natural alignment, first fit.
 *
 * @remarks Models the parts of mm/page_alloc.c (alloc_pages / free_pages) the XIVE driver uses.
 */

import type { GuestVcpu } from './platform.ts';

export const PAGE_SHIFT = 16;
export const PAGE_SIZE = 0x1_0000;

export class GuestMemory {
  /** Guest physical address of page 0 of the pool. */
  readonly base: number;
  readonly nrPages: number;
  /** 1 = allocated. */
  private readonly used: Uint8Array;
  private freePages: number;

  constructor(ramFree: number, ramSize: number) {
    const first = Math.ceil(ramFree / PAGE_SIZE);
    const last = Math.floor(ramSize / PAGE_SIZE);
    if (last <= first)
      throw new RangeError(
        `no free guest RAM: free 0x${ramFree.toString(16)}, size 0x${ramSize.toString(16)}`,
      );
    this.base = first * PAGE_SIZE;
    this.nrPages = last - first;
    this.used = new Uint8Array(this.nrPages);
    this.freePages = this.nrPages;
  }

  /** Free pages left. */
  get available(): number {
    return this.freePages;
  }

  /**
   * `alloc_pages(order)`: 2^order naturally aligned contiguous pages; the guest physical address,
   * or −1 when none is free.
   */
  allocPages(order: number): number {
    const n = 2 ** order;
    // Natural alignment is in guest physical terms: base is page aligned, align the page number.
    const basePfn = this.base / PAGE_SIZE;
    let pfn = Math.ceil(basePfn / n) * n;
    for (; pfn - basePfn + n <= this.nrPages; pfn += n) {
      const i0 = pfn - basePfn;
      let free = true;
      for (let i = 0; i < n; i++) {
        if (this.used[i0 + i] !== 0) {
          free = false;
          break;
        }
      }
      if (!free) continue;
      this.used.fill(1, i0, i0 + n);
      this.freePages -= n;
      return pfn * PAGE_SIZE;
    }
    return -1;
  }

  /** `free_pages(addr, order)`. Freeing what was not allocated is a guest-model bug. */
  freePagesAt(addr: number, order: number): void {
    const n = 2 ** order;
    const i0 = addr / PAGE_SIZE - this.base / PAGE_SIZE;
    if (!Number.isInteger(i0) || i0 < 0 || i0 + n > this.nrPages) {
      throw new Error(`free_pages(0x${addr.toString(16)}, ${order}): not in the pool`);
    }
    for (let i = 0; i < n; i++) {
      if (this.used[i0 + i] !== 1)
        throw new Error(`free_pages(0x${addr.toString(16)}, ${order}): page not allocated`);
    }
    this.used.fill(0, i0, i0 + n);
    this.freePages += n;
  }

  isAllocated(addr: number): boolean {
    const i = Math.floor(addr / PAGE_SIZE) - this.base / PAGE_SIZE;
    return i >= 0 && i < this.nrPages && this.used[i] === 1;
  }
}

/** `memset(p, 0, len)` through a vCPU: 8-byte stores (len a multiple of 8). */
export function zeroGuestMemory(v: GuestVcpu, addr: number, len: number): void {
  for (let off = 0; off < len; off += 8) v.store(addr + off, 8, 0, 0);
}

/** Write bytes through a vCPU with byte stores (small buffers: the CAS table). */
export function writeGuestBytes(v: GuestVcpu, addr: number, bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) v.store(addr + i, 1, 0, bytes[i]!);
}
