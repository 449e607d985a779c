/**
 * QEMU's qtest protocol over the xivelab sPAPR machine: one command per line in, one reply per
 * command out (`OK`, `OK 0x%016x`, `FAIL …`), with the asynchronous `IRQ raise N` /
 * `IRQ lower N` lines of an intercepted vCPU written where QEMU writes them — synchronously,
 * during the access that moved the line, so before that access's `OK`.
 *
 * {@link QemuSystem} is what a `qemu-system-ppc64` process holds for these purposes: the
 * machine, the mailbox vCPU standing in for the `-bios` stub, the firmware image (reloaded at
 * every reset, as QEMU's ROM reset does) and the exit request.
 *
 * Deviations from QEMU 7.2, each where QEMU ends the process; here the command gets one `FAIL …`
 * line and the session goes on:
 * - a malformed argument (a bad number, a missing word, `read` of 0 bytes): QEMU's `g_assert`
 *   aborts (SIGABRT);
 * - a `read` / `write` / `memset` longer than {@link QTEST_MAX_LEN}: QEMU's `g_malloc` of the
 *   length aborts when it cannot allocate it (`write 0 -1 0x00`);
 * - `irq_intercept_in|out` of an object that is not a device (the machine, a container, a bus, a
 *   memory region, a GPIO line): QEMU casts it with `DEVICE()` unchecked (Debian builds without
 *   QOM cast debugging) and walks garbage as its GPIO list — SIGSEGV for `/machine`,
 *   `/machine/unattached`, `/machine/peripheral-anon`, `…/xive.tima[0]`, an accidental `OK`
 *   for others.
 *
 * @remarks Models softmmu/qtest.c:qtest_process_command(), qtest_irq_handler() and
 * qtest_process_inbuf() of QEMU 7.2 for the commands listed in {@link QtestServer.command}.
 */

import type { Host } from '../host/host.ts';
import { TM_QW1_OS } from '../hw/xive/regs.ts';
import type { TraceSink } from '../sim/trace-sink.ts';
import type { SpaprKvmCpu } from './kvm-accel.ts';
import { LineSplitter } from './line-splitter.ts';
import { MailboxCpu } from './mailbox-cpu.ts';
import { SpaprMachine, type SpaprMachineConfig } from './spapr-machine.ts';
import { type QomObject, resolveQomPath, spaprQomTree } from './spapr-qom.ts';

/** How big a `-bios` image QEMU's pseries accepts (`FW_MAX_SIZE`, 4 MiB). */
export const FW_MAX_SIZE = 0x40_0000;

/** GPIO input numbers of a POWER9 vCPU (`POWER9_INPUT_INT`, `POWER9_INPUT_HINT`). */
export const POWER9_INPUT_INT = 0;
export const POWER9_INPUT_HINT = 1;

/** Largest `read` / `write` / `memset` length served (the replies are hex in one line). */
export const QTEST_MAX_LEN = 0x100_0000;

/** 2^64: a qtest address and length are u64s. */
const U64_SPACE = 1n << 64n;
/** The highest address the model can map (a number): above it qtest accesses find nothing. */
const MAX_MAPPED = BigInt(Number.MAX_SAFE_INTEGER);

export interface QemuSystemConfig {
  readonly smp: number;
  readonly ramSize: number;
  /** The `-bios` image: copied to guest physical 0 at every reset, never executed. */
  readonly bios: Uint8Array | null;
  /** `-S`: the mailbox vCPU waits for HMP `cont`. */
  readonly startStopped: boolean;
  readonly trace?: TraceSink;
  /**
   * `tcg` (default): the XIVE emulated in the VMM. `kvm` (`-accel kvm`, kernel-irqchip on):
   * KVM vCPUs and the in-kernel XIVE device of {@link host}.
   */
  readonly accel?: 'tcg' | 'kvm';
  /** KVM (required with `accel: 'kvm'`): the host the VMM process runs on. */
  readonly host?: Host;
}

/** QEMU's run states as `query-status` and HMP `info status` name them. */
export type RunState = 'running' | 'paused' | 'prelaunch' | 'internal-error';

