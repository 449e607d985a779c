/**
 * QEMU 7.2's known defects, in ONE place. Every entry says what QEMU does, why it is a defect
 * and what the suite does about it: normalise QEMU's value to what a correct model returns, or
 * exclude the operation from both runs (when executing it would make the two states diverge
 * for a reason already known, or would crash QEMU). Nothing else is normalised anywhere.
 * See shared/spec/qemu-qtest.md §5 and shared/spec/qemu.md §3.2, §5.3.
 */

import type { Op } from './ops.ts';
import { TIMA_BASE } from './qemu-driver.ts';

const H_INT_ESB = 0x3c8;
const H_INT_SET_QUEUE_CONFIG = 0x3b8;
const H_INT_RESET = 0x3d0;
const H_INT_ESB_STORE = 0x1n;
const TM_SPC_PULL_OS_CTX = 0x818;
const TM_SPC_PULL_POOL_CTX = 0x828;
const TM_QW1W2_VO = 0x8000_0000n;
const TM_QW2W2_VP = 0x8000_0000;
const TIMA_SIZE = 4 * 0x1_0000;
/** Guest RAM of the oracle command line (`-m 1G`). */
const GUEST_RAM_SIZE = 2 ** 30;

const bswap32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

function bswap64(v: bigint): bigint {
  let r = 0n;
  for (let i = 0; i < 8; i++) r = (r << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  return r;
}

/** TIMA page (0 HW, 1 HV, 2 OS, 3 USER) and offset in it, or null outside the TIMA. */
function timaPageOffset(addr: number): [number, number] | null {
  const rel = addr - TIMA_BASE;
  if (rel < 0 || rel >= TIMA_SIZE) return null;
  const page = Math.floor(rel / 0x1_0000);
  return [page, rel - page * 0x1_0000];
}

/**
 * Operations not run against either side, with the reason; null = run it.
 */
export function excludedOp(op: Op): string | null {
  if (op.k === 'hcall') {
    // Defect: H_INT_RESET returns H_SUCCESS and changes nothing in 7.2 (device_cold_reset()
    // skips the qemu_register_reset() handler); xivelab resets as PAPR/KVM do. Flags ≠ 0 still
    // fail the same way on both (H_PARAMETER) and are compared.
    if (op.opcode === H_INT_RESET && (op.args[0] ?? 0n) === 0n) return 'QEMU 7.2 H_INT_RESET is a no-op';
    // Defect: H_INT_ESB accepts offsets up to 128 KiB (`offset > 1 << esb_shift`), so offsets in
    // [64 KiB, 128 KiB] reach the next source's trigger page (a load reads -1, a store triggers
    // another source). xivelab limits the offset to the 64 KiB management page (H_P3).
    if (op.opcode === H_INT_ESB) {
      const off = op.args[2] ?? 0n;
      if (off >= 0x1_0000n && off <= 0x2_0000n) return 'QEMU 7.2 H_INT_ESB 128 KiB offset limit';
    }
    // Defect: SET_QUEUE_CONFIG validates the EQ with address_space_map(). Outside guest RAM
    // that returns a 4 KiB bounce buffer, so a 4 KiB queue (qsize 12) passes the length check
    // (H_SUCCESS where xivelab, like 7.2 for any larger queue, returns H_P4), and
    // address_space_unmap() then writes the uninitialised buffer back to whatever is mapped
    // there — on an ESB page that is 128 trigger stores, 128 injects and PQ sets (observed:
    // 129 events queued). Excluded when the call gets as far as the mapping.
    if (op.opcode === H_INT_SET_QUEUE_CONFIG) {
      const [flags = 0n, target = 0n, prio = 0n, qpage = 0n, qsize = 0n] = op.args;
      if (
        flags <= 1n &&
        target === 0n &&
        (prio & 0xffn) < 7n &&
        qsize === 12n &&
        qpage % 0x1000n === 0n &&
        qpage + 0x1000n > BigInt(GUEST_RAM_SIZE)
      ) {
        return 'QEMU 7.2 maps a non-RAM 4 KiB EQ through a bounce buffer';
      }
    }
    // Defect (crash): an EQ page inside the TIMA makes an enqueue run the TIMA handlers
    // without a vCPU (qtest context) → current_cpu NULL → SIGSEGV.
    if (op.opcode === H_INT_SET_QUEUE_CONFIG && timaPageOffset(Number(op.args[3] ?? 0n)) !== null) {
      return 'QEMU 7.2 crashes on an EQ inside the TIMA';
    }
    return null;
  }
  if (op.k === 'qld' || op.k === 'qst') {
    // Defect (crash): any qtest TIMA access dereferences current_cpu == NULL (SIGSEGV).
    if (timaPageOffset(op.addr) !== null) return 'QEMU 7.2 crashes on a TIMA access without a vCPU';
    return null;
  }
  if (op.k === 'vst') {
    const po = timaPageOffset(op.addr);
    // Defect (crash): "push OS ctx" (4-byte store of QW1 W2 on the HV or HW page) with VO set
    // reads the NVT's backlog from an uninitialised stack XiveNVT (spapr_xive_get_nvt() only
    // sets w0) and, when that garbage IPB is non-zero, calls spapr_xive_write_nvt(), which is
    // g_assert_not_reached() — QEMU aborts at random (observed). xivelab's NVT backlog is 0.
    if (po !== null && po[0] <= 1 && po[1] === 0x18 && op.size === 4 && (op.val & TM_QW1W2_VO) !== 0n) {
      return 'QEMU 7.2 push OS ctx reads an uninitialised NVT (random abort)';
    }
  }
  return null;
}

/**
 * QEMU's observed values mapped to what a correct model returns. `regs` is the op's result:
 * [value] for a vCPU load, [R3, R4, …] for an hcall.
 */
export function normaliseQemu(op: Op, regs: readonly bigint[]): bigint[] {
  const r = [...regs];
  if (op.k === 'hcall') {
    // Defect: H_INT_ESB load results come back byte-swapped (the 8-byte DMA into a host
    // variable skips the big-endian conversion; GET with PQ=10 returns 0x0200000000000000).
    if (op.opcode === H_INT_ESB && r[0] === 0n && ((op.args[0] ?? 0n) & H_INT_ESB_STORE) === 0n) {
      r[1] = bswap64(r[1]!);
    }
    return r;
  }
  if (op.k === 'vld') {
    const po = timaPageOffset(op.addr);
    if (po === null || po[0] > 1 || (op.size !== 4 && op.size !== 8)) return r;
    const v = r[0]!;
    const hi = v >> 32n;
    const lo = Number(v & 0xffff_ffffn);
    // Defect: PULL_OS_CTX returns QW1 W2 byte-swapped (the raw big-endian register bytes read
    // as a host word): 0x00040080 for W2 0x80000400, in the low word of an 8-byte load too.
    if (po[1] === TM_SPC_PULL_OS_CTX) r[0] = (hi << 32n) | BigInt(bswap32(lo));
    // Defect: PULL_POOL_CTX is byte-swapped the same way and returns QW2 W2 *after* clearing VP
    // (xive_tm_pull_pool_ctx() returns the new word, where PULL_OS_CTX returns the old one).
    // xivelab returns the word as it was (as PULL_OS_CTX does). Normalised: un-swapped here,
    // and the VP bit is compared masked on both sides ({@link maskPoolVp}).
    if (po[1] === TM_SPC_PULL_POOL_CTX) r[0] = (hi << 32n) | BigInt(bswap32(lo));
  }
  return r;
}

/**
 * The VP bit of a PULL_POOL_CTX result, which QEMU 7.2 always returns cleared (see
 * {@link normaliseQemu}): both sides' results are compared without it.
 */
export function maskPoolVp(op: Op, v: bigint): bigint {
  if (op.k !== 'vld') return v;
  const po = timaPageOffset(op.addr);
  if (po === null || po[0] > 1 || po[1] !== TM_SPC_PULL_POOL_CTX || (op.size !== 4 && op.size !== 8))
    return v;
  return v & ~BigInt(TM_QW2W2_VP);
}
