import { assert, describe, expect, it } from 'vitest';
import { EEXIST, EINVAL, EIO, ENODEV } from '../../../../src/host/errno.ts';
import { createHost } from '../../../../src/host/host.ts';
import {
  encodeKvmCreateDevice,
  encodeKvmEnableCap,
  KVM_API_VERSION,
  KVM_CAP_CHECK_EXTENSION_VM,
  KVM_CAP_DEVICE_CTRL,
  KVM_CAP_ENABLE_CAP,
  KVM_CAP_IRQFD,
  KVM_CAP_MAX_VCPU_ID,
  KVM_CAP_MAX_VCPUS,
  KVM_CAP_NR_MEMSLOTS,
  KVM_CAP_NR_VCPUS,
  KVM_CAP_ONE_REG,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_CAP_READONLY_MEM,
  KVM_CAP_USER_MEMORY,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_TEST,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XICS,
  KVM_DEV_TYPE_XIVE,
  KVM_ENABLE_CAP,
  KVM_GET_API_VERSION,
  KVM_GET_VCPU_MMAP_SIZE,
  KVM_IRQFD,
  KVM_RUN,
  KVM_SET_USER_MEMORY_REGION,
  KVM_VM_PPC_HV,
  KVM_VM_PPC_PR,
  userPtr,
  userPtrAt,
} from '../../../../src/host/kvm/uapi.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../../src/host/mm/constants.ts';
import type { HostProcess } from '../../../../src/host/syscalls.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { eqGpa, makeVm, mgmtGpa, P, run, TIMA_OS_GPA } from './host-env.ts';
import { configSource, createSource } from './kvm-ioctls.ts';

function createDevice(p: HostProcess, vm: number, type: number, flags = 0): { rc: number; fd: number } {
  const a = p.userStruct(encodeKvmCreateDevice({ type, flags }));
  const rc = p.ioctl(vm, KVM_CREATE_DEVICE, a);
  return { rc, fd: p.getU32(a + 4) | 0 };
}

describe('ioctl numbers (powerpc _IOC) and constants match linux/kvm.h on ppc64', () => {
  it.each([
    ['KVM_GET_API_VERSION', KVM_GET_API_VERSION, 0x2000_ae00],
    ['KVM_CREATE_VM', KVM_CREATE_VM, 0x2000_ae01],
    ['KVM_CHECK_EXTENSION', KVM_CHECK_EXTENSION, 0x2000_ae03],
    ['KVM_CREATE_VCPU', KVM_CREATE_VCPU, 0x2000_ae41],
    ['KVM_SET_USER_MEMORY_REGION', KVM_SET_USER_MEMORY_REGION, 0x8020_ae46],
    ['KVM_RUN', KVM_RUN, 0x2000_ae80],
    ['KVM_ENABLE_CAP', KVM_ENABLE_CAP, 0x8068_aea3],
    ['KVM_CREATE_DEVICE', KVM_CREATE_DEVICE, 0xc00c_aee0],
    ['KVM_IRQFD', KVM_IRQFD, 0x8020_ae76],
  ])('%s', (_name, got, want) => {
    expect(got).toBe(want);
  });
  it('KVM_API_VERSION, KVM_CAP_NR_MEMSLOTS, KVM_CAP_PPC_IRQ_XIVE', () => {
    expect([KVM_API_VERSION, KVM_CAP_NR_MEMSLOTS, KVM_CAP_PPC_IRQ_XIVE]).toEqual([12, 10, 169]);
  });
});

