/**
 * The built-in mailbox vCPU of `xivelab-qemu`: what the differential suite's guest stub (the
 * machine words in `test/diff/qemu-driver.ts`) does on QEMU's vCPU 0, done by a TypeScript loop instead of executing the
 * `-bios` image. Every access the stub would make goes through {@link SpaprCpu} (so the TIMA
 * sees vCPU 0 and its page views), and so does every mailbox read and write (the mailbox lives
 * in guest RAM at 0x8000, where qtest reads and writes it).
 *
 * Mailbox (all big-endian u64):
 * +0x00 cmd (nonzero = request; 0 when done), +0x08 kind, +0x10… in[0..9], +0x60… out[0..9],
 * +0xB0 completed-command counter. Kinds: 0 nop, 1 hcall (in[0] = R3 opcode, in[1..9] =
 * R4…R12; out = R3…R12 after `sc 1`), 2 ld, 3 std, 4 lbz, 5 stb, 6 lhz, 7 sth, 8 lwz, 9 stw
 * (in[0] address, in[1] value; loads write out[0] only), 10 the stub's timing loop.
 * Any other kind completes without effect, as the stub's compare chain falls through to `done`.
 *
 * Execution is synchronous: the owner calls {@link MailboxCpu.poll} after anything that may
 * have written `cmd` (a qtest store), and a posted command completes before that store's reply.
 */

import { Word64 } from '../hw/mmio.ts';
import type { SpaprCpu } from './spapr-cpu.ts';

/** Guest physical address of the mailbox. */
export const MBOX = 0x8000;
export const MBOX_CMD = 0x00;
export const MBOX_KIND = 0x08;
export const MBOX_IN = 0x10;
export const MBOX_OUT = 0x60;
export const MBOX_SEQ = 0xb0;

export const MBOX_KIND_NOP = 0;
export const MBOX_KIND_HCALL = 1;
export const MBOX_KIND_LD = 2;
export const MBOX_KIND_STD = 3;
export const MBOX_KIND_LBZ = 4;
export const MBOX_KIND_STB = 5;
export const MBOX_KIND_LHZ = 6;
export const MBOX_KIND_STH = 7;
export const MBOX_KIND_LWZ = 8;
export const MBOX_KIND_STW = 9;
export const MBOX_KIND_BENCH = 10;

/** Real-mode addressing ignores the top 4 EA bits (`ppc_hash64_xlate`: `eaddr & 0x0FFF…`). */
const REAL_MODE_MASK = 0x0fff_ffff_ffff_ffffn;

/** Largest iteration count a timing loop runs (the stub's CTR would run 2^64 for count 0). */
export const MBOX_BENCH_MAX = 2 ** 40;

const U64 = 0xffff_ffff_ffff_ffffn;

/** Thrown out of a command when {@link MailboxCpu.halted} says the vCPU stopped mid-access. */
class MailboxHalt extends Error {}

export class MailboxCpu {
  readonly cpu: SpaprCpu;
  /** Running (false while stopped by `-S` / HMP `stop`). */
  running: boolean;
  /** Commands completed since start (also in guest RAM at +0xB0, as the stub keeps it). */
  completed: number;
  /** Guest accesses (loads, stores, hcalls) made on behalf of mailbox commands. */
  accesses: number;
  /**
   * Asked after every access the stub makes: true when the vCPU stopped at that access (a
   * KVM_RUN failure stops the VM): the command is abandoned where it is, `cmd` stays set and
   * the mailbox is served no more until {@link start} (a reset) or {@link resume}.
   */
  halted: (() => boolean) | null;
  /** General-purpose registers the stub uses (r3..r12 survive hcalls as in `sc 1`). */
  private readonly gpr: bigint[];
  private readonly w: Word64;
  private busy: boolean;

  constructor(cpu: SpaprCpu) {
    this.cpu = cpu;
    this.running = false;
    this.completed = 0;
    this.accesses = 0;
    this.halted = null;
    this.gpr = new Array<bigint>(32).fill(0n);
    this.w = new Word64();
    this.busy = false;
  }

  /**
   * The stub's entry at 0x100 after reset: zero `cmd` and the counter, then serve. Called at
   * start-up (unless `-S`), on HMP `cont` after `-S`, and after `system_reset`.
   */
  start(): void {
    this.running = true;
    this.completed = 0;
    this.gpr.fill(0n);
    try {
      this.std(MBOX + MBOX_CMD, 0n);
      this.std(MBOX + MBOX_SEQ, 0n);
    } catch (e) {
      if (!(e instanceof MailboxHalt)) throw e;
      this.running = false;
      return;
    }
    this.poll();
  }

  /** Stop serving (HMP `stop`); a later {@link resume} continues without re-initialising. */
  stop(): void {
    this.running = false;
  }

  resume(): void {
    this.running = true;
    this.poll();
  }

  /** A reset while stopped: the next run starts the stub afresh ({@link start}). */
  reset(): void {
    this.running = false;
    this.completed = 0;
  }

