import { describe, expect, it } from 'vitest';
import { EEXIST, EFAULT, EINVAL, ENOENT } from '../../../../src/host/errno.ts';
import { createHost } from '../../../../src/host/host.ts';
import {
  KVM_MR_CREATE,
  KVM_MR_DELETE,
  KVM_MR_FLAGS_ONLY,
  KVM_MR_MOVE,
} from '../../../../src/host/kvm/memslots.ts';
import {
  encodeKvmDirtyLog,
  KVM_CAP_NR_MEMSLOTS,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VM,
  KVM_GET_DIRTY_LOG,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_SET_USER_MEMORY_REGION,
} from '../../../../src/host/kvm/uapi.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from '../../../../src/host/mm/constants.ts';
import type { HostProcess } from '../../../../src/host/syscalls.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { makeVm, P, RecordingExits, run } from './host-env.ts';
import { setRegion } from './kvm-ioctls.ts';

function vmWithRam(maxMemslots?: number): { p: HostProcess; vm: number; ram: number; kvm: number } {
  const host = createHost(maxMemslots === undefined ? {} : { maxMemslots });
  const p = host.spawn();
  const kvm = p.open('/dev/kvm');
  const vm = p.ioctl(kvm, KVM_CREATE_VM, 0);
  const ram = p.mmap(0, 64 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return { p, vm, ram, kvm };
}

const vmOf = (p: HostProcess) => p.host.kvm.vms[0]!;

describe('KVM_SET_USER_MEMORY_REGION: __kvm_set_memory_region rules', () => {
  it('creates a slot; used/peak count it', () => {
    const { p, vm, ram } = vmWithRam();
    expect(setRegion(p, vm, 0, 0, 16 * P, ram)).toBe(0);
    expect(vmOf(p).stats.memslotsUsed).toBe(1);
    expect(vmOf(p).stats.memslotsPeak).toBe(1);
    expect(vmOf(p).memslots.changes[KVM_MR_CREATE]).toBe(1);
  });

  it('flags: only KVM_MEM_LOG_DIRTY_PAGES on ppc (READONLY and unknown bits → -EINVAL)', () => {
    const { p, vm, ram } = vmWithRam();
    expect(setRegion(p, vm, 0, 0, P, ram, KVM_MEM_READONLY)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, P, ram, 4)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, P, ram, 0x8000_0000)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, P, ram, KVM_MEM_LOG_DIRTY_PAGES)).toBe(0);
  });

  it('size, gpa and userspace_addr must be 64 KiB aligned → -EINVAL', () => {
    const { p, vm, ram } = vmWithRam();
    expect(setRegion(p, vm, 0, 0, 0x1000, ram)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0x1000, P, ram)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, P, ram + 0x1000)).toBe(-EINVAL);
    expect(vmOf(p).stats.memslotsUsed).toBe(0);
  });

  it('userspace_addr: access_ok range check only (beyond TASK_SIZE → -EINVAL; unmapped but in range → 0)', () => {
    const { p, vm } = vmWithRam();
    expect(setRegion(p, vm, 0, 0, P, TASK_SIZE)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, 2 * P, TASK_SIZE - P)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, P, TASK_SIZE - P)).toBe(0);
  });

  it('slot id ≥ KVM_USER_MEM_SLOTS (512) → -EINVAL; address space 1 → -EINVAL', () => {
    const { p, vm, ram, kvm } = vmWithRam();
    expect(p.ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS)).toBe(512);
    expect(setRegion(p, vm, 512, 0, P, ram)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0x1_0000, 0, P, ram)).toBe(-EINVAL);
    expect(setRegion(p, vm, 511, 0, P, ram)).toBe(0);
  });

  it('fills all 512 slots; slot 512 gives -EINVAL; the limit is configurable', () => {
    const { p, vm } = vmWithRam();
    const big = p.mmap(0, 512 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (let s = 0; s < 512; s++) expect(setRegion(p, vm, s, s * P, P, big + s * P)).toBe(0);
    expect(setRegion(p, vm, 512, 512 * P, P, big)).toBe(-EINVAL);
    expect(vmOf(p).stats.memslotsUsed).toBe(512);
    expect(vmOf(p).stats.memslotsPeak).toBe(512);
    for (let s = 0; s < 10; s++) expect(setRegion(p, vm, s, s * P, 0, big + s * P)).toBe(0);
    expect(vmOf(p).stats.memslotsUsed).toBe(502);
    expect(vmOf(p).stats.memslotsPeak).toBe(512);
    const small = vmWithRam(8);
    expect(small.p.ioctl(small.kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS)).toBe(8);
    expect(setRegion(small.p, small.vm, 8, 0, P, small.ram)).toBe(-EINVAL);
    expect(setRegion(small.p, small.vm, 7, 0, P, small.ram)).toBe(0);
  });

  it('gpa + size wrapping past 2^64 → -EINVAL; more than KVM_MEM_MAX_NR_PAGES pages → -EINVAL', () => {
    const { p, vm, ram } = vmWithRam();
    expect(setRegion(p, vm, 0, 2n ** 64n - BigInt(P), 2 * P, ram)).toBe(-EINVAL);
    // Ending exactly at 2^64 wraps to 0 as well.
    expect(setRegion(p, vm, 0, 2n ** 64n - BigInt(P), P, ram)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 2n ** 64n - 2n * BigInt(P), P, ram)).toBe(0);
    expect(setRegion(p, vm, 1, 0, 2n ** 31n * BigInt(P), 0x1_0000)).toBe(-EINVAL);
  });

  it('delete: size 0 of an empty slot → -EINVAL; of a live slot → 0', () => {
    const { p, vm, ram } = vmWithRam();
    expect(setRegion(p, vm, 3, 0, 0, ram)).toBe(-EINVAL);
    expect(setRegion(p, vm, 3, 0, P, ram)).toBe(0);
    expect(setRegion(p, vm, 3, 0, 0, 0)).toBe(0);
    expect(vmOf(p).memslots.changes[KVM_MR_DELETE]).toBe(1);
    expect(vmOf(p).stats.memslotsUsed).toBe(0);
  });

  it('a live slot: new size or new userspace_addr → -EINVAL; new gpa → move; new flags → flags-only; same → 0', () => {
    const { p, vm, ram } = vmWithRam();
    expect(setRegion(p, vm, 0, 0, 4 * P, ram)).toBe(0);
    expect(setRegion(p, vm, 0, 0, 8 * P, ram)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, 4 * P, ram + P)).toBe(-EINVAL);
    expect(setRegion(p, vm, 0, 0, 4 * P, ram)).toBe(0);
    expect(setRegion(p, vm, 0, 16 * P, 4 * P, ram)).toBe(0);
    expect(setRegion(p, vm, 0, 16 * P, 4 * P, ram, KVM_MEM_LOG_DIRTY_PAGES)).toBe(0);
    const ms = vmOf(p).memslots;
    expect(ms.changes).toEqual([1, 0, 1, 1]);
    expect(ms.byIdOf(0)!.baseGfn).toBe(16);
    expect(ms.lookup(16)?.id).toBe(0);
    expect(ms.lookup(0)).toBe(null);
    expect(KVM_MR_MOVE).toBe(2);
    expect(KVM_MR_FLAGS_ONLY).toBe(3);
  });

  it('overlap with another slot on create or move → -EEXIST; a move overlapping its own old range is fine', () => {
    const { p, vm, ram } = vmWithRam();
    expect(setRegion(p, vm, 0, 0, 4 * P, ram)).toBe(0);
    expect(setRegion(p, vm, 1, 3 * P, 4 * P, ram + 4 * P)).toBe(-EEXIST);
    expect(setRegion(p, vm, 1, 4 * P, 4 * P, ram + 4 * P)).toBe(0);
    expect(setRegion(p, vm, 1, 2 * P, 4 * P, ram + 4 * P)).toBe(-EEXIST);
    expect(setRegion(p, vm, 0, 2 * P, 4 * P, ram)).toBe(-EEXIST);
    expect(setRegion(p, vm, 1, 6 * P, 4 * P, ram + 4 * P)).toBe(0);
  });

  it('-EFAULT when the struct pointer is bad (nothing created)', () => {
    const { p, vm } = vmWithRam();
    expect(p.ioctl(vm, KVM_SET_USER_MEMORY_REGION, 0)).toBe(-EFAULT);
    expect(p.ioctl(vm, KVM_SET_USER_MEMORY_REGION, TASK_SIZE + 0x100)).toBe(-EFAULT);
    expect(vmOf(p).stats.memslotsUsed).toBe(0);
  });
});

