/**
 * The memory manager's share of the host kernel: physical frames, the sysctls that shape address
 * spaces, the anonymous inode all anon-inode files share, and process creation.
 */

import type { TraceSink } from '../../sim/trace-sink.ts';
import {
  DEFAULT_MAX_MAP_COUNT,
  DEFAULT_MMAP_BASE,
  DEFAULT_MMAP_MIN_ADDR,
  DEFAULT_NR_OPEN,
  TASK_SIZE,
} from './constants.ts';
import { File, type FileOperations, FMODE_RDWR, Inode } from './file.ts';
import { FrameTable, type HostFrames } from './frames.ts';
import { Process } from './process.ts';

export interface MmHostConfig {
  /** Physical address of the RAM pool for anonymous memory (default 0). */
  ramBase?: number;
  /** RAM frames in the pool (default 16384 = 1 GiB). */
  ramFrames?: number;
  /** `vm.max_map_count` (default 65530). */
  maxMapCount?: number;
  /** `vm.mmap_min_addr` (default 0x10000). */
  mmapMinAddr?: number;
  /** Top of the top-down mmap area (default TASK_SIZE − 128 MiB: no ASLR). */
  mmapBase?: number;
  /** `RLIMIT_NOFILE` (default 1024). */
  nrOpen?: number;
  /** Frames to use instead of a private {@link FrameTable} (e.g. `hw/phys-mem.ts` later). */
  frames?: HostFrames;
}

export class MmHost {
  readonly frames: HostFrames;
  readonly trace: TraceSink;
  /** `vm.max_map_count`: may be changed at run time like the sysctl. */
  maxMapCount: number;
  /** `vm.mmap_min_addr`. */
  mmapMinAddr: number;
  readonly taskSize: number;
  readonly mmapBase: number;
  readonly nrOpen: number;
  /** `anon_inode_inode`: the one inode (and so the one address_space) of every anon-inode file. */
  readonly anonInode: Inode;
  /** Live processes, in creation order. */
  readonly processes: Process[];
  private vmaIds: number;
  private anonVmaIds: number;
  private inos: number;
  private pids: number;

  constructor(trace: TraceSink, cfg: MmHostConfig = {}) {
    this.trace = trace;
    this.frames =
      cfg.frames ?? new FrameTable({ ramBase: cfg.ramBase ?? 0, ramFrames: cfg.ramFrames ?? 16384 }, trace);
    this.maxMapCount = cfg.maxMapCount ?? DEFAULT_MAX_MAP_COUNT;
    this.mmapMinAddr = cfg.mmapMinAddr ?? DEFAULT_MMAP_MIN_ADDR;
    this.taskSize = TASK_SIZE;
    this.mmapBase = cfg.mmapBase ?? DEFAULT_MMAP_BASE;
    this.nrOpen = cfg.nrOpen ?? DEFAULT_NR_OPEN;
    this.processes = [];
    this.vmaIds = 0;
    this.anonVmaIds = 0;
    this.inos = 0;
    this.pids = 0;
    this.anonInode = this.newInode('anon_inode');
  }

  newVmaId(): number {
    return ++this.vmaIds;
  }

  newAnonVma(): number {
    return ++this.anonVmaIds;
  }

  newInode(name: string): Inode {
    return new Inode(++this.inos, name);
  }

  newPid(): number {
    return ++this.pids;
  }

  /**
   * A file on the shared anonymous inode (one reference, for the caller to install in an fd).
   *
   * @remarks Models fs/anon_inodes.c:anon_inode_getfile()
   */
  anonInodeGetFile(name: string, fOp: FileOperations, privateData: unknown, fMode = FMODE_RDWR): File {
    return new File(`anon_inode:${name}`, fOp, this.anonInode, fMode, privateData);
  }

  /** A file on its own new inode (a device node, a VFIO device fd…). */
  newFile(name: string, fOp: FileOperations, privateData: unknown, fMode = FMODE_RDWR): File {
    return new File(name, fOp, this.newInode(name), fMode, privateData);
  }

  /** A new process with an empty address space and no fds. */
  spawn(): Process {
    const p = new Process(this, this.newPid());
    this.processes.push(p);
    return p;
  }

  /** Called by {@link Process.exit}. */
  reap(p: Process): void {
    const i = this.processes.indexOf(p);
    if (i >= 0) this.processes.splice(i, 1);
  }
}
