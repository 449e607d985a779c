import { assert, describe, expect, it } from 'vitest';
import { EBADF, EFAULT, EINVAL, EIO, ENODEV, ENOENT, ENOMEM, ENOTTY } from '../../../src/host/errno.ts';
import { createHost } from '../../../src/host/host.ts';
import {
  encodeKvmCreateDevice,
  encodeKvmDeviceAttr,
  encodeKvmEnableCap,
  encodeKvmOneReg,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_ENABLE_CAP,
  KVM_GET_API_VERSION,
  KVM_GET_DEVICE_ATTR,
  KVM_GET_DIRTY_LOG,
  KVM_GET_ONE_REG,
  KVM_HAS_DEVICE_ATTR,
  KVM_IRQFD,
  KVM_REG_PPC_VP_STATE,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_ONE_REG,
  KVM_SET_USER_MEMORY_REGION,
} from '../../../src/host/kvm/uapi.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from '../../../src/host/mm/constants.ts';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
} from '../../../src/host/vfio/vfio.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import { PciDevice } from '../../../src/hw/phb.ts';
import { makeVm, P, RecordingExits } from './kvm/host-env.ts';

/** Addresses that fault: NULL page, an unmapped hole, beyond TASK_SIZE, a huge bigint. */
const BAD: (number | bigint)[] = [0, 0x10_0000, TASK_SIZE + P, 2n ** 63n];

describe('user memory helpers', () => {
  it('putU64 of a number writes the same bytes as of the bigint; copyFromUserTo fills a buffer', () => {
    const p = createHost().spawn();
    const a = p.userAlloc(16);
    p.putU64(a, 2 ** 40 + 5);
    p.putU64(a + 8, 2n ** 40n + 5n);
    expect(p.getU64(a)).toBe(2n ** 40n + 5n);
    const b = new Uint8Array(16);
    expect(p.copyFromUserTo(b, a)).toBe(0);
    expect([...b]).toEqual([0, 0, 1, 0, 0, 0, 0, 5, 0, 0, 1, 0, 0, 0, 0, 5]);
    expect(p.copyFromUserTo(b, 0)).toBe(-EFAULT);
  });
});

describe('files: open, close, EBADF, ENOTTY', () => {
  it('open: /dev/kvm, unknown path -ENOENT, unbound vfioN -ENOENT', () => {
    const host = createHost();
    const p = host.spawn();
    expect(p.open('/dev/kvm')).toBe(0);
    expect(p.open('/dev/kvm')).toBe(1);
    expect(p.open('/dev/kvmx')).toBe(-ENOENT);
    expect(p.open('/dev/vfio/devices/vfio0')).toBe(-ENOENT);
    expect(p.open('/dev/vfio/devices/vfiox')).toBe(-ENOENT);
  });

  it('EBADF: ioctl/close/mmap/kvmRun on a closed or negative fd', () => {
    const host = createHost();
    const p = host.spawn();
    const fd = p.open('/dev/kvm');
    expect(p.close(fd)).toBe(0);
    expect(p.close(fd)).toBe(-EBADF);
    expect(p.ioctl(fd, KVM_GET_API_VERSION, 0)).toBe(-EBADF);
    expect(p.ioctl(-1, KVM_GET_API_VERSION, 0)).toBe(-EBADF);
    expect(p.mmap(0, P, PROT_READ, MAP_SHARED, 7, 0)).toBe(-EBADF);
    expect(p.kvmRun(7, new RecordingExits())).toBe(-EBADF);
    const kvm = p.open('/dev/kvm');
    expect(p.kvmRun(kvm, new RecordingExits())).toBe(-EBADF);
  });

  it('unknown requests: /dev/kvm -EINVAL, VM -ENOTTY, vCPU -EINVAL, device -ENOTTY, eventfd -ENOTTY', () => {
    const e = makeVm();
    const bogus = 0x2000_ae99;
    expect(e.vmm.ioctl(e.kvmFd, bogus, 0)).toBe(-EINVAL);
    expect(e.vmm.ioctl(e.vmFd, bogus, 0)).toBe(-ENOTTY);
    expect(e.vmm.ioctl(e.vcpuFds[0]!, bogus, 0)).toBe(-EINVAL);
    expect(e.vmm.ioctl(e.devFd, bogus, 0)).toBe(-ENOTTY);
    const efd = e.vmm.eventfd();
    expect(e.vmm.ioctl(efd, KVM_GET_API_VERSION, 0)).toBe(-ENOTTY);
  });

  it('eventfd: write(2) signals (8 bytes written); -EBADF / -EINVAL on other fds', () => {
    const host = createHost();
    const p = host.spawn();
    const efd = p.eventfd();
    expect(p.eventfdWrite(efd)).toBe(8);
    expect(p.eventfdWrite(99)).toBe(-EBADF);
    expect(p.eventfdWrite(p.open('/dev/kvm'))).toBe(-EINVAL);
  });

  it('mmap of a VM fd: no f_op->mmap → -ENODEV', () => {
    const e = makeVm({ xive: false });
    expect(e.vmm.mmap(0, P, PROT_READ, MAP_SHARED, e.vmFd, 0)).toBe(-ENODEV);
  });
});