/**
 * A QMP event of the VM life cycle (`STOP`, `RESUME`, `RESET`, `SHUTDOWN`); `data` as QEMU
 * sends it (`RESET` / `SHUTDOWN`: `{"guest": false, "reason": …}`).
 */
export interface QemuEvent {
  readonly event: 'STOP' | 'RESUME' | 'RESET' | 'SHUTDOWN';
  readonly data: { readonly guest: boolean; readonly reason: string } | null;
}

/** `strerror()` of the errnos a KVM_RUN failure reports. */
const STRERROR: Record<number, string> = {
  5: 'Input/output error',
  14: 'Bad address',
  16: 'Device or resource busy',
  22: 'Invalid argument',
};

/**
 * The machine as a QEMU process holds it (qtest and HMP act on this).
 *
 * KVM mode (`accel: 'kvm'`): the machine runs on a host of its own, guest RAM is the VMM
 * process's anonymous memory, vCPU 0 (the mailbox) executes through its KVM_RUN context —
 * the partition-scoped path, so ESB and TIMA accesses reach the pages the KVM device's fault
 * handlers insert — and qtest accesses are QEMU's own, through the address space, where the
 * RAM-device overlays read and write the VMM's mmaps of the device. HMP `stop` / `cont` run the
 * XIVE VM change-state handler. A KVM_RUN failure (a guest access whose host fault is SIGBUS:
 * the HW/HV/USER TIMA pages, the ESB pages of a source KVM does not know) prints QEMU's
 * `error: kvm run failed …` line and stops the VM with `internal-error`; the stub stays at the
 * faulting access (its command never completes) until `system_reset` and `cont`.
 *
 * @remarks Models accel/kvm/kvm-all.c:kvm_cpu_exec() (the run failure path: `vm_stop(
 * RUN_STATE_INTERNAL_ERROR)`) and softmmu/cpus.c / runstate.c for stop, cont and reset.
 */
export class QemuSystem {
  readonly machine: SpaprMachine;
  readonly mailbox: MailboxCpu;
  readonly bios: Uint8Array | null;
  /** The accelerator. */
  readonly accel: 'tcg' | 'kvm';
  /** KVM: the host the machine runs on; null under TCG. */
  readonly host: Host | null;
  /** Set when the process must end (HMP `quit`, a fatal machine error); the front end exits. */
  exitCode: number | null;
  /** Called once when {@link exitCode} is set; `message` is the fatal error line, if any. */
  onExit: ((code: number, message: string | null) => void) | null;
  /** Receives the lines QEMU prints on stderr while running (`error: kvm run failed …`). */
  onError: ((line: string) => void) | null;
  /** Whether the vCPUs run (false after `-S` / HMP `stop` / a KVM_RUN failure). */
  private vmRunning: boolean;
  /** The signal that killed the process (QEMU's own access took it): nothing more is written. */
  killedBy: number | null;
  /** `RUN_STATE_INTERNAL_ERROR`: stopped by a KVM_RUN failure, `cont` needs a reset first. */
  internalError: boolean;
  /** True while {@link systemReset} runs (line changes are not GPIO events then). */
  resetting: boolean;
  /** KVM_RUN failures of vCPU 0 already handled. */
  private runFailuresSeen: number;
  /** `RUN_STATE_PRELAUNCH`: started with `-S` (or reset from internal-error), not yet continued. */
  private prelaunch: boolean;
  /** Receive every {@link QemuEvent} (the QMP monitors). */
  readonly eventListeners: Set<(e: QemuEvent) => void>;

