/**
 * The `xivelab-qemu` monitor sockets (`-monitor unix:…`, `-qmp unix:…`): bound and listening
 * before the machine is built, as QEMU creates its chardevs before machine init; the front end
 * serves their clients once it runs. dist/xivelab-qemu/main.js binds them from the command line
 * before it loads the front end's bundle, so that a client polling for the socket file connects
 * while the rest starts.
 */

import { existsSync, renameSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { type MonitorSpec, parseQemuCmdline, type QemuOptions } from '../vmm/qemu-cmdline.ts';

/** A listening monitor socket; its sessions start with the front end. */
export interface MonitorSocket {
  readonly opt: string;
  readonly path: string;
  readonly qmp: boolean;
  readonly server: Server;
  /**
   * Why the socket could not be bound, as QEMU reports it (`-monitor unix:…: Failed to bind
   * socket to PATH: No such file or directory`), once the error has come (Node emits a bind
   * error on the next tick); null while none has.
   */
  bindError: string | null;
}

/**
 * The strerror() text of a failed bind(). libuv reports ENOENT as EACCES (for Windows'
 * sake: uv_pipe_bind()); a missing directory is ENOENT again, as QEMU sees it.
 */
function bindFailure(e: NodeJS.ErrnoException, path: string): string {
  if (e.code === 'EACCES' && !existsSync(dirname(path))) return 'No such file or directory';
  const text = e.errno === undefined ? undefined : getSystemErrorMap().get(e.errno)?.[1];
  return text === undefined ? e.message : text.charAt(0).toUpperCase() + text.slice(1);
}

/** bind()'s limit on a socket path: sun_path's 108 bytes less the terminating NUL. */
const SUN_PATH_MAX = 107;

/**
 * Bind and listen on the unix monitor sockets the options name. Each socket is bound under a
 * private name beside its path and renamed into place once it listens: bind() and listen() are
 * two system calls, and a client that connects as soon as the file exists must not find a bound
 * socket that does not listen yet (ECONNREFUSED; QEMU's unix_listen_saddr() leaves that window
 * open). When the private name would not fit in sun_path, the socket is bound at its path
 * directly. A bind error is recorded in `bindError`.
 */
export function listenMonitors(o: QemuOptions): MonitorSocket[] {
  const specs: [string, MonitorSpec | null, boolean][] = [
    ['-monitor', o.monitor, false],
    ['-qmp', o.qmp, true],
  ];
  const sockets: MonitorSocket[] = [];
  for (const [opt, spec, qmp] of specs) {
    if (spec?.kind !== 'unix') continue;
    unlinkQuietly(spec.path); // QEMU's unix_listen_saddr() unlinks a stale socket first
    const server = createServer();
    const sock: MonitorSocket = { opt, path: spec.path, qmp, server, bindError: null };
    const failed = (e: NodeJS.ErrnoException): void => {
      sock.bindError = `${opt} ${spec.arg}: Failed to bind socket to ${spec.path}: ${bindFailure(e, spec.path)}`;
    };
    server.once('error', failed);
    const staged = join(dirname(spec.path), `.xivelab-qemu.${process.pid}.sock`);
    const at = Buffer.byteLength(staged) <= SUN_PATH_MAX ? staged : spec.path;
    if (at !== spec.path) unlinkQuietly(at);
    server.listen(at); // bind() and listen(), synchronously; an error comes on the next tick
    if (at !== spec.path && server.listening) {
      try {
        renameSync(at, spec.path);
      } catch (e) {
        failed(e as NodeJS.ErrnoException);
        server.close();
      }
    }
    sockets.push(sock);
  }
  return sockets;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // none
  }
}

/**
 * The monitor sockets of a command line, listening; none when the front end would not run (an
 * option error, `-help`, `-version`: it reports them itself).
 */
export function listenMonitorsOf(argv: readonly string[]): MonitorSocket[] {
  let o: QemuOptions;
  try {
    o = parseQemuCmdline(argv);
  } catch {
    return [];
  }
  return o.help || o.version ? [] : listenMonitors(o);
}

/** Close the monitor sockets and remove their files. */
export function closeMonitors(sockets: readonly MonitorSocket[]): void {
  for (const { server, path } of sockets) {
    server.close();
    unlinkQuietly(path);
  }
}
