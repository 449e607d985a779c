import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  VM_FAULT_NOPAGE,
  VM_FAULT_SIGBUS,
  VM_IO,
  VM_PFNMAP,
} from '../../../../src/host/mm/constants.ts';
import { vmfInsertPfn } from '../../../../src/host/mm/fault.ts';
import type { File, FileOperations } from '../../../../src/host/mm/file.ts';
import { FrameTable } from '../../../../src/host/mm/frames.ts';
import type { Mm, MmuNotifier, MmuNotifierRange } from '../../../../src/host/mm/mm.ts';
import { MmHost, type MmHostConfig } from '../../../../src/host/mm/mm-host.ts';
import type { Vma, VmFault, VmOperations } from '../../../../src/host/mm/vma.ts';
import { type AccessSize, type MmioDevice, Word64 } from '../../../../src/hw/mmio.ts';
import { NULL_TRACE, type TraceSink } from '../../../../src/sim/trace-sink.ts';

/** MMIO base of the fake device's pages. */
export const DEV_BASE = 0x0006_0100_0000_0000;
export const DEV_PAGES = 64;
export const DEV_BASE_PFN = DEV_BASE / PAGE_SIZE;

/** An MMIO owner that answers a load with (page << 16 | offset) and records stores. */
export class PageDevice implements MmioDevice {
  readonly stores: string[] = [];
  load(offset: number, _size: AccessSize, _cpu: number, out: Word64): void {
    out.set(0, offset);
  }
  store(offset: number, size: AccessSize, hi: number, lo: number, _cpu: number): void {
    this.stores.push(`${offset.toString(16)}/${size}=${hi.toString(16)}:${lo.toString(16)}`);
  }
}

/**
 * A pfnmap device file: file page p maps MMIO page p of the device (pages ≥ sigbusFrom → SIGBUS).
 * `relative` resolves the page relative to the VMA start instead (the XIVE ESB handler's habit).
 */
export class FakeDevice {
  readonly released: string[] = [];
  readonly faults: string[] = [];
  sigbusFrom = DEV_PAGES;
  relative = false;
  mmapError = 0;
  readonly vmOps: VmOperations;
  readonly fops: FileOperations;

  constructor() {
    const dev = this;
    this.vmOps = {
      name: 'fake-dev',
      fault(vmf: VmFault): number {
        const page = dev.relative ? vmf.pgoff - vmf.vma.pgoff : vmf.pgoff;
        dev.faults.push(`${vmf.vma.mm.pid}:${page}`);
        if (page >= dev.sigbusFrom) return VM_FAULT_SIGBUS;
        vmfInsertPfn(vmf.vma, vmf.address, DEV_BASE_PFN + page);
        return VM_FAULT_NOPAGE;
      },
    };
    this.fops = {
      name: 'fake-dev',
      mmap(_file: File, vma: Vma): number {
        if (dev.mmapError) return dev.mmapError;
        vma.flags |= VM_IO | VM_PFNMAP;
        vma.ops = dev.vmOps;
        return 0;
      },
      release(_inode, file: File): void {
        dev.released.push(file.name);
      },
    };
  }
}

/** Records notifier calls as `pid:start-end:event` strings (addresses in hex). */
export class NotifierLog implements MmuNotifier {
  readonly log: string[] = [];
  releases = 0;
  /** A log registered on `mm` (mmu_notifier_register). */
  static on(mm: Mm): NotifierLog {
    const n = new NotifierLog();
    mm.mmuNotifierRegister(n);
    return n;
  }
  invalidateRangeStart(r: MmuNotifierRange): void {
    this.log.push(`start ${r.mm.pid}:${r.start.toString(16)}-${r.end.toString(16)}:${r.event}`);
  }
  invalidateRangeEnd(r: MmuNotifierRange): void {
    this.log.push(`end ${r.mm.pid}:${r.start.toString(16)}-${r.end.toString(16)}:${r.event}`);
  }
  release(_mm: Mm): void {
    this.releases++;
  }
}

export function makeHost(
  cfg: MmHostConfig = {},
  trace: TraceSink = NULL_TRACE,
): { host: MmHost; frames: FrameTable; pdev: PageDevice } {
  const frames = new FrameTable({ ramBase: 0x1000_0000, ramFrames: 512 }, NULL_TRACE);
  const pdev = new PageDevice();
  frames.addMmio(DEV_BASE, DEV_PAGES * PAGE_SIZE, pdev, 'fake-dev');
  const host = new MmHost(trace, { frames, ...cfg });
  return { host, frames, pdev };
}

/** A host with one process that has the fake device open as `fd`, and a word for loads. */
export function deviceProcess(cfg: MmHostConfig = {}) {
  const { host, frames, pdev } = makeHost(cfg);
  const p = host.spawn();
  const dev = new FakeDevice();
  const fd = p.installFd(host.newFile('fake', dev.fops, null));
  return { host, frames, pdev, p, dev, fd, w: new Word64() };
}

/** VMAs of a process as `start-end:pgoff` strings (hex addresses, decimal pgoff). */
export function layout(mm: Mm): string[] {
  return mm.vmas.all().map((v) => `${v.start.toString(16)}-${v.end.toString(16)}:${v.pgoff}`);
}

export const P = PAGE_SIZE;
/** The tests' commonest mmap arguments: read-write, private anonymous. */
export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