  constructor(cfg: QemuSystemConfig) {
    if (cfg.bios !== null && cfg.bios.length > FW_MAX_SIZE) {
      throw new RangeError(`could not load PowerPC bios (${cfg.bios.length} bytes, at most ${FW_MAX_SIZE})`);
    }
    this.accel = cfg.accel ?? 'tcg';
    if (this.accel === 'kvm' && cfg.host === undefined)
      throw new TypeError("QemuSystem: accel 'kvm' needs a host");
    this.host = this.accel === 'kvm' ? cfg.host! : null;
    const mcfg: SpaprMachineConfig = {
      smp: cfg.smp,
      ramSize: cfg.ramSize,
      devices: [],
      ...(cfg.trace ? { trace: cfg.trace } : {}),
      ...(this.host !== null
        ? { accel: { kind: 'kvm', host: this.host }, startStopped: cfg.startStopped }
        : {}),
    };
    this.machine = new SpaprMachine(mcfg);
    const cpu0 = this.machine.cpus[0];
    if (cpu0 === undefined) throw new Error('machine has no vCPU 0');
    this.mailbox = new MailboxCpu(cpu0);
    this.bios = cfg.bios;
    this.exitCode = null;
    this.onExit = null;
    this.onError = null;
    this.vmRunning = !cfg.startStopped;
    this.internalError = false;
    this.killedBy = null;
    this.resetting = false;
    this.runFailuresSeen = 0;
    this.prelaunch = cfg.startStopped;
    this.eventListeners = new Set();
    this.machine.onFatalError = (msg) => this.exit(1, msg);
    if (this.host !== null) this.mailbox.halted = () => this.checkRunFailure();
    // QEMU's own access (qtest) to a page of the device mapping the kernel refuses (SIGBUS: the
    // HW/HV/USER TIMA pages, the ESB pages of a source KVM does not know): QEMU has no handler
    // for that SIGBUS (kvm_on_sigbus() is for memory errors) and is killed by it.
    const xk = this.machine.xiveKvm;
    if (xk !== null) {
      xk.onVmmSignal = (sig, addr) => {
        this.killedBy ??= sig;
        this.exit(
          128 + sig,
          `Bus error: QEMU's own access to the KVM XIVE device mapping at 0x${addr.toString(16)} took signal ${sig} (QEMU is killed by it)`,
        );
      };
    }
    this.loadBios();
    if (this.vmRunning) this.mailbox.start();
  }

  get running(): boolean {
    return this.vmRunning;
  }

  /** The run state (`runstate_get()`). */
  get runState(): RunState {
    if (this.vmRunning) return 'running';
    if (this.internalError) return 'internal-error';
    return this.prelaunch ? 'prelaunch' : 'paused';
  }

  private emit(e: QemuEvent): void {
    for (const l of this.eventListeners) l(e);
  }

  /**
   * qtest `read`: under KVM guest RAM is the VMM's own anonymous memory, which QEMU copies
   * directly (`address_space_read` → memcpy from the RAM block's host pointer): one
   * copy_from_user-like copy through the process's page tables. Anything else (and TCG) goes
   * through the machine.
   */
  readMemory(addr: number, dst: Uint8Array): void {
    const kvm = this.machine.kvm;
    const m = this.machine;
    if (kvm !== null && addr >= 0 && addr + dst.length <= m.ramSize && m.sysmem.isRam(addr, dst.length)) {
      dst.set(kvm.proc.getBytes(m.ram.ramOffset + addr, dst.length));
      return;
    }
    m.readMemory(addr, dst);
  }

  /** qtest `write` / `memset` (see {@link readMemory}). */
  writeMemory(addr: number, src: Uint8Array): void {
    const kvm = this.machine.kvm;
    const m = this.machine;
    if (kvm !== null && addr >= 0 && addr + src.length <= m.ramSize && m.sysmem.isRam(addr, src.length)) {
      kvm.proc.putBytes(m.ram.ramOffset + addr, src);
      return;
    }
    m.writeMemory(addr, src);
  }

  /** `irqchip: in-kernel` / `emulated` (`kvm_irqchip_in_kernel()`). */
  get irqchipInKernel(): boolean {
    return this.machine.xiveKvm?.inKernel ?? false;
  }

  /**
   * After each access of the mailbox vCPU: did KVM_RUN fail? Then report it as QEMU does and
   * stop the VM (`internal-error`); the stub does not get past the access.
   */
  private checkRunFailure(): boolean {
    const cpu = this.machine.cpus[0] as SpaprKvmCpu;
    if (cpu.runFailures.length === this.runFailuresSeen) return false;
    const f = cpu.runFailures[cpu.runFailures.length - 1]!;
    this.runFailuresSeen = cpu.runFailures.length;
    const msg = STRERROR[-f.errno] ?? STRERROR[f.errno] ?? `errno ${Math.abs(f.errno)}`;
    this.onError?.(`error: kvm run failed ${msg}`);
    this.internalError = true;
    this.stop();
    return true;
  }

