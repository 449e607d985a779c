/**
 * The KVM userspace API as a powerpc process sees it: ioctl request numbers (powerpc `_IOC`
 * encoding, {@link ppcIoc}), capability and exit numbers, memslot flags, ONE_REG ids, and the
 * structs the ioctls pass by pointer, with encoders/decoders. Names and values are those of
 * `include/uapi/linux/kvm.h` and `arch/powerpc/include/uapi/asm/kvm.h`.
 *
 * Byte order: the model's user memory is big-endian (a ppc64 BE host), so every struct is laid
 * out big-endian, natural alignment, exactly as the C struct on that host.
 *
 * The XIVE device constants (groups, attributes, bitfields, `struct kvm_ppc_xive_eq`) live in
 * `xive-native-uapi.ts` and are re-exported here, as are the irqfd ones from `irqfd.ts`, so a
 * VMM imports the whole uapi from one place.
 */

import { structView } from '../mm/uaccess.ts';
import { KVMIO, PPC_IOC_NONE, PPC_IOC_READ, PPC_IOC_WRITE, ppcIoc } from './irqfd.ts';

export {
  KVM_IRQFD,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_IRQFD_SIZE,
  KVMIO,
  PPC_IOC_NONE,
  PPC_IOC_READ,
  PPC_IOC_WRITE,
  ppcIoc,
} from './irqfd.ts';
export {
  decodeKvmPpcXiveEq,
  encodeKvmPpcXiveEq,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_DEV_TYPE_XICS,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_EQ_SYNC,
  KVM_DEV_XIVE_GRP_CTRL,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE_SYNC,
  KVM_DEV_XIVE_NR_SERVERS,
  KVM_DEV_XIVE_RESET,
  KVM_MAX_VCPU_IDS,
  KVM_MAX_VCPUS,
  KVM_PPC_XIVE_EQ_SIZE,
  KVM_REG_PPC_VP_STATE,
  KVM_XIVE_EQ_ALWAYS_NOTIFY,
  KVM_XIVE_ESB_PAGE_OFFSET,
  KVM_XIVE_LEVEL_ASSERTED,
  KVM_XIVE_LEVEL_SENSITIVE,
  KVM_XIVE_TIMA_PAGE_OFFSET,
  type KvmPpcXiveEq,
  kvmXiveEqId,
  kvmXiveSourceConfig,
} from './xive-native-uapi.ts';

/** `KVM_API_VERSION`. */
export const KVM_API_VERSION = 12;

// ---------------------------------------------------------------------------------------------
// ioctl numbers
// ---------------------------------------------------------------------------------------------

const IO = (nr: number): number => ppcIoc(PPC_IOC_NONE, KVMIO, nr, 0);
const IOW = (nr: number, size: number): number => ppcIoc(PPC_IOC_WRITE, KVMIO, nr, size);
const IOWR = (nr: number, size: number): number => ppcIoc(PPC_IOC_READ | PPC_IOC_WRITE, KVMIO, nr, size);

/** sizeof(struct kvm_userspace_memory_region). */
export const KVM_USERSPACE_MEMORY_REGION_SIZE = 32;
/** sizeof(struct kvm_create_device). */
export const KVM_CREATE_DEVICE_SIZE = 12;
/** sizeof(struct kvm_device_attr). */
export const KVM_DEVICE_ATTR_SIZE = 24;
/** sizeof(struct kvm_enable_cap): cap, flags, args[4], pad[64]. */
export const KVM_ENABLE_CAP_SIZE = 104;
/** sizeof(struct kvm_one_reg). */
export const KVM_ONE_REG_SIZE = 16;
/** sizeof(struct kvm_dirty_log). */
export const KVM_DIRTY_LOG_SIZE = 16;

