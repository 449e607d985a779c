/**
 * qtest line fuzzing: random and hostile lines for xivelab's qtest server (in this process) and
 * for QEMU 7.2 (`qemu-system-ppc64`, when installed), compared reply by reply — the IRQ lines a
 * command produced included. Both start from the same state: the oracle stub as `-bios`, vCPU
 * stopped (`-S`), 1 GiB of RAM.
 *
 * The documented deviations are the only differences allowed:
 * - a line on which QEMU aborts (a `g_assert` on a malformed number, a missing word, an empty
 *   line, `read` of 0 bytes) gets a `FAIL …` reply from xivelab, and the session goes on
 *   (`src/vmm/qtest.ts`); the fuzzer then restarts both sides;
 * - a qtest access to the TIMA crashes QEMU 7.2 (`excludedOp` in `test/diff/normalise.ts`): such
 *   lines are not generated.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Rng } from '../../src/sim/rng.ts';
import { QemuSystem, QtestServer } from '../../src/vmm/qtest.ts';
import { excludedOp } from '../diff/normalise.ts';
import { CPU0_PATH, ESB_BASE, stubImage } from '../diff/qemu-driver.ts';

const RAM_SIZE = 2 ** 30;
const MACHINE = 'pseries,ic-mode=xive,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off';
/** Sources the machine claims (QEMU 7.2, 1 vCPU): the IPI, the MSI range, the LSIs. */
const CLAIMED = [0, 0x1000, 0x1001, 0x1100, 0x1200, 0x1201, 0x1202, 0x1203];
/** QEMU qtest commands xivelab does not serve (not generated: their replies differ by design). */
const UNSERVED = new Set([
  'outb',
  'outw',
  'outl',
  'inb',
  'inw',
  'inl',
  'set_irq_in',
  'b64read',
  'b64write',
  'clock_step',
  'clock_set',
  'module_load',
  'rtas',
]);

/** One reply as compared: the IRQ lines the command wrote, then its reply line. */
type Reply = string;

/** xivelab's qtest server in this process. */
class XivelabQtest {
  private readonly server: QtestServer;
  private pending: string[] = [];
  constructor() {
    const sys = new QemuSystem({ smp: 1, ramSize: RAM_SIZE, bios: stubImage(), startStopped: true });
    this.server = new QtestServer(sys, (s) => {
      for (const l of s.split('\n')) if (l !== '') this.pending.push(l);
    });
  }
  /** One command: its reply (IRQ lines joined before it), or null when it wrote none. */
  command(line: string): Reply | null {
    this.pending = [];
    this.server.command(line);
    return this.pending.length ? this.pending.join(' | ') : null;
  }
}

/** qemu-system-ppc64 on a pipe: replies per line, and whether it died. */
class QemuQtest {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly dir: string;
  private replies: Reply[] = [];
  private irqs: string[] = [];
  private wake: (() => void) | null = null;
  private dead = false;
  /** Resolves when QEMU's stdout has been read to its end. */
  private readonly drained: Promise<void>;
  stderr = '';

  constructor(bin: string) {
    this.dir = mkdtempSync(join(tmpdir(), 'xivelab-qtest-fuzz-'));
    const stub = join(this.dir, 'stub.bin');
    writeFileSync(stub, stubImage());
    const args = ['-M', MACHINE, '-display', 'none', '-nodefaults', '-m', '1G', '-smp', '1'];
    args.push('-bios', stub, '-S', '-qtest', 'stdio', '-qtest-log', '/dev/null');
    this.proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.proc.stdin.on('error', () => {});
    this.proc.on('exit', () => {
      this.dead = true;
      this.wake?.();
    });
    this.drained = new Promise((r) => this.proc.stdout.once('close', () => r()));
    createInterface({ input: this.proc.stdout }).on('line', (l) => {
      if (l.startsWith('IRQ ')) this.irqs.push(l);
      else if (!l.startsWith('Bail out!')) {
        this.replies.push([...this.irqs, l].join(' | '));
        this.irqs = [];
      }
      this.wake?.();
    });
  }