  /** QEMU's ROM reset: the firmware image is copied back into guest RAM at 0. */
  private loadBios(): void {
    if (this.bios !== null) this.writeMemory(0, this.bios);
  }

  /**
   * HMP `system_reset`: machine reset, firmware reloaded, and the stub restarts at 0x100
   * (zeroing the mailbox command and counter) if the vCPUs run.
   *
   * @remarks Models softmmu/runstate.c:qemu_system_reset() → spapr_machine_reset(), and
   * main_loop_should_exit() setting RUN_STATE_PRELAUNCH after a reset of a stopped VM.
   */
  systemReset(reason = 'host-qmp-system-reset'): void {
    this.emit({ event: 'RESET', data: { guest: false, reason } });
    this.resetting = true;
    try {
      this.machine.reset();
    } finally {
      this.resetting = false;
    }
    this.loadBios();
    // A reset of a VM that does not run leaves it in prelaunch (also from internal-error): the
    // stub restarts at `cont`.
    if (!this.vmRunning) this.prelaunch = true;
    this.internalError = false;
    if (this.vmRunning) this.mailbox.start();
    else this.mailbox.reset();
  }

  /**
   * HMP `cont`: start the vCPUs (the stub's first run initialises the mailbox). Returns QEMU's
   * error line, or null.
   */
  cont(): string | null {
    if (this.internalError) return 'Resetting the Virtual Machine is required';
    if (this.vmRunning) return null;
    this.vmRunning = true;
    this.prelaunch = false;
    this.emit({ event: 'RESUME', data: null });
    this.machine.vmStart();
    if (this.mailbox.completed === 0 && !this.mailbox.running) this.mailbox.start();
    else this.mailbox.resume();
    return null;
  }

  /** HMP `stop`. */
  stop(): void {
    if (!this.vmRunning) return;
    this.vmRunning = false;
    this.emit({ event: 'STOP', data: null });
    this.mailbox.stop();
    this.machine.vmStop();
  }

  /**
   * HMP `quit` / QMP `quit` (`qmp_quit()`): the `SHUTDOWN` event, then exit 0; `reason` is
   * `host-signal` when a signal ends the process.
   */
  quit(reason = 'host-qmp-quit'): void {
    if (this.exitCode !== null) return;
    this.emit({ event: 'SHUTDOWN', data: { guest: false, reason } });
    this.exit(0);
  }

  /** Request process exit. */
  exit(code: number, message: string | null = null): void {
    if (this.exitCode !== null) return;
    this.exitCode = code;
    this.onExit?.(code, message);
  }
}

/**
 * Parse an unsigned 64-bit number as `qemu_strtou64(s, NULL, 0, &v)`: leading blanks, an
 * optional sign (a negative number wraps modulo 2^64), `0x` hex, `0` octal or decimal; the
 * whole string must be consumed. Returns null when QEMU's call would fail.
 *
 * @remarks Models util/cutils.c:qemu_strtou64() (strtoull with base 0).
 */
export function parseQemuU64(s: string): bigint | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return null;
  const body = m[2]!;
  let v: bigint;
  if (body.length > 1 && (body[1] === 'x' || body[1] === 'X')) v = BigInt(body);
  else if (body.length > 1 && body[0] === '0') v = BigInt(`0o${body.slice(1)}`);
  else v = BigInt(body);
  if (v > 0xffff_ffff_ffff_ffffn) return null; // ERANGE
  return m[1] === '-' ? BigInt.asUintN(64, -v) : v;
}

const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');

/** ASCII codes of the lower-case hex digits. */
const HEX_DIGITS = new TextEncoder().encode('0123456789abcdef');
const latin1 = new TextDecoder('latin1');

/**
 * `bytes` as lower-case hex, two digits a byte: through an array of character codes (a `read` of
 * 16 MiB built as a string piece by piece took seconds), filled 4 KiB at a time by a small
 * function V8 optimises after a few calls, where one long loop would wait for on-stack
 * replacement (off while xivelab-qemu starts up).
 *
 * @remarks The reply of softmmu/qtest.c's `read`: `%02x` a byte.
 */