// /dev/kvm
/** `_IO(KVMIO, 0x00)` = 0x2000AE00. */
export const KVM_GET_API_VERSION = IO(0x00);
/** `_IO(KVMIO, 0x01)`: returns a VM fd. */
export const KVM_CREATE_VM = IO(0x01);
/** `_IO(KVMIO, 0x03)`: on /dev/kvm and on a VM fd. */
export const KVM_CHECK_EXTENSION = IO(0x03);
/** `_IO(KVMIO, 0x04)`. */
export const KVM_GET_VCPU_MMAP_SIZE = IO(0x04);
// VM
/** `_IO(KVMIO, 0x41)`: returns a vCPU fd. */
export const KVM_CREATE_VCPU = IO(0x41);
/** `_IOW(KVMIO, 0x42, struct kvm_dirty_log)` = 0x8010AE42. */
export const KVM_GET_DIRTY_LOG = IOW(0x42, KVM_DIRTY_LOG_SIZE);
/** `_IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)` = 0x8020AE46. */
export const KVM_SET_USER_MEMORY_REGION = IOW(0x46, KVM_USERSPACE_MEMORY_REGION_SIZE);
/** `_IOWR(KVMIO, 0xe0, struct kvm_create_device)` = 0xC00CAEE0. */
export const KVM_CREATE_DEVICE = IOWR(0xe0, KVM_CREATE_DEVICE_SIZE);
// VM and vCPU
/** `_IOW(KVMIO, 0xa3, struct kvm_enable_cap)` = 0x8068AEA3. */
export const KVM_ENABLE_CAP = IOW(0xa3, KVM_ENABLE_CAP_SIZE);
// vCPU
/** `_IO(KVMIO, 0x80)`. The model runs vCPUs through `HostProcess.kvmRun`; the ioctl is −EINVAL. */
export const KVM_RUN = IO(0x80);
/** `_IOW(KVMIO, 0xab, struct kvm_one_reg)` = 0x8010AEAB. */
export const KVM_GET_ONE_REG = IOW(0xab, KVM_ONE_REG_SIZE);
/** `_IOW(KVMIO, 0xac, struct kvm_one_reg)` = 0x8010AEAC. */
export const KVM_SET_ONE_REG = IOW(0xac, KVM_ONE_REG_SIZE);
// device
/** `_IOW(KVMIO, 0xe1, struct kvm_device_attr)` = 0x8018AEE1. */
export const KVM_SET_DEVICE_ATTR = IOW(0xe1, KVM_DEVICE_ATTR_SIZE);
/** `_IOW(KVMIO, 0xe2, struct kvm_device_attr)` = 0x8018AEE2. */
export const KVM_GET_DEVICE_ATTR = IOW(0xe2, KVM_DEVICE_ATTR_SIZE);
/** `_IOW(KVMIO, 0xe3, struct kvm_device_attr)` = 0x8018AEE3. */
export const KVM_HAS_DEVICE_ATTR = IOW(0xe3, KVM_DEVICE_ATTR_SIZE);

// ---------------------------------------------------------------------------------------------
// Capabilities, VM types, flags, exits, ONE_REG
// ---------------------------------------------------------------------------------------------

export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_NR_VCPUS = 9;
export const KVM_CAP_NR_MEMSLOTS = 10;
export const KVM_CAP_SYNC_MMU = 16;
export const KVM_CAP_IRQFD = 32;
export const KVM_CAP_ENABLE_CAP = 54;
export const KVM_CAP_MAX_VCPUS = 66;
export const KVM_CAP_PPC_PAPR = 68;
export const KVM_CAP_ONE_REG = 70;
export const KVM_CAP_READONLY_MEM = 81;
export const KVM_CAP_DEVICE_CTRL = 89;
export const KVM_CAP_CHECK_EXTENSION_VM = 105;
export const KVM_CAP_MAX_VCPU_ID = 128;

/** `KVM_CREATE_VM` types on powerpc (`KVM_VM_PPC_HV`, `KVM_VM_PPC_PR`); 0 = default (HV). */
export const KVM_VM_PPC_HV = 1;
export const KVM_VM_PPC_PR = 2;

/** `struct kvm_userspace_memory_region.flags`. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
/** Not accepted on powerpc (no `__KVM_HAVE_READONLY_MEM`): −EINVAL. */
export const KVM_MEM_READONLY = 1 << 1;
/** `KVM_MEM_MAX_NR_PAGES`: (1 << 31) − 1. */
export const KVM_MEM_MAX_NR_PAGES = 2 ** 31 - 1;
/** `KVM_USER_MEM_SLOTS` on powerpc. */
export const KVM_USER_MEM_SLOTS = 512;