  /** Serve the posted command, if any. Returns true when one ran. */
  poll(): boolean {
    if (!this.running || this.busy) return false;
    // A command can only be posted by a store from outside; the loop re-reads cmd after each.
    let ran = false;
    this.busy = true;
    try {
      while (this.running && this.ld(MBOX + MBOX_CMD) !== 0n) {
        this.execute();
        ran = true;
      }
    } catch (e) {
      if (!(e instanceof MailboxHalt)) throw e;
      this.running = false;
    } finally {
      this.busy = false;
    }
    return ran;
  }

  /** One pass through the stub loop body after `cmd != 0` was seen. */
  private execute(): void {
    const g = this.gpr;
    g[21] = this.ld(MBOX + MBOX_KIND);
    g[22] = this.ld(MBOX + MBOX_IN);
    g[23] = this.ld(MBOX + MBOX_IN + 8);
    const kind = g[21]!;
    if (kind === 1n) {
      this.hcall();
    } else if (kind >= 2n && kind <= 9n) {
      const k = Number(kind);
      const size = k <= 3 ? 8 : k <= 5 ? 1 : k <= 7 ? 2 : 4;
      if (k % 2 === 0) {
        g[24] = this.load(g[22]!, size);
        this.std(MBOX + MBOX_OUT, g[24]!);
      } else {
        this.store(g[22]!, size, g[23]!);
      }
    } else if (kind === 10n) {
      this.bench();
    }
    // done: sync; counter++; cmd = 0.
    const seq = (this.ld(MBOX + MBOX_SEQ) + 1n) & U64;
    this.std(MBOX + MBOX_SEQ, seq);
    this.std(MBOX + MBOX_CMD, 0n);
    this.completed++;
  }

  /** `ld r3..r12` from in[0..9], `sc 1`, `std r3..r12` to out[0..9]. */
  private hcall(): void {
    const g = this.gpr;
    for (let i = 0; i < 10; i++) g[3 + i] = this.ld(MBOX + MBOX_IN + 8 * i);
    const opcode = g[3]!;
    const args = g.slice(4, 13);
    const out: bigint[] = [];
    // QEMU passes &gpr[4] as args: an hcall overwrites only the registers it writes.
    const rc = this.cpu.hcall(opcode <= 0xffff_ffffn ? Number(opcode) : -1, args, out);
    this.accesses++;
    this.check();
    for (let i = 0; i < 9; i++) {
      const v = out[i];
      if (v !== undefined) g[4 + i] = BigInt.asUintN(64, v);
    }
    g[3] = BigInt.asUintN(64, BigInt(rc));
    for (let i = 0; i < 10; i++) this.std(MBOX + MBOX_OUT + 8 * i, g[3 + i]!);
  }

  /**
   * Kind 10: in[0] = count (CTR), in[1] = A, in[2] = ACK address, in[3] = EOI address,
   * in[4] = CPPR address, in[5] = mode. Mode 0: `count` × `ld A`. Otherwise `count` ×
   * (`std 0xff → A`; `lhz ACK`; `ld EOI`; `stb 0xff → CPPR`). out[0] = the last loaded value.
   */
  private bench(): void {
    const g = this.gpr;
    g[25] = this.ld(MBOX + MBOX_IN + 0x10);
    g[26] = this.ld(MBOX + MBOX_IN + 0x18);
    g[27] = this.ld(MBOX + MBOX_IN + 0x20);
    g[28] = this.ld(MBOX + MBOX_IN + 0x28);
    // mtctr r22; bdnz: count 0 would loop 2^64 times in the stub.
    const n =
      g[22] === 0n ? MBOX_BENCH_MAX : Number(g[22]! > BigInt(MBOX_BENCH_MAX) ? MBOX_BENCH_MAX : g[22]!);
    const mode = g[28]!;
    if (mode !== 0n) g[29] = 0xffn;
    // The loop's addresses as numbers, once: every access of the loop is then a plain vCPU
    // access (the same accesses, counted and halt-checked one by one). Addresses the number
    // path cannot take (misaligned, or past 2^53) run through the general load/store.
    const a = this.realAddr(g[23]!, 8);
    const ack = this.realAddr(g[25]!, 2);
    const eoi = this.realAddr(g[26]!, 8);
    const cppr = this.realAddr(g[27]!, 1);
    if (mode === 0n && a >= 0) {
      this.getLoop(n, a);
    } else if (mode === 0n) {
      for (let i = 0; i < n; i++) g[24] = this.load(g[23]!, 8);
    } else if (a >= 0 && ack >= 0 && eoi >= 0 && cppr >= 0) {
      this.cycleLoop(n, a, ack, eoi, cppr);
    } else {
      for (let i = 0; i < n; i++) {
        this.store(g[23]!, 8, 0xffn);
        g[24] = this.load(g[25]!, 2);
        g[24] = this.load(g[26]!, 8);
        this.store(g[27]!, 1, 0xffn);
      }
    }
    this.std(MBOX + MBOX_OUT, g[24]!);
  }

