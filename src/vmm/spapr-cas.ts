/**
 * ibm,client-architecture-support (CAS): the PVR list and option vectors the guest hands the
 * platform through `KVMPPC_H_CAS`, and what the sPAPR machine concludes from them.
 *
 * @remarks Models hw/ppc/spapr_hcall.c (cas_check_pvr, do_client_architecture_support,
 * h_client_architecture_support) and hw/ppc/spapr_ovec.c (spapr_ovec_parse_vector), QEMU 7.2.
 */

import { type AccessSize, NO_CPU, Word64 } from '../hw/mmio.ts';

/** QEMU's private hcall number for CAS (SLOF → QEMU). */
export const KVMPPC_H_CAS = 0xf002;

// Return codes used here (the same values spapr-xive-hcalls.ts exports).
const H_SUCCESS = 0;
const H_HARDWARE = -1;
const H_PARAMETER = -4;

/** `OV_BIT(byte, bit)`: option-vector bit number (byte 1-based, bit 0 = MSB). */
export const ovBit = (byte: number, bit: number): number => (byte - 1) * 8 + bit;
/** OV5 byte 23 bit 0 (0x80): "both" — only the platform may advertise it. */
export const OV5_XIVE_BOTH = ovBit(23, 0);
/** OV5 byte 23 bit 1 (0x40): XIVE exploitation (else legacy XICS). */
export const OV5_XIVE_EXPLOIT = ovBit(23, 1);
/** OV5 byte 24 bit 0 (0x80): hash and radix. */
export const OV5_MMU_BOTH = ovBit(24, 0);
/** OV5 byte 24 bit 1 (0x40): radix (ISA 3.00). */
export const OV5_MMU_RADIX_300 = ovBit(24, 1);

/** `CPU_POWERPC_POWER9_DD20`: the PVR of the default pseries CPU on 7.2. */
export const CPU_POWERPC_POWER9_DD20 = 0x004e_1200;
/** Logical (compat) PVRs a POWER9 accepts: ISA 2.05 … 3.00. */
export const CPU_POWERPC_LOGICAL_2_05 = 0x0f00_0002;
export const CPU_POWERPC_LOGICAL_3_00 = 0x0f00_0005;

/** Guest memory as CAS reads it (QEMU `ldub_phys` / `ldl_be_phys` on address_space_memory). */
export interface CasMemory {
  load(addr: number, size: AccessSize, cpu: number, out: Word64): void;
}

/** CAS completed: `rc` goes back to the guest in R3. */
export const CAS_STATUS_RETURN = 0;
/** QEMU would `exit(EXIT_FAILURE)`: the machine reports {@link CasResult.message} as fatal. */
export const CAS_STATUS_EXIT = 1;

/** What CAS concluded. */
export interface CasResult {
  readonly status: number;
  /** H_SUCCESS, H_PARAMETER (missing OV1/OV5) or H_HARDWARE (no PVR); meaningless on exit. */
  readonly rc: number;
  /** QEMU's error/warning line, or null. */
  readonly message: string | null;
  /** The CPU's real PVR was in the list ("raw" mode allowed). */
  readonly explicitPvrMatch: boolean;
  /** Best logical PVR listed (0 = none, raw mode). */
  readonly compatPvr: number;
  readonly ov1: Uint8Array | null;
  readonly ov5: Uint8Array | null;
  /** OV5 byte 23 (0 when absent). */
  readonly ov5Byte23: number;
  readonly xiveExploitation: boolean;
  readonly guestRadix: boolean;
}

/** Which interrupt modes the machine offers (`spapr->irq->xics` / `->xive`). */
export interface CasPlatform {
  readonly cpuPvr: number;
  readonly xics: boolean;
  readonly xive: boolean;
}

const tmp = new Word64();

const ldub = (mem: CasMemory, a: number): number => {
  mem.load(a, 1, NO_CPU, tmp);
  return tmp.lo;
};

const ldl = (mem: CasMemory, a: number): number => {
  mem.load(a, 4, NO_CPU, tmp);
  return tmp.lo;
};

/** `spapr_ovec_test` on a parsed vector (bytes as the guest wrote them). */
export function spaprOvecTest(ov: Uint8Array | null, bitnr: number): boolean {
  if (ov === null) return false;
  const b = ov[Math.floor(bitnr / 8)];
  return b !== undefined && (b & (0x80 >>> (bitnr % 8))) !== 0;
}

/**
 * Address of the length byte of option vector `vector` (1-based) in the table at `table`,
 * or 0 when the table has fewer vectors. The table starts with (count − 1); each vector is
 * (length − 1) followed by its bytes.
 *
 * @remarks Models hw/ppc/spapr_ovec.c:vector_addr().
 */
function vectorAddr(mem: CasMemory, table: number, vector: number): number {
  const count = ldub(mem, table) + 1;
  if (vector > count) return 0;
  let a = table + 1;
  for (let i = 0; i < vector - 1; i++) a += ldub(mem, a) + 1 + 1;
  return a;
}

