/**
 * The KVM memory listener: flat-view RAM / RAM-device ranges → KVM_SET_USER_MEMORY_REGION, with
 * the exact ioctl sequence QEMU issues (deletes before adds, slot ids reused lowest first), and
 * overlays with priorities splitting and re-merging slots.
 */

import { describe, expect, test } from 'vitest';
import { EEXIST, EINVAL } from '../../../src/host/errno.ts';
import { createHost } from '../../../src/host/host.ts';
import { encodeKvmUserspaceMemoryRegion, KVM_SET_USER_MEMORY_REGION } from '../../../src/host/kvm/uapi.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/host/mm/constants.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import { AddressSpace } from '../../../src/vmm/address-space.ts';
import { KvmAccel } from '../../../src/vmm/kvm-accel.ts';
import { KvmMemoryListener } from '../../../src/vmm/kvm-memory-listener.ts';
import { MemoryRegion, UINT64_SPACE } from '../../../src/vmm/memory-region.ts';

interface Call {
  slot: number;
  flags: number;
  gpa: number;
  size: number;
  uaddr: number;
  rc: number;
}

/**
 * A recording stand-in for the VM fd: user memory is a Map, and the ioctl applies KVM's memslot
 * rules (kvm_set_memory_region: slot range, delete with size 0, -EEXIST on overlap).
 */
class FakeVm {
  readonly calls: Call[] = [];
  readonly slots = new Map<number, { gpa: number; size: number; uaddr: number }>();
  private readonly mem = new Map<number, Uint8Array>();
  private next = 0x1000;
  readonly nrSlots: number;
  constructor(nrSlots = 512) {
    this.nrSlots = nrSlots;
  }
  userAlloc(len: number): number {
    const a = this.next;
    this.next += (len + 7) & ~7;
    return a;
  }
  putBytes(addr: number, b: Uint8Array): void {
    this.mem.set(addr, b.slice());
  }
  ioctl(fd: number, req: number, arg: number | bigint): number {
    expect(fd).toBe(7);
    expect(req).toBe(KVM_SET_USER_MEMORY_REGION);
    const b = this.mem.get(Number(arg))!;
    const dv = new DataView(b.buffer);
    const c = {
      slot: dv.getUint32(0),
      flags: dv.getUint32(4),
      gpa: Number(dv.getBigUint64(8)),
      size: Number(dv.getBigUint64(16)),
      uaddr: Number(dv.getBigUint64(24)),
      rc: 0,
    };
    c.rc = this.apply(c);
    this.calls.push(c);
    return c.rc;
  }
  private apply(c: Call): number {
    if ((c.slot & 0xffff) >= this.nrSlots) return -EINVAL;
    if (c.size === 0) {
      this.slots.delete(c.slot);
      return 0;
    }
    for (const [id, s] of this.slots) {
      if (id !== c.slot && c.gpa < s.gpa + s.size && s.gpa < c.gpa + c.size) return -EEXIST;
    }
    this.slots.set(c.slot, { gpa: c.gpa, size: c.size, uaddr: c.uaddr });
    return 0;
  }
}

const dev = { load() {}, store() {} };
const KiB64 = 0x1_0000;

function setup() {
  const root = MemoryRegion.container('system', UINT64_SPACE);
  const as = new AddressSpace(root, 'memory');
  const vm = new FakeVm();
  const kml = new KvmMemoryListener(vm, 7, { nrSlots: vm.nrSlots });
  return { root, as, vm, kml };
}