function hexBytes(bytes: Uint8Array): string {
  const codes = new Uint8Array(bytes.length * 2);
  for (let at = 0; at < bytes.length; at += 4096)
    hexInto(bytes, codes, at, Math.min(bytes.length, at + 4096));
  return latin1.decode(codes);
}

/** {@link hexBytes} of `bytes[from, to)`. */
function hexInto(bytes: Uint8Array, codes: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    codes[2 * i] = HEX_DIGITS[bytes[i]! >> 4]!;
    codes[2 * i + 1] = HEX_DIGITS[bytes[i]! & 15]!;
  }
}

/**
 * A hex digit's value, -1 for any other character.
 *
 * @remarks Models softmmu/qtest.c:hex2nib().
 */
function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
const SIZE_OF: Record<string, 1 | 2 | 4 | 8> = { b: 1, w: 2, l: 4, q: 8 };

/** An argument error: becomes one `FAIL …` reply. */
class QtestArgError extends Error {}

/**
 * The qtest server: feed it input, it writes replies through `out`.
 *
 * Served: `readb|readw|readl|readq ADDR`, `writeb|writew|writel|writeq ADDR VALUE`,
 * `read ADDR SIZE`, `write ADDR SIZE 0xDATA`, `memset ADDR SIZE PATTERN`,
 * `irq_intercept_in PATH`, `irq_intercept_out PATH`, `endianness`; anything else gets
 * `FAIL Unknown command '…'`.
 */
export class QtestServer {
  readonly sys: QemuSystem;
  /** Commands processed. */
  commands: number;
  private readonly out: (s: string) => void;
  private readonly log: ((line: string) => void) | null;
  private readonly now: () => number;
  private readonly lines: LineSplitter;
  /** QEMU's `irq_intercept_dev`: the device whose GPIOs were intercepted, or null. */
  private interceptDev: QomObject | null;
  /** The machine's QOM graph, built at the first `irq_intercept_*`. */
  private qomRoot: QomObject | null;
  /** QEMU's `irq_levels[]`: the last level reported per GPIO number. */
  private readonly irqLevels: Uint8Array;

  /**
   * @param out receives every byte QEMU would write to the qtest chardev.
   * @param log receives `-qtest-log` lines (`[R +t] …` / `[S +t] …`, each ending in `\n`).
   * @param now seconds since start, for the log (the core has no clock of its own).
   */
  constructor(
    sys: QemuSystem,
    out: (s: string) => void,
    log: ((line: string) => void) | null = null,
    now: () => number = () => 0,
  ) {
    this.sys = sys;
    this.out = out;
    this.log = log;
    this.now = now;
    this.commands = 0;
    this.lines = new LineSplitter(/\n/g);
    this.interceptDev = null;
    this.qomRoot = null;
    this.irqLevels = new Uint8Array(32);
  }

  /** Feed raw input; every complete line is processed in order. */
  feed(chunk: string): void {
    this.lines.push(chunk, (line) => {
      this.command(line);
      return this.sys.exitCode === null;
    });
  }

  private stamp(): string {
    const t = this.now();
    const sec = Math.floor(t);
    return `${sec}.${String(Math.floor((t - sec) * 1e6)).padStart(6, '0')}`;
  }

  private send(s: string): void {
    if (this.sys.killedBy !== null) return; // the process died during the command
    if (this.log) this.log(`[S +${this.stamp()}] ${s}`);
    this.out(s);
  }

  /** Process one command line (without its newline). */
  command(line: string): void {
    this.commands++;
    const words = line.split(' ');
    if (this.log) this.log(`[R +${this.stamp()}] ${words.join(' ')}\n`);
    const cmd = words[0] ?? '';
    try {
      this.dispatch(cmd, words);
    } catch (e) {
      if (!(e instanceof QtestArgError)) throw e;
      this.send(`FAIL ${e.message}\n`);
    }
  }

