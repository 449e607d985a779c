/**
 * What the guest sees of the machine: a vCPU per CPU and the device-tree facts Linux reads at
 * boot. The guest imports nothing from `host/` or `vmm/`; the machine implements these
 * interfaces structurally.
 */

/** A 64-bit load result, filled in place (same shape as `hw/mmio.ts` `Word64`). */
export interface LoadResult {
  hi: number;
  lo: number;
}

/**
 * One virtual CPU as the guest kernel drives it: real-mode loads and stores at guest physical
 * addresses (big-endian; values are host-order u32 halves), `sc 1` hypercalls, and the level of
 * the external-interrupt input.
 */
export interface GuestVcpu {
  /** The hardware CPU id (what `H_INT_*` calls name as target / server). */
  readonly id: number;
  load(addr: number, size: 1 | 2 | 4 | 8, out: LoadResult): void;
  store(addr: number, size: 1 | 2 | 4 | 8, hi: number, lo: number): void;
  /**
   * `sc 1`: R3 = opcode, R4.. = `args` (u64 as bigint). Returns R3 (the H_* code, signed) and
   * writes R4.. into `out` (length ≥ 9 expected; only the outputs the call defines are set).
   */
  hcall(opcode: number, args: readonly bigint[], out: bigint[]): number;
  /** Level of the external-interrupt line (POWER9 EE input, raised by the OS ring). */
  readonly externalInterrupt: boolean;
}

/** A device's interrupts as the device tree / RTAS hands them to its driver. */
export interface GuestDeviceInfo {
  readonly name: string;
  /** MSI LISNs (already allocated by the platform, as after `ibm,change-msi`). */
  readonly msis: readonly number[];
  /** LSI LISNs (PCI INTx). */
  readonly lsis: readonly number[];
}

/** Device-tree facts the Linux XIVE driver reads (`spapr_xive_dt` in QEMU). */
export interface GuestDeviceTree {
  /** Guest RAM size in bytes, starting at guest physical 0. */
  readonly ramSize: number;
  /** First guest physical address the kernel may use for its own allocations. */
  readonly ramFree: number;
  /** `reg` of `ibm,power-ivpe`: [USER page, OS page] guest physical addresses. */
  readonly timaOsPage: number;
  /**
   * `ibm,xive-lisn-ranges`: the property's `<start count>` pair; the IPI LISNs are
   * `[start, start + count)`.
   */
  readonly ipiRange: readonly [number, number];
  /** `ibm,xive-eq-sizes`. */
  readonly eqSizes: readonly number[];
  /** `ibm,plat-res-int-priorities`: [start, count]. */
  readonly resIntPriorities: readonly [number, number];
  readonly devices: readonly GuestDeviceInfo[];
}
