/**
 * The operations of a differential sequence and their execution on one {@link Target}: each
 * step runs the operation, then observes what it may have changed (IRQ line events, the PQ of
 * the source it touched, the OS ring through a vCPU TIMA load, the event queues it may have
 * written), as text lines the suite compares between QEMU and xivelab.
 */

import {
  excludedOp,
  KvmRules,
  kvmOp,
  kvmOsRing,
  kvmPqObservable,
  maskPoolVp,
  normaliseQemu,
  normaliseQemuKvm,
  normaliseQemuPicKvm,
} from './normalise.ts';
import { CPU0_PATH, ESB_BASE, esbMgmt, MBOX, type Target, TIMA_OS } from './qemu-driver.ts';

export type Size = 1 | 2 | 4 | 8;

export type Op =
  /** qtest load (no vCPU: ESB pages, RAM). */
  | { k: 'qld'; addr: number; size: Size }
  /** qtest store. */
  | { k: 'qst'; addr: number; size: Size; val: bigint }
  /** vCPU 0 load through the mailbox (TIMA, ESB). */
  | { k: 'vld'; addr: number; size: Size }
  /** vCPU 0 store through the mailbox. */
  | { k: 'vst'; addr: number; size: Size; val: bigint }
  /** Hypercall from vCPU 0 (args = R4…). */
  | { k: 'hcall'; opcode: number; args: bigint[] }
  /** qtest memset of guest RAM. */
  | { k: 'memset'; addr: number; len: number; val: number }
  /** HMP system_reset, then the stub restarts and CAS is negotiated again. */
  | { k: 'reset' }
  /** Compare HMP `info pic`. */
  | { k: 'pic' }
  /** Compare a guest RAM range. */
  | { k: 'ram'; addr: number; len: number };

export const H_NAMES: Record<number, string> = {
  936: 'GET_SOURCE_INFO',
  940: 'SET_SOURCE_CONFIG',
  944: 'GET_SOURCE_CONFIG',
  948: 'GET_QUEUE_INFO',
  952: 'SET_QUEUE_CONFIG',
  956: 'GET_QUEUE_CONFIG',
  960: 'SET_OS_REPORTING_LINE',
  964: 'GET_OS_REPORTING_LINE',
  968: 'ESB',
  972: 'SYNC',
  976: 'RESET',
  61442: 'CAS',
};
export const H_INT_ESB = 0x3c8;
export const H_INT_SET_QUEUE_CONFIG = 0x3b8;
const LISN_HCALLS = new Set([0x3a8, 0x3ac, 0x3b0, 0x3c8, 0x3cc]);

/** Number of sources (QEMU 7.2 sPAPR: 0x2000). */
export const NR_IRQS = 0x2000;
const RAM_SIZE = 2 ** 30;

const hx = (n: number | bigint): string => `0x${n.toString(16)}`;

export function describeOp(op: Op): string {
  switch (op.k) {
    case 'qld':
    case 'vld':
      return `${op.k}${op.size} ${hx(op.addr)}`;
    case 'qst':
    case 'vst':
      return `${op.k}${op.size} ${hx(op.addr)} ${hx(op.val)}`;
    case 'hcall':
      return `hcall ${H_NAMES[op.opcode] ?? hx(op.opcode)}(${op.args.map(hx).join(', ')})`;
    case 'memset':
      return `memset ${hx(op.addr)} ${hx(op.len)} ${hx(op.val)}`;
    case 'ram':
      return `ram ${hx(op.addr)} ${hx(op.len)}`;
    default:
      return op.k;
  }
}

/** The source an operation addresses, if any. */
export function opLisn(op: Op): number | null {
  if (op.k === 'qld' || op.k === 'qst' || op.k === 'vld' || op.k === 'vst') {
    const rel = op.addr - ESB_BASE;
    if (rel >= 0 && rel < NR_IRQS * 0x2_0000) return Math.floor(rel / 0x2_0000);
    return null;
  }
  if (op.k === 'hcall' && LISN_HCALLS.has(op.opcode)) {
    const l = op.args[1] ?? 0n;
    return l < BigInt(NR_IRQS) ? Number(l) : null;
  }
  return null;
}

