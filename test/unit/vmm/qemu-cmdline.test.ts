import { describe, expect, test } from 'vitest';
import {
  PSERIES_DEFAULT_RAM,
  parseQemuCmdline,
  parseQemuOpts,
  parseQemuSize,
  QemuCmdlineError,
} from '../../../src/vmm/qemu-cmdline.ts';
import { oracleArgs } from '../../diff/qemu-driver.ts';

/** The command line the differential driver starts QEMU and xivelab-qemu with. */
const XQ_ARGS = oracleArgs('/tmp/x/stub.bin', '/tmp/x/mon.1.sock', 1, '/tmp/x/qemu.log');

describe('parseQemuCmdline', () => {
  test('the reference driver command line', () => {
    const o = parseQemuCmdline(XQ_ARGS);
    expect(o).toEqual({
      machineType: 'pseries',
      icMode: 'xive',
      kernelIrqchip: null,
      caps: { 'cap-cfpc': 'broken', 'cap-sbbc': 'broken', 'cap-ibs': 'broken', 'cap-ccf-assist': 'off' },
      accel: 'tcg',
      smp: 1,
      ramSize: 2 ** 30,
      bios: '/tmp/x/stub.bin',
      nodefaults: true,
      startStopped: false,
      qtest: 'stdio',
      qtestLog: '/dev/null',
      monitor: {
        kind: 'unix',
        arg: 'unix:/tmp/x/mon.1.sock,server=on,wait=off',
        path: '/tmp/x/mon.1.sock',
        server: true,
        wait: false,
      },
      qmp: null,
      logItems: ['guest_errors'],
      logFile: '/tmp/x/qemu.log',
      design: null,
      help: false,
      version: false,
    });
  });

  test('defaults, -S, double-dash forms, -smp topology', () => {
    const o = parseQemuCmdline(['--machine', 'type=pseries-7.2', '-S', '--smp', 'cores=2,threads=2']);
    expect(o.machineType).toBe('pseries-7.2');
    expect(o.startStopped).toBe(true);
    expect(o.smp).toBe(4);
    expect(o.ramSize).toBe(PSERIES_DEFAULT_RAM);
    expect(parseQemuCmdline(['-smp', '3,maxcpus=8']).smp).toBe(3);
    expect(parseQemuCmdline(['-smp', 'cpus=2']).smp).toBe(2);
  });

  test('-accel kvm,kernel-irqchip=on|off (split refused as QEMU does for pseries)', () => {
    expect(parseQemuCmdline(['-accel', 'kvm,kernel-irqchip=off'])).toMatchObject({
      accel: 'kvm',
      kernelIrqchip: 'off',
    });
    expect(parseQemuCmdline(['-accel', 'accel=kvm,kernel-irqchip=on'])).toMatchObject({
      accel: 'kvm',
      kernelIrqchip: 'on',
    });
    expect(parseQemuCmdline(['-accel', 'kvm']).kernelIrqchip).toBe(null);
    expect(() => parseQemuCmdline(['-accel', 'kvm,kernel-irqchip=split'])).toThrow(
      'kernel_irqchip split mode not supported on pseries',
    );
    expect(() => parseQemuCmdline(['-accel', 'kvm,kernel-irqchip=maybe'])).toThrow(
      "-accel: Parameter 'kernel-irqchip' expects 'on' or 'off'",
    );
  });

  test('the KVM mode and the design option are parsed', () => {
    expect(parseQemuCmdline(['-accel', 'kvm']).accel).toBe('kvm');
    expect(parseQemuCmdline(['-enable-kvm']).accel).toBe('kvm');
    expect(parseQemuCmdline(['-M', 'pseries,accel=kvm,kernel-irqchip=on']).accel).toBe('kvm');
    expect(parseQemuCmdline(['-M', 'pseries,kernel-irqchip=on']).kernelIrqchip).toBe('on');
    expect(parseQemuCmdline(['-M', 'pseries,kernel-irqchip=off']).kernelIrqchip).toBe('off');
    expect(parseQemuCmdline(['-xivelab-design', 'zap-vma']).design).toBe('zap-vma');
  });

  test.each([
    [['-foo'], '-foo: invalid option'],
    [['-m'], '-m: requires an argument'],
    [['-M', 'pseries,ic-mode=xics'], '-M ic-mode=xics: unsupported (xivelab models ic-mode=xive only)'],
    [['-M', 'powernv9'], '-M powernv9: unsupported machine type (xivelab models pseries only)'],
    [['-M', 'pseries,bogus=1'], "-M bogus=1: Property 'pseries-7.2-machine.bogus' not found"],
    [['-M', 'pseries,kernel-irqchip=split'], 'kernel_irqchip split mode not supported on pseries'],
    [['-accel', 'qtest'], '-accel: invalid accelerator qtest'],
    [['-display', 'gtk'], '-display gtk: only -display none is supported'],
    [['-qtest', 'unix:/x'], '-qtest unix:/x: only -qtest stdio is served'],
    [['-monitor', 'vc'], '-monitor vc: only unix:PATH,server=on,wait=off, stdio and none are served'],
    [['-qmp', 'tcp:1'], '-qmp tcp:1: only unix:PATH,server=on,wait=off and stdio are served'],
    [['-qmp', 'none'], '-qmp none: only unix:PATH,server=on,wait=off and stdio are served'],
    [['-qmp', 'unix:/q,server=on,frob=1'], "-qmp unix:/q,server=on,frob=1: Invalid parameter 'frob'"],
    [['-qtest', 'stdio', '-monitor', 'stdio'], 'cannot use stdio by multiple character devices'],
    [['-monitor', 'stdio', '-qmp', 'stdio'], 'cannot use stdio by multiple character devices'],
    [['-monitor', 'unix:/x'], '-monitor unix:/x: only server=on is served'],
    [['-d', 'guest_errors,nonsense'], "-d guest_errors,nonsense: unknown log item 'nonsense'"],
    [['-smp', '0'], '-smp 0: Invalid CPU topology'],
    [['-m', 'lots'], "invalid size 'lots'"],
    [['disk.img'], 'disk.img: unexpected argument (a disk image is not modelled)'],
  ])('%j → %s', (argv, msg) => {
    expect(() => parseQemuCmdline(argv)).toThrow(new QemuCmdlineError(msg));
  });

  test('-monitor stdio, -qmp unix and stdio', () => {
    expect(parseQemuCmdline(['-monitor', 'stdio']).monitor).toEqual({ kind: 'stdio' });
    expect(parseQemuCmdline(['-qmp', 'stdio']).qmp).toEqual({ kind: 'stdio' });
    const o = parseQemuCmdline(['-qtest', 'stdio', '-qmp', 'unix:/tmp/q.sock,server=on,wait=off']);
    expect(o.qmp).toEqual({
      kind: 'unix',
      arg: 'unix:/tmp/q.sock,server=on,wait=off',
      path: '/tmp/q.sock',
      server: true,
      wait: false,
    });
    expect(o.monitor).toBe(null);
  });

  test('-monitor none and legacy nowait', () => {
    expect(parseQemuCmdline(['-monitor', 'none']).monitor).toBe(null);
    expect(parseQemuCmdline(['-monitor', 'unix:/s,server,nowait']).monitor).toEqual({
      kind: 'unix',
      arg: 'unix:/s,server,nowait',
      path: '/s',
      server: true,
      wait: false,
    });
  });
});

describe('QemuOpts and sizes', () => {
  test('parseQemuOpts: implied key, escaped comma, bare flag', () => {
    expect([...parseQemuOpts('pseries,a=b,,c,flag', 'type')]).toEqual([
      ['type', 'pseries'],
      ['a', 'b,c'],
      ['flag', 'on'],
    ]);
  });

  test('parseQemuSize: MiB default, binary suffixes', () => {
    expect(parseQemuSize('512', 2 ** 20)).toBe(512 * 2 ** 20);
    expect(parseQemuSize('1G', 2 ** 20)).toBe(2 ** 30);
    expect(parseQemuSize('2048k', 2 ** 20)).toBe(2 ** 21);
    expect(parseQemuSize('1.5G', 2 ** 20)).toBe(1.5 * 2 ** 30);
    expect(() => parseQemuSize('0', 2 ** 20)).toThrow(QemuCmdlineError);
  });
});
