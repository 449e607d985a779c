import { describe, expect, test } from 'vitest';
import { createHost } from '../../../src/host/host.ts';
import { Hmp } from '../../../src/vmm/hmp.ts';
import type { SpaprKvmCpu } from '../../../src/vmm/kvm-accel.ts';
import { parseQemuU64, QemuSystem, QtestServer } from '../../../src/vmm/qtest.ts';

const MGMT0 = 0x0006_0100_0001_0000;
const TRIG_1000 = 0x0006_0100_0000_0000 + 0x1000 * 0x2_0000;
const MGMT_1000 = TRIG_1000 + 0x1_0000;
const hx = (n: number): string => `0x${n.toString(16)}`;
/** CAS option vectors (POWER9 PVR, ISA 3.00): OV5 byte 23 = 0x40 (XIVE) / 0x80 (both → QEMU exits). */
const CAS_XIVE =
  '0xffff0000004e0000000000000f000003040200008000000000000017000000000000000000000000000000000000000000004000';
const CAS_BOTH =
  '0xffff0000004e0000000000000f000003040200008000000000000017000000000000000000000000000000000000000000008000';

function session(
  smp = 1,
  startStopped = false,
): { srv: QtestServer; sys: QemuSystem; run: (l: string) => string } {
  const sys = new QemuSystem({ smp, ramSize: 2 ** 28, bios: null, startStopped });
  let out = '';
  const srv = new QtestServer(sys, (s) => {
    out += s;
  });
  return {
    srv,
    sys,
    run(lines: string): string {
      out = '';
      srv.feed(`${lines}\n`);
      return out;
    },
  };
}

/** A mailbox hcall through qtest text: in[] written, cmd posted, outs read back. */
function hcallText(run: (l: string) => string, opcode: number, ...args: number[]): bigint[] {
  const ins = [opcode, ...args];
  for (let i = 0; i < 10; i++) run(`writeq ${hx(0x8010 + 8 * i)} ${hx(ins[i] ?? 0)}`);
  run('writeq 0x8008 0x1');
  run('writeq 0x8000 0x1');
  expect(run('readq 0x8000')).toBe('OK 0x0000000000000000\n');
  return Array.from({ length: 10 }, (_, i) => BigInt(run(`readq ${hx(0x8060 + 8 * i)}`).slice(3)));
}

/**
 * CAS with XIVE, an EQ for vCPU 0 priority 3 at 0x200000, LISN 0x1000 → vCPU 0 / 3 / EISN 0xabc
 * and unmasked (PQ 00), CPPR 0xff: the next trigger of LISN 0x1000 raises vCPU 0's INT line.
 */
function routeLisn1000(run: (l: string) => string): void {
  run(`write 0x10000 0x34 ${CAS_XIVE}`);
  expect(hcallText(run, 0xf002, 0x10000, 0x100000, 0x100000)[0]).toBe(0n);
  run('memset 0x200000 0x1000 0');
  expect(hcallText(run, 0x3b8, 1, 0, 3, 0x200000, 12)[0]).toBe(0n);
  expect(hcallText(run, 0x3ac, 2, 0x1000, 0, 3, 0xabc)[0]).toBe(0n);
  expect(run(`readq ${hx(MGMT_1000 + 0xc00)}`)).toBe('OK 0x0000000000000001\n');
  // CPPR := 0xff by a vCPU byte store (kind 5).
  run('writeq 0x8010 0x00060302031a0011');
  run('writeq 0x8018 0xff');
  run('writeq 0x8008 0x5');
  expect(run('writeq 0x8000 0x1')).toBe('OK\n');
}

describe('parseQemuU64 (qemu_strtou64 base 0)', () => {
  test.each([
    ['0x10', 16n],
    ['0X1f', 31n],
    ['010', 8n],
    ['0', 0n],
    ['10', 10n],
    [' 7', 7n],
    ['-1', 0xffff_ffff_ffff_ffffn],
    ['0xffffffffffffffff', 0xffff_ffff_ffff_ffffn],
  ])('%s → %s', (s, v) => {
    expect(parseQemuU64(s)).toBe(v);
  });
  test.each(['', '0x', '12abc', '08', '0x1ffffffffffffffff', 'x10'])('%j is rejected', (s) => {
    expect(parseQemuU64(s)).toBe(null);
  });
});

