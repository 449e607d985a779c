/**
 * QEMU 7.2's known defects, in ONE place. Every entry says what QEMU does, why it is a defect
 * and what the suite does about it: normalise QEMU's value to what a correct model returns, or
 * exclude the operation from both runs (when executing it would make the two states diverge
 * for a reason already known, or would crash QEMU). Nothing else is normalised anywhere.
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

// ---------------------------------------------------------------------------------------------
// KVM mode: xivelab with `-accel kvm` (the in-kernel XIVE) against QEMU 7.2 under TCG (there is
// no KVM here: the oracle is the architectural behaviour QEMU's emulated XIVE shows). What
// follows are the *faithful* differences between QEMU's emulated XIVE and the in-kernel one —
// each is how QEMU 7.2 + Linux behave under KVM, with the function that makes it so. They apply
// only to the KVM-mode run; the emulated run above is untouched.
// ---------------------------------------------------------------------------------------------

const XIVE_ESB_LOAD_EOI = 0x000n;
const ESB_WINDOW = 0x2000 * 0x2_0000;
const ESB_BASE_ADDR = 0x0006_0100_0000_0000;
/** Sources the 1-vCPU machine claims, i.e. the ones declared to KVM (KVM_DEV_XIVE_GRP_SOURCE). */
const KVM_SOURCES = new Set([0, 0x1000, 0x1001, 0x1100, 0x1200, 0x1201, 0x1202, 0x1203]);
const KVM_LSIS = new Set([0x1200, 0x1201, 0x1202, 0x1203]);

/** The source whose ESB pages `addr` falls in (0…0x1FFF), or null. */
function esbLisn(addr: number): number | null {
  const rel = addr - ESB_BASE_ADDR;
  return rel >= 0 && rel < ESB_WINDOW ? Math.floor(rel / 0x2_0000) : null;
}

/**
 * Whether the PQ of `lisn` can be observed by a qtest load in KVM mode. The ESB window is the
 * VMM's mmap of the KVM device; a page of a source KVM was never told about faults with SIGBUS
 * (book3s_xive_native.c:xive_native_esb_fault(): no source block, or `!state->valid`), which
 * kills QEMU itself. The emulated model answers for every LISN.
 */
export function kvmPqObservable(lisn: number): boolean {
  return KVM_SOURCES.has(lisn);
}

/**
 * The operation a guest running under KVM issues in place of `op` (run on BOTH sides, so the
 * comparison stays like for like):
 * - H_INT_SET_QUEUE_CONFIG with a 4 KiB queue (qsize 12) → the same queue with 64 KiB (qsize 16).
 *   The KVM device accepts 64 KiB queues only (kvmppc_xive_native_set_queue_config() →
 *   xive_native_validate_queue_size(): 12, 21 and 24 rejected), and 64 KiB
 *   is the only size QEMU advertises in `ibm,xive-eq-sizes` (spapr_xive_dt()), so a guest under
 *   KVM never asks for 4 KiB; QEMU's emulated XIVE accepts 12 too. (Queue wrap is then not
 *   reached by the `queue-wrap` sequence's 1030 events: 16384 entries.)
 */
export function kvmOp(op: Op): Op {
  if (op.k === 'hcall' && op.opcode === H_INT_SET_QUEUE_CONFIG && op.args[4] === 12n) {
    const args = [...op.args];
    args[4] = 16n;
    return { ...op, args };
  }
  return op;
}

const H_INT_SET_SOURCE_CONFIG = 0x3ac;
const H_INT_GET_QUEUE_CONFIG = 0x3bc;
const SRC_MASK = 0x1n;
const SRC_SET_EISN = 0x2n;
/** The kernel's `act_priority` of a masked source. */
const MASKED = 0xff;

/**
 * Operations not run against either side in KVM mode, with the reason. Some rules depend on
 * the device state, so one instance follows a run: {@link excluded} before an operation,
 * {@link observe} with its hcall return code after (both sides see the same codes until a
 * mismatch ends the comparison).
 */
export class KvmRules {
  /** END of (vCPU 0, prio) valid in QEMU's copy and configured in KVM. */
  private readonly queues = new Set<number>();
  /** The kernel's `act_priority` / `eisn` per source (kvmppc_xive_native_update_source_config). */
  private readonly actPrio = new Map<number, number>();
  private readonly actEisn = new Map<number, bigint>();
  /** EAS_END_DATA of QEMU's copy per source. */
  private readonly easEisn = new Map<number, bigint>();

