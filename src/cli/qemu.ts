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
 * Start-up: the KVM host model and the passthrough designs are imported only for `-accel kvm`;
 * the monitor sockets are bound and listening before the machine is built (as QEMU creates its
 * chardevs before machine init: a client connecting meanwhile is served once the machine is up),
 * so before the first stdio byte is read.
 */

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import type { Host } from '../host/host.ts';
import { TRACE_GUEST_ERROR, type TraceSink } from '../sim/trace-sink.ts';
import { Hmp } from '../vmm/hmp.ts';
import { parseQemuCmdline, QEMU_HELP, QemuCmdlineError, type QemuOptions } from '../vmm/qemu-cmdline.ts';
import { Qmp } from '../vmm/qmp.ts';
import { QemuSystem, QtestServer } from '../vmm/qtest.ts';
import { closeMonitors, listenMonitors, type MonitorSocket } from './qemu-monitors.ts';

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

/** What the front end opens before it serves: the machine, the `-D` log's fd (or -1), the qtest log. */
interface OpenedMachine {
  readonly sys: QemuSystem;
  readonly logFd: number;
  readonly qlog: ((s: string) => void) | null;
}

/**
 * Load the bios, open the `-D` and `-qtest-log` files and build the machine, in that order, as
 * the options say; returns the machine or the error line of the first step that failed.
 */
function openMachine(o: QemuOptions, io: QemuFrontendIo, host: Host | null): OpenedMachine | string {
  let bios: Uint8Array | null = null;
  if (o.bios !== null) {
    try {
      bios = new Uint8Array(readFileSync(o.bios));
    } catch {
      return `could not load PowerPC bios '${o.bios}'`;
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
    return `-D ${o.logFile}: ${(e as Error).message}`;
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
    return `-qtest-log ${o.qtestLog}: ${(e as Error).message}`;
  }

  try {
    const sys = new QemuSystem({
      smp: o.smp,
      ramSize: o.ramSize,
      bios,
      startStopped: o.startStopped,
      trace,
      ...(host !== null ? { accel: 'kvm' as const, host } : {}),
    });
    return { sys, logFd, qlog };
  } catch (e) {
    if (e instanceof RangeError) return e.message;
    throw e;
  }
}

/**
 * The running front end: the qtest server, the monitor sockets and their sessions, the stdio
 * user, and the tear-down when the machine exits, stdin ends or a signal arrives.
 */
class RunningFrontend {
  private readonly sys: QemuSystem;
  private readonly io: QemuFrontendIo;
  private readonly logFd: number;
  private readonly done: (code: number) => void;
  /** qtest output not yet written (replies, IRQ lines a monitor command produced). */
  private out: string[] = [];
  private readonly qtest: QtestServer;
  private monitors: readonly MonitorSocket[] = [];
  private readonly clients = new Set<Socket>();
  private readonly sessions = new Set<Qmp>();
  private readonly keepAlive: ReturnType<typeof setInterval>;
  private readonly signalHandlers: (readonly [string, () => void])[];
  private stdioUser: ((d: string) => void) | null = null;
  private finished = false;

  constructor(opened: OpenedMachine, io: QemuFrontendIo, done: (code: number) => void) {
    this.sys = opened.sys;
    this.io = io;
    this.logFd = opened.logFd;
    this.done = done;
    const t0 = performance.now();
    this.qtest = new QtestServer(
      this.sys,
      (s) => this.out.push(s),
      opened.qlog,
      () => (performance.now() - t0) / 1000,
    );
    // As QEMU, run until told to stop — also with nothing on stdio and no monitor.
    this.keepAlive = setInterval(() => {}, 2 ** 30);
    this.signalHandlers = Object.keys(TERM_SIGNALS).map((name) => {
      const h = (): void => this.onSignal(name as keyof typeof TERM_SIGNALS);
      process.on(name, h);
      return [name, h] as const;
    });
  }

  /** Hook the machine's exit, serve the monitor sockets, then read stdio. */
  start(o: QemuOptions, monitors: readonly MonitorSocket[]): void {
    this.sys.onError = (line) => {
      this.io.stderr.write(`${line}\n`);
    };
    this.sys.onExit = (code, message) => {
      if (message !== null) this.io.stderr.write(`${PROG}: ${message}\n`);
      // The reply of the command that ended the process (QMP `quit`) is written first.
      setImmediate(() => this.finish(code));
    };
    this.monitors = monitors;
    for (const m of monitors) this.serve(m);
    const user = this.stdioUserOf(o);
    this.stdioUser = user;
    if (user !== null) {
      this.io.stdin.setEncoding('utf8');
      this.io.stdin.on('data', (d: string) => {
        if (this.sys.exitCode === null) user(d);
      });
      this.io.stdin.on('end', () => this.finish(0));
    }
  }

  private onSignal(name: keyof typeof TERM_SIGNALS): void {
    this.io.stderr.write(`${PROG}: terminating on signal ${TERM_SIGNALS[name]}\n`);
    this.sys.quit('host-signal');
  }

  /** qtest output goes out in order. */
  private flush(): void {
    if (this.out.length === 0) return;
    this.io.stdout.write(this.out.join(''));
    this.out = [];
  }

  /** Close everything the front end opened and resolve with `code` (once). */
  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.flush();
    clearInterval(this.keepAlive);
    for (const [name, h] of this.signalHandlers) process.removeListener(name, h);
    for (const q of this.sessions) q.close();
    for (const c of this.clients) c.end();
    closeMonitors(this.monitors);
    if (this.stdioUser !== null) {
      this.io.stdin.removeAllListeners('data');
      (this.io.stdin as NodeJS.ReadStream).pause?.();
      (this.io.stdin as NodeJS.ReadStream).destroy?.();
    }
    if (this.logFd >= 0) closeSync(this.logFd);
    this.done(code);
  }

  /** Who reads stdio: the qtest protocol, an HMP monitor, a QMP monitor, or nobody. */
  private stdioUserOf(o: QemuOptions): ((d: string) => void) | null {
    const write = (s: string): void => {
      this.io.stdout.write(s);
    };
    if (o.qtest === 'stdio') {
      return (d) => {
        this.qtest.feed(d);
        this.flush();
      };
    }
    if (o.monitor?.kind === 'stdio') return this.hmpSession(write);
    if (o.qmp?.kind === 'stdio') return this.qmpSession(write).feed;
    return null;
  }

  /** A monitor session: bytes in, replies out through `write`. */
  private hmpSession(write: (s: string) => void): (d: string) => void {
    const hmp = new Hmp(this.sys);
    write(hmp.banner());
    return (d) => {
      const reply = hmp.feed(d);
      this.flush(); // IRQ lines a reset may have produced
      if (reply !== '') write(reply);
    };
  }

  private qmpSession(write: (s: string) => void): { feed: (d: string) => void; qmp: Qmp } {
    const qmp = new Qmp(
      this.sys,
      new Hmp(this.sys),
      XIVELAB_QEMU_PACKAGE,
      () => Math.floor((performance.timeOrigin + performance.now()) * 1000),
      write,
    );
    this.sessions.add(qmp);
    write(qmp.greeting());
    return {
      qmp,
      feed: (d) => {
        qmp.feed(d);
        this.flush();
      },
    };
  }

  /** A client on a monitor socket: an HMP or a QMP session of its own. */
  private accept(sock: Socket, qmp: boolean): void {
    this.clients.add(sock);
    sock.setEncoding('utf8');
    const write = (s: string): void => {
      if (!sock.destroyed) sock.write(s);
    };
    if (qmp) {
      const { qmp: q, feed } = this.qmpSession(write);
      sock.on('data', feed);
      sock.on('close', () => {
        q.close();
        this.sessions.delete(q);
      });
    } else {
      sock.on('data', this.hmpSession(write));
    }
    sock.on('close', () => this.clients.delete(sock));
    sock.on('error', () => this.clients.delete(sock));
  }

  /** Serve a monitor (`-monitor` or `-qmp`) on its listening unix socket. */
  private serve({ opt, path, qmp, server }: MonitorSocket): void {
    server.on('connection', (sock: Socket) => this.accept(sock, qmp));
    server.on('error', (e) => {
      this.io.stderr.write(`${PROG}: ${opt} unix:${path}: ${e.message}\n`);
      this.finish(1);
    });
  }
}

