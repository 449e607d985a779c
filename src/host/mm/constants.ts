/**
 * Memory-manager constants with their C names and the values of a ppc64 host with 64 KiB pages
 * (`include/uapi/asm-generic/mman-common.h`, `arch/powerpc/include/uapi/asm/mman.h`,
 * `include/linux/mm.h`, `include/linux/mm_types.h`, `include/linux/mmu_notifier.h`).
 */

/** Host page size: 64 KiB, as on the POWER9 hosts of the debate (QEMU hard-codes it too). */
export const PAGE_SHIFT = 16;
export const PAGE_SIZE = 0x1_0000;
/** Multiply by this instead of shifting an address right (addresses are never bitwise-operated). */
export const PAGE_SCALE = 2 ** -16;

// mmap/mprotect protection bits.
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const PROT_SEM = 0x8;
/** powerpc: strong access ordering. */
export const PROT_SAO = 0x10;
export const PROT_GROWSDOWN = 0x0100_0000;
export const PROT_GROWSUP = 0x0200_0000;

// mmap flags.
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
/** powerpc values (the generic ones differ). */
export const MAP_NORESERVE = 0x40;
export const MAP_LOCKED = 0x80;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_DENYWRITE = 0x0800;
export const MAP_EXECUTABLE = 0x1000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x1_0000;
export const MAP_STACK = 0x2_0000;
export const MAP_HUGETLB = 0x4_0000;
export const MAP_SYNC = 0x8_0000;
export const MAP_FIXED_NOREPLACE = 0x10_0000;
/** The flags MAP_SHARED silently accepts (`LEGACY_MAP_MASK`). */
export const LEGACY_MAP_MASK =
  MAP_SHARED |
  MAP_PRIVATE |
  MAP_FIXED |
  MAP_ANONYMOUS |
  MAP_DENYWRITE |
  MAP_EXECUTABLE |
  MAP_GROWSDOWN |
  MAP_LOCKED |
  MAP_NORESERVE |
  MAP_POPULATE |
  MAP_NONBLOCK |
  MAP_STACK |
  MAP_HUGETLB;

// mremap flags.
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;

// vm_flags.
export const VM_NONE = 0x0;
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_GROWSDOWN = 0x100;
export const VM_PFNMAP = 0x400;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
export const VM_DONTCOPY = 0x2_0000;
export const VM_DONTEXPAND = 0x4_0000;
export const VM_NORESERVE = 0x20_0000;
export const VM_DONTDUMP = 0x400_0000;
export const VM_MIXEDMAP = 0x1000_0000;
/** VMAs that are never merged and whose PTEs are not ordinary pages. */
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

// Fault flags (`enum fault_flag`).
export const FAULT_FLAG_WRITE = 0x01;
export const FAULT_FLAG_USER = 0x40;
export const FAULT_FLAG_REMOTE = 0x80;

// Fault results (`enum vm_fault_reason`).
export const VM_FAULT_OOM = 0x0001;
export const VM_FAULT_SIGBUS = 0x0002;
export const VM_FAULT_MAJOR = 0x0004;
export const VM_FAULT_SIGSEGV = 0x0040;
export const VM_FAULT_NOPAGE = 0x0100;
export const VM_FAULT_LOCKED = 0x0200;
export const VM_FAULT_RETRY = 0x0400;
export const VM_FAULT_FALLBACK = 0x0800;
export const VM_FAULT_DONE_COW = 0x1000;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV;

// Signals (`include/uapi/asm-generic/signal.h`); 0 = none.
export const SIGBUS = 7;
export const SIGSEGV = 11;

// `enum mmu_notifier_event`.
export const MMU_NOTIFY_UNMAP = 0;
export const MMU_NOTIFY_CLEAR = 1;
export const MMU_NOTIFY_PROTECTION_VMA = 2;
export const MMU_NOTIFY_PROTECTION_PAGE = 3;
export const MMU_NOTIFY_SOFT_DIRTY = 4;
export const MMU_NOTIFY_RELEASE = 5;

// File modes (`FMODE_*`).
export const FMODE_READ = 0x1;
export const FMODE_WRITE = 0x2;

/** `sysctl vm.max_map_count` default (`DEFAULT_MAX_MAP_COUNT` = USHRT_MAX - 5). */
export const DEFAULT_MAX_MAP_COUNT = 65530;
/** `vm.mmap_min_addr` as distributions set it on ppc64 (`CONFIG_DEFAULT_MMAP_MIN_ADDR`). */
export const DEFAULT_MMAP_MIN_ADDR = 0x1_0000;
/** ppc64 `DEFAULT_MAP_WINDOW` (128 TiB): the user address space a process sees by default. */
export const TASK_SIZE = 2 ** 47;
/**
 * Where top-down mmap starts without ASLR: the map window less the 128 MiB minimum stack gap
 * (`mmap_base()` with an 8 MiB stack rlimit).
 */
export const DEFAULT_MMAP_BASE = TASK_SIZE - 128 * 2 ** 20;
/** `RLIMIT_NOFILE` soft default. */
export const DEFAULT_NR_OPEN = 1024;
