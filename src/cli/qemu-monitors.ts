/**
 * The `xivelab-qemu` monitor sockets (`-monitor unix:…`, `-qmp unix:…`): bound and listening
 * before the machine is built, as QEMU creates its chardevs before machine init; the front end
 * serves their clients once it runs. dist/xivelab-qemu/main.js binds them from the command line
 * before it loads the front end's bundle, so that a client polling for the socket file connects
 * while the rest starts.
 */

import { unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { type MonitorSpec, parseQemuCmdline, type QemuOptions } from '../vmm/qemu-cmdline.ts';

/** A listening monitor socket; its sessions start with the front end. */
export interface MonitorSocket {
  readonly opt: string;
  readonly path: string;
  readonly qmp: boolean;
  readonly server: Server;
}

/**
 * Bind and listen on the unix monitor sockets the options name. A bind error is emitted on the
 * next tick, when the front end runs (its handler reports it) or has given up (ignored).
 */
export function listenMonitors(o: QemuOptions): MonitorSocket[] {
  const specs: [string, MonitorSpec | null, boolean][] = [
    ['-monitor', o.monitor, false],
    ['-qmp', o.qmp, true],
  ];
  const sockets: MonitorSocket[] = [];
  for (const [opt, spec, qmp] of specs) {
    if (spec?.kind !== 'unix') continue;
    try {
      unlinkSync(spec.path); // QEMU's unix_listen_saddr() unlinks a stale socket first
    } catch {
      // none
    }
    const server = createServer();
    server.on('error', () => {});
    // bind() and listen() happen here, synchronously: a client connecting once the socket file
    // exists is accepted.
    server.listen(spec.path);
    sockets.push({ opt, path: spec.path, qmp, server });
  }
  return sockets;
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
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}