/** `struct kvm_create_device.flags`: only test whether the type exists. */
export const KVM_CREATE_DEVICE_TEST = 1;

/** `KVM_EXIT_*` (`struct kvm_run.exit_reason`). */
export const KVM_EXIT_UNKNOWN = 0;
export const KVM_EXIT_EXCEPTION = 1;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HYPERCALL = 3;
export const KVM_EXIT_DEBUG = 4;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_IRQ_WINDOW_OPEN = 7;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_OSI = 18;
export const KVM_EXIT_PAPR_HCALL = 19;
export const KVM_EXIT_WATCHDOG = 21;
export const KVM_EXIT_EPR = 23;
export const KVM_EXIT_SYSTEM_EVENT = 24;

/** ONE_REG id fields (`KVM_REG_ARCH_MASK`, `KVM_REG_SIZE_*`). */
export const KVM_REG_ARCH_MASK = 0xff00_0000_0000_0000n;
export const KVM_REG_PPC = 0x1000_0000_0000_0000n;
export const KVM_REG_SIZE_SHIFT = 52n;
export const KVM_REG_SIZE_MASK = 0x00f0_0000_0000_0000n;
export const KVM_REG_SIZE_U64 = 0x0030_0000_0000_0000n;
export const KVM_REG_SIZE_U128 = 0x0040_0000_0000_0000n;

