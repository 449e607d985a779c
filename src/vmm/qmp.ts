/**
 * The QMP monitor of `xivelab-qemu` (`-qmp unix:PATH,server=on,wait=off`): QEMU's greeting,
 * capabilities negotiation, and the commands `qmp_capabilities`, `query-status`, `stop`, `cont`,
 * `system_reset`, `quit` and `human-monitor-command` (through {@link Hmp}), with the life-cycle
 * events (`STOP`, `RESUME`, `RESET`, `SHUTDOWN`) sent once negotiation is complete. Replies and
 * events are QEMU's JSON text: `": "` and `", "` separators, members in the order QEMU 7.2
 * prints them, non-ASCII and control characters as `\uXXXX`, each line ending in `\r\n`.
 *
 * Deviation: QEMU's JSON lexer is a stream (a value may span lines, several may share one);
 * here each input line is one JSON value, and a line that does not parse gets one
 * `JSON parse error, …` error reply.
 *
 * @remarks Models monitor/qmp.c:monitor_qmp_dispatch() and qmp_dispatch() (qapi/qmp-dispatch.c:
 * the request checks and their messages), monitor/qmp-cmds-control.c:qmp_qmp_capabilities(),
 * monitor_qmp_capabilities / the greeting of monitor/qmp.c:qmp_greeting(), qmp_query_status(),
 * qmp_system_reset(), qmp_quit() and monitor/hmp.c:qmp_human_monitor_command() of QEMU 7.2.
 */

import type { Hmp } from './hmp.ts';
import { LineSplitter } from './line-splitter.ts';
import type { QemuEvent, QemuSystem } from './qtest.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** QEMU's JSON text of a value (qobject/qjson.c:to_json()). */
export function qjson(v: Json): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (typeof v === 'string') return `"${qjsonString(v)}"`;
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[${v.map(qjson).join(', ')}]`;
  const keys = Object.keys(v);
  return keys.length === 0 ? '{}' : `{${keys.map((k) => `${qjson(k)}: ${qjson(v[k]!)}`).join(', ')}}`;
}

const u4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');

/** to_json()'s short escapes by UTF-16 unit: `"`, backslash, backspace, form feed, LF, CR, tab. */
const ESCAPES: Record<number, string> = {
  34: '\\"',
  92: '\\\\',
  8: '\\b',
  12: '\\f',
  10: '\\n',
  13: '\\r',
  9: '\\t',
};

/**
 * A string's JSON body as to_json() writes it: printable ASCII as is, `"`, backslash and five
 * control characters with their short escapes, every other UTF-16 unit as `\uXXXX` (a code
 * point above U+FFFF as its surrogate pair, which is its two units). Runs of plain characters
 * are copied as slices: a character at a time, a 30 MB `human-monitor-command` took seconds of
 * garbage collection.
 */
function qjsonString(v: string): string {
  let s = '';
  let from = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) continue;
    s += `${v.slice(from, i)}${ESCAPES[c] ?? `\\u${u4(c)}`}`;
    from = i + 1;
  }
  return from === 0 ? v : s + v.slice(from);
}

class QmpError extends Error {
  readonly cls: 'GenericError' | 'CommandNotFound';
  constructor(cls: 'GenericError' | 'CommandNotFound', desc: string) {
    super(desc);
    this.cls = cls;
  }
}

