import { describe, expect, test } from 'vitest';
import { Hmp } from '../../../src/vmm/hmp.ts';
import { Qmp, qjson } from '../../../src/vmm/qmp.ts';
import { QemuSystem } from '../../../src/vmm/qtest.ts';

/** A QMP session on a fresh machine; time stands at 1796552180.399208 s. */
function rig(startStopped = false): { sys: QemuSystem; send: (line: string) => string; greeting: string } {
  const sys = new QemuSystem({ smp: 1, ramSize: 2 ** 28, bios: null, startStopped });
  let out = '';
  const qmp = new Qmp(
    sys,
    new Hmp(sys),
    'xivelab-qemu 0.1.0',
    () => 1_796_552_180_399_208,
    (s) => {
      out += s;
    },
  );
  return {
    sys,
    greeting: qmp.greeting(),
    send(line: string): string {
      out = '';
      qmp.feed(`${line}\n`);
      return out;
    },
  };
}

// Every expected line below is what qemu-system-ppc64 7.2.22 sent for the same request
// (timestamps and the greeting's micro / package aside).
describe('QMP', () => {
  test('greeting, negotiation, query-status with and without id', () => {
    const { send, greeting } = rig();
    expect(greeting).toBe(
      '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "xivelab-qemu 0.1.0"}, "capabilities": ["oob"]}}\r\n',
    );
    expect(send('{"execute": "query-status"}')).toBe(
      '{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}\r\n',
    );
    expect(send('{"execute": "qmp_capabilities", "id": 1}')).toBe('{"return": {}, "id": 1}\r\n');
    expect(send('{"execute": "qmp_capabilities"}')).toBe(
      '{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}\r\n',
    );
    expect(send('{"execute": "query-status"}')).toBe(
      '{"return": {"status": "running", "singlestep": false, "running": true}}\r\n',
    );
    expect(send('{"execute": "query-status", "id": "abc", "arguments": {}}')).toBe(
      '{"return": {"status": "running", "singlestep": false, "running": true}, "id": "abc"}\r\n',
    );
  });

  test('malformed requests', () => {
    const { send } = rig();
    send('{"execute": "qmp_capabilities"}');
    const err = (desc: string, cls = 'GenericError'): string =>
      `{"error": {"class": "${cls}", "desc": "${desc}"}}\r\n`;
    expect(send('{"execute": "nope"}')).toBe(err('The command nope has not been found', 'CommandNotFound'));
    expect(send('{"execute": "nope", "id": [1]}')).toBe(
      '{"id": [1], "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}\r\n',
    );
    expect(send('{"execute": "query-status", "arguments": {"x": 1}}')).toBe(
      err("Parameter 'x' is unexpected"),
    );
    expect(send('{"execute": "query-status", "arguments": 5, "id": 2}')).toBe(
      '{"id": 2, "error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}\r\n',
    );
    expect(send('{"foo": 1}')).toBe(err("QMP input member 'foo' is unexpected"));
    expect(send('[1]')).toBe(err('QMP input must be a JSON object'));
    expect(send('{"execute": 1}')).toBe(err("QMP input member 'execute' must be a string"));
    expect(send('{"execute": "human-monitor-command"}')).toBe(err("Parameter 'command-line' is missing"));
    expect(send('{"execute": "human-monitor-command", "arguments": {"command-line": 5}}')).toBe(
      err("Invalid parameter type for 'command-line', expected: string"),
    );
    // Deviation: the parse error's text is JSON.parse's, not QEMU's lexer's.
    expect(send('{bad json')).toMatch(
      /^\{"error": \{"class": "GenericError", "desc": "JSON parse error, .+"\}\}\r\n$/,
    );
  });

  test('stop, cont, system_reset, quit: the event, then the reply', () => {
    const { sys, send } = rig(true);
    send('{"execute": "qmp_capabilities"}');
    const ts = '"timestamp": {"seconds": 1796552180, "microseconds": 399208}';
    expect(send('{"execute": "query-status"}')).toBe(
      '{"return": {"status": "prelaunch", "singlestep": false, "running": false}}\r\n',
    );
    expect(send('{"execute": "cont"}')).toBe(`{${ts}, "event": "RESUME"}\r\n{"return": {}}\r\n`);
    expect(send('{"execute": "stop"}')).toBe(`{${ts}, "event": "STOP"}\r\n{"return": {}}\r\n`);
    expect(send('{"execute": "stop"}')).toBe('{"return": {}}\r\n');
    expect(send('{"execute": "query-status"}')).toBe(
      '{"return": {"status": "paused", "singlestep": false, "running": false}}\r\n',
    );
    expect(send('{"execute": "system_reset"}')).toBe(
      `{${ts}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n{"return": {}}\r\n`,
    );
    expect(
      send(
        '{"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": 0}}',
      ),
    ).toBe('{"return": "VM status: paused (prelaunch)\\r\\n"}\r\n');
    expect(
      send('{"execute": "human-monitor-command", "arguments": {"command-line": "info status extra"}}'),
    ).toBe(
      '{"return": "status: extraneous characters at the end of line\\r\\nTry \\"help info status\\" for more information\\r\\n"}\r\n',
    );
    expect(send('{"execute": "human-monitor-command", "arguments": {"command-line": "bogus"}}')).toBe(
      '{"return": "unknown command: \'bogus\'\\r\\n"}\r\n',
    );
    expect(send('{"execute": "quit", "id": "q"}')).toBe(
      `{${ts}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n{"return": {}, "id": "q"}\r\n`,
    );
    expect(sys.exitCode).toBe(0);
  });

  test('no events before negotiation', () => {
    const { sys, send } = rig();
    sys.stop();
    expect(send('{"execute": "qmp_capabilities"}')).toBe('{"return": {}}\r\n');
  });

  test('qjson: separators, escapes as qobject/qjson.c', () => {
    expect(qjson({ a: [], b: {}, c: [1, true, null] })).toBe('{"a": [], "b": {}, "c": [1, true, null]}');
    expect(qjson('a\u0001\t"\\\r\n/é\u{1f600}')).toBe('"a\\u0001\\t\\"\\\\\\r\\n/\\u00E9\\uD83D\\uDE00"');
  });
});