  /**
   * Mode 0 at an address the number path takes: `n` × `ld a` straight to the vCPU, each access
   * counted and halt-checked; r24 holds the last value loaded, also when the vCPU stopped
   * mid-loop.
   */
  private getLoop(n: number, a: number): void {
    const cpu = this.cpu;
    const w = this.w;
    const halted = this.halted;
    let done = 0;
    try {
      while (done < n) {
        cpu.load(a, 8, w);
        done++;
        if (halted?.()) throw new MailboxHalt('vCPU stopped');
      }
    } finally {
      this.accesses += done;
      if (done > 0) this.gpr[24] = this.wordValue();
    }
  }

  /**
   * Mode 1 at addresses the number path takes: `n` × (`std 0xff → a`; `lhz ack`; `ld eoi`;
   * `stb 0xff → cppr`), as {@link getLoop}.
   */
  private cycleLoop(n: number, a: number, ack: number, eoi: number, cppr: number): void {
    const cpu = this.cpu;
    const w = this.w;
    const halted = this.halted;
    let done = 0;
    try {
      for (let i = 0; i < n; i++) {
        cpu.store(a, 8, 0, 0xff);
        done++;
        if (halted?.()) throw new MailboxHalt('vCPU stopped');
        cpu.load(ack, 2, w);
        done++;
        if (halted?.()) throw new MailboxHalt('vCPU stopped');
        cpu.load(eoi, 8, w);
        done++;
        if (halted?.()) throw new MailboxHalt('vCPU stopped');
        cpu.store(cppr, 1, 0, 0xff);
        done++;
        if (halted?.()) throw new MailboxHalt('vCPU stopped');
      }
    } finally {
      this.accesses += done;
      // The first load is the loop's second access.
      if (done > 1) this.gpr[24] = this.wordValue();
    }
  }

  /** The last loaded value ({@link w}) as a register value. */
  private wordValue(): bigint {
    return (BigInt(this.w.hi) << 32n) | BigInt(this.w.lo);
  }

  /**
   * The real address of `ea` as a number when an access of `size` there is aligned and below
   * 2^53 (the number path of {@link loadAligned} / {@link storeAligned}), else −1.
   */
  private realAddr(ea: bigint, size: 1 | 2 | 4 | 8): number {
    const ra = ea & REAL_MODE_MASK;
    if (ra % BigInt(size) !== 0n || ra > BigInt(Number.MAX_SAFE_INTEGER)) return -1;
    return Number(ra);
  }

  /**
   * A vCPU load at a real-mode effective address, zero-extended. A misaligned access is done
   * as TCG's softmmu does it for MMIO: two aligned loads of the same size, shifted together
   * (for RAM that reads the same bytes).
   *
   * @remarks Models accel/tcg/cputlb.c:load_helper() → load_helper_unaligned (QEMU 7.2).
   */
  private load(ea: bigint, size: 1 | 2 | 4 | 8): bigint {
    const ra = ea & REAL_MODE_MASK;
    const sz = BigInt(size);
    if (ra % sz !== 0n) {
      const a1 = ra - (ra % sz);
      const r1 = this.loadAligned(a1, size);
      const r2 = this.loadAligned(a1 + sz, size);
      const shift = (ra - a1) * 8n;
      return BigInt.asUintN(size * 8, (r1 << shift) | (r2 >> (sz * 8n - shift)));
    }
    return this.loadAligned(ra, size);
  }

  private loadAligned(ra: bigint, size: 1 | 2 | 4 | 8): bigint {
    this.accesses++;
    // Nothing is mapped above 2^53 (the model's addresses are numbers): unassigned reads 0.
    if (ra > BigInt(Number.MAX_SAFE_INTEGER)) return 0n;
    this.cpu.load(Number(ra), size, this.w);
    this.check();
    return this.wordValue();
  }

  /**
   * A vCPU store of the low `size` bytes of `v`. A misaligned access is done byte by byte,
   * most significant byte first (big-endian), as TCG's softmmu does for MMIO.
   *
   * @remarks Models accel/tcg/cputlb.c:store_helper() → store_helper_unaligned (QEMU 7.2).
   */
  private store(ea: bigint, size: 1 | 2 | 4 | 8, v: bigint): void {
    const ra = ea & REAL_MODE_MASK;
    const x = BigInt.asUintN(size * 8, v);
    if (ra % BigInt(size) !== 0n) {
      for (let i = 0; i < size; i++)
        this.storeAligned(ra + BigInt(i), 1, (x >> BigInt(8 * (size - 1 - i))) & 0xffn);
      return;
    }
    this.storeAligned(ra, size, x);
  }

  private storeAligned(ra: bigint, size: 1 | 2 | 4 | 8, x: bigint): void {
    this.accesses++;
    if (ra > BigInt(Number.MAX_SAFE_INTEGER)) return;
    this.cpu.store(Number(ra), size, Number(x >> 32n), Number(x & 0xffff_ffffn));
    this.check();
  }

  private check(): void {
    if (this.halted?.()) throw new MailboxHalt('vCPU stopped');
  }

  /** Mailbox RAM word through the vCPU. */
  private ld(addr: number): bigint {
    this.cpu.load(addr, 8, this.w);
    this.check();
    return this.wordValue();
  }

  private std(addr: number, v: bigint): void {
    this.cpu.store(addr, 8, Number(v >> 32n), Number(v & 0xffff_ffffn));
    this.check();
  }
}
