import { describe, expect, test } from 'vitest';
import { Word64 } from '../../../src/hw/mmio.ts';
import { HMP_PROMPT, Hmp } from '../../../src/vmm/hmp.ts';
import { QemuSystem } from '../../../src/vmm/qtest.ts';

const MGMT_1000 = 0x0006_0100_0000_0000 + 0x1000 * 0x2_0000 + 0x1_0000;

function rig(startStopped = false) {
  const sys = new QemuSystem({ smp: 2, ramSize: 2 ** 28, bios: null, startStopped });
  return { sys, hmp: new Hmp(sys) };
}

describe('Hmp', () => {
  test('banner ends with the prompt; a command is echoed, answered with CRLF and prompted', () => {
    const { hmp } = rig();
    expect(hmp.banner().endsWith(`\r\n${HMP_PROMPT}`)).toBe(true);
    expect(hmp.feed('bogus\n')).toBe("bogus\r\nunknown command: 'bogus'\r\n(qemu) ");
    expect(hmp.feed('\n')).toBe('\r\n(qemu) ');
    expect(hmp.feed('info fo')).toBe('');
    // `\r\n` is two Enters, as QEMU 7.2's readline takes it: the command, then an empty line.
    expect(hmp.feed('o\r\n')).toBe("info foo\r\nunknown command: 'info foo'\r\n(qemu) \r\n(qemu) ");
    expect(hmp.feed('system_reset extra\n')).toBe(
      'system_reset extra\r\nsystem_reset: extraneous characters at the end of line\r\nTry "help system_reset" for more information\r\n(qemu) ',
    );
  });

  test('info pic: every vCPU ring, the LISN table, the irqchip line (QEMU 7.2 layout)', () => {
    const { hmp } = rig();
    const out = hmp.execute('info pic');
    const lines = out.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      'CPU[0000]:   QW   NSR CPPR IPB LSMFB ACK# INC AGE PIPR  W2',
      'CPU[0000]: USER    00   00  00    00   00  00  00   00  00000000',
      'CPU[0000]:   OS    00   00  00    ff   ff  00  ff   ff  80000400',
      'CPU[0000]: POOL    00   00  00    00   00  00  00   00  00000000',
      'CPU[0000]: PHYS    00   00  00    00   00  00  00   ff  00000000',
    ]);
    expect(lines[7]).toBe('CPU[0001]:   OS    00   00  00    ff   ff  00  ff   ff  80000401');
    expect(lines.slice(10)).toEqual([
      '  LISN         PQ    EISN     CPU/PRIO EQ',
      '  00000000 MSI -Q  M 00000000 ',
      '  00000001 MSI -Q  M 00000000 ',
      '  00001000 MSI -Q  M 00000000 ',
      '  00001001 MSI -Q  M 00000000 ',
      '  00001100 MSI -Q  M 00000000 ',
      '  00001200 LSI -Q  M 00000000 ',
      '  00001201 LSI -Q  M 00000000 ',
      '  00001202 LSI -Q  M 00000000 ',
      '  00001203 LSI -Q  M 00000000 ',
      'irqchip: emulated',
      '',
    ]);
  });

  test('system_reset resets the sources (PQ back to 01)', () => {
    const { sys, hmp } = rig();
    const w = new Word64();
    sys.machine.load(MGMT_1000 + 0xc00, 8, w);
    sys.machine.load(MGMT_1000 + 0x800, 8, w);
    expect(w.lo).toBe(0);
    expect(hmp.feed('system_reset\n')).toBe('system_reset\r\n(qemu) ');
    sys.machine.load(MGMT_1000 + 0x800, 8, w);
    expect(w.lo).toBe(1);
  });

  test('info status across -S, cont and stop', () => {
    const { sys, hmp } = rig(true);
    expect(hmp.execute('info status')).toBe('VM status: paused (prelaunch)\n');
    expect(hmp.execute('c')).toBe('');
    expect(sys.running).toBe(true);
    expect(hmp.execute('info status')).toBe('VM status: running\n');
    hmp.execute('stop');
    expect(hmp.execute('info status')).toBe('VM status: paused\n');
    // As QEMU 7.2.22: a reset of a stopped VM leaves it in prelaunch; a running one keeps running.
    expect(hmp.execute('system_reset')).toBe('');
    expect(hmp.execute('info status')).toBe('VM status: paused (prelaunch)\n');
    hmp.execute('cont');
    expect(hmp.execute('system_reset')).toBe('');
    expect(hmp.execute('info status')).toBe('VM status: running\n');
    expect(hmp.execute('info status x')).toBe(
      'status: extraneous characters at the end of line\nTry "help info status" for more information\n',
    );
    expect(hmp.execute('help system_reset')).toBe('system_reset  -- reset the system\n');
  });

  test('quit requests exit 0 and ends the exchange without a prompt', () => {
    const { sys, hmp } = rig();
    const codes: number[] = [];
    sys.onExit = (c) => codes.push(c);
    expect(hmp.feed('quit\ninfo pic\n')).toBe('quit\r\n');
    expect(sys.exitCode).toBe(0);
    expect(codes).toEqual([0]);
  });
});
