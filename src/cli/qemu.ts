/**
 * `xivelab-qemu`: a `qemu-system-ppc64` look-alike over the xivelab sPAPR machine, so that the
 * QEMU oracle's driver (`QEMU=xivelab-qemu python3 xq.py`) and the differential suite drive
 * xivelab exactly as they drive QEMU 7.2: qtest on stdin/stdout, HMP on a unix socket, guest
 * errors to `-D`. Also reachable as `xivelab qtest …` through {@link runQemuFrontend}.
 */

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRACE_GUEST_ERROR, type TraceSink } from '../hw/trace-sink.ts';
import { Hmp } from '../vmm/hmp.ts';
import { parseQemuCmdline, QEMU_HELP, QemuCmdlineError, type QemuOptions } from '../vmm/qemu-cmdline.ts';
import { QemuSystem, QtestServer } from '../vmm/qtest.ts';

export const XIVELAB_QEMU_VERSION = 'xivelab-qemu 0.1.0 (QEMU emulator version 7.2 compatible)';

export interface QemuFrontendIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

const PROG = 'xivelab-qemu';

/** A file the front end appends lines to (`-D`, `-qtest-log`); `/dev/null` costs nothing. */
function openLog(path: string): ((s: string) => void) | null {
  if (path === '/dev/null') return null;
  const fd = openSync(path, 'w');
  return (s) => {
    writeSync(fd, s);
  };
}

/** Refuse what the options select but the model does not have yet (one line each). */
function unsupported(o: QemuOptions): string | null {
  if (o.accel === 'kvm') return '-accel kvm: the KVM mode is not modelled yet (use tcg)';
  if (o.kernelIrqchip === 'on') return '-M kernel-irqchip=on: needs the KVM mode, not modelled yet';
  if (o.design !== null) return `-xivelab-design ${o.design}: designs need the KVM mode, not modelled yet`;
  return null;
}

/**
 * Run the front end with QEMU's argv (without the program name) until `quit`, the end of the
 * qtest input or a fatal machine error. Resolves to the exit code.
 */
export function runQemuFrontend(
  argv: readonly string[],
  io: QemuFrontendIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const fail = (msg: string): Promise<number> => {
    io.stderr.write(`${PROG}: ${msg}\n`);
    return Promise.resolve(1);
  };
  let o: QemuOptions;
  try {
    o = parseQemuCmdline(argv);
  } catch (e) {
    if (e instanceof QemuCmdlineError) return fail(e.message);
    throw e;
  }
  if (o.help) {
    io.stdout.write(QEMU_HELP);
    return Promise.resolve(0);
  }
  if (o.version) {
    io.stdout.write(`${XIVELAB_QEMU_VERSION}\n`);
    return Promise.resolve(0);
  }
  const why = unsupported(o);
  if (why !== null) return fail(why);

  let bios: Uint8Array | null = null;
  if (o.bios !== null) {
    try {
      bios = new Uint8Array(readFileSync(o.bios));
    } catch {
      return fail(`could not load PowerPC bios '${o.bios}'`);
    }
  }

  let logLine: (s: string) => void = (s) => io.stderr.write(s);
  let logFd = -1;
  try {
    if (o.logFile !== null) {
      logFd = openSync(o.logFile, 'w');
      const fd = logFd;
      logLine = (s) => {
        writeSync(fd, s);
      };
    }
  } catch (e) {
    return fail(`-D ${o.logFile}: ${(e as Error).message}`);
  }
  const guestErrors = o.logItems.includes('guest_errors');
  const trace: TraceSink = {
    mask: guestErrors ? TRACE_GUEST_ERROR : 0,
    emit() {},
    guestError: guestErrors ? (msg) => logLine(`${msg}\n`) : () => {},
  };

  let qlog: ((s: string) => void) | null = null;
  try {
    if (o.qtestLog !== null) qlog = openLog(o.qtestLog);
  } catch (e) {
    return fail(`-qtest-log ${o.qtestLog}: ${(e as Error).message}`);
  }

  let sys: QemuSystem;
  try {
    sys = new QemuSystem({ smp: o.smp, ramSize: o.ramSize, bios, startStopped: o.startStopped, trace });
  } catch (e) {
    if (e instanceof RangeError) return fail(e.message);
    throw e;
  }

  return new Promise<number>((done) => {
    const t0 = performance.now();
    let out: string[] = [];
    const qtest = new QtestServer(
      sys,
      (s) => out.push(s),
      qlog,
      () => (performance.now() - t0) / 1000,
    );
    const flush = (): void => {
      if (out.length === 0) return;
      io.stdout.write(out.join(''));
      out = [];
    };
    let server: Server | null = null;
    const clients = new Set<Socket>();
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      flush();
      for (const c of clients) c.destroy();
      if (server) {
        server.close();
        try {
          unlinkSync(o.monitor!.path);
        } catch {
          // already gone
        }
      }
      if (o.qtest === 'stdio') {
        io.stdin.removeAllListeners('data');
        (io.stdin as NodeJS.ReadStream).pause?.();
        (io.stdin as NodeJS.ReadStream).destroy?.();
      }
      if (logFd >= 0) closeSync(logFd);
      done(code);
    };
    sys.onExit = (code, message) => {
      if (message !== null) io.stderr.write(`${PROG}: ${message}\n`);
      finish(code);
    };

    if (o.monitor !== null) {
      const path = o.monitor.path;
      try {
        unlinkSync(path); // QEMU's unix_listen_saddr() unlinks a stale socket first
      } catch {
        // none
      }
      server = createServer((sock) => {
        clients.add(sock);
        sock.setEncoding('utf8');
        const hmp = new Hmp(sys);
        sock.write(hmp.banner());
        sock.on('data', (d: string) => {
          const reply = hmp.feed(d);
          flush(); // IRQ lines a reset may have produced
          if (reply !== '') sock.write(reply);
        });
        sock.on('close', () => clients.delete(sock));
        sock.on('error', () => clients.delete(sock));
      });
      server.on('error', (e) => {
        io.stderr.write(`${PROG}: -monitor unix:${path}: ${e.message}\n`);
        finish(1);
      });
      server.listen(path);
    }

    if (o.qtest === 'stdio') {
      io.stdin.setEncoding('utf8');
      io.stdin.on('data', (d: string) => {
        qtest.feed(d);
        flush();
      });
      io.stdin.on('end', () => finish(0));
    }
  });
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) process.exitCode = await runQemuFrontend(process.argv.slice(2));