/** Can the operation write an event queue (a notification, or RAM)? */
function mayEnqueue(op: Op): boolean {
  if (op.k === 'memset' || op.k === 'reset') return true;
  if (op.k === 'hcall') return op.opcode === H_INT_ESB || op.opcode === H_INT_SET_QUEUE_CONFIG;
  return opLisn(op) !== null;
}

/** Run-length summary of big-endian words: `i-j:value` runs of equal non-zero words. */
export function summariseWords(b: Uint8Array): string {
  const runs: string[] = [];
  let start = -1;
  let cur = 0;
  const n = Math.floor(b.length / 4);
  for (let i = 0; i <= n; i++) {
    const w =
      i < n ? ((b[i * 4]! << 24) | (b[i * 4 + 1]! << 16) | (b[i * 4 + 2]! << 8) | b[i * 4 + 3]!) >>> 0 : -1;
    if (start >= 0 && w !== cur) {
      if (cur !== 0)
        runs.push(`${start === i - 1 ? start : `${start}-${i - 1}`}:${cur.toString(16).padStart(8, '0')}`);
      start = -1;
    }
    if (start < 0 && i < n) {
      start = i;
      cur = w;
    }
  }
  return runs.length === 0 ? 'zero' : runs.join(' ');
}

/** EQ pages are read whole up to this size per observation. */
const EQ_READ_MAX = 0x1_0000;
/**
 * KVM mode: every queue is 64 KiB (see normalise.ts kvmOp), and no sequence enqueues more than
 * 2068 events into one queue (queue-wrap), so the first 8 KiB (2048 entries) hold every entry
 * written but the last 20 of queue-wrap's, which the final `ram` and `pic` steps compare.
 */
const EQ_READ_MAX_KVM = 0x2000;

export interface Step {
  op: string;
  obs: string[];
}

/** Executes operations on one target and records the transcript. */
export class Runner {
  readonly t: Target;
  readonly isQemu: boolean;
  readonly transcript: Step[] = [];
  /** Event queues configured so far (qpage → bytes), observed after steps that may enqueue. */
  private readonly eqs = new Map<number, number>();

  /**
   * KVM mode: xivelab runs with `-accel kvm` and the operations and QEMU's observations go
   * through the KVM-mode rules of normalise.ts (both runners of a pair get the same flag).
   */
  readonly kvm: boolean;
  private readonly kvmRules: KvmRules | null;

  constructor(t: Target, isQemu: boolean, kvm = false) {
    this.t = t;
    this.isQemu = isQemu;
    this.kvm = kvm;
    this.kvmRules = kvm ? new KvmRules() : null;
  }

  /** Intercept vCPU 0's interrupt inputs, wait for the stub, negotiate XIVE with CAS. */
  async boot(): Promise<void> {
    const r = await this.t.cmd(`irq_intercept_in ${CPU0_PATH}`);
    if (r !== 'OK') throw new Error(`${this.t.name}: irq_intercept_in: ${r}`);
    await this.t.boot();
    this.t.takeIrqs();
  }

  async step(original: Op): Promise<string[]> {
    const op = this.kvm ? kvmOp(original) : original;
    const why = excludedOp(op) ?? this.kvmRules?.excluded(op) ?? null;
    const obs = why !== null ? [`excluded: ${why}`] : await this.exec(op);
    this.transcript.push({ op: describeOp(op), obs });
    return obs;
  }