describe('QtestServer', () => {
  test('ESB GET / SET_PQ through readq and writeq, byte-compatible replies', () => {
    const { run } = session();
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000001\n');
    expect(run(`readq ${hx(MGMT0 + 0xe00)}`)).toBe('OK 0x0000000000000001\n');
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000002\n');
    expect(run(`writeq ${hx(MGMT0 + 0xc00)} 0`)).toBe('OK\n');
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000000\n');
    // 4-byte and 1-byte ESB accesses are rejected (8-byte only): 0, state unchanged.
    expect(run(`readl ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000000\n');
    expect(run(`readb ${hx(MGMT0 + 0xf00)}`)).toBe('OK 0x0000000000000000\n');
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000000\n');
    expect(run(`readq ${hx(MGMT0 - 0x1_0000 + 0x800)}`)).toBe('OK 0xffffffffffffffff\n');
  });

  test('read / write / memset over MMIO: the widest accesses the region takes, as address_space_read/write split them', () => {
    const { run } = session();
    // Two 8-byte GET loads (PQ 01 after reset).
    expect(run(`read ${hx(MGMT0 + 0x800)} 16`)).toBe('OK 0x00000000000000010000000000000001\n');
    // Two SET_PQ_10 loads: the first returns the old 01, the second the 10 the first set.
    expect(run(`read ${hx(MGMT0 + 0xe00)} 0x10`)).toBe('OK 0x00000000000000010000000000000002\n');
    // Misaligned: 4-byte pieces, which the ESB rejects (8-byte only): zeros, PQ unchanged.
    expect(run(`read ${hx(MGMT0 + 0x804)} 8`)).toBe('OK 0x0000000000000000\n');
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000002\n');
    // Two 8-byte stores to SET_PQ_00.
    expect(run(`write ${hx(MGMT0 + 0xc00)} 16 0x00`)).toBe('OK\n');
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000000\n');
    // Two 8-byte trigger stores: 00 → 10 → 11.
    expect(run(`memset ${hx(MGMT0 - 0x1_0000)} 16 0`)).toBe('OK\n');
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000003\n');
  });

  test('an access past 2^64 − 1 wraps to address 0, as QEMU 7.2 answers (hwaddr arithmetic)', () => {
    const { run } = session();
    expect(run('write 0x0 8 0x0102030405060708')).toBe('OK\n');
    expect(run('readb 0xffffffffffffffff')).toBe('OK 0x0000000000000000\n');
    expect(run('readw 0xffffffffffffffff')).toBe('OK 0x0000000000000001\n');
    expect(run('readl 0xffffffffffffffff')).toBe('OK 0x0000000000010203\n');
    expect(run('readq 0xffffffffffffffff')).toBe('OK 0x0001020304050607\n');
    expect(run('read 0xfffffffffffffff8 12')).toBe('OK 0x000000000000000001020304\n');
    expect(run('writel 0xffffffffffffffff 0x11223344')).toBe('OK\n');
    expect(run('read 0x0 8')).toBe('OK 0x2233440405060708\n');
    expect(run('memset 0xffffffffffffffff 3 0x55')).toBe('OK\n');
    expect(run('read 0x0 8')).toBe('OK 0x5555440405060708\n');
    expect(run('readl 0xfffffffffffffffd')).toBe('OK 0x0000000000000055\n');
  });

  test('RAM: write, read, memset, widths big-endian, short data zero-filled', () => {
    const { run } = session();
    expect(run('write 0x9000 0x4 0x01020304')).toBe('OK\n');
    expect(run('read 0x9000 4')).toBe('OK 0x01020304\n');
    expect(run('readl 0x9000')).toBe('OK 0x0000000001020304\n');
    expect(run('readw 0x9002')).toBe('OK 0x0000000000000304\n');
    expect(run('write 0x9000 4 0x0a')).toBe('OK\n');
    expect(run('read 0x9000 4')).toBe('OK 0x0a000000\n');
    expect(run('memset 0x9000 3 0x1aa')).toBe('OK\n');
    expect(run('readl 0x9000')).toBe('OK 0x00000000aaaaaa00\n');
    expect(run('writeq 0x9000 0x1122334455667788')).toBe('OK\n');
    expect(run('writeb 0x9000 0x1ff')).toBe('OK\n');
    expect(run('readq 0x9000')).toBe('OK 0xff22334455667788\n');
    expect(run('write 0x9000 2 0x')).toBe('ERR invalid argument size\n');
    expect(run('endianness')).toBe('OK big\n');
  });

  test('bad commands get one FAIL line each and the session goes on', () => {
    const { run } = session();
    expect(run('foo 1 2')).toBe("FAIL Unknown command 'foo'\n");
    expect(run('')).toBe("FAIL Unknown command ''\n");
    expect(run('readq')).toBe('FAIL readq: missing address\n');
    expect(run('readq 0xzz')).toBe("FAIL readq: invalid address '0xzz'\n");
    expect(run('writel 0x9000')).toBe('FAIL writel: missing value\n');
    expect(run('read 0x9000 0')).toBe('FAIL read: size 0\n');
    expect(run('write 0x9000 4')).toBe('FAIL write: missing address, size or data\n');
    expect(run('write 0x9000 0x1000001 0x00')).toBe('FAIL write: size 16777217 above 16777216\n');
    expect(run('readb 0x9000')).toBe('OK 0x0000000000000000\n');
  });

  // Replies and memory contents as qemu-system-ppc64 7.2.22 gives them for the same lines.
  test('write: size 0 is OK, data under 3 characters is ERR, a bad nibble is -1 (0xf? / 0xff)', () => {
    const { run } = session();
    expect(run('write 0x9000 0 0x')).toBe('ERR invalid argument size\n');
    expect(run('write 0x9000 0 0x1')).toBe('OK\n');
    expect(run('write 0x9000 0 0xabcd')).toBe('OK\n');
    expect(run('readl 0x9000')).toBe('OK 0x0000000000000000\n');
    expect(run('write 0x9000 0x100000000 xx')).toBe('ERR invalid argument size\n');
    expect(run('write 0x9000 4 0xZZ11zz22')).toBe('OK\n');
    expect(run('readl 0x9000')).toBe('OK 0x00000000ff11ff22\n');
    expect(run('write 0x9000 4 0xZ1z2')).toBe('OK\n');
    expect(run('readl 0x9000')).toBe('OK 0x00000000f1f20000\n');
    expect(run('write 0x9000 4 0x1Z2z33')).toBe('OK\n');
    expect(run('readl 0x9000')).toBe('OK 0x00000000ffff3300\n');
    // The first two characters are skipped whatever they are.
    expect(run('write 0x9000 4 ab112233')).toBe('OK\n');
    expect(run('readl 0x9000')).toBe('OK 0x0000000011223300\n');
    expect(run('write 0x9000 4 xxx')).toBe('OK\n');
    expect(run('readl 0x9000')).toBe('OK 0x0000000000000000\n');
  });

  test('irq_intercept_in: the QOM path of each vCPU, repeat, conflict', () => {
    const { run } = session(2);
    expect(run('irq_intercept_in /machine/unattached/device[01]/thread[0]')).toBe('FAIL Unknown device\n');
    expect(run('irq_intercept_in /machine/unattached/device[3]/thread[0]')).toBe('FAIL Unknown device\n');
    // Two vCPUs: a partial path met under both cores is ambiguous.
    expect(run('irq_intercept_in thread[0]')).toBe('FAIL Unknown device\n');
    expect(run('irq_intercept_in cpu')).toBe('FAIL Unknown device\n');
    expect(run('irq_intercept_in device[2]/thread[0]')).toBe('OK\n');
    expect(run('irq_intercept_in /machine/unattached/device[2]/thread[0]')).toBe('OK\n');
    expect(run('irq_intercept_in /machine/dr-connector[268435457]/device/thread[0]')).toBe('OK\n');
    expect(run('irq_intercept_in /machine/unattached/device[1]/thread[0]')).toBe(
      'FAIL IRQ intercept already enabled\n',
    );
  });

  test('irq_intercept_in of a device that is not a vCPU claims the session and reports nothing', () => {
    const { run } = session();
    // device[0] is the spapr-xive; it has no unnamed GPIO line to hook.
    expect(run('irq_intercept_in /machine/unattached/device[0]')).toBe('OK\n');
    expect(run('irq_intercept_in /machine/unattached/device[1]/thread[0]')).toBe(
      'FAIL IRQ intercept already enabled\n',
    );
    expect(run('irq_intercept_out /machine/unattached/sysbus/child[0]')).toBe('OK\n');
    // A trigger of LISN 0x1000, routed to vCPU 0, raises INT there: no line is reported.
    routeLisn1000(run);
    expect(run(`writeq ${hx(TRIG_1000)} 0x0`)).toBe('OK\n');
    expect(run('readl 0x200000')).toBe('OK 0x0000000080000abc\n');
  });

  test.each([
    ['/machine/unattached/device[1]', 'OK'],
    ['/machine/unattached/device[2]', 'OK'],
    ['/machine/unattached/device[3]', 'OK'],
    ['//machine//unattached/device[4]/', 'OK'],
    ['/machine/unattached/device[0]/source', 'OK'],
    ['/machine/unattached/device[1]/thread[0]/xive-tctx', 'OK'],
    ['xive-tctx', 'OK'],
    ['/machine/rtc', 'OK'],
    ['/machine/dr-connector[536870942]', 'OK'],
    ['/dr-connector/400000ff', 'OK'],
    ['/machine/unattached/device[1]/thread[0]/type', 'FAIL Unknown device'],
    ['/machine/unattached/device[5]', 'FAIL Unknown device'],
    ['/machine/rtc/parent_bus', 'FAIL Unknown device'],
    ['/machine/dr-connector[536870913]/device', 'FAIL Unknown device'],
    ['parent_bus', 'FAIL Unknown device'],
    ['', 'FAIL Unknown device'],
    // Deviations: QEMU casts these non-devices unchecked (SIGSEGV for the first three).
    ['/machine', 'FAIL irq_intercept_in: /machine is not a device (pseries-7.2-machine)'],
    ['/', 'FAIL irq_intercept_in: / is not a device (container)'],
    [
      '/machine/unattached/device[0]/xive.tima[0]',
      'FAIL irq_intercept_in: /machine/unattached/device[0]/xive.tima[0] is not a device (memory-region)',
    ],
    ['unnamed-gpio-in[0]', 'FAIL irq_intercept_in: unnamed-gpio-in[0] is not a device (irq)'],
    [
      '/machine/memory-backend',
      'FAIL irq_intercept_in: /machine/memory-backend is not a device (memory-backend-ram)',
    ],
  ])('irq_intercept_in %j (one vCPU) → %s', (path, reply) => {
    const { run } = session();
    expect(run(`irq_intercept_in ${path}`)).toBe(`${reply}\n`);
  });

  test('IRQ raise comes before the OK of the trigger store; ACK lowers it (as QEMU 7.2 orders them)', () => {
    const { run } = session();
    expect(run('irq_intercept_in /machine/unattached/device[1]/thread[0]')).toBe('OK\n');
    routeLisn1000(run);
    expect(run(`writeq ${hx(TRIG_1000)} 0x0`)).toBe('IRQ raise 0\nOK\n');
    expect(run('readl 0x200000')).toBe('OK 0x0000000080000abc\n');
    // ACK_OS_REG (kind 6, lhz): the line is lowered during the mailbox command.
    run('writeq 0x8010 0x00060302031a0810');
    run('writeq 0x8008 0x6');
    expect(run('writeq 0x8000 0x1')).toBe('IRQ lower 0\nOK\n');
    expect(run('readq 0x8060')).toBe('OK 0x0000000000008003\n');
  });

  test('-qtest-log lines', () => {
    const sys = new QemuSystem({ smp: 1, ramSize: 2 ** 28, bios: null, startStopped: false });
    const log: string[] = [];
    const srv = new QtestServer(
      sys,
      () => {},
      (l) => log.push(l),
      () => 1.5,
    );
    srv.feed('readb 0x9000\nbogus\n');
    expect(log).toEqual([
      '[R +1.500000] readb 0x9000\n',
      '[S +1.500000] OK 0x0000000000000000\n',
      '[R +1.500000] bogus\n',
      "[S +1.500000] FAIL Unknown command 'bogus'\n",
    ]);
    expect(srv.commands).toBe(2);
  });

  test('partial lines are buffered until their newline', () => {
    const { srv, sys } = session();
    let out = '';
    const s2 = new QtestServer(sys, (s) => {
      out += s;
    });
    s2.feed('read');
    s2.feed('b 0x90');
    expect(out).toBe('');
    s2.feed('00\nendi');
    expect(out).toBe('OK 0x0000000000000000\n');
    expect(srv.commands).toBe(0);
  });
});

describe('QemuSystem', () => {
  test('the -bios image is in RAM at 0 and is reloaded by system_reset', () => {
    const bios = Uint8Array.from([1, 2, 3, 4]);
    const sys = new QemuSystem({ smp: 1, ramSize: 2 ** 28, bios, startStopped: false });
    const buf = new Uint8Array(4);
    sys.machine.writeMemory(0, Uint8Array.from([9, 9, 9, 9]));
    sys.systemReset();
    sys.machine.readMemory(0, buf);
    expect([...buf]).toEqual([1, 2, 3, 4]);
  });

  test('a too large -bios is refused as QEMU does', () => {
    expect(
      () =>
        new QemuSystem({ smp: 1, ramSize: 2 ** 28, bios: new Uint8Array(0x40_0001), startStopped: false }),
    ).toThrow(/could not load PowerPC bios/);
  });

  test('a fatal CAS (OV5 "both" interrupt modes) requests exit 1 with the message', () => {
    const sys = new QemuSystem({ smp: 1, ramSize: 2 ** 28, bios: null, startStopped: false });
    const exits: [number, string | null][] = [];
    sys.onExit = (c, m) => exits.push([c, m]);
    const srv = new QtestServer(sys, () => {});
    srv.feed(`write 0x10000 0x34 ${CAS_BOTH}\n`);
    for (const [a, v] of [
      [0x8010, 0xf002],
      [0x8018, 0x10000],
      [0x8020, 0x100000],
      [0x8028, 0x100000],
      [0x8008, 1],
      [0x8000, 1],
    ] as const) {
      srv.feed(`writeq ${hx(a)} ${hx(v)}\n`);
    }
    expect(sys.exitCode).toBe(1);
    expect(exits).toEqual([[1, sys.machine.fatalError]]);
    expect(sys.machine.fatalError).toMatch(/interrupt mode/i);
  });
});

describe('QEMU qtest IRQ levels across system_reset', () => {
  test('reset with the line high reports nothing; the next ACK reports the lower, as QEMU does', () => {
    const { run, sys } = session();
    run('irq_intercept_in /machine/unattached/device[1]/thread[0]');
    // Pending priority 4 with CPPR 0xff raises the line (vCPU stores through the mailbox).
    const tctx = sys.machine.cpus[0]!.tctx;
    tctx.ipbUpdate(0x10, 4);
    expect(run('readb 0x9000')).toBe('OK 0x0000000000000000\n');
    sys.machine.cpus[0]!.store(0x0006_0302_031a_0011, 1, 0, 0xff);
    expect(sys.machine.cpus[0]!.externalInterrupt).toBe(true);
    sys.systemReset();
    expect(sys.machine.cpus[0]!.externalInterrupt).toBe(false);
    // ACK_OS_REG through the mailbox: QEMU's irq_levels[0] is still 1 → "IRQ lower 0".
    run('writeq 0x8010 0x00060302031a0810');
    run('writeq 0x8008 0x6');
    expect(run('writeq 0x8000 0x1')).toBe('IRQ lower 0\nOK\n');
    // A second ACK: the level is already reported low.
    expect(run('writeq 0x8000 0x1')).toBe('OK\n');
  });
});

describe('KVM mode (accel: kvm, the in-kernel XIVE on a host of its own)', () => {
  const TIMA_OS = 0x0006_0302_031a_0000;
  const TIMA_HV = 0x0006_0302_0319_0000;

  function kvmSession(startStopped = false): {
    sys: QemuSystem;
    hmp: Hmp;
    run: (l: string) => string;
    errors: string[];
    vload: (addr: number, kind: number) => string;
  } {
    const sys = new QemuSystem({
      smp: 1,
      ramSize: 2 ** 28,
      bios: null,
      startStopped,
      accel: 'kvm',
      host: createHost(),
    });
    const errors: string[] = [];
    sys.onError = (l) => errors.push(l);
    let out = '';
    const srv = new QtestServer(sys, (s) => {
      out += s;
    });
    const run = (lines: string): string => {
      out = '';
      srv.feed(`${lines}\n`);
      return out;
    };
    /** A vCPU access of `kind` (2 ld … 9 stw) at `addr`: the mailbox's reply to `cmd`. */
    const vload = (addr: number, kind: number): string => {
      run(`writeq 0x8010 ${hx(addr)}`);
      run('writeq 0x8018 0xff');
      run(`writeq 0x8008 ${hx(kind)}`);
      run('writeq 0x8000 0x1');
      return run('readq 0x8000');
    };
    return { sys, hmp: new Hmp(sys), run, errors, vload };
  }

  test('each instance runs on its own host; the device is connected, the vCPU in KVM_RUN', () => {
    const a = kvmSession();
    const b = kvmSession();
    expect(a.sys.accel).toBe('kvm');
    expect(a.sys.host).not.toBe(null);
    expect(a.sys.host).not.toBe(b.sys.host);
    expect(a.sys.irqchipInKernel).toBe(true);
    expect((a.sys.machine.cpus[0] as SpaprKvmCpu).run).not.toBe(null);
    expect(a.hmp.execute('info pic').trimEnd().split('\n').at(-1)).toBe('irqchip: in-kernel');
    expect(new Hmp(session().sys).execute('info pic').trimEnd().split('\n').at(-1)).toBe('irqchip: emulated');
  });

  test("qtest ESB accesses are QEMU's own, through the RAM-device overlay to the KVM device", () => {
    const { sys, run } = kvmSession();
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000001\n');
    // `read` over a RAM device: 8-byte accesses (ram_device_mem_ops), two GETs here.
    expect(run(`read ${hx(MGMT0 + 0x800)} 16`)).toBe('OK 0x00000000000000010000000000000001\n');
    expect(run(`readq ${hx(MGMT0 + 0xe00)}`)).toBe('OK 0x0000000000000001\n');
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000002\n');
    expect(run(`writeq ${hx(MGMT0 + 0xc00)} 0`)).toBe('OK\n');
    expect(run(`writeq ${hx(MGMT0 - 0x1_0000)} 0`)).toBe('OK\n'); // trigger page store
    expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000002\n');
    expect(run(`readq ${hx(MGMT0)}`)).toBe('OK 0x0000000000000000\n'); // load EOI 10 → 00
    // QEMU's emulated copy is untouched: the accesses reached the device's pages.
    expect(sys.machine.xive.source.getPq(0)).toBe(1);
  });

  test('qtest RAM read/write/memset is the VMM process memory, which the guest sees', () => {
    const { sys, run, vload } = kvmSession();
    expect(run('write 0x100000 0x8 0x1122334455667788')).toBe('OK\n');
    expect(run('readq 0x100000')).toBe('OK 0x1122334455667788\n');
    expect(run('memset 0x100008 0x4 0xab')).toBe('OK\n');
    expect(run('read 0x100006 0x6')).toBe('OK 0x7788abababab\n');
    const kvm = sys.machine.kvm!;
    expect([...kvm.proc.getBytes(sys.machine.ram.ramOffset + 0x100000, 2)]).toEqual([0x11, 0x22]);
    // The mailbox vCPU (partition-scoped path) loads what qtest wrote.
    expect(vload(0x100000, 2)).toBe('OK 0x0000000000000000\n');
    expect(run('readq 0x8060')).toBe('OK 0x1122334455667788\n');
  });

  test('the mailbox vCPU reaches the OS TIMA page through KVM (the emulated ring is not used)', () => {
    const { sys, run, vload } = kvmSession();
    const cpu = sys.machine.cpus[0] as SpaprKvmCpu;
    const faults = sys.host!.kvm.vms[0]!.stats.partitionFaults;
    expect(vload(TIMA_OS + 0x11, 5)).toBe('OK 0x0000000000000000\n'); // stb CPPR := 0xff
    expect(vload(TIMA_OS + 0x10, 8)).toBe('OK 0x0000000000000000\n'); // lwz word 0
    // Under KVM the OS ring starts from the device's saved state (LSMFB 0).
    expect(run('readq 0x8060')).toBe('OK 0x0000000000ff0000\n');
    expect(sys.host!.kvm.vms[0]!.stats.partitionFaults).toBeGreaterThan(faults);
    expect(cpu.runFailures).toEqual([]);
    expect(sys.machine.xive.tctxs[0]!.regs[0x11]).toBe(0); // QEMU's copy: CPPR still 0
  });

  test('a KVM_RUN failure (HV TIMA page: SIGBUS) stops the VM with internal-error; reset + cont recover', () => {
    const { sys, hmp, run, errors, vload } = kvmSession();
    expect(vload(TIMA_HV + 0x10, 8)).toBe('OK 0x0000000000000001\n'); // the command never completes
    expect(errors).toEqual(['error: kvm run failed Bad address']);
    expect(sys.running).toBe(false);
    expect(hmp.execute('info status')).toBe('VM status: paused (internal-error)\n');
    expect(hmp.execute('cont')).toBe('Resetting the Virtual Machine is required\n');
    expect(run('readq 0x8000')).toBe('OK 0x0000000000000001\n');
    expect(hmp.execute('system_reset')).toBe('');
    expect(hmp.execute('info status')).toBe('VM status: paused (prelaunch)\n');
    expect(hmp.execute('cont')).toBe('');
    expect(run('readq 0x8000')).toBe('OK 0x0000000000000000\n'); // the stub restarted
    expect(vload(TIMA_OS + 0x10, 8)).toBe('OK 0x0000000000000000\n');
    expect(errors).toHaveLength(1);
  });

  test("QEMU's own access to a SIGBUS page of the device mapping kills the process (no reply)", () => {
    for (const addr of [MGMT0 + 2 * 0x2_0000 + 0x800, TIMA_HV + 0x10]) {
      const { sys, run } = kvmSession();
      const exits: [number, string | null][] = [];
      sys.onExit = (c, m) => exits.push([c, m]);
      expect(run(`readq ${hx(MGMT0 + 0x800)}`)).toBe('OK 0x0000000000000001\n');
      expect(run(`readq ${hx(addr)}\nreadq 0x0`)).toBe('');
      expect(sys.killedBy).toBe(7);
      expect(exits).toHaveLength(1);
      expect(exits[0]![0]).toBe(135);
      expect(exits[0]![1]).toMatch(
        /^Bus error: QEMU's own access to the KVM XIVE device mapping at 0x[0-9a-f]+ took signal 7/,
      );
    }
  });

  test('stop / cont run the XIVE change-state handler (PQ 00 → 10 while stopped, back at cont)', () => {
    const { sys, hmp, run } = kvmSession();
    run(`readq ${hx(MGMT_1000 + 0xc00)}`); // PQ 00
    expect(hmp.execute('stop')).toBe('');
    expect((sys.machine.cpus[0] as SpaprKvmCpu).run).toBe(null);
    expect(run(`readq ${hx(MGMT_1000 + 0x800)}`)).toBe('OK 0x0000000000000002\n');
    expect(hmp.execute('cont')).toBe('');
    expect(run(`readq ${hx(MGMT_1000 + 0x800)}`)).toBe('OK 0x0000000000000000\n');
  });

  test('-S: the vCPU enters KVM_RUN at cont and the stub starts then', () => {
    const { sys, hmp, run } = kvmSession(true);
    expect((sys.machine.cpus[0] as SpaprKvmCpu).run).toBe(null);
    run('writeq 0x8008 0x0');
    run('writeq 0x8000 0x1');
    expect(run('readq 0x8000')).toBe('OK 0x0000000000000001\n');
    expect(hmp.execute('info status')).toBe('VM status: paused (prelaunch)\n');
    hmp.execute('cont');
    expect((sys.machine.cpus[0] as SpaprKvmCpu).run).not.toBe(null);
    expect(run('readq 0x8000')).toBe('OK 0x0000000000000000\n');
  });
});
