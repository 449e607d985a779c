/**
 * The sPAPR XIVE exploitation-mode hypercalls (H_INT_*), as QEMU serves them for the pseries
 * machine: argument decoding from 64-bit registers, every check in QEMU's order with its H_*
 * code, and the outputs.
 *
 * Registers are u64 bigints: `args[0]` is R4, `args[1]` R5, … `out` mirrors the same registers
 * after the call: it starts as a copy of `args` (QEMU's `args` alias R4… in place, so inputs
 * stay in the registers an hcall does not write) and receives the outputs. Missing arguments
 * read as 0.
 *
 * Deviations from QEMU 7.2 (hw/intc/spapr_xive.c), where we follow PAPR and KVM instead:
 * H_INT_ESB returns the loaded value in host order (7.2 byte-swaps it), its offset is limited to
 * the one 64 KiB management page (7.2 allows up to 128 KiB inclusive), and H_INT_RESET really
 * resets (7.2 changes nothing). Each is documented at its function.
 */

import { getField32, setField32 } from '../hw/bits.ts';
import { Word64 } from '../hw/mmio.ts';
import {
  EAS_END_BLOCK_HI,
  EAS_END_DATA_LO,
  EAS_END_INDEX_HI,
  EAS_MASKED_LO,
  EAS_VALID_HI,
  END_W0_ENQUEUE,
  END_W0_QSIZE,
  END_W0_UCOND_NOTIFY,
  END_W0_VALID,
  END_W1_ESe_Q,
  END_W1_ESn_Q,
  END_W1_GENERATION,
  END_W1_PAGE_OFF,
  END_W2_EQ_ADDR_HI,
  END_W6_NVT_BLOCK,
  END_W6_NVT_INDEX,
  END_W7_F0_PRIORITY,
} from '../hw/xive/regs.ts';
import { XIVE_SRC_STORE_EOI } from '../hw/xive/source.ts';
import { traceEvent } from '../sim/trace-events.ts';
import { TRACE_HCALL } from '../sim/trace-sink.ts';
import type { SpaprXive } from './spapr-xive.ts';
import { SPAPR_XIVE_BLOCK_ID, SPAPR_XIVE_END_ESB_SHIFT, SPAPR_XIVE_VC_BASE } from './spapr-xive-layout.ts';

// ---------------------------------------------------------------------------------------------
// Return codes (asm/hvcall.h)
// ---------------------------------------------------------------------------------------------

export const H_SUCCESS = 0;
export const H_BUSY = 1;
export const H_HARDWARE = -1;
export const H_FUNCTION = -2;
export const H_PRIVILEGE = -3;
export const H_PARAMETER = -4;
export const H_P2 = -55;
export const H_P3 = -56;
export const H_P4 = -57;
export const H_P5 = -58;
/** PAPR: returned while an H_INT_RESET is in progress; QEMU never returns it. */
export const H_STATE = -75;

// ---------------------------------------------------------------------------------------------
// Opcodes
// ---------------------------------------------------------------------------------------------

export const H_INT_GET_SOURCE_INFO = 0x3a8;
export const H_INT_SET_SOURCE_CONFIG = 0x3ac;
export const H_INT_GET_SOURCE_CONFIG = 0x3b0;
export const H_INT_GET_QUEUE_INFO = 0x3b4;
export const H_INT_SET_QUEUE_CONFIG = 0x3b8;
export const H_INT_GET_QUEUE_CONFIG = 0x3bc;
export const H_INT_SET_OS_REPORTING_LINE = 0x3c0;
export const H_INT_GET_OS_REPORTING_LINE = 0x3c4;
export const H_INT_ESB = 0x3c8;
export const H_INT_SYNC = 0x3cc;
export const H_INT_RESET = 0x3d0;

/** True for the H_INT_* opcodes this module serves. */
export function isSpaprXiveHcall(opcode: number): boolean {
  return opcode >= H_INT_GET_SOURCE_INFO && opcode <= H_INT_RESET && (opcode & 3) === 0;
}

// ---------------------------------------------------------------------------------------------
// Flags (IBM bit numbers of a 64-bit register: PPC_BIT(63) = 0x1)
// ---------------------------------------------------------------------------------------------