  excluded(op: Op): string | null {
    // A vCPU access the host cannot back: the HW, HV and USER TIMA pages
    // (xive_native_tima_fault(): only the OS page is inserted) and the
    // ESB pages of a source KVM does not know (xive_native_esb_fault()) are SIGBUS in the
    // VMM's mapping, so KVM_RUN fails with -EFAULT and QEMU stops the VM (kvm_cpu_exec(): "kvm
    // run failed", vm_stop(RUN_STATE_INTERNAL_ERROR)) — the stub never answers again. The
    // emulated model serves them. (The front end's behaviour there: test/e2e/qtest-cli.test.ts.)
    // An unaligned vCPU access to these cache-inhibited pages is an alignment interrupt in the
    // guest under KVM (the stub has no handler), where TCG splits it (load_helper_unaligned).
    if (op.k === 'vld' || op.k === 'vst') {
      const po = timaPageOffset(op.addr);
      if (po !== null && po[0] !== 2)
        return 'KVM: the guest has only the OS TIMA page (SIGBUS, KVM_RUN fails)';
      const lisn = esbLisn(op.addr);
      if (lisn !== null && !KVM_SOURCES.has(lisn))
        return 'KVM: ESB page of a source KVM does not know (SIGBUS, KVM_RUN fails)';
      if ((po !== null || lisn !== null) && op.addr % op.size !== 0)
        return 'KVM: unaligned access to a cache-inhibited page (alignment interrupt in the guest)';
      // A raw 4/8-byte store into the OS ring's QW1 (only CPPR is writable from the OS page)
      // changes CPPR without a presenter check in QEMU (xive_tm_raw_write()), so NSR stays as it
      // was. Under KVM the context is pulled and pushed around every exit — each stub hcall
      // (kvmppc_xive_pull_vcpu()/push_vcpu()) — and the push re-evaluates PIPR against the
      // stored CPPR, so the NSR of the two differs from the next exit on.
      if (op.k === 'vst' && po !== null && po[1] >= 0x10 && po[1] < 0x20 && op.size >= 4)
        return 'KVM: raw OS-ring store (the context push re-evaluates CPPR, QEMU does not)';
      return null;
    }
    // QEMU's own access to such an ESB page takes the SIGBUS itself (memory_region_ram_device_read
    // on its mmap of the device): QEMU dies. And an unaligned one is a host load at that address
    // (ram_device_mem_ops accept any alignment) that the host's alignment handler splits, where
    // the emulated ESB region refuses it (xive_source_esb_ops: .valid.unaligned = false).
    if (op.k === 'qld' || op.k === 'qst') {
      const lisn = esbLisn(op.addr);
      if (lisn !== null && !KVM_SOURCES.has(lisn))
        return 'KVM: QEMU itself would take SIGBUS on this ESB page';
      if (lisn !== null && op.addr % op.size !== 0)
        return "KVM: QEMU's own unaligned load from the ESB mapping (alignment fix-up in the host)";
      return null;
    }
    if (op.k === 'hcall') return this.excludedHcall(op.opcode, op.args);
    // system_reset under KVM leaves the in-kernel device as it is: QEMU 7.2 resets its own copies
    // only (spapr_irq_update_active_intc() has nothing to do in XIVE-only mode, so
    // kvmppc_xive_connect() is not re-run; spapr_xive_reset() touches no device attribute), so
    // KVM keeps the routing, queues, PQs and the vCPU's OS ring (CPPR, IPB) where the emulated
    // XIVE resets them all. Tested on xivelab alone (test/unit/vmm/spapr-xive-kvm.test.ts, "system_reset").
    if (op.k === 'reset') return 'KVM: system_reset keeps the in-kernel XIVE state (QEMU 7.2)';
    return null;
  }

