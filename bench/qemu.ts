/**
 * A minimal QEMU 7.2 (TCG) driver for the benchmark: qtest over stdio plus the vCPU mailbox of
 * `shared/qemu-oracle/bench_stub.bin` (kind 1 = hcall, 2–9 = loads/stores, 10 = timing loop).
 * See `shared/spec/qemu-qtest.md` §1, §6, §7.
 */

import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

export const MBOX = 0x8000;
export const ESB_BASE = 0x0006_0100_0000_0000;
export const TIMA_OS = 0x0006_0302_0318_0000 + 2 * 0x1_0000;
export const KVMPPC_H_CAS = 0xf002;

export const esbTrig = (lisn: number): number => ESB_BASE + lisn * 0x2_0000;
export const esbMgmt = (lisn: number): number => ESB_BASE + lisn * 0x2_0000 + 0x1_0000;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/** Is `qemu-system-ppc64` (or `$QEMU`) runnable here? */
export function qemuBinary(): string | null {
  const bin = process.env.QEMU ?? 'qemu-system-ppc64';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? bin : null;
}

export class QemuBench {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: ((line: string) => void)[] = [];
  private dead: string | null = null;
  readonly version: string;

  private constructor(bin: string, stub: string, version: string) {
    this.version = version;
    this.proc = spawn(
      bin,
      [
        '-M',
        'pseries,ic-mode=xive,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off',
        '-display',
        'none',
        '-nodefaults',
        '-m',
        '1G',
        '-smp',
        '1',
        '-bios',
        stub,
        '-qtest',
        'stdio',
        '-qtest-log',
        '/dev/null',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    this.proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    this.proc.on('exit', (code, sig) => {
      this.dead = `qemu exited (${sig ?? code}): ${stderr.trim().split('\n')[0] ?? ''}`;
      for (const w of this.waiting.splice(0)) w(`DEAD ${this.dead}`);
    });
    const rl = createInterface({ input: this.proc.stdout });
    rl.on('line', (line) => {
      if (line.startsWith('IRQ ')) return; // asynchronous interrupt-line reports
      this.waiting.shift()?.(line);
    });
    const kill = (): void => {
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    };
    process.once('exit', kill);
  }

  /** Start QEMU with the bench stub and wait for the stub to answer. */
  static async start(bin: string, stub: string): Promise<QemuBench> {
    if (!existsSync(stub)) throw new Error(`bench stub not found: ${stub}`);
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? bin;
    const q = new QemuBench(bin, stub, v);
    await q.nop();
    return q;
  }

  /** One qtest command, one reply line. */
  cmd(line: string): Promise<string> {
    if (this.dead) return Promise.reject(new Error(this.dead));
    return new Promise((resolve, reject) => {
      this.waiting.push((reply) =>
        reply.startsWith('DEAD ') ? reject(new Error(reply.slice(5))) : resolve(reply),
      );
      this.proc.stdin.write(`${line}\n`);
    });
  }

  async readq(addr: number): Promise<bigint> {
    const r = await this.cmd(`readq ${hex(addr)}`);
    if (!r.startsWith('OK ')) throw new Error(`readq ${hex(addr)}: ${r}`);
    return BigInt(r.slice(3));
  }

  async writeq(addr: number, v: bigint | number): Promise<void> {
    const r = await this.cmd(`writeq ${hex(addr)} ${hex(v)}`);
    if (r !== 'OK') throw new Error(`writeq ${hex(addr)}: ${r}`);
  }

  async write(addr: number, data: Uint8Array): Promise<void> {
    const r = await this.cmd(`write ${hex(addr)} ${hex(data.length)} 0x${Buffer.from(data).toString('hex')}`);
    if (r !== 'OK') throw new Error(`write ${hex(addr)}: ${r}`);
  }

  async memset(addr: number, len: number, v = 0): Promise<void> {
    const r = await this.cmd(`memset ${hex(addr)} ${hex(len)} ${hex(v)}`);
    if (r !== 'OK') throw new Error(`memset ${hex(addr)}: ${r}`);
  }

  /** Post a mailbox command and wait (polling every `pollMs`) until the stub clears `cmd`. */
  async mailbox(kind: number, ins: readonly (bigint | number)[], pollMs = 0): Promise<bigint[]> {
    for (let i = 0; i < ins.length; i++) await this.writeq(MBOX + 0x10 + 8 * i, ins[i]!);
    await this.writeq(MBOX + 0x08, kind);
    await this.writeq(MBOX, 1);
    const t0 = Date.now();
    while ((await this.readq(MBOX)) !== 0n) {
      if (Date.now() - t0 > 600_000) throw new Error('mailbox timeout');
      if (pollMs > 0) await new Promise((r) => setTimeout(r, pollMs));
    }
    const out: bigint[] = [];
    for (let i = 0; i < 2; i++) out.push(await this.readq(MBOX + 0x60 + 8 * i));
    return out;
  }

  private async nop(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      await this.writeq(MBOX + 0x08, 0);
      await this.writeq(MBOX, 1);
      for (let j = 0; j < 20; j++) {
        if ((await this.readq(MBOX)) === 0n) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    throw new Error('bench stub not responding');
  }

  /** `sc 1` on vCPU 0: returns R3 (signed). */
  async hcall(opcode: number, ...args: (bigint | number)[]): Promise<bigint> {
    const out = await this.mailbox(1, [opcode, ...args]);
    return BigInt.asIntN(64, out[0]!);
  }

  /** `stb` on vCPU 0. */
  async stb(addr: number, v: number): Promise<void> {
    await this.mailbox(5, [addr, v]);
  }

  /**
   * Kind 10: the guest's own timing loop; returns wall-clock seconds from posting the command to
   * its completion.
   */
  async timeLoop(
    count: number,
    mode: 0 | 1,
    a: number,
    ack: number,
    eoi: number,
    cppr: number,
  ): Promise<number> {
    const ins = [count, a, ack, eoi, cppr, mode];
    for (let i = 0; i < ins.length; i++) await this.writeq(MBOX + 0x10 + 8 * i, ins[i]!);
    await this.writeq(MBOX + 0x08, 10);
    const t0 = process.hrtime.bigint();
    await this.writeq(MBOX, 1);
    // Poll gently: qtest commands take the BQL the vCPU's MMIO accesses need too.
    while ((await this.readq(MBOX)) !== 0n) await new Promise((r) => setTimeout(r, 2));
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  }
}