/** Bytes of a ONE_REG value: `1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)`. */
export function kvmRegSize(id: bigint): number {
  return 2 ** Number((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

// ---------------------------------------------------------------------------------------------
// Structs
// ---------------------------------------------------------------------------------------------

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const u64 = (v: bigint | number): bigint => BigInt.asUintN(64, BigInt(v));

/** `struct kvm_userspace_memory_region` (u64 fields as bigint: they are u64 in the ABI). */
export interface KvmUserspaceMemoryRegion {
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
}

export function encodeKvmUserspaceMemoryRegion(r: {
  slot: number;
  flags: number;
  guestPhysAddr: bigint | number;
  memorySize: bigint | number;
  userspaceAddr: bigint | number;
}): Uint8Array {
  const b = new Uint8Array(KVM_USERSPACE_MEMORY_REGION_SIZE);
  const v = view(b);
  v.setUint32(0, r.slot >>> 0);
  v.setUint32(4, r.flags >>> 0);
  v.setBigUint64(8, u64(r.guestPhysAddr));
  v.setBigUint64(16, u64(r.memorySize));
  v.setBigUint64(24, u64(r.userspaceAddr));
  return b;
}

export function decodeKvmUserspaceMemoryRegion(b: Uint8Array): KvmUserspaceMemoryRegion {
  const v = structView(b);
  return {
    slot: v.getUint32(0),
    flags: v.getUint32(4),
    guestPhysAddr: v.getBigUint64(8),
    memorySize: v.getBigUint64(16),
    userspaceAddr: v.getBigUint64(24),
  };
}

/** `struct kvm_create_device`: `fd` is written back by the kernel. */
export interface KvmCreateDevice {
  type: number;
  fd: number;
  flags: number;
}

export function encodeKvmCreateDevice(d: { type: number; fd?: number; flags?: number }): Uint8Array {
  const b = new Uint8Array(KVM_CREATE_DEVICE_SIZE);
  const v = view(b);
  v.setUint32(0, d.type >>> 0);
  v.setUint32(4, (d.fd ?? 0) >>> 0);
  v.setUint32(8, (d.flags ?? 0) >>> 0);
  return b;
}

export function decodeKvmCreateDevice(b: Uint8Array): KvmCreateDevice {
  const v = structView(b);
  return { type: v.getUint32(0), fd: v.getInt32(4), flags: v.getUint32(8) };
}

/** `struct kvm_device_attr`: `addr` is a user pointer to the attribute's value. */
export function encodeKvmDeviceAttr(a: {
  flags?: number;
  group: number;
  attr: bigint | number;
  addr: bigint | number;
}): Uint8Array {
  const b = new Uint8Array(KVM_DEVICE_ATTR_SIZE);
  const v = view(b);
  v.setUint32(0, (a.flags ?? 0) >>> 0);
  v.setUint32(4, a.group >>> 0);
  v.setBigUint64(8, u64(a.attr));
  v.setBigUint64(16, u64(a.addr));
  return b;
}

/**
 * `struct kvm_device_attr` as the device ioctl reads it, straight from the struct's bytes (a
 * million sources are a million of these: no object, and the user pointer without a bigint).
 */
export const kvmDeviceAttr = {
  group: (v: DataView): number => v.getUint32(4),
  attr: (v: DataView): bigint => v.getBigUint64(8),
  addr: (v: DataView): number => userPtrAt(v, 16),
};

/** `struct kvm_enable_cap`. */
export interface KvmEnableCap {
  cap: number;
  flags: number;
  args: [bigint, bigint, bigint, bigint];
}

export function encodeKvmEnableCap(c: {
  cap: number;
  flags?: number;
  args?: readonly (bigint | number)[];
}): Uint8Array {
  const b = new Uint8Array(KVM_ENABLE_CAP_SIZE);
  const v = view(b);
  v.setUint32(0, c.cap >>> 0);
  v.setUint32(4, (c.flags ?? 0) >>> 0);
  const args = c.args ?? [];
  for (let i = 0; i < 4; i++) v.setBigUint64(8 + 8 * i, u64(args[i] ?? 0n));
  return b;
}

export function decodeKvmEnableCap(b: Uint8Array): KvmEnableCap {
  const v = structView(b);
  return {
    cap: v.getUint32(0),
    flags: v.getUint32(4),
    args: [v.getBigUint64(8), v.getBigUint64(16), v.getBigUint64(24), v.getBigUint64(32)],
  };
}

/** `struct kvm_one_reg`: `addr` is a user pointer to the value (kvmRegSize(id) bytes). */
export interface KvmOneReg {
  id: bigint;
  addr: bigint;
}

export function encodeKvmOneReg(r: { id: bigint; addr: bigint | number }): Uint8Array {
  const b = new Uint8Array(KVM_ONE_REG_SIZE);
  const v = view(b);
  v.setBigUint64(0, u64(r.id));
  v.setBigUint64(8, u64(r.addr));
  return b;
}

export function decodeKvmOneReg(b: Uint8Array): KvmOneReg {
  const v = structView(b);
  return { id: v.getBigUint64(0), addr: v.getBigUint64(8) };
}

/** `struct kvm_dirty_log`: slot, pad, user pointer to the bitmap (little-endian: page i is bit i % 8 of byte i / 8). */
export interface KvmDirtyLog {
  slot: number;
  dirtyBitmap: bigint;
}

export function encodeKvmDirtyLog(d: { slot: number; dirtyBitmap: bigint | number }): Uint8Array {
  const b = new Uint8Array(KVM_DIRTY_LOG_SIZE);
  const v = view(b);
  v.setUint32(0, d.slot >>> 0);
  v.setBigUint64(8, u64(d.dirtyBitmap));
  return b;
}

export function decodeKvmDirtyLog(b: Uint8Array): KvmDirtyLog {
  const v = structView(b);
  return { slot: v.getUint32(0), dirtyBitmap: v.getBigUint64(8) };
}

/**
 * A ONE_REG `KVM_REG_PPC_VP_STATE` value (16 bytes): word 0 = TIMA QW1 w0|w1 (big-endian raw
 * doubleword, `hi` = word0), word 1 unused (0).
 */
export function encodeVpState(hi: number, lo: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = view(b);
  v.setUint32(0, hi >>> 0);
  v.setUint32(4, lo >>> 0);
  return b;
}

const MAX_SAFE_PTR = BigInt(Number.MAX_SAFE_INTEGER);

/** User pointers beyond 2^53 cannot be valid (TASK_SIZE is 2^47): map them to an invalid one. */
export function userPtr(p: bigint): number {
  return p <= MAX_SAFE_PTR ? Number(p) : Number.MAX_SAFE_INTEGER;
}

/** {@link userPtr} of the big-endian u64 at `off` of `v`, read as two words (no bigint). */
export function userPtrAt(v: DataView, off: number): number {
  const hi = v.getUint32(off);
  return hi < 2 ** 21 ? hi * 2 ** 32 + v.getUint32(off + 4) : Number.MAX_SAFE_INTEGER;
}