  private excludedHcall(opcode: number, args: readonly bigint[]): string | null {
    if (opcode === H_INT_SET_QUEUE_CONFIG) {
      // END ESB coalescing does not exist under KVM: the device requires ALWAYS_NOTIFY on every
      // queue (kvmppc_xive_native_set_queue_config(): -EINVAL → QEMU
      // H_HARDWARE, the old queue stays), where the emulated XIVE configures a coalescing END.
      // Excluded when QEMU's own checks would let the call through to the device.
      const [flags = 0n, target = 0n, prio = 0n, qpage = 0n, qsize = 0n] = args;
      if (
        flags === 0n &&
        target === 0n &&
        prio < 7n &&
        (qsize === 12n || qsize === 16n || qsize === 21n || qsize === 24n) &&
        qpage % (1n << qsize) === 0n &&
        qpage + (1n << qsize) <= BigInt(GUEST_RAM_SIZE)
      ) {
        return 'KVM: queues without ALWAYS_NOTIFY are refused by the device';
      }
      // The same for 2 MiB and 16 MiB queues: only 64 KiB is accepted
      // (xive_native_validate_queue_size(), see kvmOp()).
      if (
        (flags & ~1n) === 0n &&
        target === 0n &&
        prio < 7n &&
        (qsize === 21n || qsize === 24n) &&
        qpage % (1n << qsize) === 0n &&
        qpage + (1n << qsize) <= BigInt(GUEST_RAM_SIZE)
      ) {
        return 'KVM: the device accepts 64 KiB queues only';
      }
      return null;
    }
    if (opcode === H_INT_GET_QUEUE_CONFIG) {
      // QEMU 7.2 aborts: kvmppc_xive_get_queue_config() asserts the END is valid, and a queue
      // never configured (or reset) is not. The emulated XIVE returns zeros.
      const [flags = 0n, target = 0n, prio = 0n] = args;
      if ((flags & ~1n) === 0n && target === 0n && prio < 7n && !this.queues.has(Number(prio)))
        return 'KVM: QEMU 7.2 asserts on GET_QUEUE_CONFIG of an unconfigured queue';
      return null;
    }
    if (opcode === H_INT_SET_SOURCE_CONFIG) {
      const [flags = 0n, lisnArg = 0n, target = 0n, prio = 0n, eisnArg = 0n] = args;
      const lisn = Number(lisnArg);
      if ((flags & ~3n) !== 0n || lisnArg > 0x1fffn || !KVM_SOURCES.has(lisn)) return null;
      // QEMU 7.2 h_int_set_source_config(): priority 0xff resets QEMU's EAS and jumps to `out:`,
      // past kvmppc_xive_set_source_config(): the in-kernel source stays routed.
      if (prio === 0xffn) return 'KVM: QEMU 7.2 never tells KVM about a priority 0xff mask';
      const p = Number(prio & 0xffn);
      if (p > 6 || target !== 0n) return null;
      const masked = (flags & SRC_MASK) !== 0n;
      // kvmppc_xive_select_target() needs a configured queue: -EBUSY → QEMU H_HARDWARE, where the
      // emulated XIVE routes to an END without a queue (events dropped):
      // kvmppc_xive_native_set_queue_config().
      if (!masked && !this.queues.has(p)) return 'KVM: routing to a priority without a queue fails (-EBUSY)';
      // kvmppc_xive_native_update_source_config()'s no-op rule ignores the masked flag: a mask
      // with the current server/priority/EISN changes nothing in KVM
      // (kvmppc_xive_native_update_source_config()).
      const eisn = (flags & SRC_SET_EISN) !== 0n ? eisnArg & 0x7fff_ffffn : (this.easEisn.get(lisn) ?? 0n);
      if (masked && (this.actPrio.get(lisn) ?? MASKED) === p && (this.actEisn.get(lisn) ?? 0n) === eisn)
        return 'KVM: a mask with the same target/priority/EISN is a no-op in the kernel';
      return null;
    }
    // H_INT_ESB load-EOI on an LSI under KVM is SET_PQ_00, then a trigger if QEMU's copy of the
    // line is asserted, and returns 0 (QEMU's kvmppc_xive_esb_rw() / kvmppc_xive_esb_trigger()):
    // from PQ 01 the source
    // ends unmasked (00) and from 11 nothing is re-notified, where the emulated EOI keeps 01 and
    // re-notifies 11 → 10 (returning 1).
    if (
      opcode === H_INT_ESB &&
      ((args[0] ?? 0n) & H_INT_ESB_STORE) === 0n &&
      (args[2] ?? 0n) === XIVE_ESB_LOAD_EOI &&
      KVM_LSIS.has(Number(args[1] ?? -1n))
    ) {
      return 'KVM: H_INT_ESB load-EOI of an LSI is SET_PQ_00 (kvmppc_xive_esb_rw)';
    }
    return null;
  }

