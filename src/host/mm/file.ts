/**
 * `struct file`, `struct inode` and `struct address_space` with its reverse map (`i_mmap`):
 * every VMA of every process that maps the file, indexed by the file page range it covers, so
 * that `unmap_mapping_range` reaches them all.
 */

import { FMODE_READ, FMODE_WRITE } from './constants.ts';
import { RwSem } from './rwsem.ts';
import type { Vma } from './vma.ts';

/** A driver's file operations (the subset the memory manager and the syscall layer call). */
export interface FileOperations {
  readonly name: string;
  /**
   * `f_op->mmap`: 0 or −errno. May set `vma.flags` (VM_IO | VM_PFNMAP…), `vma.ops` and
   * `vma.privateData`. Without it mmap fails with -ENODEV.
   */
  mmap?(file: File, vma: Vma): number;
  /** `f_op->release`: the last reference (fd or mapping) is gone. */
  release?(inode: Inode, file: File): void;
  /** `f_op->unlocked_ioctl`: result ≥ 0 or −errno. */
  unlockedIoctl?(file: File, cmd: number, arg: number): number;
}

const IMMAP_BLOCK = 16;

/**
 * `i_mmap`: an interval index over `[vm_pgoff, vm_pgoff + pages - 1]`. Entries are kept sorted by
 * (first page, insertion order) with the maximum last page of each block of 16, so a stabbing
 * query skips blocks that end before it. The keys are taken at insertion: a caller that changes
 * a VMA's pgoff or size removes it first and reinserts it after (as `vma_adjust` does).
 */
export class VmaIntervalTree {
  private items: Vma[];
  private firsts: number[];
  private lasts: number[];
  private seqs: number[];
  private blockMax: number[];
  private dirty: boolean;
  private seq: number;

  constructor() {
    this.items = [];
    this.firsts = [];
    this.lasts = [];
    this.seqs = [];
    this.blockMax = [];
    this.dirty = false;
    this.seq = 0;
  }

  get size(): number {
    return this.items.length;
  }

  insert(vma: Vma): void {
    const first = vma.pgoff;
    const last = vma.pgoff + vma.pages - 1;
    const seq = this.seq++;
    // Upper bound on first: ties go after existing entries (insertion order).
    let lo = 0;
    let hi = this.firsts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.firsts[mid]! <= first) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, vma);
    this.firsts.splice(lo, 0, first);
    this.lasts.splice(lo, 0, last);
    this.seqs.splice(lo, 0, seq);
    this.dirty = true;
  }

  remove(vma: Vma): void {
    const i = this.items.indexOf(vma);
    if (i < 0) throw new Error(`i_mmap: VMA ${vma.id} is not in the reverse map`);
    this.items.splice(i, 1);
    this.firsts.splice(i, 1);
    this.lasts.splice(i, 1);
    this.seqs.splice(i, 1);
    this.dirty = true;
  }

  has(vma: Vma): boolean {
    return this.items.includes(vma);
  }

  /** `vma_interval_tree_foreach`: VMAs whose page range meets `[first, last]`, in key order. */
  query(first: number, last: number): Vma[] {
    if (this.dirty) this.rebuild();
    const out: Vma[] = [];
    const n = this.items.length;
    for (let b = 0; b * IMMAP_BLOCK < n; b++) {
      const base = b * IMMAP_BLOCK;
      if (this.firsts[base]! > last) break;
      if (this.blockMax[b]! < first) continue;
      const stop = Math.min(base + IMMAP_BLOCK, n);
      for (let i = base; i < stop; i++) {
        if (this.firsts[i]! > last) break;
        if (this.lasts[i]! >= first) out.push(this.items[i]!);
      }
    }
    return out;
  }

  /** All entries in key order. */
  all(): Vma[] {
    return this.items.slice();
  }

  private rebuild(): void {
    const n = this.items.length;
    const blocks = Math.ceil(n / IMMAP_BLOCK);
    const m = new Array<number>(blocks).fill(-1);
    for (let i = 0; i < n; i++) {
      const b = Math.floor(i / IMMAP_BLOCK);
      if (this.lasts[i]! > m[b]!) m[b] = this.lasts[i]!;
    }
    this.blockMax = m;
    this.dirty = false;
  }
}

/** `struct address_space` (named for the `mapping` / `f_mapping` pointers that reach it). */
export class FileMapping {
  readonly host: Inode;
  readonly iMmap: VmaIntervalTree;
  /** `i_mmap_rwsem`. */
  readonly iMmapRwsem: RwSem;
  /** Page cache of a shmem inode: file page → RAM pfn (null for device files). */
  pages: Map<number, number> | null;

  constructor(host: Inode) {
    this.host = host;
    this.iMmap = new VmaIntervalTree();
    this.iMmapRwsem = new RwSem('i_mmap_rwsem');
    this.pages = null;
  }
}

/** `struct inode`: shared by every file opened on it (all anon-inode files share one). */
export class Inode {
  readonly ino: number;
  readonly name: string;
  readonly mapping: FileMapping;
  /** `i_private`. */
  iPrivate: unknown;

  constructor(ino: number, name: string) {
    this.ino = ino;
    this.name = name;
    this.mapping = new FileMapping(this);
    this.iPrivate = null;
  }
}

/**
 * `struct file`. `count` is `f_count`: one per fd table entry (in any process) and one per VMA
 * mapping it. `f_op.release` runs when it drops to zero, never before.
 */
export class File {
  readonly name: string;
  readonly fOp: FileOperations;
  readonly inode: Inode;
  /** `f_mapping` (the inode's). */
  readonly mapping: FileMapping;
  /** FMODE_READ | FMODE_WRITE. */
  readonly fMode: number;
  privateData: unknown;
  count: number;
  released: boolean;

  constructor(name: string, fOp: FileOperations, inode: Inode, fMode: number, privateData: unknown) {
    this.name = name;
    this.fOp = fOp;
    this.inode = inode;
    this.mapping = inode.mapping;
    this.fMode = fMode;
    this.privateData = privateData;
    this.count = 1;
    this.released = false;
  }
}

/** Read-write, the mode device files are opened with (O_RDWR). */
export const FMODE_RDWR = FMODE_READ | FMODE_WRITE;

/** `get_file`: take a reference. */
export function getFile(file: File): File {
  if (file.count <= 0 || file.released) throw new Error(`get_file on released file '${file.name}'`);
  file.count++;
  return file;
}

/** `fput`: drop a reference; the last one runs `f_op->release`. */
export function fput(file: File): void {
  if (file.count <= 0) throw new Error(`fput on released file '${file.name}'`);
  if (--file.count === 0) {
    file.released = true;
    file.fOp.release?.(file.inode, file);
  }
}
