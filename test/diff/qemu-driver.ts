/**
 * One driver for QEMU 7.2 and for xivelab: qtest over a line transport, the vCPU mailbox of the
 * oracle stub (a mailbox at guest physical 0x8000 served by a tiny big-endian program loaded
 * with `-bios`), and HMP. Three transports:
 * - {@link spawnQemu}: `qemu-system-ppc64` (or `$QEMU`) with the stub written from its
 *   documented machine words as `-bios`, qtest on stdio, HMP on a unix socket;
 * - {@link spawnXivelabQemu}: the `xivelab-qemu` front end (node on src/cli/qemu.ts, under tsx
 *   from source; the bundled front end from the bench's build), spoken to exactly like QEMU;
 * - {@link inProcessXivelab}: a {@link QtestServer} and an {@link Hmp} in this process — the
 *   same protocol text without the process boundary, for speed.
 * Spawned processes are killed in `close()` and on process exit.
 */

import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { casOptionVectors } from '../../src/guest/kernel.ts';
import { createHost } from '../../src/host/host.ts';
import { Hmp } from '../../src/vmm/hmp.ts';
import { QemuSystem, QtestServer } from '../../src/vmm/qtest.ts';

export const MBOX = 0x8000;
export const ESB_BASE = 0x0006_0100_0000_0000;
export const TIMA_BASE = 0x0006_0302_0318_0000;
export const TIMA_HW = TIMA_BASE;
export const TIMA_HV = TIMA_BASE + 0x1_0000;
export const TIMA_OS = TIMA_BASE + 0x2_0000;
export const TIMA_USER = TIMA_BASE + 0x3_0000;
export const KVMPPC_H_CAS = 0xf002;
export const CAS_VEC = 0x1_0000;
export const CAS_FDT = 0x10_0000;
export const CPU0_PATH = '/machine/unattached/device[1]/thread[0]';

export const esbTrig = (lisn: number): number => ESB_BASE + lisn * 0x2_0000;
export const esbMgmt = (lisn: number): number => ESB_BASE + lisn * 0x2_0000 + 0x1_0000;

/**
 * The oracle stub assembled (big-endian words at guest physical 0x100): real-mode 64-bit,
 * mailbox at 0x8000 serving kinds 1 (hcall), 2–9 (ld/std/lbz/stb/lhz/sth/lwz/stw) and 10 (the
 * timing loop: `count` × `ld A`, or `count` × (trigger `std`, `lhz` ACK, `ld` EOI, `stb` CPPR)),
 * the protocol `src/vmm/mailbox-cpu.ts` serves in `xivelab-qemu`.
 */
export const STUB_WORDS = `
7c6000a6 38800001 7884f806 7c632378 7c600164 4c00012c 3e800000 62948000 38000000 f8140000
f81400b0 e8140000 2c200000 4182fff8 4c00012c eab40008 ead40010 eaf40018 2c350001 41820098
2c350002 4082000c eb160000 48000080 2c350003 4082000c faf60000 48000114 2c350004 4082000c
8b160000 48000060 2c350005 4082000c 9af60000 480000f4 2c350006 4082000c a3160000 48000040
2c350007 4082000c b2f60000 480000d4 2c350008 4082000c 83160000 48000020 2c350009 4082000c
92f60000 480000b4 2c35000a 408200ac 48000064 fb140060 480000a0 e8740010 e8940018 e8b40020
e8d40028 e8f40030 e9140038 e9340040 e9540048 e9740050 e9940058 44000022 f8740060 f8940068
f8b40070 f8d40078 f8f40080 f9140088 f9340090 f9540098 f97400a0 f99400a8 48000048 eb340020
eb540028 eb740030 eb940038 7ec903a6 2c3c0000 40820010 eb170000 4200fffc 4bffff7c 3ba000ff
fbb70000 a3190000 eb1a0000 9bbb0000 4200fff0 4bffff60 7c0004ac eb3400b0 3b390001 fb3400b0
38000000 f8140000 4bfffe94`
  .trim()
  .split(/\s+/);