  /** Follow the state a run operation left (hcall return code `rc`). */
  observe(op: Op, rc: bigint): void {
    if (op.k !== 'hcall' || rc !== 0n) return;
    if (op.opcode === H_INT_SET_QUEUE_CONFIG) {
      const [, target = 0n, prio = 0n, , qsize = 0n] = op.args;
      if (target !== 0n || prio > 6n) return;
      if (qsize === 0n) this.queues.delete(Number(prio));
      else this.queues.add(Number(prio));
    } else if (op.opcode === H_INT_SET_SOURCE_CONFIG) {
      const [flags = 0n, lisnArg = 0n, , prio = 0n, eisnArg = 0n] = op.args;
      const lisn = Number(lisnArg);
      if (prio === 0xffn) return; // excluded above
      const eisn = (flags & SRC_SET_EISN) !== 0n ? eisnArg & 0x7fff_ffffn : (this.easEisn.get(lisn) ?? 0n);
      this.easEisn.set(lisn, eisn);
      const masked = (flags & SRC_MASK) !== 0n;
      const p = Number(prio & 0xffn);
      if (!masked && (this.actPrio.get(lisn) ?? MASKED) === p && (this.actEisn.get(lisn) ?? 0n) === eisn)
        return;
      this.actPrio.set(lisn, masked ? MASKED : p);
      this.actEisn.set(lisn, masked ? 0n : eisn);
    }
  }
}

/**
 * QEMU's OS-ring LSMFB as KVM shows it. QEMU's TCTX reset sets every ring's LSMFB to 0xFF
 * (xive_tctx_reset()); under KVM the vCPU's OS ring starts from the device's initial saved
 * state w01 = 0x00000000_ff000000 (kvmppc_xive_native_connect_vcpu(), LSMFB 0) and every pull
 * sets LSMFB := 0 (kvmppc_xive_pull_vcpu()). The OS page cannot write LSMFB, so it is 0xFF on
 * QEMU and 0 under KVM throughout: QEMU's 0xFF is mapped to 0 (any other value is left, to show).
 * `v` is a load at OS+0x10 of `size` bytes (LSMFB is the low byte of word 0).
 */
export function kvmOsRing(v: bigint, size: 4 | 8): bigint {
  const shift = size === 8 ? 32n : 0n;
  return ((v >> shift) & 0xffn) === 0xffn ? v & ~(0xffn << shift) : v;
}

/** QEMU's result of a vCPU load as KVM returns it (see {@link kvmOsRing}). */
export function normaliseQemuKvm(op: Op, v: bigint): bigint {
  if (op.k !== 'vld') return v;
  const po = timaPageOffset(op.addr);
  if (po === null || po[0] !== 2 || po[1] !== 0x10) return v;
  return op.size === 4 ? kvmOsRing(v, 4) : op.size === 8 ? kvmOsRing(v, 8) : v;
}

/**
 * QEMU's `info pic` as QEMU 7.2 prints it under KVM:
 * - the OS ring line's LSMFB and AGE columns are the KVM vCPU state's (VP_STATE word 0–1,
 *   kvmppc_xive_cpu_get_state(), which `xive_tctx_pic_print_info()` pulls first): LSMFB 0 (see
 *   {@link kvmOsRing}) and AGE 0 (the device's initial w01 has AGE 0 and the pull saves the
 *   hardware's AGE, which nothing sets), where the emulated TCTX reset leaves 0xFF in both;
 * - the machine's last line says `irqchip: in-kernel` (spapr_pic_print_info():
 *   kvm_irqchip_in_kernel()).
 */
export function normaliseQemuPicKvm(lines: readonly string[]): string[] {
  return lines.map((l) => {
    // CPU[0000]:   OS    00   ff  00    ff   ff  00  ff   ff  80000400
    const m = /^(CPU\[[0-9a-f]{4}\]:\s+OS\s+\S+\s+\S+\s+\S+\s+)(\S+)(\s+\S+\s+\S+\s+)(\S+)(.*)$/.exec(l);
    if (m) return `${m[1]}${m[2] === 'ff' ? '00' : m[2]}${m[3]}${m[4] === 'ff' ? '00' : m[4]}${m[5]}`;
    if (l === 'irqchip: emulated') return 'irqchip: in-kernel';
    return l;
  });
}