describe('EFAULT on every struct ioctl with a bad user pointer', () => {
  it('VM: SET_USER_MEMORY_REGION, CREATE_DEVICE, IRQFD, ENABLE_CAP, GET_DIRTY_LOG', () => {
    const e = makeVm({ xive: false });
    for (const bad of BAD) {
      for (const req of [
        KVM_SET_USER_MEMORY_REGION,
        KVM_CREATE_DEVICE,
        KVM_IRQFD,
        KVM_ENABLE_CAP,
        KVM_GET_DIRTY_LOG,
      ]) {
        expect([req.toString(16), bad, e.vmm.ioctl(e.vmFd, req, bad)]).toEqual([
          req.toString(16),
          bad,
          -EFAULT,
        ]);
      }
    }
    expect(e.host.kvm.vms[0]!.devices).toHaveLength(0);
  });

  it('VM: CREATE_DEVICE whose struct is read-only: the device is created, the fd write-back fails', () => {
    const e = makeVm({ xive: false });
    const ro = e.vmm.mmap(0, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    e.vmm.putBytes(ro, encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    expect(e.vmm.mprotect(ro, P, PROT_READ)).toBe(0);
    const before = e.vmm.proc.openFds().length;
    expect(e.vmm.ioctl(e.vmFd, KVM_CREATE_DEVICE, ro)).toBe(-EFAULT);
    expect(e.vmm.proc.openFds().length).toBe(before + 1);
    expect(e.host.kvm.vms[0]!.devices).toHaveLength(1);
  });

  it('vCPU: ENABLE_CAP, GET/SET_ONE_REG (struct and value pointers)', () => {
    const e = makeVm();
    const v = e.vcpuFds[0]!;
    for (const bad of BAD) {
      expect(e.vmm.ioctl(v, KVM_ENABLE_CAP, bad)).toBe(-EFAULT);
      expect(e.vmm.ioctl(v, KVM_GET_ONE_REG, bad)).toBe(-EFAULT);
      expect(e.vmm.ioctl(v, KVM_SET_ONE_REG, bad)).toBe(-EFAULT);
      const reg = e.vmm.userStruct(encodeKvmOneReg({ id: KVM_REG_PPC_VP_STATE, addr: bad as bigint }));
      expect(e.vmm.ioctl(v, KVM_GET_ONE_REG, reg)).toBe(-EFAULT);
      expect(e.vmm.ioctl(v, KVM_SET_ONE_REG, reg)).toBe(-EFAULT);
    }
    const cap = e.vmm.userStruct(encodeKvmEnableCap({ cap: KVM_CAP_PPC_IRQ_XIVE, args: [e.devFd, 0] }));
    expect(e.vmm.ioctl(v, KVM_ENABLE_CAP, cap)).toBe(-16);
  });

  it('device: SET/GET/HAS_DEVICE_ATTR (struct), and a bad attr.addr reaches the device as -EFAULT', () => {
    const e = makeVm();
    for (const bad of BAD) {
      for (const req of [KVM_SET_DEVICE_ATTR, KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR]) {
        expect(e.vmm.ioctl(e.devFd, req, bad)).toBe(-EFAULT);
      }
      const a = e.vmm.userStruct(
        encodeKvmDeviceAttr({ group: KVM_DEV_XIVE_GRP_SOURCE, attr: 5, addr: bad as bigint }),
      );
      expect(e.vmm.ioctl(e.devFd, KVM_SET_DEVICE_ATTR, a)).toBe(-EFAULT);
      // has_attr never reads attr.addr.
      expect(e.vmm.ioctl(e.devFd, KVM_HAS_DEVICE_ATTR, a)).toBe(0);
    }
  });

  it('VFIO device: GET_INFO, GET_IRQ_INFO, SET_IRQS', () => {
    const host = createHost();
    expect(host.phbs[0]!.plug(0, new PciDevice({ name: 'nic', msix: 4 }))).toBe(true);
    const n = host.vfioBind(0, 0);
    expect(n).toBe(0);
    expect(host.vfioBind(0, 0)).toBe(0);
    expect(host.vfioBind(0, 1)).toBe(-ENODEV);
    expect(host.vfioBind(0, 9)).toBe(-EINVAL);
    const p = host.spawn();
    const fd = p.open('/dev/vfio/devices/vfio0');
    expect(fd).toBe(0);
    for (const bad of BAD) {
      for (const req of [VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_SET_IRQS]) {
        expect(p.ioctl(fd, req, bad)).toBe(-EFAULT);
      }
    }
    const info = p.userAlloc(16);
    p.putU32(info, 16);
    expect(p.ioctl(fd, VFIO_DEVICE_GET_INFO, info)).toBe(0);
    expect(p.getU32(info + 12)).toBe(5);
    expect(host.vfio.devices[0]!.openCount).toBe(1);
    expect(p.close(fd)).toBe(0);
    expect(host.vfio.devices[0]!.openCount).toBe(0);
    expect(host.vfioUnbind(0)).toBe(0);
    expect(p.open('/dev/vfio/devices/vfio0')).toBe(-ENOENT);
  });
});

describe('processes: fork, SCM_RIGHTS, kvm->mm', () => {
  it('a forked child or a receiver of the VM fd gets -EIO from VM, vCPU and device ioctls', () => {
    const e = makeVm();
    const child = e.vmm.fork();
    assert(typeof child !== 'number', `fork: ${child}`);
    expect(child.ioctl(e.vmFd, KVM_SET_USER_MEMORY_REGION, 0)).toBe(-EIO);
    expect(child.ioctl(e.vcpuFds[0]!, KVM_GET_ONE_REG, 0)).toBe(-EIO);
    expect(child.ioctl(e.devFd, KVM_HAS_DEVICE_ATTR, 0)).toBe(-EIO);
    expect(child.kvmRun(e.vcpuFds[0]!, new RecordingExits())).toBe(-EIO);
    // /dev/kvm itself is not tied to an mm.
    expect(child.ioctl(e.kvmFd, KVM_CREATE_VM, 0)).toBeGreaterThanOrEqual(0);
    const other = e.host.spawn();
    const fd = e.vmm.sendFd(other, e.devFd);
    expect(fd).toBe(0);
    expect(other.ioctl(fd, KVM_HAS_DEVICE_ATTR, 0)).toBe(-EIO);
    // mmap of the device fd has no mm check (kvm_device_mmap).
    const m = other.mmap(0, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    expect(m).toBeGreaterThan(0);
    const w = new Word64();
    expect(other.load(m + 2 * P + 0x10, 8, w)).toBe(0);
    expect(other.load(m, 8, w)).toBe(7);
  });

  it('fork with the host RAM frames exhausted returns -ENOMEM and leaves no child: dup_mmap fails, copy_process tears the half-built mm down', () => {
    const host = createHost({ ramFrames: 4 });
    const p = host.spawn();
    const a = p.mmap(0, 0x40000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (let i = 0; i < 4; i++) expect(p.store(a + i * P, 8, 0, 0x10 + i)).toBe(0);
    expect(host.frames.allocated).toBe(4);
    const before = host.mm.processes.map((q) => q.pid);
    expect(p.fork()).toBe(-ENOMEM);
    expect(host.mm.processes.map((q) => q.pid)).toEqual(before);
    expect(host.frames.allocated).toBe(4);
    const w = new Word64();
    for (let i = 0; i < 4; i++) {
      expect(p.load(a + i * P, 8, w)).toBe(0);
      expect(w.lo).toBe(0x10 + i);
    }
    // With room for the copies, the same fork succeeds and the child has its own pages.
    expect(p.munmap(a + 2 * P, 2 * P)).toBe(0);
    const c = p.fork();
    assert(typeof c !== 'number', `fork: ${c}`);
    expect(host.frames.allocated).toBe(4);
    expect(c.load(a + P, 8, w)).toBe(0);
    expect(w.lo).toBe(0x11);
  });

  it('the child inherits the scratch arena contents', () => {
    const host = createHost();
    const p = host.spawn();
    const a = p.userAlloc(8);
    p.putU64(a, 0x1122_3344_5566_7788n);
    const c = p.fork();
    assert(typeof c !== 'number', `fork: ${c}`);
    expect(c.getU64(a)).toBe(0x1122_3344_5566_7788n);
    const b = c.userAlloc(4);
    expect(b).toBe(a + 8);
    p.putBytes(a, new Uint8Array([9, 8, 7]));
    expect([...p.getBytes(a, 3)]).toEqual([9, 8, 7]);
    expect(c.getU32(a)).toBe(0x1122_3344);
  });
});

describe('copy_from_user / copy_to_user over RAM', () => {
  it('moves bytes unaligned and across a page boundary, in big-endian order as byte loads see them', () => {
    const host = createHost();
    const p = host.spawn();
    const a = p.mmap(0, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const src = Uint8Array.from({ length: 101 }, (_, i) => (i * 37 + 5) & 0xff);
    const at = a + P - 37;
    p.putBytes(at, src);
    expect([...p.getBytes(at, 101)]).toEqual([...src]);
    expect([...p.getBytes(at + 3, 50)]).toEqual([...src.subarray(3, 53)]);
    const w = new Word64();
    for (const i of [0, 36, 37, 44, 100]) {
      expect(p.load(at + i, 1, w)).toBe(0);
      expect(w.lo).toBe(src[i]);
    }
    // The doubleword at the page start holds bytes 37…44 of the copy, most significant first.
    expect(p.getU64(a + P)).toBe(src.subarray(37, 45).reduce((v, b) => (v << 8n) | BigInt(b), 0n));
  });

  it('a copy over pages faulted in but never written, and written ones: the bytes of one-byte loads', () => {
    const host = createHost();
    const p = host.spawn();
    const a = p.mmap(0, 3 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const w = new Word64();
    expect(p.load(a + 5, 1, w)).toBe(0); // the first page: present, never written
    p.putBytes(a + 2 * P + 11, Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
    p.putBytes(a + P - 2, Uint8Array.from([1, 2, 3, 4]));
    const from = a + 3;
    const got = p.getBytes(from, 3 * P - 3);
    const bytes = Array.from({ length: 3 * P - 3 }, (_, i) => {
      expect(p.load(from + i, 1, w)).toBe(0);
      return w.lo;
    });
    expect([...got]).toEqual(bytes);
    expect([...got.subarray(P - 5, P - 1)]).toEqual([1, 2, 3, 4]);
    expect([...got.subarray(2 * P + 8, 2 * P + 12)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(got.reduce((n, b) => n + (b === 0 ? 0 : 1), 0)).toBe(8);
  });
});