/**
 * The bytes of option vector `vector`, or null when absent.
 *
 * @remarks Models hw/ppc/spapr_ovec.c:spapr_ovec_parse_vector().
 */
export function spaprOvecParseVector(mem: CasMemory, table: number, vector: number): Uint8Array | null {
  const a = vectorAddr(mem, table, vector);
  if (a === 0) return null;
  const len = ldub(mem, a) + 1;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = ldub(mem, a + 1 + i);
  return out;
}

/** POWER9 accepts logical PVRs of ISA 2.05 … 3.00 (`ppc_check_compat`, no max-cpu-compat). */
function compatAllowed(pvr: number, best: number): boolean {
  return pvr >= CPU_POWERPC_LOGICAL_2_05 && pvr <= CPU_POWERPC_LOGICAL_3_00 && pvr > best;
}

/**
 * Parse the CAS table at guest address `vec` and decide the interrupt mode.
 *
 * @remarks Models hw/ppc/spapr_hcall.c:cas_check_pvr() and do_client_architecture_support()
 * (the parts that matter here: PVR list, OV1/OV5 presence, MMU and interrupt-mode checks).
 */
export function doClientArchitectureSupport(mem: CasMemory, vec: number, platform: CasPlatform): CasResult {
  // cas_check_pvr: (mask, pvr) pairs until one has pvr bits outside its mask; at most 512.
  let a = vec;
  let explicitMatch = false;
  let best = 0;
  for (let i = 0; i < 512; i++) {
    const mask = ldl(mem, a);
    const pvr = ldl(mem, a + 4);
    a += 8;
    if ((~mask & pvr) !== 0) break;
    if ((platform.cpuPvr & mask) >>> 0 === (pvr & mask) >>> 0) explicitMatch = true;
    else if (compatAllowed(pvr, best)) best = pvr;
  }
  const base = {
    explicitPvrMatch: explicitMatch,
    compatPvr: best,
    ov1: null,
    ov5: null,
    ov5Byte23: 0,
    xiveExploitation: false,
    guestRadix: false,
  };
  if (best === 0 && !explicitMatch) {
    return {
      ...base,
      status: CAS_STATUS_RETURN,
      rc: H_HARDWARE,
      message: "Couldn't negotiate a suitable PVR during CAS",
    };
  }
  const ov1 = spaprOvecParseVector(mem, a, 1);
  if (ov1 === null) {
    return {
      ...base,
      status: CAS_STATUS_RETURN,
      rc: H_PARAMETER,
      message: "guest didn't provide option vector 1",
    };
  }
  const ov5 = spaprOvecParseVector(mem, a, 5);
  const seen = { ...base, ov1, ov5, ov5Byte23: ov5?.[22] ?? 0 };
  if (ov5 === null) {
    return {
      ...seen,
      status: CAS_STATUS_RETURN,
      rc: H_PARAMETER,
      message: "guest didn't provide option vector 5",
    };
  }
  if (spaprOvecTest(ov5, OV5_MMU_BOTH)) {
    return {
      ...seen,
      status: CAS_STATUS_EXIT,
      rc: H_HARDWARE,
      message: 'guest requested hash and radix MMU, which is invalid.',
    };
  }
  if (spaprOvecTest(ov5, OV5_XIVE_BOTH)) {
    return {
      ...seen,
      status: CAS_STATUS_EXIT,
      rc: H_HARDWARE,
      message: 'guest requested an invalid interrupt mode',
    };
  }
  const guestRadix = spaprOvecTest(ov5, OV5_MMU_RADIX_300);
  const guestXive = spaprOvecTest(ov5, OV5_XIVE_EXPLOIT);
  const decided = { ...seen, guestRadix, xiveExploitation: guestXive };
  if (guestXive && !platform.xive) {
    return {
      ...decided,
      status: CAS_STATUS_EXIT,
      rc: H_HARDWARE,
      message:
        'Guest requested unavailable interrupt mode (XIVE), try the ic-mode=xive or ic-mode=dual machine property',
    };
  }
  if (!guestXive && !platform.xics) {
    return {
      ...decided,
      status: CAS_STATUS_EXIT,
      rc: H_HARDWARE,
      message:
        "Guest requested unavailable interrupt mode (XICS), either don't set the ic-mode machine property or try ic-mode=xics or ic-mode=dual",
    };
  }
  return { ...decided, status: CAS_STATUS_RETURN, rc: H_SUCCESS, message: null };
}

/** `ppc64_phys_to_real`: drop the top 4 address bits (real-mode addressing). */
export function ppc64PhysToReal(addr: bigint): number {
  return Number(addr & 0x0fff_ffff_ffff_ffffn);
}

/** Size of `SpaprDeviceTreeUpdateHeader` (u32 version_id). */
export const SPAPR_DT_UPDATE_HEADER_SIZE = 4;