  /** Send `lines`; resolves with the replies received (fewer when QEMU died or stalled). */
  async send(lines: readonly string[], timeoutMs: number): Promise<{ replies: Reply[]; died: boolean }> {
    this.replies = [];
    if (!this.dead) this.proc.stdin.write(`${lines.join('\n')}\n`);
    const t0 = Date.now();
    while (!this.dead && this.replies.length < lines.length && Date.now() - t0 < timeoutMs) {
      await new Promise<void>((res) => {
        this.wake = res;
        setTimeout(res, 200);
      });
    }
    this.wake = null;
    // Replies may trail the exit event: read stdout to its end.
    if (this.dead) await this.drained;
    return { replies: this.replies, died: this.dead };
  }

  /** Kill it (with -S, QEMU 7.2 does not exit at stdin EOF). */
  async close(): Promise<void> {
    if (!this.dead) {
      const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
      this.proc.kill('SIGKILL');
      await gone;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Line generation
// ---------------------------------------------------------------------------------------------

const pickOf = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.index(xs.length)]!;

function rand64(rng: Rng): bigint {
  return (BigInt(rng.int(0, 0xffff_ffff)) << 32n) | BigInt(rng.int(0, 0xffff_ffff));
}

/** An address somewhere interesting (never in the TIMA). */
function address(rng: Rng): bigint {
  switch (rng.index(8)) {
    case 0:
    case 1:
      return BigInt(rng.int(0x1_0000, RAM_SIZE - 0x1000) & ~(rng.chance(0.8) ? 7 : 0));
    case 2:
      return BigInt(RAM_SIZE - rng.int(1, 16));
    case 3:
    case 4: {
      const lisn = rng.chance(0.6) ? pickOf(rng, CLAIMED) : rng.int(0, 0x2010);
      const page = rng.chance(0.7) ? 0x1_0000 : 0;
      const off = rng.chance(0.8)
        ? pickOf(rng, [0, 0x400, 0x800, 0xc00, 0xd00, 0xe00, 0xf00])
        : rng.int(0, 0xffff);
      return BigInt(ESB_BASE + lisn * 0x2_0000 + page + off);
    }
    case 5:
      return BigInt(0x0006_0100_4000_0000 + rng.int(0, 0xf_ffff));
    case 6:
      return pickOf(rng, [
        0n,
        0x100n,
        0x8000n,
        0x4000_0000n,
        0x0006_0000_0000_0000n,
        2n ** 53n - 8n,
        2n ** 53n + 8n,
      ]);
    default:
      return pickOf(rng, [2n ** 64n - 8n, 2n ** 64n - 1n, 2n ** 63n, rand64(rng)]);
  }
}

/** A number as QEMU's `qemu_strtou64(…, 0, …)` reads it: hex, octal, decimal, signed, padded. */
function num(rng: Rng, v: bigint): string {
  switch (rng.index(10)) {
    case 0:
      return v.toString(10);
    case 1:
      return `0${v.toString(8)}`;
    case 2:
      return `0X${v.toString(16).toUpperCase()}`;
    case 3:
      return `-${BigInt.asUintN(64, -v).toString(10)}`;
    case 4:
      return `+0x${v.toString(16)}`;
    case 5:
      return `\t0x${v.toString(16).padStart(16, '0')}`;
    default:
      return `0x${v.toString(16)}`;
  }
}

const TIMA_END = 0x0006_0302_0318_0000n + 0x4_0000n;
/** True when [addr, addr + len) reaches into the TIMA (a QEMU crash: excluded). */
function hitsTima(addr: bigint, len: bigint): boolean {
  const a = BigInt.asUintN(64, addr);
  if (a > BigInt(Number.MAX_SAFE_INTEGER)) return false;
  if (excludedOp({ k: 'qld', addr: Number(a), size: 1 }) !== null) return true;
  return a < TIMA_END && a + len > 0x0006_0302_0318_0000n;
}

function hexData(rng: Rng, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += rng.int(0, 255).toString(16).padStart(2, '0');
  switch (rng.index(12)) {
    case 0:
      return `0x${s.slice(0, rng.int(0, s.length))}`;
    case 1:
      return `0x${s}${s}`;
    case 2:
      return `0x${s.toUpperCase()}`;
    case 3:
      return `ab${s}`;
    case 4:
      return `0x${s.slice(0, -1)}`;
    case 5:
      return `0x${s.replace(/./g, (c) => (rng.chance(0.2) ? pickOf(rng, ['g', 'z', ' ', '-', 'x']) : c)).replace(/ /g, 'q')}`;
    case 6:
      return pickOf(rng, ['0x', '0', '', 'zz']);
    default:
      return `0x${s}`;
  }
}

/** A line QEMU answers (valid, or refused with a reply). */
function servedLine(rng: Rng): string {
  const addr = address(rng);
  // irq_intercept is rare: after the first one a session only answers "already enabled".
  switch (rng.chance(0.01) ? -1 : rng.index(10)) {
    case 0:
    case 1:
    case 2:
      return `read${pickOf(rng, ['b', 'w', 'l', 'q'])} ${num(rng, addr)}`;
    case 3:
    case 4:
    case 5:
      return `write${pickOf(rng, ['b', 'w', 'l', 'q'])} ${num(rng, addr)} ${num(rng, rng.chance(0.5) ? BigInt(rng.int(0, 255)) : rand64(rng))}`;
    case 6:
      return `read ${num(rng, addr)} ${num(rng, BigInt(rng.int(1, 64)))}`;
    case 7: {
      const len = rng.chance(0.05) ? 0 : rng.int(1, 48);
      return `write ${num(rng, addr)} ${num(rng, BigInt(len))} ${hexData(rng, len)}`;
    }
    case 8:
      return `memset ${num(rng, addr)} ${num(rng, BigInt(rng.chance(0.1) ? 0 : rng.int(1, 300)))} ${num(rng, BigInt(rng.int(0, 0x1ff)))}`;
    case -1: {
      const path = pickOf(rng, [
        CPU0_PATH,
        CPU0_PATH,
        '/machine/unattached/device[0]',
        '/machine/unattached/device[1]',
        '/machine/unattached/device[2]/thread[0]',
        '/machine/unattached/device[01]/thread[0]',
        '/machine/unattached/device[1]/thread[1]',
        '/machine',
        '/nonexistent',
        'device[1]',
      ]);
      return `${pickOf(rng, ['irq_intercept_in', 'irq_intercept_out'])} ${path}`;
    }
    default: {
      const n = rng.index(4);
      if (n === 0) return `endianness${rng.chance(0.3) ? ' extra' : ''}`;
      if (n === 1)
        return pickOf(rng, ['READQ 0x0', 'readx 0x0', 'reads', ' readq 0x0', 'readq\t0x0', 'xyzzy']);
      let w = '';
      for (let i = rng.int(1, 10); i > 0; i--) w += String.fromCharCode(rng.int(0x21, 0x7e));
      return UNSERVED.has(w) ? 'endianness' : `${w}${rng.chance(0.5) ? ` ${num(rng, addr)}` : ''}`;
    }
  }
}

/** A line on which QEMU 7.2 is expected to abort. */
function abortLine(rng: Rng): string {
  return pickOf(rng, [
    '',
    'readq',
    'readq 0x',
    'readq 0x1g',
    'readq 0x10000000000000000',
    'readq  0x10000',
    'readq 0x10000\r',
    'writeq 0x10000',
    'writel 0x10000 zz',
    'read 0x10000 0',
    'read 0x10000',
    'write 0x10000 4',
    'memset 0x10000 4',
    'irq_intercept_in',
  ]);
}

/** A generated line, and whether it is one QEMU aborts on. */
export function qtestLine(rng: Rng, abortRate: number): { line: string; abort: boolean } {
  if (rng.chance(abortRate)) return { line: abortLine(rng), abort: true };
  for (;;) {
    const l = servedLine(rng);
    const w = l.split(' ');
    const addr = w[1] === undefined ? null : parseLoose(w[1]);
    const len =
      w[0] === 'read' || w[0] === 'write' || w[0] === 'memset' ? (parseLoose(w[2] ?? '') ?? 8n) : 8n;
    if (addr !== null && hitsTima(addr, len)) continue;
    return { line: l, abort: false };
  }
}

/** The value a well-formed generated number stands for (null if not one). */
function parseLoose(s: string): bigint | null {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)$/.exec(s);
  if (!m) return null;
  const b = m[2]!;
  const v = /^0[xX]/.test(b)
    ? BigInt(b)
    : b.length > 1 && b[0] === '0'
      ? BigInt(`0o${b.slice(1)}`)
      : BigInt(b);
  return BigInt.asUintN(64, m[1] === '-' ? -v : v);
}

// ---------------------------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------------------------

export interface QtestMismatch {
  readonly line: string;
  readonly xivelab: string | null;
  readonly qemu: string | null;
  /** The smallest line sequence (from a fresh start) that shows it. */
  readonly repro: readonly string[];
}

export interface QtestFuzzResult {
  /** Lines sent to xivelab. */
  lines: number;
  /** Lines compared with QEMU. */
  compared: number;
  /** Lines QEMU aborted on where xivelab answered FAIL (the documented deviation). */
  qemuAborts: number;
  /** Restarts of both sides. */
  epochs: number;
  /** QEMU died or stalled on a line, and the same lines on a fresh QEMU did not: not counted. */
  qemuFlakes: number;
  exceptions: number;
  readonly mismatches: QtestMismatch[];
  /** Replies by first word (`OK`, `FAIL`, `ERR`), xivelab side. */
  readonly replies: Map<string, number>;
  /** false when QEMU is not installed (xivelab alone: no exception, one reply per line). */
  qemu: boolean;
}

export interface QtestFuzzOptions {
  readonly seed: number;
  readonly lines: number;
  /** Fraction of lines expected to abort QEMU (each costs a restart). */
  readonly abortRate: number;
  /** `qemu-system-ppc64` to compare with, or null. */
  readonly qemu: string | null;
  readonly batch?: number;
  /** Mismatches to shrink (each shrink restarts QEMU a few times). */
  readonly maxRepros?: number;
}

/** Run `lines` on fresh instances of both: the first line whose replies differ, or null. */
async function firstDifference(
  bin: string,
  lines: readonly string[],
): Promise<{ line: string; x: string | null; q: string | null } | null> {
  const q = new QemuQtest(bin);
  const x = new XivelabQtest();
  try {
    const r = await q.send(lines, 20_000);
    for (let i = 0; i < lines.length; i++) {
      const xr = x.command(lines[i]!);
      const qr = r.replies[i] ?? null;
      if (qr === null && r.died) return xr?.startsWith('FAIL') ? null : { line: lines[i]!, x: xr, q: null };
      if (xr !== qr) return { line: lines[i]!, x: xr, q: qr };
    }
    return null;
  } finally {
    await q.close();
  }
}

/** The shortest suffix of `prefix` (then the line) that still differs on fresh instances. */
async function shrinkQtest(bin: string, prefix: readonly string[], line: string): Promise<string[]> {
  for (const k of [0, 4, 16, 64, 256, 1024]) {
    if (k > prefix.length) break;
    const cand = [...prefix.slice(prefix.length - k), line];
    const d = await firstDifference(bin, cand);
    if (d !== null && d.line === line) return cand;
  }
  return [...prefix, line];
}

/** Run the qtest fuzzer. */
export async function fuzzQtest(o: QtestFuzzOptions): Promise<QtestFuzzResult> {
  const rng = new Rng(o.seed);
  const res: QtestFuzzResult = {
    lines: 0,
    compared: 0,
    qemuAborts: 0,
    epochs: 1,
    qemuFlakes: 0,
    exceptions: 0,
    mismatches: [],
    replies: new Map(),
    qemu: o.qemu !== null,
  };
  const batch = o.batch ?? 500;
  let x = new XivelabQtest();
  let q = o.qemu === null ? null : new QemuQtest(o.qemu);
  // A restart takes the spare, already booting.
  let spare = o.qemu === null ? null : new QemuQtest(o.qemu);
  /** The lines of this epoch so far (the shrinker's starting point). */
  let epoch: string[] = [];
  const restart = async (): Promise<void> => {
    await q?.close();
    x = new XivelabQtest();
    q = spare;
    spare = o.qemu === null ? null : new QemuQtest(o.qemu);
    epoch = [];
    res.epochs++;
  };
  const xcmd = (line: string): string | null => {
    res.lines++;
    let r: string | null;
    try {
      r = x.command(line);
    } catch (e) {
      res.exceptions++;
      r = `EXCEPTION ${e instanceof Error ? e.message : String(e)}`;
    }
    const k = r?.split(' | ').at(-1)?.split(' ')[0] ?? '(none)';
    res.replies.set(k, (res.replies.get(k) ?? 0) + 1);
    return r;
  };
  /** Mismatch classes (command, both reply kinds) already shrunk. */
  const shrunk = new Set<string>();
  const mismatch = async (line: string, xr: string | null, qr: string | null): Promise<void> => {
    const cls = `${line.split(' ')[0]} ${xr?.split(' ')[0]} ${qr?.split(' ')[0]}`;
    const repro =
      o.qemu !== null && !shrunk.has(cls) && shrunk.size < (o.maxRepros ?? 5)
        ? await shrinkQtest(o.qemu, epoch, line)
        : [...epoch.slice(-8), line];
    shrunk.add(cls);
    res.mismatches.push({ line, xivelab: xr, qemu: qr, repro });
  };
  try {
    let queue: { line: string; abort: boolean }[] = [];
    while (res.lines < o.lines) {
      if (queue.length === 0) {
        const n = Math.min(batch, o.lines - res.lines);
        for (let i = 0; i < n; i++) queue.push(qtestLine(rng, o.abortRate));
      }
      // A line meant to abort QEMU goes alone, once every earlier reply is in: an abort loses
      // the output QEMU still had queued for a full pipe.
      const cut = queue.findIndex((g) => g.abort);
      const take = cut === 0 ? 1 : cut < 0 ? queue.length : cut;
      const lines = queue.slice(0, take).map((g) => g.line);
      queue = queue.slice(take);
      if (q === null) {
        for (const l of lines) {
          const xr = xcmd(l);
          if (xr === null || xr.startsWith('EXCEPTION')) await mismatch(l, xr, null);
        }
        continue;
      }
      const r = await q.send(lines, 30_000);
      for (let i = 0; i < lines.length; i++) {
        const l = lines[i]!;
        const qr = r.replies[i] ?? null;
        if (qr === null) {
          const xr = xcmd(l);
          if (r.died && xr?.startsWith('FAIL')) res.qemuAborts++;
          else if ((await firstDifference(o.qemu!, [...epoch, l])) === null) res.qemuFlakes++;
          else await mismatch(l, xr, r.died ? `(QEMU died: ${q.stderr.trim().split('\n').at(-1)})` : null);
          queue = [...lines.slice(i + 1).map((line) => ({ line, abort: false })), ...queue];
          await restart();
          break;
        }
        const xr = xcmd(l);
        res.compared++;
        if (xr !== qr) {
          await mismatch(l, xr, qr);
          // The states may differ from here on: both start again.
          queue = [...lines.slice(i + 1).map((line) => ({ line, abort: false })), ...queue];
          await restart();
          break;
        }
        epoch.push(l);
      }
    }
  } finally {
    await q?.close();
    await spare?.close();
  }
  return res;
}