/** GET_SOURCE_INFO out: the ESB must be managed with H_INT_ESB (PPC_BIT(60)). */
export const SPAPR_XIVE_SRC_H_INT_ESB = 0x8n;
/** GET_SOURCE_INFO out: level-sensitive source (PPC_BIT(61)). */
export const SPAPR_XIVE_SRC_LSI = 0x4n;
/** GET_SOURCE_INFO out: trigger and management on the same page (PPC_BIT(62)). */
export const SPAPR_XIVE_SRC_TRIGGER = 0x2n;
/** GET_SOURCE_INFO out: StoreEOI supported (PPC_BIT(63)). */
export const SPAPR_XIVE_SRC_STORE_EOI = 0x1n;
/** SET_SOURCE_CONFIG in: set the EISN (PPC_BIT(62)). */
export const SPAPR_XIVE_SRC_SET_EISN = 0x2n;
/** SET_SOURCE_CONFIG in: mask the EAS (PPC_BIT(63)). */
export const SPAPR_XIVE_SRC_MASK = 0x1n;
/** SET_QUEUE_CONFIG in / GET_QUEUE_CONFIG out: unconditional notify "n" (PPC_BIT(63)). */
export const SPAPR_XIVE_END_ALWAYS_NOTIFY = 0x1n;
/** GET_QUEUE_CONFIG in: return debug data (PPC_BIT(63)). */
export const SPAPR_XIVE_END_DEBUG = 0x1n;
/** H_INT_ESB in: store (PPC_BIT(63)); else load. */
export const SPAPR_XIVE_ESB_STORE = 0x1n;

/** −1 in a 64-bit register. */
const ALL_ONES = 0xffff_ffff_ffff_ffffn;

const hex = (n: number | bigint): string => n.toString(16);

/** Scratch for H_INT_ESB loads (hcalls do not nest). */
const esbWord = new Word64();

/** Register `i`, 0 when absent. */
const arg = (args: readonly bigint[], i: number): bigint => BigInt.asUintN(64, args[i] ?? 0n);

/**
 * Dispatch an H_INT_* hypercall. Every call returns H_FUNCTION until `xive.exploitation` is
 * set (CAS negotiated OV5 XIVE exploitation); opcodes that are not H_INT_* return H_FUNCTION.
 *
 * @remarks Models hw/intc/spapr_xive.c:spapr_xive_hcall_init() (the dispatch table) and the
 * `spapr_ovec_test(spapr->ov5_cas, OV5_XIVE_EXPLOIT)` check every handler starts with.
 */