  /**
   * `address_space_read` of `dst.length` bytes at the u64 `addr`. The address arithmetic is
   * QEMU's hwaddr: past 2^64 − 1 it wraps to 0 (`readl -1` reads a byte of nothing, then RAM
   * bytes 0…2). Above 2^53 nothing is mapped (the model's addresses are numbers): those bytes
   * read 0, as unassigned memory does.
   *
   * @remarks Models the `read*` commands of softmmu/qtest.c:qtest_process_command() (each
   * `address_space_read()`, then tswap for `readb`…`readq`) and the wrap of
   * physmem.c:flatview_read_continue()'s `addr += l`.
   */
  private readAt(addr: bigint, dst: Uint8Array): void {
    const toWrap = U64_SPACE - addr;
    if (toWrap < BigInt(dst.length)) this.sys.readMemory(0, dst.subarray(Number(toWrap)));
    else if (addr + BigInt(dst.length) <= MAX_MAPPED) this.sys.readMemory(Number(addr), dst);
  }

  /** `address_space_write` of `src` at the u64 `addr`, wrapping as {@link readAt}. */
  private writeAt(addr: bigint, src: Uint8Array): void {
    const toWrap = U64_SPACE - addr;
    if (toWrap < BigInt(src.length)) this.sys.writeMemory(0, src.subarray(Number(toWrap)));
    else if (addr + BigInt(src.length) <= MAX_MAPPED) this.sys.writeMemory(Number(addr), src);
  }

  private dispatch(cmd: string, words: readonly string[]): void {
    const m = this.sys.machine;
    switch (cmd) {
      case 'readb':
      case 'readw':
      case 'readl':
      case 'readq': {
        // address_space_read of `size` bytes, then tswap: the bytes big-endian.
        const buf = new Uint8Array(SIZE_OF[cmd[4]!]!);
        this.readAt(this.num(words, 1, 'address'), buf);
        let v = 0n;
        for (const b of buf) v = (v << 8n) | BigInt(b);
        this.send(`OK 0x${hex16(v)}\n`);
        return;
      }
      case 'writeb':
      case 'writew':
      case 'writel':
      case 'writeq': {
        // tswap, then address_space_write of `size` bytes.
        const size = SIZE_OF[cmd[5]!]!;
        const addr = this.num(words, 1, 'address');
        let v = BigInt.asUintN(size * 8, this.num(words, 2, 'value'));
        const buf = new Uint8Array(size);
        for (let k = size - 1; k >= 0; k--, v >>= 8n) buf[k] = Number(v & 0xffn);
        this.writeAt(addr, buf);
        this.sys.mailbox.poll();
        this.send('OK\n');
        return;
      }
      case 'read': {
        const addr = this.num(words, 1, 'address');
        const len = this.len(words, 2);
        const buf = new Uint8Array(len);
        this.readAt(addr, buf);
        this.send(`OK 0x${hexBytes(buf)}\n`);
        return;
      }
      case 'write': {
        // QEMU asserts the three words, parses address and size, then checks the data's length.
        if (words[3] === undefined) throw new QtestArgError('write: missing address, size or data');
        const addr = this.num(words, 1, 'address');
        const size = this.num(words, 2, 'size');
        const data = words[3];
        if (data.length < 3) {
          this.send('ERR invalid argument size\n');
          return;
        }
        if (size > BigInt(QTEST_MAX_LEN))
          throw new QtestArgError(`write: size ${size} above ${QTEST_MAX_LEN}`);
        const len = Number(size);
        const buf = new Uint8Array(len);
        // QEMU skips the first two characters ("0x") and zero-fills what the data lacks; a
        // character that is not a hex digit is nibble -1, so the byte becomes 0xf? or 0xff.
        for (let i = 0; i < len && i * 2 + 4 <= data.length; i++) {
          buf[i] =
            ((hexNibble(data.charCodeAt(i * 2 + 2)) << 4) | hexNibble(data.charCodeAt(i * 2 + 3))) & 0xff;
        }
        if (len > 0) this.writeAt(addr, buf);
        this.sys.mailbox.poll();
        this.send('OK\n');
        return;
      }
      case 'memset': {
        const addr = this.num(words, 1, 'address');
        const len = this.len(words, 2, true);
        const pattern = Number(this.num(words, 3, 'pattern') & 0xffn);
        if (len > 0) this.writeAt(addr, new Uint8Array(len).fill(pattern));
        this.sys.mailbox.poll();
        this.send('OK\n');
        return;
      }
      case 'irq_intercept_in':
      case 'irq_intercept_out': {
        const path = words[1];
        if (path === undefined) throw new QtestArgError(`${cmd}: missing device path`);
        this.qomRoot ??= spaprQomTree(m.cpus.length);
        const dev = resolveQomPath(this.qomRoot, path);
        if (dev === null) {
          this.send('FAIL Unknown device\n');
          return;
        }
        if (this.interceptDev !== null) {
          this.send(this.interceptDev === dev ? 'OK\n' : 'FAIL IRQ intercept already enabled\n');
          return;
        }
        if (!dev.device) throw new QtestArgError(`${cmd}: ${path} is not a device (${dev.type})`);
        this.interceptDev = dev;
        // Only a vCPU thread has unnamed GPIOs (two inputs, no outputs): any other device, or
        // the vCPU's outputs, is claimed with nothing hooked — its lines are never reported.
        if (cmd === 'irq_intercept_in' && dev.cpu >= 0) this.hookCpu(dev.cpu);
        this.send('OK\n');
        return;
      }
      case 'endianness':
        this.send('OK big\n');
        return;
      default:
        this.send(`FAIL Unknown command '${cmd}'\n`);
    }
  }