/**
 * Run the front end with QEMU's argv (without the program name) until `quit`, the end of the
 * stdio input, a terminating signal or a fatal machine error. Resolves to the exit code.
 * `listening`: the monitor sockets already bound for this command line (`listenMonitorsOf()` of
 * ./qemu-monitors.ts); by default the front end binds them before building the machine.
 */
export async function runQemuFrontend(
  argv: readonly string[],
  io: QemuFrontendIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
  listening: readonly MonitorSocket[] | null = null,
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
  if (typeof host === 'string') {
    closeMonitors(listening ?? []);
    return fail(host);
  }
  const monitors = listening ?? listenMonitors(o);
  // A bind error comes on the next tick; QEMU's chardevs fail before the machine is built.
  await new Promise<void>((r) => process.nextTick(r));
  const bindError = monitors.find((m) => m.bindError !== null)?.bindError;
  if (bindError !== undefined && bindError !== null) {
    closeMonitors(monitors);
    return fail(bindError);
  }
  const opened = openMachine(o, io, host);
  if (typeof opened === 'string') {
    closeMonitors(monitors);
    return fail(opened);
  }
  return new Promise<number>((done) => new RunningFrontend(opened, io, done).start(o, monitors));
}

// No top-level await: scripts/bundle-qemu.mjs bundles this module as CommonJS.
const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename;
if (isMain) {
  void runQemuFrontend(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