describe('user pointers of u64 fields', () => {
  it.each([0n, 0x7fff_ffff_0000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n])(
    'userPtrAt reads %s as userPtr does',
    (p) => {
      const v = new DataView(new ArrayBuffer(16));
      v.setBigUint64(8, p);
      expect(userPtrAt(v, 8)).toBe(userPtr(p));
    },
  );
  it('beyond 2^53 both give the invalid pointer', () => {
    expect(userPtr(2n ** 53n)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('/dev/kvm', () => {
  it('GET_API_VERSION (arg must be 0), GET_VCPU_MMAP_SIZE, CHECK_EXTENSION', () => {
    const host = createHost({ nrCpus: 4 });
    const p = host.spawn();
    const k = p.open('/dev/kvm');
    expect(p.ioctl(k, KVM_GET_API_VERSION, 0)).toBe(12);
    expect(p.ioctl(k, KVM_GET_API_VERSION, 1)).toBe(-EINVAL);
    expect(p.ioctl(k, KVM_GET_VCPU_MMAP_SIZE, 0)).toBe(2 * P);
    const caps: [number, number][] = [
      [KVM_CAP_USER_MEMORY, 1],
      [KVM_CAP_NR_VCPUS, 4],
      [KVM_CAP_NR_MEMSLOTS, 512],
      [KVM_CAP_IRQFD, 1],
      [KVM_CAP_ENABLE_CAP, 1],
      [KVM_CAP_MAX_VCPUS, 2048],
      [KVM_CAP_ONE_REG, 1],
      [KVM_CAP_READONLY_MEM, 0],
      [KVM_CAP_DEVICE_CTRL, 1],
      [KVM_CAP_CHECK_EXTENSION_VM, 1],
      [KVM_CAP_MAX_VCPU_ID, 16384],
      [KVM_CAP_PPC_IRQ_XIVE, 1],
      [9999, 0],
    ];
    const vm = p.ioctl(k, KVM_CREATE_VM, 0);
    for (const [cap, v] of caps) {
      expect([cap, p.ioctl(k, KVM_CHECK_EXTENSION, cap)]).toEqual([cap, v]);
      expect([cap, p.ioctl(vm, KVM_CHECK_EXTENSION, cap)]).toEqual([cap, v]);
    }
  });

  it('CREATE_VM: type 0 and KVM_VM_PPC_HV; PR (not loaded) and others -EINVAL', () => {
    const host = createHost();
    const p = host.spawn();
    const k = p.open('/dev/kvm');
    expect(p.ioctl(k, KVM_CREATE_VM, 0)).toBe(1);
    expect(p.ioctl(k, KVM_CREATE_VM, KVM_VM_PPC_HV)).toBe(2);
    expect(p.ioctl(k, KVM_CREATE_VM, KVM_VM_PPC_PR)).toBe(-EINVAL);
    expect(p.ioctl(k, KVM_CREATE_VM, 3)).toBe(-EINVAL);
    expect(host.kvm.vms.map((v) => v.lpid)).toEqual([1, 2]);
    expect(host.kvm.stats.vmsCreated).toBe(2);
  });
});

describe('VM fd', () => {
  it('CREATE_VCPU: fd, -EEXIST for a used id, -EINVAL for id ≥ KVM_MAX_VCPU_IDS', () => {
    const host = createHost();
    const p = host.spawn();
    const vm = p.ioctl(p.open('/dev/kvm'), KVM_CREATE_VM, 0);
    expect(p.ioctl(vm, KVM_CREATE_VCPU, 0)).toBe(2);
    expect(p.ioctl(vm, KVM_CREATE_VCPU, 8)).toBe(3);
    expect(p.ioctl(vm, KVM_CREATE_VCPU, 8)).toBe(-EEXIST);
    expect(p.ioctl(vm, KVM_CREATE_VCPU, 16384)).toBe(-EINVAL);
    expect(p.ioctl(vm, KVM_CREATE_VCPU, 16383)).toBe(4);
    expect(host.kvm.vms[0]!.vcpus.map((v) => [v.vcpuId, v.hostCpu])).toEqual([
      [0, 0],
      [8, 1],
      [16383, 2],
    ]);
  });

  it('CREATE_DEVICE: unknown type and XICS -ENODEV, TEST flag creates nothing, second XIVE -EEXIST', () => {
    const host = createHost();
    const p = host.spawn();
    const vm = p.ioctl(p.open('/dev/kvm'), KVM_CREATE_VM, 0);
    expect(createDevice(p, vm, 99).rc).toBe(-ENODEV);
    expect(createDevice(p, vm, KVM_DEV_TYPE_XICS).rc).toBe(-ENODEV);
    expect(createDevice(p, vm, KVM_DEV_TYPE_XIVE, KVM_CREATE_DEVICE_TEST).rc).toBe(0);
    expect(host.kvm.vms[0]!.devices).toHaveLength(0);
    const d = createDevice(p, vm, KVM_DEV_TYPE_XIVE);
    expect(d).toEqual({ rc: 0, fd: 2 });
    expect(createDevice(p, vm, KVM_DEV_TYPE_XIVE).rc).toBe(-EEXIST);
    expect(createDevice(p, vm, KVM_DEV_TYPE_XIVE, KVM_CREATE_DEVICE_TEST).rc).toBe(0);
    // Released on the last close; a new device reuses the kept struct.
    const x = host.kvm.vms[0]!.arch.xiveNative;
    expect(p.close(d.fd)).toBe(0);
    expect(host.kvm.stats.devicesReleased).toBe(1);
    expect(createDevice(p, vm, KVM_DEV_TYPE_XIVE).rc).toBe(0);
    expect(host.kvm.vms[0]!.arch.xiveNative).toBe(x);
  });

  it('ENABLE_CAP on the VM: no VM capability is modelled → -EINVAL', () => {
    const host = createHost();
    const p = host.spawn();
    const vm = p.ioctl(p.open('/dev/kvm'), KVM_CREATE_VM, 0);
    expect(p.ioctl(vm, KVM_ENABLE_CAP, p.userStruct(encodeKvmEnableCap({ cap: 1 })))).toBe(-EINVAL);
  });

  it('KVM_IRQFD: an eventfd write triggers the guest source (EQ entry), deassign stops it', () => {
    const e = makeVm();
    const p = e.vmm;
    expect(createSource(p, e.devFd, 0x20)).toBe(0);
    expect(configSource(p, e.devFd, 0x20, 6, 0, 0x99)).toBe(0);
    const g = run(e);
    const w = new Word64();
    g.load(mgmtGpa(0x20) + 0xc00, 8, w);
    const efd = p.eventfd();
    const a = p.userAlloc(32);
    p.putU32(a, efd);
    p.putU32(a + 4, 0x20);
    expect(p.ioctl(e.vmFd, KVM_IRQFD, a)).toBe(0);
    expect(p.eventfdWrite(efd)).toBe(8);
    g.load(eqGpa(0), 4, w);
    expect(w.lo >>> 0).toBe(0x8000_0099);
    p.putU32(a + 8, 1); // DEASSIGN
    expect(p.ioctl(e.vmFd, KVM_IRQFD, a)).toBe(0);
    g.load(mgmtGpa(0x20) + 0xc00, 8, w); // EOI
    expect(p.eventfdWrite(efd)).toBe(8);
    g.load(eqGpa(0) + 4, 4, w);
    expect(w.lo).toBe(0);
  });
});

describe('lifetimes', () => {
  it('the VM lives while any VM, vCPU or device fd is open; then it is destroyed', () => {
    const e = makeVm();
    const k = e.host.kvm;
    const vm = k.vms[0]!;
    expect(vm.users).toBe(3); // VM fd, vCPU fd, device fd
    expect(e.vmm.close(e.vmFd)).toBe(0);
    expect(k.vms).toHaveLength(1);
    expect(e.vmm.close(e.vcpuFds[0]!)).toBe(0);
    expect(k.vms).toHaveLength(1);
    expect(vm.dead).toBe(false);
    // The device is mapped: closing its fd does not release it.
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(k.stats.devicesReleased).toBe(0);
    expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
    expect(k.stats.devicesReleased).toBe(0);
    expect(e.vmm.munmap(e.esb, 2 * 0x2000 * P)).toBe(0);
    expect(k.stats.devicesReleased).toBe(1);
    expect(vm.dead).toBe(true);
    expect(k.vms).toHaveLength(0);
    expect(k.stats.vmsDestroyed).toBe(1);
    expect(vm.pt.size).toBe(0);
    expect(e.vmm.proc.mm.notifiers).not.toContain(vm);
    // The EQ page was released by the device's release.
    expect(e.host.frames.pinCount(e.vmm.proc.mm.pgtable.pfn(e.ram / P + eqGpa(0) / P))).toBe(0);
  });

  it('process exit tears everything down; the chip’s VP block and IPIs are freed', () => {
    const e = makeVm({ vcpus: 2 });
    expect(createSource(e.vmm, e.devFd, 5)).toBe(0);
    const chip = e.host.chip;
    const ipis = chip.stats.ipiFrees;
    e.vmm.exit();
    expect(e.host.kvm.vms).toHaveLength(0);
    expect(chip.stats.ipiFrees).toBe(ipis + 1);
    expect(e.host.frames.allocated).toBe(0);
  });

  it('a running vCPU is made to exit when its device is released; a dead VM refuses ioctls (-EIO)', () => {
    const e = makeVm();
    const g = run(e);
    const w = new Word64();
    g.store(TIMA_OS_GPA + 0x11, 1, 0, 0xff);
    expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
    expect(e.vmm.munmap(e.esb, 2 * 0x2000 * P)).toBe(0);
    expect(e.vmm.close(e.devFd)).toBe(0);
    expect(g.running).toBe(false);
    expect(() => g.load(0, 8, w)).toThrow(/outside KVM_RUN/);
    const child = e.vmm.fork();
    assert(typeof child !== 'number', `fork: ${child}`);
    expect(child.ioctl(e.vmFd, KVM_CREATE_VCPU, 1)).toBe(-EIO);
    expect(e.vmm.mmap(0, P, PROT_READ | PROT_WRITE, MAP_SHARED, e.devFd, 0)).toBe(-9);
  });

  it('-EMFILE when the fd table is full: nothing is left behind (VM, vCPU, device)', () => {
    const host = createHost();
    const p = host.spawn();
    const k = p.open('/dev/kvm');
    const vm = p.ioctl(k, KVM_CREATE_VM, 0);
    while (p.eventfd() >= 0);
    expect(p.ioctl(k, KVM_CREATE_VM, 0)).toBe(-24);
    expect(host.kvm.vms).toHaveLength(1);
    expect(host.kvm.stats.vmsDestroyed).toBe(1);
    expect(p.ioctl(vm, KVM_CREATE_VCPU, 0)).toBe(-24);
    expect(host.kvm.vms[0]!.users).toBe(1);
    expect(createDevice(p, vm, KVM_DEV_TYPE_XIVE).rc).toBe(-24);
    expect(host.kvm.vms[0]!.users).toBe(1);
    expect(host.kvm.stats.devicesReleased).toBe(1);
    expect(host.kvm.vms[0]!.arch.xive).toBe(null);
  });
});
