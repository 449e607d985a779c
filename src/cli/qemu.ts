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
import { DesignStats } from '../designs/design.ts';
import { DESIGNS } from '../designs/index.ts';
import { createHost, type Host } from '../host/host.ts';
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

/** Passthrough-page designs the front end can run: option 1 (kernel seam only). */
const FRONTEND_DESIGNS = [...DESIGNS.values()].filter((d) => d.option === 1).map((d) => d.name);

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
 */
function unsupported(o: QemuOptions): string | null {
  if (o.accel === 'kvm' && o.kernelIrqchip === 'off') {
    return '-accel kvm with kernel-irqchip=off: KVM vCPUs with the XIVE emulated in the VMM are not modelled (use kernel-irqchip=on, or -accel tcg)';
  }
  if (o.design !== null) {
    const d = DESIGNS.get(o.design);
    if (o.design === 'emulated') {
      if (o.accel === 'kvm')
        return '-xivelab-design emulated is the XIVE emulated in the VMM: use -accel tcg';
      return null;
    }
    if (d === undefined) {
      return `-xivelab-design ${o.design}: unknown design (known: ${[...DESIGNS.keys(), 'emulated'].join(', ')})`;
    }
    if (o.accel !== 'kvm') return `-xivelab-design ${o.design}: a passthrough-page design needs -accel kvm`;
    if (d.option !== 1) {
      return `-xivelab-design ${o.design}: option ${d.option} acts through vfio-pci on passthrough functions, which the qtest front end does not create (it runs ${FRONTEND_DESIGNS.join(', ')})`;
    }
  }
  return null;
}

/** The host a KVM-mode front end runs on: its own, with the design's kernel seam if any. */
function frontendHost(o: QemuOptions): Host {
  const d = o.design !== null ? DESIGNS.get(o.design) : undefined;
  if (d === undefined) return createHost();
  const seam = d.kernelSeam(new DesignStats());
  return createHost(
    seam !== null ? { xiveFlags: d.xiveFlags, xiveRecordMapping: seam } : { xiveFlags: d.xiveFlags },
  );
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
    sys = new QemuSystem({
      smp: o.smp,
      ramSize: o.ramSize,
      bios,
      startStopped: o.startStopped,
      trace,
      ...(o.accel === 'kvm' ? { accel: 'kvm' as const, host: frontendHost(o) } : {}),
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
    sys.onError = (line) => {
      io.stderr.write(`${line}\n`);
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