/** The stub image: 0x100 zero bytes, then the words big-endian. */
export function stubImage(): Uint8Array {
  const img = new Uint8Array(0x100 + STUB_WORDS.length * 4);
  STUB_WORDS.forEach((w, i) => {
    const v = Number.parseInt(w, 16);
    img[0x100 + i * 4] = v >>> 24;
    img[0x101 + i * 4] = (v >>> 16) & 0xff;
    img[0x102 + i * 4] = (v >>> 8) & 0xff;
    img[0x103 + i * 4] = v & 0xff;
  });
  return img;
}

/** `qemu-system-ppc64` (or `$QEMU`) if it runs here, else null. */
export function findQemu(): string | null {
  const bin = process.env.QEMU ?? 'qemu-system-ppc64';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? bin : null;
}

const MACHINE = 'pseries,ic-mode=xive,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off';

/** The QEMU command line of the full oracle: the stub as `-bios`, qtest on stdio, HMP on a socket. */
export function oracleArgs(stub: string, mon: string, smp = 1, log: string | null = null): string[] {
  const a = [
    '-M',
    MACHINE,
    '-display',
    'none',
    '-nodefaults',
    '-m',
    '1G',
    '-smp',
    String(smp),
    '-bios',
    stub,
    '-qtest',
    'stdio',
    '-qtest-log',
    '/dev/null',
    '-monitor',
    `unix:${mon},server=on,wait=off`,
  ];
  if (log !== null) a.push('-d', 'guest_errors', '-D', log);
  return a;
}

/** A line transport speaking qtest (and HMP beside it). */
export interface QtestLink {
  /** Send lines; resolves to one reply per line (asynchronous IRQ lines go to `irqs`). */
  send(lines: readonly string[]): Promise<string[]>;
  /** One HMP command; resolves to its output (echo and prompt removed, `\n` line ends). */
  hmp(cmd: string): Promise<string>;
  /** IRQ lines seen so far (the caller may splice them). */
  readonly irqs: string[];
  /**
   * Pause before each mailbox poll: back-to-back qtest commands keep QEMU's main loop holding
   * the BQL and starve the vCPU (measured: 2.3 ms per nop polling flat out, 1.5 ms with 1 ms
   * pauses and ~1 poll).
   */
  readonly pollDelayMs: number;
  close(): Promise<void>;
}

const live = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const p of live) if (p.exitCode === null) p.kill('SIGKILL');
});

class ProcessLink implements QtestLink {
  readonly irqs: string[] = [];
  readonly pollDelayMs = 1;
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: ((line: string | null) => void)[] = [];
  private stderr = '';
  private mon: Socket | null = null;
  private monBuf = '';
  private monWait: ((s: string) => void) | null = null;
  private readonly dir: string;
  private readonly monPath: string;

  constructor(bin: string, args: readonly string[], dir: string, monPath: string) {
    this.dir = dir;
    this.monPath = monPath;
    this.proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this.proc);
    this.proc.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.proc.on('exit', () => {
      live.delete(this.proc);
      for (const w of this.waiting.splice(0)) w(null);
    });
    const rl = createInterface({ input: this.proc.stdout });
    rl.on('line', (line) => {
      if (line.startsWith('IRQ ')) {
        this.irqs.push(line);
        return;
      }
      this.waiting.shift()?.(line);
    });
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  describeExit(): string {
    return `exited (${this.proc.signalCode ?? this.proc.exitCode}): ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`;
  }

  send(lines: readonly string[]): Promise<string[]> {
    if (this.exited) return Promise.reject(new Error(this.describeExit()));
    const replies = lines.map(
      (l) =>
        new Promise<string>((res, rej) => {
          this.waiting.push((r) => (r === null ? rej(new Error(`${l}: ${this.describeExit()}`)) : res(r)));
        }),
    );
    this.proc.stdin.write(`${lines.join('\n')}\n`);
    return Promise.all(replies);
  }

