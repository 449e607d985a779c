/**
 * UAPI of the KVM XIVE native device : `arch/powerpc/include/uapi/asm/kvm.h` and
 * `include/uapi/linux/kvm.h`. C names and values. 64-bit fields are bigint (boundary values).
 */

import { structView } from '../mm/uaccess.ts';

/** `enum kvm_device_type`: after FSL_MPIC_20=1, FSL_MPIC_42=2, XICS=3, VFIO=4, ARM_VGIC_V2=5, FLIC=6, ARM_VGIC_V3=7, ARM_VGIC_ITS=8. */
export const KVM_DEV_TYPE_XICS = 3;
export const KVM_DEV_TYPE_XIVE = 9;

/** Mainline value (an early QEMU header sync used 168). */
export const KVM_CAP_PPC_IRQ_XIVE = 169;

/** `KVM_REG_PPC | KVM_REG_SIZE_U128 | 0x8d`. */
export const KVM_REG_PPC_VP_STATE = 0x1040_0000_0000_008dn;

// Groups and attributes.
export const KVM_DEV_XIVE_GRP_CTRL = 1;
export const KVM_DEV_XIVE_RESET = 1;
export const KVM_DEV_XIVE_EQ_SYNC = 2;
export const KVM_DEV_XIVE_NR_SERVERS = 3;
export const KVM_DEV_XIVE_GRP_SOURCE = 2;
export const KVM_DEV_XIVE_GRP_SOURCE_CONFIG = 3;
export const KVM_DEV_XIVE_GRP_EQ_CONFIG = 4;
export const KVM_DEV_XIVE_GRP_SOURCE_SYNC = 5;

// GRP_SOURCE value.
export const KVM_XIVE_LEVEL_SENSITIVE = 1n << 0n;
export const KVM_XIVE_LEVEL_ASSERTED = 1n << 1n;

// GRP_SOURCE_CONFIG value.
export const KVM_XIVE_SOURCE_PRIORITY_SHIFT = 0n;
export const KVM_XIVE_SOURCE_PRIORITY_MASK = 0x7n;
export const KVM_XIVE_SOURCE_SERVER_SHIFT = 3n;
export const KVM_XIVE_SOURCE_SERVER_MASK = 0xffff_fff8n;
export const KVM_XIVE_SOURCE_MASKED_SHIFT = 32n;
export const KVM_XIVE_SOURCE_MASKED_MASK = 0x1_0000_0000n;
export const KVM_XIVE_SOURCE_EISN_SHIFT = 33n;
export const KVM_XIVE_SOURCE_EISN_MASK = 0xffff_fffe_0000_0000n;

// GRP_EQ_CONFIG attr (EQ identifier).
export const KVM_XIVE_EQ_PRIORITY_SHIFT = 0n;
export const KVM_XIVE_EQ_PRIORITY_MASK = 0x7n;
export const KVM_XIVE_EQ_SERVER_SHIFT = 3n;
export const KVM_XIVE_EQ_SERVER_MASK = 0xffff_fff8n;

/** `struct kvm_ppc_xive_eq` flags: the only accepted value. */
export const KVM_XIVE_EQ_ALWAYS_NOTIFY = 0x0000_0001;

/** mmap page offsets (host pages). */
export const KVM_XIVE_TIMA_PAGE_OFFSET = 0;
export const KVM_XIVE_ESB_PAGE_OFFSET = 4;

// Guest irq space (book3s_xics.h / book3s_xive.h).
export const KVMPPC_XICS_ICS_SHIFT = 10;
export const KVMPPC_XICS_IRQ_PER_ICS = 1024;
export const KVMPPC_XICS_SRC_MASK = 0x3ff;
export const KVMPPC_XICS_MAX_ICS_ID = 1023;
export const KVMPPC_XICS_NR_IRQS = 0x10_0000;
export const KVMPPC_XIVE_FIRST_IRQ = 0;
export const KVMPPC_XIVE_NR_IRQS = KVMPPC_XICS_NR_IRQS;
export const KVMPPC_XIVE_Q_COUNT = 8;
/** Priority meaning masked / untargeted. */
export const MASKED = 0xff;
export const XIVE_INVALID_VP = 0xffff_ffff;

