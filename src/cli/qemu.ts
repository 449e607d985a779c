/**
 * `xivelab-qemu`: a `qemu-system-ppc64` look-alike over the xivelab sPAPR machine, so that the
 * QEMU oracle's driver (`QEMU=xivelab-qemu python3 xq.py`) and the differential suite drive
 * xivelab exactly as they drive QEMU 7.2: qtest on stdin/stdout, HMP (`-monitor`) and QMP
 * (`-qmp`) on a unix socket or stdio, guest errors to `-D`. Also reachable as `xivelab qtest …`
 * through {@link runQemuFrontend}.
 *
 * As QEMU, the process runs until `quit` (HMP or QMP), a fatal machine error or a signal
 * (SIGINT, SIGTERM, SIGHUP: `terminating on signal N`, exit 0) — also with no `-qtest` at all.
 * Deviation: the end of stdin (`-qtest stdio`, `-monitor stdio`, `-qmp stdio`) ends the process
 * with exit 0; QEMU 7.2 logs `CLOSED` and keeps running until killed.
 *
 * Start-up: the KVM host model and the passthrough designs are imported only for `-accel kvm`,
 * and every listening socket is bound and listening before the first stdio byte is read.
 */

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Host } from '../host/host.ts';
import { TRACE_GUEST_ERROR, type TraceSink } from '../sim/trace-sink.ts';
import { Hmp } from '../vmm/hmp.ts';
import {
  type MonitorSpec,
  parseQemuCmdline,
  QEMU_HELP,
  QemuCmdlineError,
  type QemuOptions,
} from '../vmm/qemu-cmdline.ts';
import { Qmp } from '../vmm/qmp.ts';
import { QemuSystem, QtestServer } from '../vmm/qtest.ts';

export const XIVELAB_QEMU_VERSION = 'xivelab-qemu 0.1.0 (QEMU emulator version 7.2 compatible)';

/** The `package` string of the QMP greeting. */
const XIVELAB_QEMU_PACKAGE = 'xivelab-qemu 0.1.0';

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

/**
 * Refuse what the options select but the model does not have (one line each).
 *
 * KVM (`-accel kvm`, `-enable-kvm`, `-M accel=kvm`): the machine's KVM mode has the in-kernel
 * XIVE only. QEMU's pseries default, `kernel-irqchip` "allowed", takes the in-kernel XIVE when
 * KVM offers it — and the modelled host always does — so no option and `kernel-irqchip=on`
 * (required) both select it; `kernel-irqchip=off` (KVM vCPUs, XIVE emulated in QEMU) is
 * refused. Under TCG `kernel-irqchip` is a property of the kvm accelerator only and QEMU
 * ignores it.
 *
 * `-xivelab-design NAME`: the option-1 designs (their kernel seam and flags go into the host's
 * KVM). Options 2–4 act through QEMU's vfio-pci on passthrough functions, which this front end
 * does not create; `emulated` is `-accel tcg`.
 *
 * Returns the error line, or the host a KVM-mode machine runs on (its own, with the design's
 * kernel seam if any; null under TCG). The designs and the host model are imported here, only
 * when the options name them.
 */
async function frontendHost(o: QemuOptions): Promise<string | Host | null> {
  if (o.accel === 'kvm' && o.kernelIrqchip === 'off') {
    return '-accel kvm with kernel-irqchip=off: KVM vCPUs with the XIVE emulated in the VMM are not modelled (use kernel-irqchip=on, or -accel tcg)';
  }
  if (o.design === null && o.accel !== 'kvm') return null;
  const [{ DESIGNS, findDesign, unknownDesign }, { DesignStats }, { createHost }] = await Promise.all([
    import('../designs/index.ts'),
    import('../designs/design.ts'),
    import('../host/host.ts'),
  ]);
  if (o.design === null) return createHost();
  const d = findDesign(o.design);
  if (d === undefined) return `-xivelab-design ${o.design}: ${unknownDesign(o.design)}`;
  if (d.accel === 'emulated') {
    return o.accel === 'kvm'
      ? `-xivelab-design ${o.design} is the XIVE emulated in the VMM: use -accel tcg`
      : null;
  }
  if (o.accel !== 'kvm') return `-xivelab-design ${o.design}: a passthrough-page design needs -accel kvm`;
  if (d.option !== 1) {
    const option1 = DESIGNS.filter((x) => x.option === 1).map((x) => x.name);
    return `-xivelab-design ${o.design}: option ${d.option} acts through vfio-pci on passthrough functions, which the qtest front end does not create (it runs ${option1.join(', ')})`;
  }
  const seam = d.kernelSeam(new DesignStats());
  return createHost(
    seam !== null ? { xiveFlags: d.xiveFlags, xiveRecordMapping: seam } : { xiveFlags: d.xiveFlags },
  );
}

/** Signals that end QEMU cleanly (`qemu_system_killed()`: exit 0 after `terminating on signal N`). */
const TERM_SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

/**
 * Run the front end with QEMU's argv (without the program name) until `quit`, the end of the
 * stdio input, a terminating signal or a fatal machine error. Resolves to the exit code.
 */
