import { assert, describe, expect, it } from 'vitest';
import { EBADF, EMFILE } from '../../../../src/host/errno.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  SIGSEGV,
  VM_DONTCOPY,
} from '../../../../src/host/mm/constants.ts';
import { DEV_BASE_PFN, deviceProcess, NotifierLog, P, RW } from './helpers.ts';

const A = 0x3000_0000;

describe('file descriptors and release', () => {
  it('close: EBADF for a bad fd; lowest free fd is reused', () => {
    const { host, p, dev, fd } = deviceProcess();
    expect(fd).toBe(0);
    expect(p.close(3)).toBe(-EBADF);
    expect(p.close(-1)).toBe(-EBADF);
    const fd1 = p.installFd(host.newFile('b', dev.fops, null));
    expect(fd1).toBe(1);
    expect(p.close(fd)).toBe(0);
    expect(p.close(fd)).toBe(-EBADF);
    expect(p.installFd(host.newFile('c', dev.fops, null))).toBe(0);
  });

  it('RLIMIT_NOFILE → EMFILE', () => {
    const { host, p, dev } = deviceProcess({ nrOpen: 2 });
    expect(p.installFd(host.newFile('b', dev.fops, null))).toBe(1);
    expect(p.installFd(host.newFile('c', dev.fops, null))).toBe(-EMFILE);
  });

  it('release runs when the last fd and the last mapping are gone, not before', () => {
    const { p, dev, fd } = deviceProcess();
    const a = p.mmap(A, 4 * P, RW, MAP_SHARED, fd, 0);
    p.munmap(a + P, P); // two VMAs now
    expect(p.close(fd)).toBe(0);
    expect(dev.released).toEqual([]);
    expect(p.munmap(a, P)).toBe(0);
    expect(dev.released).toEqual([]);
    expect(p.munmap(a + 2 * P, 2 * P)).toBe(0);
    expect(dev.released).toEqual(['fake']);
  });

  it('SCM_RIGHTS: the receiver holds its own reference; release waits for both processes', () => {
    const { host, p, dev, fd, w } = deviceProcess();
    const q = host.spawn();
    expect(p.sendFd(q, 9)).toBe(-EBADF);
    const qfd = p.sendFd(q, fd);
    expect(qfd).toBe(0);
    expect(q.fget(qfd)).toBe(p.fget(fd));
    const qa = q.mmap(0, P, RW, MAP_SHARED, qfd, 3 * P);
    expect(q.load(qa, 4, w)).toBe(0);
    expect(w.lo).toBe(3 * P);
    p.close(fd);
    q.close(qfd);
    expect(dev.released).toEqual([]);
    q.exit();
    expect(dev.released).toEqual(['fake']);
  });

  it('exit releases notifiers, mappings, frames and fds', () => {
    const { p, dev, fd, frames } = deviceProcess();
    const n = NotifierLog.on(p.mm);
    p.mmap(A, P, RW, MAP_SHARED, fd, 0);
    p.mmap(0, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const b = p.mm.vmas.all()[1]!.start;
    p.store(b, 4, 0, 1);
    expect(frames.allocated).toBe(1);
    p.exit();
    expect(n.releases).toBe(1);
    expect(n.log).toEqual([]);
    expect(frames.allocated).toBe(0);
    expect(dev.released).toEqual(['fake']);
    expect(p.mm.mapCount).toBe(0);
    expect(p.mm.pgtable.present).toBe(0);
    expect(p.mm.pgtable.tablePages).toBe(0);
  });
});

describe('fork', () => {
  it('shares shared mappings (shmem and device), copies private memory, duplicates fds', () => {
    const { p, fd, dev, frames, w } = deviceProcess();
    const shm = p.mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    const priv = p.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const devm = p.mmap(A, 2 * P, RW, MAP_SHARED, fd, 0);
    p.store(shm, 4, 0, 0x11);
    p.store(priv, 4, 0, 0x22);
    expect(p.load(devm + P, 4, w)).toBe(0);
    const file = p.fget(fd)!;
    expect(file.count).toBe(2);
    const c = p.fork();
    assert(typeof c !== 'number', `fork: ${c}`);
    expect(c.pid).toBe(2);
    expect(c.mm.vmas.all().map((v) => [v.start, v.end, v.pgoff])).toEqual(
      p.mm.vmas.all().map((v) => [v.start, v.end, v.pgoff]),
    );
    expect(file.count).toBe(4); // + child's fd + child's VMA
    expect(file.mapping.iMmap.size).toBe(2);
    // Device (pfnmap) PTEs are copied, as copy_page_range does for VM_PFNMAP; shmem PTEs are not.
    expect(c.mm.pgtable.pfn((devm + P) / P)).toBe(DEV_BASE_PFN + 1);
    expect(c.mm.pgtable.pfn(shm / P)).toBe(-1);
    // Shared anonymous memory is shared; private memory is a copy.
    expect(c.load(shm, 4, w)).toBe(0);
    expect(w.lo).toBe(0x11);
    c.store(shm, 4, 0, 0x33);
    expect(p.load(shm, 4, w)).toBe(0);
    expect(w.lo).toBe(0x33);
    c.store(priv, 4, 0, 0x44);
    expect(p.load(priv, 4, w)).toBe(0);
    expect(w.lo).toBe(0x22);
    expect(c.mm.stats.faults).toBe(1); // only the shmem page refaulted
    // The shmem frame survives the parent's exit and goes with the last mapping.
    const before = frames.allocated;
    p.exit();
    expect(frames.allocated).toBe(before - 1); // the parent's private frame
    c.exit();
    expect(frames.allocated).toBe(0);
    expect(dev.released).toEqual(['fake']);
  });

  it('VM_DONTCOPY VMAs are not inherited', () => {
    const { p, w } = deviceProcess();
    const a = p.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p.mm.vmas.lookup(a)!.flags |= VM_DONTCOPY;
    const c = p.fork();
    assert(typeof c !== 'number', `fork: ${c}`);
    expect(c.mm.mapCount).toBe(0);
    expect(c.load(a, 4, w)).toBe(SIGSEGV);
  });
});