export function spaprXiveHcall(
  xive: SpaprXive,
  cpu: number,
  opcode: number,
  args: readonly bigint[],
  out: bigint[],
): number {
  out.length = 0;
  for (let i = 0; i < args.length; i++) out.push(arg(args, i));
  let rc: number;
  if (!isSpaprXiveHcall(opcode) || !xive.exploitation) {
    rc = H_FUNCTION;
  } else {
    switch (opcode) {
      case H_INT_GET_SOURCE_INFO:
        rc = hIntGetSourceInfo(xive, args, out);
        break;
      case H_INT_SET_SOURCE_CONFIG:
        rc = hIntSetSourceConfig(xive, args);
        break;
      case H_INT_GET_SOURCE_CONFIG:
        rc = hIntGetSourceConfig(xive, args, out);
        break;
      case H_INT_GET_QUEUE_INFO:
        rc = hIntGetQueueInfo(xive, args, out);
        break;
      case H_INT_SET_QUEUE_CONFIG:
        rc = hIntSetQueueConfig(xive, args);
        break;
      case H_INT_GET_QUEUE_CONFIG:
        rc = hIntGetQueueConfig(xive, args, out);
        break;
      case H_INT_SET_OS_REPORTING_LINE:
      case H_INT_GET_OS_REPORTING_LINE:
        // Unimplemented in QEMU ("TODO"): always H_FUNCTION, even after CAS.
        rc = H_FUNCTION;
        break;
      case H_INT_ESB:
        rc = hIntEsb(xive, cpu, args, out);
        break;
      case H_INT_SYNC:
        rc = hIntSync(xive, args);
        break;
      default:
        rc = hIntReset(xive, args);
        break;
    }
  }
  const trace = xive.trace;
  if (trace.mask & TRACE_HCALL)
    traceEvent(trace, 'hcall.xive', { cpu, opcode, rc, arg1: Number(arg(args, 1) & 0xffff_ffffn) });
  return rc;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Write output register `i` (R4 + i). */
function setOut(out: bigint[], i: number, v: bigint): void {
  while (out.length < i) out.push(0n);
  out[i] = BigInt.asUintN(64, v);
}

/**
 * The LISN of a register if it names a claimed source, else -1 (the caller returns H_P2), with
 * QEMU's guest-error lines.
 */
function lookupLisn(xive: SpaprXive, reg: bigint): number {
  if (reg >= BigInt(xive.nrIrqs)) {
    xive.trace.guestError(`XIVE: Unknown LISN ${hex(reg)}`);
    return -1;
  }
  const lisn = Number(reg);
  if ((xive.eat[lisn * 2]! & EAS_VALID_HI) === 0) {
    xive.trace.guestError(`XIVE: Invalid LISN ${hex(reg)}`);
    return -1;
  }
  return lisn;
}

/**
 * Priorities ≥ hv_prio are reserved for the hypervisor (KVM escalations use 7). QEMU takes the
 * priority as a `uint8_t` here, so only the low byte of the register counts.
 *
 * @remarks Models hw/intc/spapr_xive.c:spapr_xive_priority_is_reserved().
 */
function priorityIsReserved(xive: SpaprXive, prio: bigint): boolean {
  const reserved = Number(prio & 0xffn) >= xive.hvPrio;
  if (reserved) xive.trace.guestError(`XIVE: priority ${BigInt.asIntN(64, prio)} is reserved`);
  return reserved;
}

/** Offset of a source's management page in the ESB region. */
function esbMgmt(xive: SpaprXive, lisn: number): number {
  const src = xive.source;
  const base = lisn * 2 ** src.esbShift;
  return src.isTwoPage ? base + 2 ** (src.esbShift - 1) : base;
}

// ---------------------------------------------------------------------------------------------
// The hypercalls
// ---------------------------------------------------------------------------------------------

/**
 * H_INT_GET_SOURCE_INFO(flags, lisn) → (src flags, mgmt page, trigger page, page shift).
 * LSIs are forced through H_INT_ESB (so that an asserted line can be re-triggered at EOI):
 * both page addresses read −1.
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_get_source_info().
 */
export function hIntGetSourceInfo(xive: SpaprXive, args: readonly bigint[], out: bigint[]): number {
  if (arg(args, 0) !== 0n) return H_PARAMETER;
  const lisn = lookupLisn(xive, arg(args, 1));
  if (lisn < 0) return H_P2;
  const src = xive.source;
  let flags = 0n;
  if (!src.isTwoPage) flags |= SPAPR_XIVE_SRC_TRIGGER;
  if (src.flags & XIVE_SRC_STORE_EOI) flags |= SPAPR_XIVE_SRC_STORE_EOI;
  if (src.isLsi(lisn)) flags |= SPAPR_XIVE_SRC_H_INT_ESB | SPAPR_XIVE_SRC_LSI;
  const viaHcall = (flags & SPAPR_XIVE_SRC_H_INT_ESB) !== 0n;
  setOut(out, 0, flags);
  setOut(out, 1, viaHcall ? ALL_ONES : BigInt(SPAPR_XIVE_VC_BASE + esbMgmt(xive, lisn)));
  setOut(
    out,
    2,
    src.isTwoPage && !viaHcall ? BigInt(SPAPR_XIVE_VC_BASE + lisn * 2 ** src.esbShift) : ALL_ONES,
  );
  setOut(out, 3, BigInt(src.isTwoPage ? src.esbShift - 1 : src.esbShift));
  return H_SUCCESS;
}

/**
 * H_INT_SET_SOURCE_CONFIG(flags, lisn, target, prio, eisn). Check order: flags → LISN (H_P2) →
 * prio 0xFF (reset the EAS to VALID | MASKED, success, before any other check) → reserved prio
 * (**H_P4**) → target (**H_P3**). The EISN changes only with SET_EISN; the MASK flag masks the
 * EAS (events still update PQ, then drop).
 *
 * Under KVM the new EAS goes to the device first (`GRP_SOURCE_CONFIG`); a refusal is H_HARDWARE and
 * leaves the EAS unchanged. The prio-0xFF path does not call KVM (QEMU 7.2).
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_set_source_config().
 */
export function hIntSetSourceConfig(xive: SpaprXive, args: readonly bigint[]): number {
  const flags = arg(args, 0);
  const prio = arg(args, 3);
  if (flags & ~(SPAPR_XIVE_SRC_SET_EISN | SPAPR_XIVE_SRC_MASK)) return H_PARAMETER;
  const lisn = lookupLisn(xive, arg(args, 1));
  if (lisn < 0) return H_P2;
  if (prio === 0xffn) {
    xive.eat[lisn * 2] = EAS_VALID_HI;
    xive.eat[lisn * 2 + 1] = EAS_MASKED_LO;
    return H_SUCCESS;
  }
  if (priorityIsReserved(xive, prio)) return H_P4;
  const cpu = xive.findCpu(arg(args, 2));
  if (cpu < 0) return H_P3;
  const endIdx = xive.cpuToEnd(cpu, Number(prio & 0xffn));
  let hi = xive.eat[lisn * 2]!;
  let lo = xive.eat[lisn * 2 + 1]!;
  lo = flags & SPAPR_XIVE_SRC_MASK ? (lo | EAS_MASKED_LO) >>> 0 : (lo & ~EAS_MASKED_LO) >>> 0;
  hi = setField32(EAS_END_BLOCK_HI, hi, SPAPR_XIVE_BLOCK_ID);
  hi = setField32(EAS_END_INDEX_HI, hi, endIdx);
  if (flags & SPAPR_XIVE_SRC_SET_EISN)
    lo = setField32(EAS_END_DATA_LO, lo, Number(arg(args, 4) & 0x7fff_ffffn));
  const kvm = xive.kvm;
  if (kvm?.inKernel && kvm.setSourceConfig(lisn, hi, lo) < 0) return H_HARDWARE;
  xive.eat[lisn * 2] = hi;
  xive.eat[lisn * 2 + 1] = lo;
  return H_SUCCESS;
}

/**
 * H_INT_GET_SOURCE_CONFIG(flags, lisn) → (target, prio, eisn). The target is read back from
 * the END's NVT, so after a prio-0xFF reset (END index 0, NVT 0) it is 0xFFFFFC00 (observed);
 * prio is 0xFF while the EAS is masked.
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_get_source_config().
 */
export function hIntGetSourceConfig(xive: SpaprXive, args: readonly bigint[], out: bigint[]): number {
  if (arg(args, 0) !== 0n) return H_PARAMETER;
  const lisn = lookupLisn(xive, arg(args, 1));
  if (lisn < 0) return H_P2;
  const hi = xive.eat[lisn * 2]!;
  const lo = xive.eat[lisn * 2 + 1]!;
  const endIdx = getField32(EAS_END_INDEX_HI, hi);
  if (endIdx >= xive.nrEnds) throw new Error(`SpaprXive: LISN ${hex(lisn)} routed to END ${endIdx}`);
  const o = endIdx * 8;
  setOut(out, 0, BigInt(xive.nvtToTarget(getField32(END_W6_NVT_INDEX, xive.endt[o + 6]!))));
  setOut(out, 1, lo & EAS_MASKED_LO ? 0xffn : BigInt(getField32(END_W7_F0_PRIORITY, xive.endt[o + 7]!)));
  setOut(out, 2, BigInt(lo & EAS_END_DATA_LO));
  return H_SUCCESS;
}

/**
 * H_INT_GET_QUEUE_INFO(flags, target, prio) → (END ESB page, EQ shift or 0). Check order:
 * flags → reserved prio (**H_P3**) → target (**H_P2**). The page is in the (disabled) END ESB
 * window: `end_base + (2 << 16) * end_idx`.
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_get_queue_info().
 */
export function hIntGetQueueInfo(xive: SpaprXive, args: readonly bigint[], out: bigint[]): number {
  if (arg(args, 0) !== 0n) return H_PARAMETER;
  const prio = arg(args, 2);
  if (priorityIsReserved(xive, prio)) return H_P3;
  const cpu = xive.findCpu(arg(args, 1));
  if (cpu < 0) return H_P2;
  const endIdx = xive.cpuToEnd(cpu, Number(prio & 0xffn));
  const w0 = xive.endt[endIdx * 8]!;
  setOut(out, 0, BigInt(xive.endBase + 2 ** (SPAPR_XIVE_END_ESB_SHIFT + 1) * endIdx));
  setOut(out, 1, w0 & END_W0_ENQUEUE ? BigInt(getField32(END_W0_QSIZE, w0) + 12) : 0n);
  return H_SUCCESS;
}

/** Scratch END for SET_QUEUE_CONFIG (built on a copy, written back only on success). */
const endScratch = new Uint32Array(8);

/**
 * H_INT_SET_QUEUE_CONFIG(flags, target, prio, qpage, qsize). Check order: flags (only
 * ALWAYS_NOTIFY) → reserved prio (**H_P3**) → target (**H_P2**) → qsize: 12/16/21/24 need a
 * naturally aligned qpage (H_P4) that is RAM for its whole size (H_P4, QEMU's
 * `address_space_map` check); 0 resets the END (queueing off); anything else H_P5.
 *
 * The END gets the EQ address and size, Q, V, N per the flag, NVT (0, 0x400 + vcpu), the
 * priority, and w1 = generation 1, index 0 with ESn = ESe = 00. The queue memory is not zeroed
 * (the guest zeroes it before the call).
 *
 * Under KVM the END goes to the device (`GRP_EQ_CONFIG`, toggle 1 / index 0 so KVM skips the
 * state restore) before it is stored; a refusal (e.g. a size other than 64 KiB) is H_HARDWARE.
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_set_queue_config().
 */
export function hIntSetQueueConfig(xive: SpaprXive, args: readonly bigint[]): number {
  const flags = arg(args, 0);
  const prio = arg(args, 2);
  const qpage = arg(args, 3);
  const qsize = arg(args, 4);
  if (flags & ~SPAPR_XIVE_END_ALWAYS_NOTIFY) return H_PARAMETER;
  if (priorityIsReserved(xive, prio)) return H_P3;
  const cpu = xive.findCpu(arg(args, 1));
  if (cpu < 0) return H_P2;
  const endIdx = xive.cpuToEnd(cpu, Number(prio & 0xffn));
  const end = endScratch;
  end.set(xive.endt.subarray(endIdx * 8, endIdx * 8 + 8));
  const kvm = xive.kvm;
  if (qsize === 0n) {
    // Reset the queue and disable queueing (under KVM: qshift 0 to the device first).
    if (kvm?.inKernel) {
      end.fill(0);
      end[1] = (END_W1_ESe_Q | END_W1_ESn_Q) >>> 0;
      if (kvm.setQueueConfig(endIdx, end) < 0) return H_HARDWARE;
    }
    xive.endReset(endIdx);
    return H_SUCCESS;
  }
  if (qsize !== 12n && qsize !== 16n && qsize !== 21n && qsize !== 24n) {
    xive.trace.guestError(`XIVE: invalid EQ size ${hex(qsize)}`);
    return H_P5;
  }
  const shift = Number(qsize);
  if (qpage & ((1n << qsize) - 1n)) {
    xive.trace.guestError(`XIVE: EQ @0x${hex(qpage)} is not naturally aligned with ${hex(1n << qsize)}`);
    return H_P4;
  }
  end[2] = Number((qpage >> 32n) & BigInt(END_W2_EQ_ADDR_HI));
  end[3] = Number(qpage & 0xffff_ffffn);
  end[0] = setField32(END_W0_QSIZE, (end[0]! | END_W0_ENQUEUE) >>> 0, shift - 12);
  // Validate the guest EQ: the whole queue must be RAM (QEMU maps it and compares the length).
  const addr = Number(qpage);
  if (qpage > BigInt(Number.MAX_SAFE_INTEGER) || !xive.dma.isRam(addr, 2 ** shift)) {
    xive.trace.guestError(`XIVE: failed to map EQ @0x${hex(qpage)}`);
    return H_P4;
  }
  end[6] =
    (setField32(END_W6_NVT_BLOCK, 0, SPAPR_XIVE_BLOCK_ID) |
      setField32(END_W6_NVT_INDEX, 0, xive.cpuToNvt(cpu))) >>>
    0;
  end[7] = setField32(END_W7_F0_PRIORITY, 0, Number(prio & 0xffn));
  end[0] =
    flags & SPAPR_XIVE_END_ALWAYS_NOTIFY
      ? (end[0]! | END_W0_UCOND_NOTIFY) >>> 0
      : (end[0]! & ~END_W0_UCOND_NOTIFY) >>> 0;
  // The generation starts at 1 and the queue index at 0; ESn and ESe become 00.
  end[1] = setField32(END_W1_PAGE_OFF, END_W1_GENERATION, 0);
  end[0] = (end[0]! | END_W0_VALID) >>> 0;
  if (kvm?.inKernel && kvm.setQueueConfig(endIdx, end) < 0) return H_HARDWARE;
  xive.endt.set(end, endIdx * 8);
  return H_SUCCESS;
}

/**
 * H_INT_GET_QUEUE_CONFIG(flags, target, prio) → (flags, qpage, qsize, index). Out flags: bit 63
 * (0x1) = N; with DEBUG, QEMU loads the generation at `<< 62` (observed 0x4000000000000001 for
 * N with generation 1) and R7 = the queue index, else R7 = 0. qpage/qsize are 0 without a queue.
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_get_queue_config().
 */
export function hIntGetQueueConfig(xive: SpaprXive, args: readonly bigint[], out: bigint[]): number {
  const flags = arg(args, 0);
  const prio = arg(args, 2);
  if (flags & ~SPAPR_XIVE_END_DEBUG) return H_PARAMETER;
  if (priorityIsReserved(xive, prio)) return H_P3;
  const cpu = xive.findCpu(arg(args, 1));
  if (cpu < 0) return H_P2;
  const endIdx = xive.cpuToEnd(cpu, Number(prio & 0xffn));
  const o = endIdx * 8;
  const w0 = xive.endt[o]!;
  let outFlags = w0 & END_W0_UCOND_NOTIFY ? SPAPR_XIVE_END_ALWAYS_NOTIFY : 0n;
  if (w0 & END_W0_ENQUEUE) {
    setOut(out, 1, BigInt((xive.endt[o + 2]! & END_W2_EQ_ADDR_HI) * 2 ** 32 + xive.endt[o + 3]!));
    setOut(out, 2, BigInt(getField32(END_W0_QSIZE, w0) + 12));
  } else {
    setOut(out, 1, 0n);
    setOut(out, 2, 0n);
  }
  // Under KVM the hardware toggle and index are pulled into the END first.
  const kvm = xive.kvm;
  if (kvm?.inKernel && kvm.getQueueConfig(endIdx, xive.endt.subarray(o, o + 8)) < 0) return H_HARDWARE;
  const w1 = xive.endt[o + 1]!;
  if (flags & SPAPR_XIVE_END_DEBUG) {
    outFlags |= BigInt(getField32(END_W1_GENERATION, w1)) << 62n;
    setOut(out, 3, BigInt(w1 & END_W1_PAGE_OFF));
  } else {
    setOut(out, 3, 0n);
  }
  setOut(out, 0, outFlags);
  return H_SUCCESS;
}

/**
 * H_INT_ESB(flags, lisn, offset, data) → loaded value, or −1 for a store: an 8-byte access to
 * the source's management page + offset (the emulated path; an LSI load-EOI re-triggers a line
 * still asserted, in the source).
 *
 * Deviations from QEMU 7.2 (PAPR/KVM semantics): the loaded value is returned in host order
 * (7.2 copies the big-endian MMIO word into the register unswapped: 1 reads as
 * 0x0100000000000000), and an offset beyond the management page, `offset ≥ 1 << (esb_shift − 1)`,
 * is H_P3 (7.2 checks `offset > 1 << esb_shift`, letting 64 KiB…128 KiB reach the next source's
 * trigger page).
 *
 * Under KVM the access goes through the VMM's mapping of the device's ESB pages
 * (`kvmppc_xive_esb_rw`): an LSI load-EOI is SET_PQ_00 plus a trigger if QEMU's copy of the
 * line is still asserted, and returns 0 (emulated: the source's EOI, which returns 1 when it
 * re-forwards). A signal taken by the VMM is H_HARDWARE (QEMU would die).
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_esb().
 */
export function hIntEsb(xive: SpaprXive, cpu: number, args: readonly bigint[], out: bigint[]): number {
  const flags = arg(args, 0);
  const offset = arg(args, 2);
  const data = arg(args, 3);
  if (flags & ~SPAPR_XIVE_ESB_STORE) return H_PARAMETER;
  const lisn = lookupLisn(xive, arg(args, 1));
  if (lisn < 0) return H_P2;
  const src = xive.source;
  const pageSize = src.isTwoPage ? 2 ** (src.esbShift - 1) : 2 ** src.esbShift;
  if (offset >= BigInt(pageSize)) return H_P3;
  // QEMU's 8-byte DMA to the ESB page fails on a misaligned offset (the region takes aligned
  // 8-byte accesses only): MEMTX error → H_HARDWARE, R4 untouched, no side effect (observed).
  if (offset % 8n !== 0n) return H_HARDWARE;
  const kvm = xive.kvm;
  if (kvm?.inKernel) {
    // Through the VMM's mapping of the KVM ESB pages (LSI load-EOI special case there).
    const store = (flags & SPAPR_XIVE_ESB_STORE) !== 0n;
    const sig = kvm.esbRw(
      lisn,
      Number(offset),
      Number(data >> 32n),
      Number(data & 0xffff_ffffn),
      store,
      esbWord,
    );
    if (sig !== 0) return H_HARDWARE;
    setOut(out, 0, store ? ALL_ONES : esbWord.toBigInt());
    return H_SUCCESS;
  }
  const mmio = esbMgmt(xive, lisn) + Number(offset);
  if (flags & SPAPR_XIVE_ESB_STORE) {
    xive.hcallEsb.store(mmio, 8, Number(data >> 32n), Number(data & 0xffff_ffffn), cpu);
    setOut(out, 0, ALL_ONES);
  } else {
    xive.hcallEsb.load(mmio, 8, cpu, esbWord);
    setOut(out, 0, esbWord.toBigInt());
  }
  return H_SUCCESS;
}

/**
 * H_INT_SYNC(flags, lisn): nothing is in flight in the emulation; only the checks remain. Under
 * KVM: `GRP_SOURCE_SYNC` (refusal → H_HARDWARE).
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_sync().
 */
export function hIntSync(xive: SpaprXive, args: readonly bigint[]): number {
  if (arg(args, 0) !== 0n) return H_PARAMETER;
  const lisn = lookupLisn(xive, arg(args, 1));
  if (lisn < 0) return H_P2;
  const kvm = xive.kvm;
  if (kvm?.inKernel && kvm.syncSource(lisn) < 0) return H_HARDWARE;
  return H_SUCCESS;
}

/**
 * H_INT_RESET(flags): reset every routing and queue structure of the partition.
 *
 * Deviation from QEMU 7.2 (PAPR/KVM semantics): 7.2 returns H_SUCCESS and changes nothing
 * (its `device_cold_reset()` skips the `qemu_register_reset()` handlers, observed). Here the
 * EAT is masked (EISN and targets dropped), every END cleared and every source switched off
 * (PQ 01), as `KVM_DEV_XIVE_RESET` does; sources stay allocated. See {@link SpaprXive.hIntReset}.
 *
 * @remarks Models hw/intc/spapr_xive.c:h_int_reset().
 */
export function hIntReset(xive: SpaprXive, args: readonly bigint[]): number {
  if (arg(args, 0) !== 0n) return H_PARAMETER;
  xive.hIntReset();
  const kvm = xive.kvm;
  if (kvm?.inKernel && kvm.reset() < 0) return H_HARDWARE;
  return H_SUCCESS;
}