export async function runQemuFrontend(
  argv: readonly string[],
  io: QemuFrontendIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const fail = (msg: string): number => {
    io.stderr.write(`${PROG}: ${msg}\n`);
    return 1;
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
    return 0;
  }
  if (o.version) {
    io.stdout.write(`${XIVELAB_QEMU_VERSION}\n`);
    return 0;
  }
  const host = await frontendHost(o);
  if (typeof host === 'string') return fail(host);

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
    sys = new QemuSystem({
      smp: o.smp,
      ramSize: o.ramSize,
      bios,
      startStopped: o.startStopped,
      trace,
      ...(host !== null ? { accel: 'kvm' as const, host } : {}),
    });
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
    /** qtest output (replies, IRQ lines a monitor command produced) goes out in order. */
    const flush = (): void => {
      if (out.length === 0) return;
      io.stdout.write(out.join(''));
      out = [];
    };
    const servers: { server: Server; path: string }[] = [];
    const clients = new Set<Socket>();
    const sessions = new Set<Qmp>();
    // As QEMU, run until told to stop — also with nothing on stdio and no monitor.
    const keepAlive = setInterval(() => {}, 2 ** 30);
    const onSignal = (name: keyof typeof TERM_SIGNALS): void => {
      io.stderr.write(`${PROG}: terminating on signal ${TERM_SIGNALS[name]}\n`);
      sys.quit('host-signal');
    };
    const signalHandlers = Object.keys(TERM_SIGNALS).map((name) => {
      const h = (): void => onSignal(name as keyof typeof TERM_SIGNALS);
      process.on(name, h);
      return [name, h] as const;
    });
    let stdioUser: ((d: string) => void) | null = null;
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      flush();
      clearInterval(keepAlive);
      for (const [name, h] of signalHandlers) process.removeListener(name, h);
      for (const q of sessions) q.close();
      for (const c of clients) c.end();
      for (const { server, path } of servers) {
        server.close();
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }
      if (stdioUser !== null) {
        io.stdin.removeAllListeners('data');
        (io.stdin as NodeJS.ReadStream).pause?.();
        (io.stdin as NodeJS.ReadStream).destroy?.();
      }
      if (logFd >= 0) closeSync(logFd);
      done(code);
    };
    sys.onError = (line) => {
      io.stderr.write(`${line}\n`);
    };
    sys.onExit = (code, message) => {
      if (message !== null) io.stderr.write(`${PROG}: ${message}\n`);
      // The reply of the command that ended the process (QMP `quit`) is written first.
      setImmediate(() => finish(code));
    };

    /** A monitor session: bytes in, replies out through `write`. */
    const hmpSession = (write: (s: string) => void): ((d: string) => void) => {
      const hmp = new Hmp(sys);
      write(hmp.banner());
      return (d) => {
        const reply = hmp.feed(d);
        flush(); // IRQ lines a reset may have produced
        if (reply !== '') write(reply);
      };
    };
    const qmpSession = (write: (s: string) => void): { feed: (d: string) => void; qmp: Qmp } => {
      const qmp = new Qmp(
        sys,
        new Hmp(sys),
        XIVELAB_QEMU_PACKAGE,
        () => Math.floor((performance.timeOrigin + performance.now()) * 1000),
        write,
      );
      sessions.add(qmp);
      write(qmp.greeting());
      return {
        qmp,
        feed: (d) => {
          qmp.feed(d);
          flush();
        },
      };
    };
    const listen = (opt: string, spec: MonitorSpec & { kind: 'unix' }, qmp: boolean): void => {
      try {
        unlinkSync(spec.path); // QEMU's unix_listen_saddr() unlinks a stale socket first
      } catch {
        // none
      }
      const server = createServer((sock) => {
        clients.add(sock);
        sock.setEncoding('utf8');
        const write = (s: string): void => {
          if (!sock.destroyed) sock.write(s);
        };
        if (qmp) {
          const { qmp: q, feed } = qmpSession(write);
          sock.on('data', feed);
          sock.on('close', () => {
            q.close();
            sessions.delete(q);
          });
        } else {
          sock.on('data', hmpSession(write));
        }
        sock.on('close', () => clients.delete(sock));
        sock.on('error', () => clients.delete(sock));
      });
      server.on('error', (e) => {
        io.stderr.write(`${PROG}: ${opt} unix:${spec.path}: ${e.message}\n`);
        finish(1);
      });
      // bind() and listen() happen here, synchronously: a client connecting once the first
      // qtest reply is out (or the socket file exists) is accepted.
      server.listen(spec.path);
      servers.push({ server, path: spec.path });
    };
    if (o.monitor?.kind === 'unix') listen('-monitor', o.monitor, false);
    if (o.qmp?.kind === 'unix') listen('-qmp', o.qmp, true);

    stdioUser =
      o.qtest === 'stdio'
        ? (d) => {
            qtest.feed(d);
            flush();
          }
        : o.monitor?.kind === 'stdio'
          ? hmpSession((s) => io.stdout.write(s))
          : o.qmp?.kind === 'stdio'
            ? qmpSession((s) => io.stdout.write(s)).feed
            : null;
    if (stdioUser !== null) {
      io.stdin.setEncoding('utf8');
      io.stdin.on('data', (d: string) => {
        if (sys.exitCode === null) stdioUser(d);
      });
      io.stdin.on('end', () => finish(0));
    }
  });
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) process.exitCode = await runQemuFrontend(process.argv.slice(2));