  async connectMonitor(): Promise<void> {
    for (let i = 0; i < 400 && !existsSync(this.monPath); i++) {
      if (this.exited) throw new Error(this.describeExit());
      await new Promise((r) => setTimeout(r, 10));
    }
    // The socket file appears at bind(), a moment before listen(): retry a refused connect.
    let sock: Socket | null = null;
    for (let i = 0; sock === null; i++) {
      const s = connect(this.monPath);
      try {
        await new Promise<void>((res, rej) => {
          s.once('connect', () => res());
          s.once('error', rej);
        });
        sock = s;
      } catch (e) {
        s.destroy();
        if (i >= 200 || this.exited) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.monBuf += d;
      if (this.monBuf.endsWith('(qemu) ') && this.monWait) {
        const w = this.monWait;
        this.monWait = null;
        const s = this.monBuf;
        this.monBuf = '';
        w(s);
      }
    });
    this.mon = sock;
    await this.untilPrompt();
  }

  private untilPrompt(): Promise<string> {
    if (this.monBuf.endsWith('(qemu) ')) {
      const s = this.monBuf;
      this.monBuf = '';
      return Promise.resolve(s);
    }
    return new Promise((res) => {
      this.monWait = res;
    });
  }

  async hmp(cmd: string): Promise<string> {
    if (!this.mon) throw new Error('no monitor');
    this.mon.write(`${cmd}\n`);
    const out = await this.untilPrompt();
    const lines = out.replace(/\r/g, '').split('\n');
    return lines
      .slice(1)
      .filter((l) => !l.startsWith('(qemu)'))
      .join('\n')
      .trim();
  }

  async close(): Promise<void> {
    this.mon?.destroy();
    if (!this.exited) {
      // QEMU 7.2 keeps running at the end of stdin (it stops on a signal, printing "terminating
      // on signal 15"); end stdin for xivelab-qemu and send SIGTERM at once, SIGKILL if stuck.
      this.proc.stdin.end();
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      await new Promise<void>((res) => {
        if (this.exited) res();
        else this.proc.once('exit', () => res());
      });
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'xivelab-diff-'));
}

/** Start QEMU 7.2 with the stub. */
export async function spawnQemu(bin: string, smp = 1, log = false): Promise<QtestLink> {
  const dir = tempDir();
  const stub = join(dir, 'stub.bin');
  writeFileSync(stub, stubImage());
  const mon = join(dir, 'mon.sock');
  const link = new ProcessLink(bin, oracleArgs(stub, mon, smp, log ? join(dir, 'qemu.log') : null), dir, mon);
  await link.connectMonitor();
  return link;
}

/**
 * The command that runs `script` with `args` as the kernel runs bin/xivelab-qemu.cjs: its `#!`
 * line's interpreter, then the rest of that line as one argument, then the script and its
 * arguments (binfmt_script). The bench's build has its own bundle, so that bundle's main.js (what
 * the bin requires) takes the bin's place, started the way a user's `xivelab-qemu` starts.
 */
function asBinStartsIt(script: string, args: readonly string[]): [string, string[]] {
  const bin = resolve(import.meta.dirname, '../../../bin/xivelab-qemu.cjs');
  const line = /^#!\s*(\S+)(?:[ \t]+(.*?))?\s*$/.exec(readFileSync(bin, 'latin1').split('\n', 1)[0]!);
  if (line === null) throw new Error(`${bin}: no #! line`);
  const [, interpreter, arg] = line;
  return [interpreter!, [...(arg !== undefined ? [arg] : []), script, ...args]];
}

/**
 * Start the `xivelab-qemu` front end with the same command line (+ `-accel kvm`): under tsx from
 * source (the test suites), or the bench build's bundle through the bin's `#!` line.
 */
export async function spawnXivelabQemu(smp = 1, accel: 'tcg' | 'kvm' = 'tcg'): Promise<QtestLink> {
  const dir = tempDir();
  const stub = join(dir, 'stub.bin');
  writeFileSync(stub, stubImage());
  const mon = join(dir, 'mon.sock');
  const compiled = import.meta.url.endsWith('.js');
  const main = resolve(
    import.meta.dirname,
    compiled ? '../../xivelab-qemu/main.js' : '../../src/cli/qemu.ts',
  );
  const args = [...oracleArgs(stub, mon, smp), ...(accel === 'kvm' ? ['-accel', 'kvm'] : [])];
  const link = compiled
    ? new ProcessLink(...asBinStartsIt(main, args), dir, mon)
    : new ProcessLink(process.execPath, ['--import', 'tsx', main, ...args], dir, mon);
  await link.connectMonitor();
  return link;
}