const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export class Qmp {
  readonly sys: QemuSystem;
  private readonly hmp: Hmp;
  private readonly pkg: string;
  /** Wall-clock microseconds since the epoch, for event timestamps. */
  private readonly nowUs: () => number;
  private readonly out: (s: string) => void;
  private readonly lines = new LineSplitter(/\n/g);
  /** Capabilities negotiated (`qmp_capabilities` done): commands and events flow. */
  private commandMode: boolean;
  private readonly listener: (e: QemuEvent) => void;

  /**
   * @param pkg the greeting's `package` string.
   * @param out receives every line for the client (replies and events, `\r\n` ended).
   */
  constructor(sys: QemuSystem, hmp: Hmp, pkg: string, nowUs: () => number, out: (s: string) => void) {
    this.sys = sys;
    this.hmp = hmp;
    this.pkg = pkg;
    this.nowUs = nowUs;
    this.out = out;
    this.commandMode = false;
    this.listener = (e) => {
      if (this.commandMode) this.event(e);
    };
    sys.eventListeners.add(this.listener);
  }

  /** The greeting a new connection receives first. */
  greeting(): string {
    return `${qjson({
      QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: this.pkg }, capabilities: ['oob'] },
    })}\r\n`;
  }

  /** The client went away: no more events. */
  close(): void {
    this.sys.eventListeners.delete(this.listener);
  }

  /** Feed client bytes; every complete line is one request. */
  feed(chunk: string): void {
    this.lines.push(chunk, (text) => {
      const line = text.trim();
      if (line !== '') this.request(line);
      return this.sys.exitCode === null;
    });
  }

  private event(e: QemuEvent): void {
    const t = this.nowUs();
    const msg: { [k: string]: Json } = {
      timestamp: { seconds: Math.floor(t / 1e6), microseconds: Math.floor(t % 1e6) },
      event: e.event,
    };
    if (e.data !== null) msg.data = { guest: e.data.guest, reason: e.data.reason };
    this.out(`${qjson(msg)}\r\n`);
  }

  private request(line: string): void {
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch (e) {
      this.out(
        `${qjson({ error: { class: 'GenericError', desc: `JSON parse error, ${(e as Error).message}` } })}\r\n`,
      );
      return;
    }
    const id = isObject(req) ? req.id : undefined;
    try {
      const ret = this.dispatch(req);
      this.out(`${qjson(id === undefined ? { return: ret } : { return: ret, id })}\r\n`);
    } catch (e) {
      if (!(e instanceof QmpError)) throw e;
      const error = { class: e.cls, desc: e.message };
      this.out(`${qjson(id === undefined ? { error } : { id, error })}\r\n`);
    }
  }

  private dispatch(req: unknown): Json {
    if (!isObject(req)) throw new QmpError('GenericError', 'QMP input must be a JSON object');
    for (const k of Object.keys(req)) {
      if (k !== 'execute' && k !== 'arguments' && k !== 'id' && k !== 'exec-oob') {
        throw new QmpError('GenericError', `QMP input member '${k}' is unexpected`);
      }
    }
    const cmd = req.execute;
    if (cmd === undefined) throw new QmpError('GenericError', "QMP input lacks member 'execute'");
    if (typeof cmd !== 'string')
      throw new QmpError('GenericError', "QMP input member 'execute' must be a string");
    const args = req.arguments ?? {};
    if (!isObject(args)) throw new QmpError('GenericError', "QMP input member 'arguments' must be an object");
    if (!this.commandMode) {
      if (cmd !== 'qmp_capabilities') {
        throw new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
      }
      only(args, []);
      this.commandMode = true;
      return {};
    }
    switch (cmd) {
      case 'qmp_capabilities':
        throw new QmpError(
          'CommandNotFound',
          'Capabilities negotiation is already complete, command ignored',
        );
      case 'query-status': {
        only(args, []);
        const status = this.sys.runState;
        return { status, singlestep: false, running: status === 'running' };
      }
      case 'stop':
        only(args, []);
        this.sys.stop();
        return {};
      case 'cont': {
        only(args, []);
        const err = this.sys.cont();
        if (err !== null) throw new QmpError('GenericError', err);
        return {};
      }
      case 'system_reset':
        only(args, []);
        this.sys.systemReset();
        return {};
      case 'quit':
        only(args, []);
        this.sys.quit();
        return {};
      case 'human-monitor-command': {
        only(args, ['command-line', 'cpu-index']);
        const line = args['command-line'];
        if (line === undefined) throw new QmpError('GenericError', "Parameter 'command-line' is missing");
        if (typeof line !== 'string') {
          throw new QmpError('GenericError', "Invalid parameter type for 'command-line', expected: string");
        }
        return this.hmp.execute(line).replace(/\n/g, '\r\n');
      }
      default:
        throw new QmpError('CommandNotFound', `The command ${cmd} has not been found`);
    }
  }
}

/** Refuse any argument not in `allowed` (the QAPI visitor's check). */
function only(args: Record<string, Json>, allowed: readonly string[]): void {
  for (const k of Object.keys(args)) {
    if (!allowed.includes(k)) throw new QmpError('GenericError', `Parameter '${k}' is unexpected`);
  }
}