describe('memslot changes and the partition-scoped tree', () => {
  it('delete flushes the slot: the next guest access exits as MMIO', () => {
    const e = makeVm({ xive: false });
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    g.store(0x2000, 4, 0, 0xdead_beef);
    const vm = e.host.kvm.vms[0]!;
    expect(vm.pt.lookup(0, true)).toBeGreaterThanOrEqual(0);
    g.stop();
    expect(setRegion(e.vmm, e.vmFd, 0, 0, 0, 0)).toBe(0);
    expect(vm.pt.size).toBe(0);
    const g2 = run(e, 0, exits);
    const w = new Word64();
    g2.load(0x2000, 4, w);
    expect(exits.mmios).toEqual([{ gpa: 0x2000, size: 4, write: false, hi: 0, lo: 0x1234_5678 }]);
  });

  it('move flushes the old gfns; the same RAM is reached at the new gpa', () => {
    const e = makeVm({ xive: false });
    const g = run(e, 0);
    g.store(0x2000, 4, 0, 0xcafe_f00d);
    const vm = e.host.kvm.vms[0]!;
    const inv = vm.stats.partitionInvalidations;
    expect(setRegion(e.vmm, e.vmFd, 0, 0x1_0000_0000, 0x400_0000, e.ram)).toBe(0);
    expect(vm.stats.partitionInvalidations).toBe(inv + 1);
    const w = new Word64();
    g.load(0x1_0000_2000, 4, w);
    expect(w.lo).toBe(0xcafe_f00d);
  });

  it('KVM_GET_DIRTY_LOG: writes mark pages in a little-endian bitmap (gfn g → byte g/8, bit g%8), the log is cleared and re-protected; -ENOENT without logging', () => {
    const e = makeVm({ xive: false });
    const p = e.vmm;
    const bm = p.userAlloc(1024 * 8);
    const log = p.userStruct(encodeKvmDirtyLog({ slot: 0, dirtyBitmap: bm }));
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, log)).toBe(-ENOENT);
    expect(setRegion(p, e.vmFd, 0, 0, 0x400_0000, e.ram, KVM_MEM_LOG_DIRTY_PAGES)).toBe(0);
    const g = run(e, 0);
    g.store(0 * P + 8, 8, 1, 2);
    g.store(65 * P, 1, 0, 1);
    g.stop();
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, log)).toBe(0);
    // A little-endian bitmap (set_bit_le), even on a BE host: page 0 = byte 0 bit 0, page 65 =
    // byte 8 bit 1.
    expect([...p.getBytes(bm, 16)]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, log)).toBe(0);
    expect(p.getU64(bm)).toBe(0n);
    const g2 = run(e, 0);
    g2.store(8, 8, 3, 4);
    g2.stop();
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, log)).toBe(0);
    expect([...p.getBytes(bm, 8)]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(
      p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, p.userStruct(encodeKvmDirtyLog({ slot: 512, dirtyBitmap: bm }))),
    ).toBe(-EINVAL);
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, 8)).toBe(-EFAULT);
  });
});