class InProcessLink implements QtestLink {
  readonly irqs: string[] = [];
  readonly pollDelayMs = 0;
  readonly sys: QemuSystem;
  private readonly server: QtestServer;
  private readonly hmpServer: Hmp;
  private replies: string[] = [];

  constructor(smp: number, accel: 'tcg' | 'kvm') {
    this.sys = new QemuSystem({
      smp,
      ramSize: 2 ** 30,
      bios: stubImage(),
      startStopped: false,
      ...(accel === 'kvm' ? { accel, host: createHost() } : {}),
    });
    this.server = new QtestServer(this.sys, (s) => {
      for (const line of s.split('\n')) {
        if (line === '') continue;
        if (line.startsWith('IRQ ')) this.irqs.push(line);
        else this.replies.push(line);
      }
    });
    this.hmpServer = new Hmp(this.sys);
  }

  send(lines: readonly string[]): Promise<string[]> {
    this.replies = [];
    for (const l of lines) this.server.command(l);
    return Promise.resolve(this.replies);
  }

  hmp(cmd: string): Promise<string> {
    return Promise.resolve(this.hmpServer.execute(cmd).trim());
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * xivelab in this process, behind the same protocol text; `accel: 'kvm'` runs the machine in
 * KVM mode on a host of its own (as `-accel kvm` does).
 */
export function inProcessXivelab(smp = 1, accel: 'tcg' | 'kvm' = 'tcg'): QtestLink {
  return new InProcessLink(smp, accel);
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const u64hex = (v: bigint): string => BigInt.asUintN(64, v).toString(16).padStart(16, '0');

/** Decode `OK 0x…` hex bytes. */
function okBytes(reply: string, what: string): Uint8Array {
  if (!reply.startsWith('OK 0x')) throw new Error(`${what}: ${reply}`);
  const h = reply.slice(5);
  const b = Buffer.from(h, 'hex');
  if (b.length * 2 !== h.length) throw new Error(`${what}: not hex: ${reply}`);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function be64(b: Uint8Array, off: number): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(b[off + i]!);
  return v;
}

export interface HcallResult {
  rc: bigint;
  /** R4…R12 after the call. */
  out: bigint[];
}

/** The driver API over a link: qtest accesses, mailbox vCPU operations, HMP. */
export class Target {
  readonly name: string;
  readonly link: QtestLink;
  /** Mailbox round trips made. */
  mailboxOps = 0;

  constructor(name: string, link: QtestLink) {
    this.name = name;
    this.link = link;
  }

  /** IRQ lines since the last call. */
  takeIrqs(): string[] {
    return this.link.irqs.splice(0);
  }

  async cmd(line: string): Promise<string> {
    const [r] = await this.link.send([line]);
    return r!;
  }

  async read(addr: number, size: 1 | 2 | 4 | 8): Promise<bigint> {
    const r = await this.cmd(`read${'?bw?l???q'[size]} ${hex(addr)}`);
    if (!r.startsWith('OK 0x')) throw new Error(`read ${hex(addr)}: ${r}`);
    return BigInt(r.slice(3));
  }

  async write(addr: number, size: 1 | 2 | 4 | 8, v: bigint): Promise<void> {
    const r = await this.cmd(`write${'?bw?l???q'[size]} ${hex(addr)} ${hex(BigInt.asUintN(64, v))}`);
    if (r !== 'OK') throw new Error(`write ${hex(addr)}: ${r}`);
  }

  async readBytes(addr: number, len: number): Promise<Uint8Array> {
    return okBytes(await this.cmd(`read ${hex(addr)} ${hex(len)}`), `read ${hex(addr)}`);
  }

  async writeBytes(addr: number, data: Uint8Array): Promise<void> {
    const r = await this.cmd(`write ${hex(addr)} ${hex(data.length)} 0x${Buffer.from(data).toString('hex')}`);
    if (r !== 'OK') throw new Error(`write ${hex(addr)}: ${r}`);
  }

  async memset(addr: number, len: number, v = 0): Promise<void> {
    const r = await this.cmd(`memset ${hex(addr)} ${hex(len)} ${hex(v)}`);
    if (r !== 'OK') throw new Error(`memset ${hex(addr)}: ${r}`);
  }

  /**
   * Post a mailbox command: kind and in[] in one `write`, then `cmd = 1`; poll the whole mailbox
   * with one `read` until `cmd` is 0. Returns out[0..9].
   */
  async mailbox(kind: number, ins: readonly bigint[]): Promise<bigint[]> {
    this.mailboxOps++;
    const b = new Uint8Array(8 + 8 * 10);
    const put = (off: number, v: bigint): void => {
      const x = BigInt.asUintN(64, v);
      for (let i = 0; i < 8; i++) b[off + i] = Number((x >> BigInt(56 - 8 * i)) & 0xffn);
    };
    put(0, BigInt(kind));
    for (let i = 0; i < 10; i++) put(8 + 8 * i, ins[i] ?? 0n);
    const [w, c] = await this.link.send([
      `write ${hex(MBOX + 8)} ${hex(b.length)} 0x${Buffer.from(b).toString('hex')}`,
      `writeq ${hex(MBOX)} 0x1`,
    ]);
    if (w !== 'OK' || c !== 'OK') throw new Error(`mailbox post: ${w} / ${c}`);
    const t0 = Date.now();
    for (;;) {
      if (this.link.pollDelayMs > 0) await new Promise((r) => setTimeout(r, this.link.pollDelayMs));
      const m = okBytes(await this.cmd(`read ${hex(MBOX)} 0xb8`), 'mailbox poll');
      if (be64(m, 0) === 0n) {
        const out: bigint[] = [];
        for (let i = 0; i < 10; i++) out.push(be64(m, 0x60 + 8 * i));
        return out;
      }
      if (Date.now() - t0 > 10_000) throw new Error(`${this.name}: mailbox timeout (kind ${kind})`);
    }
  }

  /** Wait until the stub serves the mailbox (a nop round trip). */
  async waitStub(): Promise<void> {
    await this.mailbox(0, []);
  }

  async hcall(opcode: number, ...args: bigint[]): Promise<HcallResult> {
    const out = await this.mailbox(1, [BigInt(opcode), ...args]);
    return { rc: BigInt.asIntN(64, out[0]!), out: out.slice(1) };
  }

  /** vCPU load (ld/lwz/lhz/lbz) at a real address. */
  async vload(addr: number, size: 1 | 2 | 4 | 8): Promise<bigint> {
    const kind = { 8: 2, 1: 4, 2: 6, 4: 8 }[size];
    return (await this.mailbox(kind, [BigInt(addr)]))[0]!;
  }

  /** vCPU store (std/stb/sth/stw). */
  async vstore(addr: number, size: 1 | 2 | 4 | 8, v: bigint): Promise<void> {
    const kind = { 8: 3, 1: 5, 2: 7, 4: 9 }[size];
    await this.mailbox(kind, [BigInt(addr), v]);
  }

  /** Stub alive, CAS with XIVE exploitation done. */
  async boot(): Promise<void> {
    await this.waitStub();
    await this.writeBytes(CAS_VEC, casOptionVectors());
    const r = await this.hcall(KVMPPC_H_CAS, BigInt(CAS_VEC), BigInt(CAS_FDT), 0x10_0000n);
    if (r.rc !== 0n) throw new Error(`${this.name}: CAS returned ${r.rc}`);
  }

  hmp(cmd: string): Promise<string> {
    return this.link.hmp(cmd);
  }

  close(): Promise<void> {
    return this.link.close();
  }
}

export { u64hex };