describe('KVM memory listener', () => {
  test('encodes struct kvm_userspace_memory_region big-endian, 32 bytes', () => {
    const b = encodeKvmUserspaceMemoryRegion({
      slot: 3,
      flags: 1,
      guestPhysAddr: 0x6_0100_0000_0000,
      memorySize: 0x4000_0000,
      userspaceAddr: 0x7fff_0000_0000,
    });
    expect(Buffer.from(b).toString('hex')).toBe(
      '00000003' + '00000001' + '0006010000000000' + '0000000040000000' + '00007fff00000000',
    );
    // _IOW(KVMIO, 0x46, 32 bytes) with the powerpc direction bits.
    expect(KVM_SET_USER_MEMORY_REGION).toBe(0x8020ae46);
  });

  test('registration adds every RAM and RAM-device range; I/O ranges get no slot', () => {
    const { root, as, vm, kml } = setup();
    const ram = MemoryRegion.ramDevice('ram', 0x100_0000, 0x7000_0000_0000, dev);
    const io = MemoryRegion.io('io', 0x1000, dev);
    root.addSubregion(0, ram);
    root.addSubregion(0x2000_0000, io);
    as.addListener(kml);
    expect(vm.calls).toEqual([
      { slot: 0, flags: 0, gpa: 0, size: 0x100_0000, uaddr: 0x7000_0000_0000, rc: 0 },
    ]);
    expect(kml.slots()).toEqual([
      {
        slot: 0,
        guestPhysAddr: 0,
        memorySize: 0x100_0000,
        userspaceAddr: 0x7000_0000_0000,
        flags: 0,
        region: 'ram',
      },
    ]);
    // Unregistering deletes every slot (size 0).
    as.removeListener(kml);
    expect(vm.calls.at(-1)).toEqual({ slot: 0, flags: 0, gpa: 0, size: 0, uaddr: 0x7000_0000_0000, rc: 0 });
    expect([vm.slots.size, kml.used, kml.peak]).toEqual([0, 0, 1]);
  });

  test('a priority-1 overlay in the middle of a RAM device splits it into 3 slots, and back', () => {
    const { root, as, vm, kml } = setup();
    const esb = MemoryRegion.container('xive.esb', 0x4000_0000);
    const emulated = MemoryRegion.io('xive.esb-emulated', 0x4000_0000, dev);
    esb.addSubregionOverlap(0, emulated, 0);
    root.addSubregion(0x6_0100_0000_0000, esb);
    as.addListener(kml);
    expect(vm.calls).toEqual([]); // I/O only

    // The KVM ESB mapping over the whole window: one slot.
    const kvmEsb = MemoryRegion.ramDevice('xive.esb-kvm', 0x4000_0000, 0x7100_0000_0000, dev);
    esb.addSubregionOverlap(0, kvmEsb, 1);
    expect(vm.calls.splice(0)).toEqual([
      { slot: 0, flags: 0, gpa: 0x6_0100_0000_0000, size: 0x4000_0000, uaddr: 0x7100_0000_0000, rc: 0 },
    ]);

    // An overlay at priority 2 on pages [0x20000, 0x40000): delete the big slot, then add
    // 3 slots in address order, slot 0 reused first.
    const overlay = MemoryRegion.ramDevice('overlay', 2 * KiB64, 0x7200_0000_0000, dev);
    esb.addSubregionOverlap(0x2_0000, overlay, 2);
    expect(vm.calls.splice(0)).toEqual([
      { slot: 0, flags: 0, gpa: 0x6_0100_0000_0000, size: 0, uaddr: 0x7100_0000_0000, rc: 0 },
      { slot: 0, flags: 0, gpa: 0x6_0100_0000_0000, size: 0x2_0000, uaddr: 0x7100_0000_0000, rc: 0 },
      { slot: 1, flags: 0, gpa: 0x6_0100_0002_0000, size: 0x2_0000, uaddr: 0x7200_0000_0000, rc: 0 },
      {
        slot: 2,
        flags: 0,
        gpa: 0x6_0100_0004_0000,
        size: 0x4000_0000 - 0x4_0000,
        uaddr: 0x7100_0004_0000,
        rc: 0,
      },
    ]);
    expect(kml.slots().map((s) => [s.slot, s.region])).toEqual([
      [0, 'xive.esb-kvm'],
      [1, 'overlay'],
      [2, 'xive.esb-kvm'],
    ]);

    // Removing the overlay: the 3 slots go, one comes back (slot 0).
    esb.delSubregion(overlay);
    expect(vm.calls.splice(0)).toEqual([
      { slot: 0, flags: 0, gpa: 0x6_0100_0000_0000, size: 0, uaddr: 0x7100_0000_0000, rc: 0 },
      { slot: 1, flags: 0, gpa: 0x6_0100_0002_0000, size: 0, uaddr: 0x7200_0000_0000, rc: 0 },
      { slot: 2, flags: 0, gpa: 0x6_0100_0004_0000, size: 0, uaddr: 0x7100_0004_0000, rc: 0 },
      { slot: 0, flags: 0, gpa: 0x6_0100_0000_0000, size: 0x4000_0000, uaddr: 0x7100_0000_0000, rc: 0 },
    ]);
    expect([kml.used, kml.peak, vm.slots.size]).toEqual([1, 3, 1]);

    // An I/O overlay punches a hole: 2 slots, the middle exits to the VMM.
    const hole = MemoryRegion.io('hole', KiB64, dev);
    esb.addSubregionOverlap(0x10_0000, hole, 2);
    expect(kml.slots().map((s) => [s.guestPhysAddr - 0x6_0100_0000_0000, s.memorySize])).toEqual([
      [0, 0x10_0000],
      [0x11_0000, 0x4000_0000 - 0x11_0000],
    ]);
    // Disabling the KVM mapping leaves no slot at all.
    kvmEsb.setEnabled(false);
    expect(kml.slots()).toEqual([]);
    expect(vm.slots.size).toBe(0);
  });

  test('resize / move: a region moved elsewhere gives delete then add at the new address', () => {
    const { root, as, vm, kml } = setup();
    const a = MemoryRegion.ramDevice('a', 4 * KiB64, 0x7000_0000_0000, dev);
    root.addSubregion(0x100_0000, a);
    as.addListener(kml);
    vm.calls.length = 0;
    a.setAddress(0x200_0000);
    expect(vm.calls.map((c) => [c.slot, c.gpa, c.size])).toEqual([
      [0, 0x100_0000, 0],
      [0, 0x200_0000, 4 * KiB64],
    ]);
    // An alias window onto part of it (a "resize" of what is visible) maps the right host range.
    const win = MemoryRegion.alias('win', a, KiB64, 2 * KiB64);
    root.addSubregion(0x300_0000, win);
    expect(vm.calls.at(-1)).toMatchObject({
      slot: 1,
      gpa: 0x300_0000,
      size: 2 * KiB64,
      uaddr: 0x7000_0001_0000,
    });
  });

  test('sections are page-aligned: sub-page pieces get no slot, unaligned edges are trimmed', () => {
    const { root, as, vm, kml } = setup();
    const a = MemoryRegion.ramDevice('a', 3 * KiB64, 0x7000_0000_0000, dev);
    root.addSubregion(0x8000, a); // starts half-way into a page
    as.addListener(kml);
    expect(vm.calls).toEqual([
      { slot: 0, flags: 0, gpa: 0x1_0000, size: 2 * KiB64, uaddr: 0x7000_0000_8000, rc: 0 },
    ]);
    const tiny = MemoryRegion.ramDevice('tiny', 0x1000, 0x7100_0000_0000, dev);
    root.addSubregion(0x1000_0000, tiny);
    expect(vm.calls).toHaveLength(1);
  });

  test('RAM without a host mapping or a failing ioctl is fatal, as QEMU aborts', () => {
    const { root, as, kml, vm } = setup();
    as.addListener(kml);
    expect(() => root.addSubregion(0, MemoryRegion.ram('plain', KiB64))).toThrow(/has no host mapping/);
    const root2 = MemoryRegion.container('s2', UINT64_SPACE);
    const as2 = new AddressSpace(root2, 'm2');
    const kml2 = new KvmMemoryListener(vm, 7, { nrSlots: 2 });
    as2.addListener(kml2);
    root2.addSubregion(0, MemoryRegion.ramDevice('x', KiB64, 0x7000_0000_0000, dev));
    root2.addSubregion(0x10_0000, MemoryRegion.ramDevice('y', KiB64, 0x7001_0000_0000, dev));
    expect(() =>
      root2.addSubregion(0x20_0000, MemoryRegion.ramDevice('z', KiB64, 0x7002_0000_0000, dev)),
    ).toThrow(/no free slot/);
    // The refused view is installed all the same; what it would need is counted, not allocated.
    expect([kml2.used, kml2.slotsFor(as2.flatView)]).toEqual([2, 3]);
  });

  test('slotsFor counts the slots a view needs as regionAdd would make them, past nrSlots too', () => {
    const { root, as } = setup();
    const vm = new FakeVm(2);
    const kml = new KvmMemoryListener(vm, 7, { nrSlots: 2, maxSlotSize: 2 * KiB64 });
    root.addSubregion(0, MemoryRegion.ramDevice('five', 5 * KiB64, 0x7000_0000_0000, dev));
    root.addSubregion(0x10_0000, MemoryRegion.io('io', KiB64, dev));
    root.addSubregion(0x20_8000, MemoryRegion.ramDevice('edge', KiB64, 0x7001_0000_0000, dev));
    // 5 pages in pieces of at most 2: 3 slots; I/O none; a page starting mid-page trims to none.
    expect(kml.slotsFor(as.flatView)).toBe(3);
    expect(vm.calls).toEqual([]);
    expect(kml.used).toBe(0);
  });

  test('host-backed RAM (memory_region_init_ram_ptr) is RAM for the VMM too and gets a slot', () => {
    const { root, as, vm, kml } = setup();
    const bytes = new Map<number, number>();
    const ram = MemoryRegion.ramBacked('ppc_spapr.ram', 0x20_0000, 0x7fff_0000_0000, {
      load(off, size, out) {
        let v = 0n;
        for (let i = 0; i < size; i++) v = (v << 8n) | BigInt(bytes.get(off + i) ?? 0);
        out.hi = Number(v >> 32n);
        out.lo = Number(v & 0xffff_ffffn);
      },
      store(off, size, hi, lo) {
        const v = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
        for (let i = 0; i < size; i++) bytes.set(off + i, Number((v >> BigInt(8 * (size - 1 - i))) & 0xffn));
      },
    });
    root.addSubregion(0, ram);
    as.addListener(kml);
    expect(vm.calls).toEqual([
      { slot: 0, flags: 0, gpa: 0, size: 0x20_0000, uaddr: 0x7fff_0000_0000, rc: 0 },
    ]);
    expect(as.storeBe32(0x1234, 0xdeadbeef)).toBe(true);
    expect(as.loadBe32(0x1234)).toBe(0xdeadbeef);
    expect(bytes.get(0x1234)).toBe(0xde);
    expect(as.isRam(0, 0x20_0000)).toBe(true);
    const dst = new Uint8Array(4);
    ram.ramRead(0x1234, dst);
    expect([...dst]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(ram.ramPagesAllocated).toBe(0);
  });
});

describe('KVM memory listener on the host model (real KVM_SET_USER_MEMORY_REGION)', () => {
  test('overlay split and merge reach the VM memslots; guest accesses follow the topology', () => {
    const host = createHost({ nrCpus: 2 });
    const a = new KvmAccel(host);
    const proc = a.proc;
    const anon = (len: number) =>
      proc.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const big = anon(16 * KiB64);
    const small = anon(2 * KiB64);
    proc.putU32(big + 0x2_0000, 0xb1b1_b1b1);
    proc.putU32(small, 0x5a5a_5a5a);
    const root = MemoryRegion.container('system', UINT64_SPACE);
    const as = new AddressSpace(root, 'memory');
    const c = MemoryRegion.container('win', 16 * KiB64);
    c.addSubregionOverlap(0, MemoryRegion.ramDevice('big', 16 * KiB64, big, dev), 0);
    root.addSubregion(0x100_0000, c);
    a.listen(as);
    const vm = host.kvm.vms[0]!;
    const slots = () => vm.memslots.all().map((s) => [s.id, s.baseGfn, s.npages, s.userspaceAddr]);
    expect(slots()).toEqual([[0, 0x100, 16, big]]);
    const vcpuFd = a.createVcpu(0);
    const run = proc.kvmRun(vcpuFd, { mmio() {}, paprHcall: () => -2 });
    if (typeof run === 'number') throw new Error(`kvmRun ${run}`);
    const w = new Word64();
    run.load(0x102_0000, 4, w);
    expect(w.lo).toBe(0xb1b1_b1b1);

    const overlay = MemoryRegion.ramDevice('small', 2 * KiB64, small, dev);
    c.addSubregionOverlap(0x2_0000, overlay, 1);
    expect(slots()).toEqual([
      [0, 0x100, 2, big],
      [1, 0x102, 2, small],
      [2, 0x104, 12, big + 0x4_0000],
    ]);
    expect([vm.stats.memslotsUsed, vm.stats.memslotsPeak]).toEqual([3, 3]);
    // The partition-scoped entry of the old slot was invalidated: the guest sees the overlay.
    run.load(0x102_0000, 4, w);
    expect(w.lo).toBe(0x5a5a_5a5a);

    c.delSubregion(overlay);
    expect(slots()).toEqual([[0, 0x100, 16, big]]);
    run.load(0x102_0000, 4, w);
    expect(w.lo).toBe(0xb1b1_b1b1);
    expect(vm.stats.partitionInvalidations).toBeGreaterThan(0);
  });
});
