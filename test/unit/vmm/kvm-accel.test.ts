/**
 * The KVM accelerator: /dev/kvm → VM, guest RAM as anonymous memory of the VMM process (one
 * memory for the VMM and the guest), vCPUs in KVM_RUN whose exits the machine serves (MMIO into
 * the system address space with the vCPU as `current_cpu`, hcalls into the dispatcher), stop /
 * start of the runs, and KVM_RUN failures. The default machine stays the emulated one.
 */

import { describe, expect, test } from 'vitest';
import { EFAULT } from '../../../src/host/errno.ts';
import { createHost } from '../../../src/host/host.ts';
import { type AccessSize, Word64 } from '../../../src/hw/mmio.ts';
import { KvmAccel, type SpaprKvmCpu } from '../../../src/vmm/kvm-accel.ts';
import { MemoryRegion } from '../../../src/vmm/memory-region.ts';
import { SpaprMachine } from '../../../src/vmm/spapr-machine.ts';
import { SPAPR_XIVE_VC_BASE } from '../../../src/vmm/spapr-xive.ts';
import { H_FUNCTION, H_INT_GET_SOURCE_INFO } from '../../../src/vmm/spapr-xive-hcalls.ts';

const MiB = 1024 * 1024;

function kvmMachine(smp = 2) {
  const host = createHost({ nrCpus: 4 });
  const m = new SpaprMachine({ smp, ramSize: 16 * MiB, devices: [], accel: { kind: 'kvm', host } });
  return { host, m, vm: host.kvm.vms[0]! };
}

describe('KvmAccel', () => {
  test('opens /dev/kvm, creates one VM, reads KVM_CAP_NR_MEMSLOTS', () => {
    const host = createHost();
    const a = new KvmAccel(host);
    expect([a.kvmFd >= 0, a.vmFd >= 0, a.nrSlots]).toEqual([true, true, 512]);
    expect(host.kvm.vms).toHaveLength(1);
    expect(host.kvm.vms[0]!.proc).toBe(a.proc.proc);
  });

  test('guest RAM is the VMM process memory: what the VMM writes the guest reads, and back', () => {
    const { m, vm } = kvmMachine();
    expect(m.ram.backing).not.toBeNull();
    expect(m.ram.ramOffset).toBe(m.kvm!.listener!.slots()[0]!.userspaceAddr);
    expect(m.sysmem.storeBe32(0x12_3450, 0xcafe_f00d)).toBe(true); // the VMM (QEMU DMA)
    const w = new Word64();
    const faults = vm.stats.partitionFaults;
    m.cpus[1]!.load(0x12_3450, 4, w); // the guest, through the partition-scoped tree
    expect(w.lo).toBe(0xcafe_f00d);
    expect(vm.stats.partitionFaults).toBe(faults + 1);
    m.cpus[0]!.store(0x12_3458, 8, 0x0102_0304, 0x0506_0708);
    expect(m.sysmem.loadBe32(0x12_345c)).toBe(0x0506_0708);
    // The very same bytes through the VMM's own mapping, and through the region's bulk
    // accessors (byte and page-crossing accesses with plain {hi, lo} records).
    expect([...m.kvm!.proc.getBytes(m.ram.ramOffset + 0x12_3450, 4)]).toEqual([0xca, 0xfe, 0xf0, 0x0d]);
    const dst = new Uint8Array(4);
    m.ram.ramRead(0x12_3450, dst);
    expect([...dst]).toEqual([0xca, 0xfe, 0xf0, 0x0d]);
    m.ram.ramStore(0x1_fffe, 4, 0, 0x1122_3344); // crosses a 64 KiB page
    const x = { hi: 0, lo: 0 };
    m.ram.ramLoad(0x1_fffe, 4, x);
    expect(x.lo).toBe(0x1122_3344);
    expect(vm.stats.mmioExits).toBe(0);
  });

  test('an I/O region has no memslot: guest accesses exit and are dispatched with the vCPU id', () => {
    const { m, vm } = kvmMachine();
    const seen: string[] = [];
    const dev = {
      load(off: number, size: AccessSize, cpu: number, out: Word64) {
        seen.push(`L ${off.toString(16)}/${size} cpu${cpu}`);
        out.set(0, 0x5a);
      },
      store(off: number, size: AccessSize, _hi: number, lo: number, cpu: number) {
        seen.push(`S ${off.toString(16)}/${size}=${lo.toString(16)} cpu${cpu}`);
      },
    };
    m.sysmemRoot.addSubregion(0x4000_0000, MemoryRegion.io('test-io', 0x1_0000, dev));
    const w = new Word64();
    m.cpus[1]!.load(0x4000_0010, 2, w);
    m.cpus[0]!.store(0x4000_0020, 4, 0, 0x77);
    expect(w.lo).toBe(0x5a);
    expect(seen).toEqual(['L 10/2 cpu1', 'S 20/4=77 cpu0']);
    expect(vm.stats.mmioExits).toBe(2);
    expect(m.kvm!.listener!.slots().map((s) => s.region)).toEqual([
      'ppc_spapr.ram',
      'xive.esb-kvm',
      'xive.tima',
    ]);
  });

  test('hcalls exit to the machine dispatcher (H_FUNCTION before CAS)', () => {
    const { m, vm } = kvmMachine();
    const out: bigint[] = [];
    expect(m.cpus[0]!.hcall(H_INT_GET_SOURCE_INFO, [0n, 0n], out)).toBe(H_FUNCTION);
    expect(vm.stats.hcallExits).toBe(1);
    expect(vm.vcpus[0]!.stats.hcallExits).toBe(1);
  });

  test('stop / start: the vCPU thread leaves KVM_RUN (the guest cannot execute), then re-enters', () => {
    const { m, host } = kvmMachine();
    const c = m.cpus[0] as SpaprKvmCpu;
    expect(c.run).not.toBeNull();
    expect(host.kvm.runningOn.slice(0, 2).every((r) => r !== null)).toBe(true);
    m.vmStop();
    expect([c.run, c.externalInterrupt, m.running]).toEqual([null, false, false]);
    expect(host.kvm.runningOn.slice(0, 2)).toEqual([null, null]);
    expect(() => c.store(0, 4, 0, 1)).toThrow(/stopped/);
    m.vmStart();
    c.store(0x10_0000, 4, 0, 1);
    expect(m.sysmem.loadBe32(0x10_0000)).toBe(1);
  });

  test('a guest ESB access to a source KVM does not know is a KVM_RUN failure (SIGBUS → -EFAULT)', () => {
    const { m } = kvmMachine();
    const c = m.cpus[0] as SpaprKvmCpu;
    const w = new Word64();
    c.load(SPAPR_XIVE_VC_BASE + 0x1fff * 0x2_0000 + 0x1_0000 + 0x800, 8, w);
    expect(w.hi >>> 0).toBe(0xffff_ffff);
    expect(c.runFailures).toEqual([
      { errno: -EFAULT, gpa: SPAPR_XIVE_VC_BASE + 0x1fff * 0x2_0000 + 0x1_0800 },
    ]);
  });

  test('the default machine stays emulated: VMM-owned RAM, no KVM', () => {
    const m = new SpaprMachine({ smp: 1, ramSize: 16 * MiB, devices: [] });
    expect([m.kvm, m.xiveKvm, m.ram.backing, m.xive.kvm]).toEqual([null, null, null, null]);
    expect(m.vmStop()).toBe(0);
    expect(m.vmStart()).toBe(0);
  });
});
