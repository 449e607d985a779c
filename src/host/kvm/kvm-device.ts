/**
 * KVM device files: `struct kvm_device` with its fd's file operations, and the lookup that tells
 * a device fd from any other file (the XIVE vCPU connect takes a device fd).
 */

import { EFAULT, EIO, ENOTTY } from '../errno.ts';
import type { File, FileOperations } from '../mm/file.ts';
import type { KvmUser, KvmVm } from './kvm.ts';
import {
  KVM_DEVICE_ATTR_SIZE,
  KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_SET_DEVICE_ATTR,
  kvmDeviceAttr,
} from './uapi.ts';
import type { KvmXiveNative } from './xive-native.ts';

/**
 * The kernel's copy of the ioctl's `struct kvm_device_attr`, reused by every call (its fields are
 * read at once, before the device runs).
 */
const attrBytes = new Uint8Array(KVM_DEVICE_ATTR_SIZE);
const attrView = new DataView(attrBytes.buffer);

/** `kvm_device_fops`: mmap and release go to the device. */
export const kvmDeviceFops: FileOperations = {
  name: 'kvm-device',
  mmap(file, vma) {
    return (file.privateData as KvmDevice).mmap(file, vma);
  },
  release(_inode, file) {
    (file.privateData as KvmDevice).release();
  },
};

/**
 * A KVM device instance (`struct kvm_device`): only the XIVE native device is registered.
 *
 * @remarks Models kvm_main.c: kvm_ioctl_create_device(), kvm_device_ioctl(), kvm_device_mmap(),
 * kvm_device_release().
 */
export class KvmDevice {
  readonly vm: KvmVm;
  readonly type: number;
  readonly xive: KvmXiveNative;
  released: boolean;
  constructor(vm: KvmVm, type: number, xive: KvmXiveNative) {
    this.vm = vm;
    this.type = type;
    this.xive = xive;
    this.released = false;
  }

  /**
   * ioctl on the device fd: −EIO from another mm or a dead VM; SET/GET/HAS_DEVICE_ATTR copy
   * `struct kvm_device_attr` (−EFAULT) and call the device; anything else −ENOTTY.
   */
  ioctl(user: KvmUser, cmd: number, arg: number): number {
    if (this.vm.mm !== user.proc.mm || this.vm.dead) return -EIO;
    if (cmd !== KVM_SET_DEVICE_ATTR && cmd !== KVM_GET_DEVICE_ATTR && cmd !== KVM_HAS_DEVICE_ATTR)
      return -ENOTTY;
    if (user.copyFromUserTo(attrBytes, arg)) return -EFAULT;
    const v = attrView;
    const group = kvmDeviceAttr.group(v);
    const attr = kvmDeviceAttr.attr(v);
    const addr = kvmDeviceAttr.addr(v);
    if (cmd === KVM_SET_DEVICE_ATTR) return this.xive.setAttr(group, attr, addr, user);
    if (cmd === KVM_GET_DEVICE_ATTR) return this.xive.getAttr(group, attr, addr, user);
    return this.xive.hasAttr(group, attr);
  }

  /** `kvm_device_mmap` → the device's mmap. */
  mmap(file: File, vma: Parameters<KvmXiveNative['mmap']>[1]): number {
    return this.xive.mmap(file, vma);
  }

  /**
   * Last reference to the device file (every fd closed, every mapping gone): vCPUs sitting in
   * KVM_RUN are made to exit first (the release takes each `vcpu->mutex`), then the device's
   * release, then the VM reference the device held.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const v of this.vm.vcpus) v.run?.stop();
    this.xive.release();
    const i = this.vm.devices.indexOf(this);
    if (i >= 0) this.vm.devices.splice(i, 1);
    this.vm.kvm.stats.devicesReleased++;
    this.vm.put();
  }
}

/**
 * The KVM device behind a file, or null when the file is not a KVM device fd.
 *
 * @remarks Models kvm_main.c:kvm_device_from_filp().
 */
export function kvmDeviceFromFilp(file: File): KvmDevice | null {
  return file.fOp === kvmDeviceFops ? (file.privateData as KvmDevice) : null;
}