  /** Intercept the vCPU's inputs: INT (0) from the OS ring, HINT (1) from the PHYS ring. */
  private hookCpu(cpu: number): void {
    const c = this.sys.machine.cpus[cpu]!;
    const prevExt = c.onExternalInterrupt;
    c.onExternalInterrupt = (level) => {
      prevExt?.(level);
      this.irq(POWER9_INPUT_INT, level);
    };
    const tctx = c.tctx;
    const prevHv = tctx.onHvLine;
    tctx.onHvLine = (level) => {
      prevHv(level);
      this.irq(POWER9_INPUT_HINT, level);
    };
    // QEMU's handler sees every qemu_irq_lower() call, not only level changes: after a reset
    // left `irq_levels[]` high (see irq()), the next ACK or context pull reports `IRQ lower`
    // although the line is already low. The thread context reports changes only, so the two
    // calls that lower unconditionally are wrapped on this instance.
    const accept = tctx.accept.bind(tctx);
    tctx.accept = (ring: number): number => {
      const r = accept(ring);
      this.irq(ring === TM_QW1_OS ? POWER9_INPUT_INT : POWER9_INPUT_HINT, false);
      return r;
    };
    const lowerOs = tctx.lowerOsLine.bind(tctx);
    tctx.lowerOsLine = (): void => {
      lowerOs();
      this.irq(POWER9_INPUT_INT, false);
    };
  }

  /**
   * @remarks Models softmmu/qtest.c:qtest_irq_handler(). A system reset clears the vCPU's
   * pending interrupt inside the CPU reset (`env->pending_interrupts = 0`) and resets the
   * thread context without driving its output line, so QEMU reports no `IRQ lower` then and
   * keeps `irq_levels[]` — a later raise of a line reported high is not reported again.
   */
  private irq(n: number, level: boolean): void {
    if (this.sys.resetting) return;
    const l = level ? 1 : 0;
    if (this.irqLevels[n] === l) return;
    this.irqLevels[n] = l;
    this.send(`IRQ ${level ? 'raise' : 'lower'} ${n}\n`);
  }

  private num(words: readonly string[], i: number, what: string): bigint {
    const s = words[i];
    if (s === undefined) throw new QtestArgError(`${words[0]}: missing ${what}`);
    const v = parseQemuU64(s);
    if (v === null) throw new QtestArgError(`${words[0]}: invalid ${what} '${s}'`);
    return v;
  }

  private len(words: readonly string[], i: number, zeroOk = false): number {
    const v = this.num(words, i, 'size');
    if (v === 0n && !zeroOk) throw new QtestArgError(`${words[0]}: size 0`);
    if (v > BigInt(QTEST_MAX_LEN)) throw new QtestArgError(`${words[0]}: size ${v} above ${QTEST_MAX_LEN}`);
    return Number(v);
  }
}
