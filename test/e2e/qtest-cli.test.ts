import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DESIGN_NAMES, DESIGNS } from '../../src/designs/index.ts';

const bin = fileURLToPath(new URL('../../bin/xivelab.js', import.meta.url));
const qemuBin = fileURLToPath(new URL('../../bin/xivelab-qemu.cjs', import.meta.url));
const QEMU_ARGS = ['-M', 'pseries,ic-mode=xive', '-display', 'none', '-nodefaults', '-S', '-qtest', 'stdio'];

describe('xivelab qtest (the QEMU front end through the main CLI)', () => {
  it('answers qtest on stdio: ESB GET of LISN 0 after reset is PQ 01', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', ...QEMU_ARGS, '-qtest-log', '/dev/null'], {
      input: 'readq 0x0006010000010800\nreadq 0x0006010000010e00\nreadq 0x0006010000010800\n',
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('OK 0x0000000000000001\nOK 0x0000000000000001\nOK 0x0000000000000002\n');
  });

  it('rejects an unknown QEMU option with one line and exit 1', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', '-frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('bin/xivelab-qemu.cjs run as a program (its #! line, as the oracle driver runs QEMU)', () => {
  it('answers qtest and skips the TLS start-up cost: NODE_EXTRA_CA_CERTS is not read', () => {
    // Node 20 loads that file before any JavaScript runs and warns on stderr when it is missing;
    // the interpreter line empties the variable, so a missing file goes unnoticed.
    const r = spawnSync(qemuBin, [...QEMU_ARGS], {
      input: 'writel 0x200000 0xdeadbeef\nreadl 0x200000\n',
      encoding: 'utf8',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/xivelab-ca.pem' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('OK\nOK 0x00000000deadbeef\n');
  });
});

/** The option-1 designs (kernel seam only), which the front end runs. */
const OPTION_1 = DESIGNS.filter((d) => d.option === 1)
  .map((d) => d.name)
  .join(', ');

describe('xivelab-qemu in KVM mode (the real entry point, bin/xivelab-qemu.cjs)', () => {
  const BASE = ['-M', 'pseries,ic-mode=xive', '-display', 'none', '-nodefaults', '-qtest', 'stdio'];
  const qemu = (args: string[], input = '') =>
    spawnSync(process.execPath, [qemuBin, ...args], { input, encoding: 'utf8' });

  it('-accel kvm: ESB PQ transitions through the device mmap, guest RAM through the VMM memory', () => {
    const r = qemu(
      ['-accel', 'kvm', ...BASE, '-S'],
      [
        'readq 0x0006010000010800', // GET: KVM declared the source masked (PQ 01)
        'readq 0x0006010000010e00', // SET_PQ_10 returns the old PQ
        'readq 0x0006010000010800',
        'writeq 0x0006010000010c00 0', // SET_PQ_00
        'writeq 0x0006010000000000 0', // trigger page store: 00 → 10
        'writeq 0x0006010000000000 0', // 10 → 11
        'readq 0x0006010000010800',
        'readq 0x0006010000010000', // load EOI from 11: returns 1, → 10
        'readq 0x0006010000010000', // from 10: returns 0, → 00
        'readq 0x0006010000000800', // load on the trigger page: all ones
        'write 0x200000 0x8 0x0011223344556677',
        'readl 0x200004',
        'endianness',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        'OK 0x0000000000000001',
        'OK 0x0000000000000001',
        'OK 0x0000000000000002',
        'OK',
        'OK',
        'OK',
        'OK 0x0000000000000003',
        'OK 0x0000000000000001',
        'OK 0x0000000000000000',
        'OK 0xffffffffffffffff',
        'OK',
        'OK 0x0000000044556677',
        'OK big',
        '',
      ].join('\n'),
    );
  });

  it('-enable-kvm: the mailbox vCPU runs in KVM_RUN; an HV TIMA page access fails KVM_RUN as QEMU reports it', () => {
    const post = (addr: string, kind: number): string[] => [
      `writeq 0x8010 ${addr}`,
      `writeq 0x8008 0x${kind.toString(16)}`,
      'writeq 0x8000 0x1',
      'readq 0x8000',
      'readq 0x8060',
    ];
    const r = qemu(
      ['-enable-kvm', ...BASE],
      [
        ...post('0x00060302031a0010', 8), // lwz OS ring word 0 (OS page: mapped)
        ...post('0x0006030203190010', 8), // lwz on the HV page: SIGBUS → KVM_RUN -EFAULT
        '',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        ...['OK', 'OK', 'OK', 'OK 0x0000000000000000', 'OK 0x0000000000000000'],
        ...['OK', 'OK', 'OK', 'OK 0x0000000000000001', 'OK 0x0000000000000000'],
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('error: kvm run failed Bad address\n');
  });

  it("QEMU's own access to an ESB page of a source KVM does not know: killed by SIGBUS (exit 135, no reply)", () => {
    const r = qemu(
      ['-accel', 'kvm', ...BASE, '-S'],
      'readq 0x0006010000010800\nreadq 0x0006010000050800\nreadq 0x0\n',
    );
    expect(r.status).toBe(135);
    expect(r.stdout).toBe('OK 0x0000000000000001\n');
    expect(r.stderr).toMatch(
      /^xivelab-qemu: Bus error: QEMU's own access to the KVM XIVE device mapping at 0x[0-9a-f]+ took signal 7 \(QEMU is killed by it\)\n$/,
    );
  });

  it('-M accel=kvm,kernel-irqchip=on and -xivelab-design with an option-1 design are accepted', () => {
    for (const args of [
      ['-M', 'pseries,ic-mode=xive,accel=kvm,kernel-irqchip=on', '-qtest', 'stdio', '-S'],
      ['-accel', 'kvm,kernel-irqchip=on', '-xivelab-design', 'rmap-fixed', '-qtest', 'stdio', '-S'],
      ['-enable-kvm', '-xivelab-design', 'vma-walk', '-qtest', 'stdio', '-S'],
    ]) {
      const r = qemu(args, 'readq 0x0006010000010800\n');
      expect([r.status, r.stdout, r.stderr]).toEqual([0, 'OK 0x0000000000000001\n', '']);
    }
  });

  it.each([
    [
      ['-accel', 'kvm,kernel-irqchip=off'],
      'xivelab-qemu: -accel kvm with kernel-irqchip=off: KVM vCPUs with the XIVE emulated in the VMM are not modelled (use kernel-irqchip=on, or -accel tcg)',
    ],
    [
      ['-enable-kvm', '-M', 'pseries,kernel-irqchip=off'],
      'xivelab-qemu: -accel kvm with kernel-irqchip=off: KVM vCPUs with the XIVE emulated in the VMM are not modelled (use kernel-irqchip=on, or -accel tcg)',
    ],
    [
      ['-xivelab-design', 'rmap'],
      'xivelab-qemu: -xivelab-design rmap: a passthrough-page design needs -accel kvm',
    ],
    [
      ['-enable-kvm', '-xivelab-design', 'qemu-remap'],
      `xivelab-qemu: -xivelab-design qemu-remap: option 3 acts through vfio-pci on passthrough functions, which the qtest front end does not create (it runs ${OPTION_1})`,
    ],
    [
      ['-enable-kvm', '-xivelab-design', 'emulated'],
      'xivelab-qemu: -xivelab-design emulated is the XIVE emulated in the VMM: use -accel tcg',
    ],
    [
      ['-enable-kvm', '-xivelab-design', 'nope'],
      `xivelab-qemu: -xivelab-design nope: unknown design "nope" (known: ${DESIGN_NAMES.join(', ')})`,
    ],
  ])('refuses %j with one line and exit 1', (args, line) => {
    const r = qemu([...args, '-qtest', 'stdio']);
    expect([r.status, r.stdout, r.stderr]).toEqual([1, '', `${line}\n`]);
  });
});

/** A spawned front end: its first stdout line, its exit, what it wrote on stderr. */
interface Running {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  nextLine(): Promise<string>;
  exit(): Promise<[number | null, NodeJS.Signals | null]>;
  stderr(): string;
}

function start(args: string[]): Running {
  const proc = spawn(process.execPath, [bin, 'qtest', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((res) => {
    proc.on('exit', (code, sig) => res([code, sig]));
  });
  return {
    proc,
    lines,
    nextLine: () =>
      lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((res) => waiting.push(res)),
    exit: () => exited,
    stderr: () => err,
  };
}

/** Connect once (no retry): a refused connection fails the test. */
function connectOnce(path: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect(path);
    s.setEncoding('utf8');
    s.once('connect', () => res(s));
    s.once('error', rej);
  });
}

/** Read from `s` until `pred(buffer)` holds; resolves to the buffer. */
function readUntil(s: Socket, pred: (b: string) => boolean): Promise<string> {
  return new Promise((res) => {
    let b = '';
    const on = (d: string): void => {
      b += d;
      if (pred(b)) {
        s.off('data', on);
        res(b);
      }
    };
    s.on('data', on);
  });
}

const lineCount = (n: number) => (b: string) => b.split('\r\n').length > n;

describe('xivelab qtest: monitors, signals, no -qtest (the real entry point)', () => {
  const BASE = ['-M', 'pseries,ic-mode=xive', '-display', 'none', '-nodefaults'];
  let dir = '';
  const procs: ChildProcessWithoutNullStreams[] = [];
  const run = (args: string[]): Running => {
    const r = start(args);
    procs.push(r.proc);
    return r;
  };
  const sock = (name: string): string => {
    dir ||= mkdtempSync(join(tmpdir(), 'xivelab-qtest-e2e-'));
    return join(dir, name);
  };
  afterEach(() => {
    for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  it('-monitor stdio: HMP on stdin/stdout, quit ends it with 0', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', ...BASE, '-S', '-monitor', 'stdio'], {
      input: 'info status\ncont\ninfo status\nsystem_reset\nquit\n',
      encoding: 'utf8',
    });
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(
      [
        "xivelab-qemu (QEMU 7.2 compatible) monitor - type 'help' for more information",
        '(qemu) info status',
        'VM status: paused (prelaunch)',
        '(qemu) cont',
        '(qemu) info status',
        'VM status: running',
        '(qemu) system_reset',
        '(qemu) quit',
        '',
      ].join('\r\n'),
    );
  });

  it('-qtest stdio and -monitor stdio together: refused as QEMU does', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', ...BASE, '-qtest', 'stdio', '-monitor', 'stdio'], {
      encoding: 'utf8',
    });
    expect([r.status, r.stdout, r.stderr]).toEqual([
      1,
      '',
      'xivelab-qemu: cannot use stdio by multiple character devices\n',
    ]);
  });

  it('-qmp unix: listening when the first qtest reply is out; greeting, commands, events, quit', async () => {
    const path = sock('qmp.sock');
    const p = run([...BASE, '-S', '-qtest', 'stdio', '-qmp', `unix:${path},server=on,wait=off`]);
    p.proc.stdin.write('readq 0x0006010000010800\n');
    expect(await p.nextLine()).toBe('OK 0x0000000000000001');
    const s = await connectOnce(path);
    expect(await readUntil(s, lineCount(1))).toBe(
      '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "xivelab-qemu 0.1.0"}, "capabilities": ["oob"]}}\r\n',
    );
    const ask = async (req: string, lines = 1): Promise<string> => {
      s.write(`${req}\n`);
      return (await readUntil(s, lineCount(lines))).replace(/"seconds": \d+, "microseconds": \d+/g, 'T');
    };
    expect(await ask('{"execute": "qmp_capabilities"}')).toBe('{"return": {}}\r\n');
    expect(await ask('{"execute": "query-status"}')).toBe(
      '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}\r\n',
    );
    expect(await ask('{"execute": "cont", "id": 1}', 2)).toBe(
      '{"timestamp": {T}, "event": "RESUME"}\r\n{"return": {}, "id": 1}\r\n',
    );
    expect(
      await ask('{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}'),
    ).toBe('{"return": "VM status: running\\r\\n"}\r\n');
    expect(await ask('{"execute": "system_reset"}', 2)).toBe(
      '{"timestamp": {T}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n{"return": {}}\r\n',
    );
    // qtest still answers after the reset: LISN 0 is back to PQ 01.
    p.proc.stdin.write('readq 0x0006010000010800\n');
    expect(await p.nextLine()).toBe('OK 0x0000000000000001');
    const closed = new Promise<void>((res) => s.on('end', () => res()));
    expect(await ask('{"execute": "quit"}', 2)).toBe(
      '{"timestamp": {T}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n{"return": {}}\r\n',
    );
    await closed;
    expect(await p.exit()).toEqual([0, null]);
    expect(p.stderr()).toBe('');
    expect(existsSync(path)).toBe(false);
  });

  it('-monitor unix: a client connecting as soon as the socket file exists is accepted', async () => {
    const path = sock('mon.sock');
    const p = run([...BASE, '-qtest', 'stdio', '-monitor', `unix:${path},server=on,wait=off`]);
    while (!existsSync(path)) await new Promise((r) => setImmediate(r));
    const s = await connectOnce(path);
    // Bound under a private name and renamed into place once listening: nothing else is left.
    expect(readdirSync(dirname(path))).toEqual(['mon.sock']);
    expect(await readUntil(s, (b) => b.endsWith('(qemu) '))).toBe(
      "xivelab-qemu (QEMU 7.2 compatible) monitor - type 'help' for more information\r\n(qemu) ",
    );
    s.write('quit\n');
    expect(await p.exit()).toEqual([0, null]);
  });

  it("-monitor unix in a missing directory: QEMU 7.2's bind error and exit 1, before any qtest reply", async () => {
    const path = join(sock('missing'), 'mon.sock');
    const p = run([...BASE, '-qtest', 'stdio', '-monitor', `unix:${path},server=on,wait=off`]);
    const message = `xivelab-qemu: -monitor unix:${path},server=on,wait=off: Failed to bind socket to ${path}: No such file or directory\n`;
    expect(await p.exit()).toEqual([1, null]);
    expect(p.stderr()).toBe(message);
    // The drop-in binds its sockets before it loads the front end: the same error, the same code.
    const r = spawnSync(
      process.execPath,
      [qemuBin, ...BASE, '-qtest', 'stdio', '-monitor', `unix:${path},server=on,wait=off`],
      {
        input: 'readl 0x100\n',
        encoding: 'utf8',
      },
    );
    expect([r.status, r.stdout, r.stderr]).toEqual([1, '', message]);
  });

  it('without -qtest it runs as QEMU does until a signal: "terminating on signal 15", exit 0', async () => {
    const path = sock('qmp.sock');
    const p = run([...BASE, '-S', '-qmp', `unix:${path},server=on,wait=off`]);
    while (!existsSync(path)) await new Promise((r) => setTimeout(r, 10));
    const s = await connectOnce(path);
    await readUntil(s, lineCount(1)); // up and serving
    s.write('{"execute": "qmp_capabilities"}\n');
    await readUntil(s, lineCount(1));
    const events = readUntil(s, lineCount(1));
    p.proc.kill('SIGTERM');
    expect((await events).replace(/"seconds": \d+, "microseconds": \d+/, 'T')).toBe(
      '{"timestamp": {T}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}\r\n',
    );
    expect(await p.exit()).toEqual([0, null]);
    expect(p.stderr()).toBe('xivelab-qemu: terminating on signal 15\n');
  });

  it('SIGINT during a qtest session: exit 0 after the replies already given', async () => {
    const p = run([...BASE, '-S', '-qtest', 'stdio']);
    p.proc.stdin.write('endianness\n');
    expect(await p.nextLine()).toBe('OK big');
    p.proc.kill('SIGINT');
    expect(await p.exit()).toEqual([0, null]);
    expect(p.stderr()).toBe('xivelab-qemu: terminating on signal 2\n');
  });
});
