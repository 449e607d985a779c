/**
 * The VMM side of the KVM ioctls the tests and the scale bench issue: each call encodes its
 * struct in the process's memory and returns the ioctl's result (0, a fd, or a -errno).
 * Free of vitest, so `bench/` can import it.
 */

import {
  encodeKvmDeviceAttr,
  encodeKvmEnableCap,
  encodeKvmPpcXiveEq,
  encodeKvmUserspaceMemoryRegion,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_ENABLE_CAP,
  KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_USER_MEMORY_REGION,
  kvmXiveEqId,
  kvmXiveSourceConfig,
} from '../../../../src/host/kvm/uapi.ts';
import type { HostProcess } from '../../../../src/host/syscalls.ts';

/** `ioctl(vmFd, KVM_SET_USER_MEMORY_REGION)`: memslot `slot` maps `size` bytes at `gpa` to `uaddr`. */
export function setRegion(
  p: HostProcess,
  vmFd: number,
  slot: number,
  gpa: number | bigint,
  size: number | bigint,
  uaddr: number | bigint,
  flags = 0,
): number {
  const region = encodeKvmUserspaceMemoryRegion({
    slot,
    flags,
    guestPhysAddr: gpa,
    memorySize: size,
    userspaceAddr: uaddr,
  });
  return p.ioctl(vmFd, KVM_SET_USER_MEMORY_REGION, p.userStruct(region));
}

/** `ioctl(devFd, KVM_{SET,GET,HAS}_DEVICE_ATTR)` with the value at `addr`. */
export function devAttr(
  p: HostProcess,
  devFd: number,
  req: number,
  group: number,
  attr: bigint | number,
  addr: number,
): number {
  return p.ioctl(devFd, req, p.userStruct(encodeKvmDeviceAttr({ group, attr, addr })));
}

/** `KVM_SET_DEVICE_ATTR` of the u64 `v`. */
export function setAttrU64(
  p: HostProcess,
  devFd: number,
  group: number,
  attr: bigint | number,
  v: bigint,
): number {
  const a = p.userAlloc(8);
  p.putU64(a, v);
  return devAttr(p, devFd, KVM_SET_DEVICE_ATTR, group, attr, a);
}

export function hasAttr(p: HostProcess, devFd: number, group: number, attr: bigint | number): number {
  return devAttr(p, devFd, KVM_HAS_DEVICE_ATTR, group, attr, 0);
}

export function getAttr(
  p: HostProcess,
  devFd: number,
  group: number,
  attr: bigint | number,
  addr: number,
): number {
  return devAttr(p, devFd, KVM_GET_DEVICE_ATTR, group, attr, addr);
}

/** `KVM_DEV_XIVE_GRP_EQ_CONFIG`: the EQ of (`server`, `prio`); enabled, toggle 1 by default. */
export function setEq(
  p: HostProcess,
  devFd: number,
  server: number,
  prio: number,
  eq: { flags?: number; qshift: number; qaddr: number | bigint; qtoggle?: number; qindex?: number },
): number {
  const a = p.userStruct(
    encodeKvmPpcXiveEq({
      flags: eq.flags ?? 1,
      qshift: eq.qshift,
      qaddr: BigInt(eq.qaddr),
      qtoggle: eq.qtoggle ?? 1,
      qindex: eq.qindex ?? 0,
    }),
  );
  return devAttr(p, devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(server, prio), a);
}

export function createSource(p: HostProcess, devFd: number, irq: number, init = 0n): number {
  return setAttrU64(p, devFd, KVM_DEV_XIVE_GRP_SOURCE, irq, init);
}

export function configSource(
  p: HostProcess,
  devFd: number,
  irq: number,
  prio: number,
  server: number,
  eisn: number,
  masked = false,
): number {
  return setAttrU64(
    p,
    devFd,
    KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
    irq,
    kvmXiveSourceConfig(prio, server, masked, eisn),
  );
}

/** `KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE)`: connects the vCPU to the device as `server`. */
export function connect(p: HostProcess, vcpuFd: number, devFd: number, server: number): number {
  return p.ioctl(
    vcpuFd,
    KVM_ENABLE_CAP,
    p.userStruct(encodeKvmEnableCap({ cap: KVM_CAP_PPC_IRQ_XIVE, args: [devFd, server] })),
  );
}