/** `vcpu->arch.irq_type`. */
export const KVMPPC_IRQ_DEFAULT = 0;
export const KVMPPC_IRQ_MPIC = 1;
export const KVMPPC_IRQ_XICS = 2;
export const KVMPPC_IRQ_XIVE = 3;

/**
 * `KVM_MAX_VCPUS` on a ppc64 host (= NR_CPUS, 2048 in distribution configs) and
 * `KVM_MAX_VCPU_IDS` (= MAX_SMT_THREADS · KVM_MAX_VCORES). Both depend on the
 * kernel configuration; these are the common values.
 */
export const KVM_MAX_VCPUS = 2048;
export const MAX_SMT_THREADS = 8;
export const KVM_MAX_VCPU_IDS = MAX_SMT_THREADS * KVM_MAX_VCPUS;

/** `sizeof(struct kvm_ppc_xive_eq)`. */
export const KVM_PPC_XIVE_EQ_SIZE = 64;

/** `struct kvm_ppc_xive_eq` decoded (host order). */
export interface KvmPpcXiveEq {
  flags: number;
  qshift: number;
  qaddr: bigint;
  qtoggle: number;
  qindex: number;
}

/**
 * Decode a `struct kvm_ppc_xive_eq` from user bytes. Byte order is big-endian, the order the
 * model's user memory uses for every word (see {@link encodeKvmPpcXiveEq}).
 */
export function decodeKvmPpcXiveEq(b: Uint8Array): KvmPpcXiveEq {
  const v = structView(b);
  return {
    flags: v.getUint32(0),
    qshift: v.getUint32(4),
    qaddr: v.getBigUint64(8),
    qtoggle: v.getUint32(16),
    qindex: v.getUint32(20),
  };
}

/** Encode a `struct kvm_ppc_xive_eq` (64 bytes, pad zero). */
export function encodeKvmPpcXiveEq(eq: KvmPpcXiveEq): Uint8Array {
  const b = new Uint8Array(KVM_PPC_XIVE_EQ_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, eq.flags >>> 0);
  v.setUint32(4, eq.qshift >>> 0);
  v.setBigUint64(8, BigInt.asUintN(64, eq.qaddr));
  v.setUint32(16, eq.qtoggle >>> 0);
  v.setUint32(20, eq.qindex >>> 0);
  return b;
}

/** Build a GRP_SOURCE_CONFIG value. */
export function kvmXiveSourceConfig(prio: number, server: number, masked: boolean, eisn: number): bigint {
  return (
    ((BigInt(prio) << KVM_XIVE_SOURCE_PRIORITY_SHIFT) & KVM_XIVE_SOURCE_PRIORITY_MASK) |
    ((BigInt(server) << KVM_XIVE_SOURCE_SERVER_SHIFT) & KVM_XIVE_SOURCE_SERVER_MASK) |
    (masked ? KVM_XIVE_SOURCE_MASKED_MASK : 0n) |
    ((BigInt(eisn) << KVM_XIVE_SOURCE_EISN_SHIFT) & KVM_XIVE_SOURCE_EISN_MASK)
  );
}

/** Build a GRP_EQ_CONFIG attr (EQ identifier). */
export function kvmXiveEqId(server: number, prio: number): bigint {
  return (
    ((BigInt(prio) << KVM_XIVE_EQ_PRIORITY_SHIFT) & KVM_XIVE_EQ_PRIORITY_MASK) |
    ((BigInt(server) << KVM_XIVE_EQ_SERVER_SHIFT) & KVM_XIVE_EQ_SERVER_MASK)
  );
}
