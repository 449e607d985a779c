import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DESIGNS } from '../../src/designs/index.ts';

const bin = fileURLToPath(new URL('../../bin/xivelab.js', import.meta.url));
const QEMU_ARGS = ['-M', 'pseries,ic-mode=xive', '-display', 'none', '-nodefaults', '-S', '-qtest', 'stdio'];

describe('xivelab qtest (the QEMU front end through the main CLI)', () => {
  it('answers qtest on stdio: ESB GET of LISN 0 after reset is PQ 01', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', ...QEMU_ARGS, '-qtest-log', '/dev/null'], {
      input: 'readq 0x0006010000010800\nreadq 0x0006010000010e00\nreadq 0x0006010000010800\n',
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('OK 0x0000000000000001\nOK 0x0000000000000001\nOK 0x0000000000000002\n');
  });

  it('rejects an unknown QEMU option with one line and exit 1', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', '-frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

/** The option-1 designs (kernel seam only), which the front end runs. */
const OPTION_1 = [...DESIGNS.values()]
  .filter((d) => d.option === 1)
  .map((d) => d.name)
  .join(', ');

describe('xivelab-qemu in KVM mode (the real entry point, bin/xivelab-qemu.js)', () => {
  const qemuBin = fileURLToPath(new URL('../../bin/xivelab-qemu.js', import.meta.url));
  const BASE = ['-M', 'pseries,ic-mode=xive', '-display', 'none', '-nodefaults', '-qtest', 'stdio'];
  const qemu = (args: string[], input = '') =>
    spawnSync(process.execPath, [qemuBin, ...args], { input, encoding: 'utf8' });

  it('-accel kvm: ESB PQ transitions through the device mmap, guest RAM through the VMM memory', () => {
    const r = qemu(
      ['-accel', 'kvm', ...BASE, '-S'],
      [
        'readq 0x0006010000010800', // GET: KVM declared the source masked (PQ 01)
        'readq 0x0006010000010e00', // SET_PQ_10 returns the old PQ
        'readq 0x0006010000010800',
        'writeq 0x0006010000010c00 0', // SET_PQ_00
        'writeq 0x0006010000000000 0', // trigger page store: 00 → 10
        'writeq 0x0006010000000000 0', // 10 → 11
        'readq 0x0006010000010800',
        'readq 0x0006010000010000', // load EOI from 11: returns 1, → 10
        'readq 0x0006010000010000', // from 10: returns 0, → 00
        'readq 0x0006010000000800', // load on the trigger page: all ones
        'write 0x200000 0x8 0x0011223344556677',
        'readl 0x200004',
        'endianness',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        'OK 0x0000000000000001',
        'OK 0x0000000000000001',
        'OK 0x0000000000000002',
        'OK',
        'OK',
        'OK',
        'OK 0x0000000000000003',
        'OK 0x0000000000000001',
        'OK 0x0000000000000000',
        'OK 0xffffffffffffffff',
        'OK',
        'OK 0x0000000044556677',
        'OK big',
        '',
      ].join('\n'),
    );
  });

  it('-enable-kvm: the mailbox vCPU runs in KVM_RUN; an HV TIMA page access fails KVM_RUN as QEMU reports it', () => {
    const post = (addr: string, kind: number): string[] => [
      `writeq 0x8010 ${addr}`,
      `writeq 0x8008 0x${kind.toString(16)}`,
      'writeq 0x8000 0x1',
      'readq 0x8000',
      'readq 0x8060',
    ];
    const r = qemu(
      ['-enable-kvm', ...BASE],
      [
        ...post('0x00060302031a0010', 8), // lwz OS ring word 0 (OS page: mapped)
        ...post('0x0006030203190010', 8), // lwz on the HV page: SIGBUS → KVM_RUN -EFAULT
        '',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        ...['OK', 'OK', 'OK', 'OK 0x0000000000000000', 'OK 0x0000000000000000'],
        ...['OK', 'OK', 'OK', 'OK 0x0000000000000001', 'OK 0x0000000000000000'],
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('error: kvm run failed Bad address\n');
  });

  it("QEMU's own access to an ESB page of a source KVM does not know: killed by SIGBUS (exit 135, no reply)", () => {
    const r = qemu(
      ['-accel', 'kvm', ...BASE, '-S'],
      'readq 0x0006010000010800\nreadq 0x0006010000050800\nreadq 0x0\n',
    );
    expect(r.status).toBe(135);
    expect(r.stdout).toBe('OK 0x0000000000000001\n');
    expect(r.stderr).toMatch(
      /^xivelab-qemu: Bus error: QEMU's own access to the KVM XIVE device mapping at 0x[0-9a-f]+ took signal 7 \(QEMU is killed by it\)\n$/,
    );
  });

  it('-M accel=kvm,kernel-irqchip=on and -xivelab-design with an option-1 design are accepted', () => {
    for (const args of [
      ['-M', 'pseries,ic-mode=xive,accel=kvm,kernel-irqchip=on', '-qtest', 'stdio', '-S'],
      ['-accel', 'kvm,kernel-irqchip=on', '-xivelab-design', 'rmap-fixed', '-qtest', 'stdio', '-S'],
      ['-enable-kvm', '-xivelab-design', 'vma-walk', '-qtest', 'stdio', '-S'],
    ]) {
      const r = qemu(args, 'readq 0x0006010000010800\n');
      expect([r.status, r.stdout, r.stderr]).toEqual([0, 'OK 0x0000000000000001\n', '']);
    }
  });

  it.each([
    [
      ['-accel', 'kvm,kernel-irqchip=off'],
      'xivelab-qemu: -accel kvm with kernel-irqchip=off: KVM vCPUs with the XIVE emulated in the VMM are not modelled (use kernel-irqchip=on, or -accel tcg)',
    ],
    [
      ['-enable-kvm', '-M', 'pseries,kernel-irqchip=off'],
      'xivelab-qemu: -accel kvm with kernel-irqchip=off: KVM vCPUs with the XIVE emulated in the VMM are not modelled (use kernel-irqchip=on, or -accel tcg)',
    ],
    [
      ['-xivelab-design', 'rmap'],
      'xivelab-qemu: -xivelab-design rmap: a passthrough-page design needs -accel kvm',
    ],
    [
      ['-enable-kvm', '-xivelab-design', 'qemu-remap'],
      `xivelab-qemu: -xivelab-design qemu-remap: option 3 acts through vfio-pci on passthrough functions, which the qtest front end does not create (it runs ${OPTION_1})`,
    ],
    [
      ['-enable-kvm', '-xivelab-design', 'emulated'],
      'xivelab-qemu: -xivelab-design emulated is the XIVE emulated in the VMM: use -accel tcg',
    ],
    [
      ['-enable-kvm', '-xivelab-design', 'nope'],
      `xivelab-qemu: -xivelab-design nope: unknown design (known: ${[...DESIGNS.keys(), 'emulated'].join(', ')})`,
    ],
  ])('refuses %j with one line and exit 1', (args, line) => {
    const r = qemu([...args, '-qtest', 'stdio']);
    expect([r.status, r.stdout, r.stderr]).toEqual([1, '', `${line}\n`]);
  });
});