  private async exec(op: Op): Promise<string[]> {
    const t = this.t;
    const obs: string[] = [];
    switch (op.k) {
      case 'qld':
        obs.push(`= ${hx(await t.read(op.addr, op.size))}`);
        break;
      case 'qst':
        await t.write(op.addr, op.size, op.val);
        break;
      case 'vld': {
        let v = await t.vload(op.addr, op.size);
        if (this.isQemu) v = normaliseQemu(op, [v])[0]!;
        if (this.isQemu && this.kvm) v = normaliseQemuKvm(op, v);
        obs.push(`= ${hx(maskPoolVp(op, v))}`);
        break;
      }
      case 'vst':
        await t.vstore(op.addr, op.size, op.val);
        break;
      case 'hcall': {
        const r = await t.hcall(op.opcode, ...op.args);
        const regs = this.isQemu ? normaliseQemu(op, [BigInt.asUintN(64, r.rc), ...r.out]) : [r.rc, ...r.out];
        const rc = BigInt.asIntN(64, regs[0]!);
        this.kvmRules?.observe(op, rc);
        obs.push(`rc=${rc} R4..R12=${regs.slice(1).map(hx).join(' ')}`);
        if (op.opcode === H_INT_SET_QUEUE_CONFIG && rc === 0n) {
          const qpage = Number(op.args[3] ?? 0n);
          const qsize = Number(op.args[4] ?? 0n);
          if (qsize >= 12 && qpage + 2 ** qsize <= RAM_SIZE)
            this.eqs.set(qpage, Math.min(2 ** qsize, this.kvm ? EQ_READ_MAX_KVM : EQ_READ_MAX));
        }
        break;
      }
      case 'memset':
        await t.memset(op.addr, op.len, op.val);
        break;
      case 'reset':
        await this.reset();
        break;
      case 'pic': {
        const lines = (await t.hmp('info pic')).split('\n');
        obs.push(...(this.isQemu && this.kvm ? normaliseQemuPicKvm(lines) : lines));
        break;
      }
      case 'ram':
        obs.push(summariseWords(await t.readBytes(op.addr, op.len)));
        break;
    }
    const irqs = this.takeIrqs();
    if (irqs.length > 0) obs.push(`irq: ${irqs.join(', ')}`);
    if (op.k === 'pic' || op.k === 'ram') return obs;
    const lisn = opLisn(op);
    if (lisn !== null && (!this.kvm || kvmPqObservable(lisn)))
      obs.push(`PQ[${hx(lisn)}]=${await t.read(esbMgmt(lisn) + 0x800, 8)}`);
    let ring = await t.vload(TIMA_OS + 0x10, 8);
    if (this.isQemu && this.kvm) ring = kvmOsRing(ring, 8);
    obs.push(`OS ring=${ring.toString(16).padStart(16, '0')}`);
    if (mayEnqueue(op)) {
      for (const [qpage, len] of this.eqs)
        obs.push(`EQ@${hx(qpage)}: ${summariseWords(await t.readBytes(qpage, len))}`);
    }
    const late = this.takeIrqs();
    if (late.length > 0) obs.push(`irq (during observation): ${late.join(', ')}`);
    return obs;
  }

  /**
   * The vCPU's `IRQ raise/lower` lines since the last call. In KVM mode QEMU's are dropped: under
   * KVM the in-kernel XIVE presents to the vCPU in the kernel and QEMU's CPU interrupt input
   * (what `irq_intercept_in` hooks) is never driven (the XiveTCTX output is QEMU's emulated
   * presenter only, xive_tctx_output()), so QEMU 7.2 under KVM reports none; xivelab's must be
   * none too (they are kept and would show as a mismatch). The line's state stays compared
   * through the OS ring's NSR.
   */
  private takeIrqs(): string[] {
    const irqs = this.t.takeIrqs();
    return this.isQemu && this.kvm ? [] : irqs;
  }

  /**
   * `system_reset` is asynchronous in QEMU (the main loop resets later): mark the stub's
   * counter, reset, and wait until the restarted stub has zeroed it before using the mailbox.
   */
  private async reset(): Promise<void> {
    const t = this.t;
    await t.write(MBOX + 0xb0, 8, 0xdead_beefn);
    await t.hmp('system_reset');
    const t0 = Date.now();
    while ((await t.read(MBOX + 0xb0, 8)) !== 0n) {
      if (Date.now() - t0 > 10_000) throw new Error(`${t.name}: stub did not restart after system_reset`);
      await new Promise((r) => setTimeout(r, 1));
    }
    await t.boot();
  }
}
