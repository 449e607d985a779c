import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../../src/vmm/address-space.ts';
import { MemoryRegion } from '../../../src/vmm/memory-region.ts';
import {
  CAS_STATUS_EXIT,
  CAS_STATUS_RETURN,
  type CasPlatform,
  CPU_POWERPC_POWER9_DD20,
  doClientArchitectureSupport,
  OV5_XIVE_EXPLOIT,
  ppc64PhysToReal,
  spaprOvecParseVector,
  spaprOvecTest,
} from '../../../src/vmm/spapr-cas.ts';

const XIVE_ONLY: CasPlatform = { cpuPvr: CPU_POWERPC_POWER9_DD20, xics: false, xive: true };

/** The exact CAS byte table QEMU 7.2 answers, OV5 byte 23 = `byte23` (OV5 left out if null). */
function casTable(
  byte23: number | null,
  pvrs: readonly [number, number][] = [[0xffff0000, 0x004e0000]],
): Uint8Array {
  const out: number[] = [];
  const u32 = (v: number) => out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  for (const [m, p] of pvrs) {
    u32(m);
    u32(p);
  }
  u32(0x00000000); // terminator: ~mask & pvr != 0
  u32(0x0f000003);
  out.push(byte23 === null ? 0x03 : 0x04); // vector count - 1
  out.push(0x02, 0x00, 0x00, 0x80); // OV1: ISA 3.00
  out.push(0x00, 0x00, 0x00, 0x00, 0x00, 0x00); // OV2..OV4
  if (byte23 !== null) {
    const ov5 = new Array<number>(24).fill(0);
    ov5[22] = byte23;
    out.push(0x17, ...ov5);
  }
  return new Uint8Array(out);
}

function guest(table: Uint8Array) {
  const root = MemoryRegion.container('system', 2 ** 64);
  const ram = MemoryRegion.ram('ppc_spapr.ram', 0x200000);
  root.addSubregion(0, ram);
  ram.ramWrite(0x10000, table);
  return new AddressSpace(root, 'memory');
}

describe('CAS option vectors (QEMU 7.2 byte table)', () => {
  it('lays out the documented bytes', () => {
    const t = casTable(0x40);
    expect(t.length).toBe(16 + 1 + 4 + 6 + 25);
    expect([...t.slice(0, 16)]).toEqual([
      0xff, 0xff, 0x00, 0x00, 0x00, 0x4e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x03,
    ]);
    expect(t[16]).toBe(0x04);
    expect(t[27]).toBe(0x17);
    expect(t[27 + 23]).toBe(0x40);
  });

  it('0x40 in OV5 byte 23 → XIVE exploitation, H_SUCCESS', () => {
    const r = doClientArchitectureSupport(guest(casTable(0x40)), 0x10000, XIVE_ONLY);
    expect(r.status).toBe(CAS_STATUS_RETURN);
    expect(r.rc).toBe(0);
    expect(r.message).toBeNull();
    expect(r.xiveExploitation).toBe(true);
    expect(r.explicitPvrMatch).toBe(true);
    expect(r.compatPvr).toBe(0);
    expect(r.ov5Byte23).toBe(0x40);
    expect([...r.ov1!]).toEqual([0x00, 0x00, 0x80]);
    expect(r.ov5!.length).toBe(24);
    expect(r.guestRadix).toBe(false);
  });

  it('0x80 ("both") → QEMU exits: invalid interrupt mode', () => {
    const r = doClientArchitectureSupport(guest(casTable(0x80)), 0x10000, XIVE_ONLY);
    expect(r.status).toBe(CAS_STATUS_EXIT);
    expect(r.message).toBe('guest requested an invalid interrupt mode');
    expect(r.xiveExploitation).toBe(false);
    // "both" is checked before exploitation: 0xC0 exits too
    expect(doClientArchitectureSupport(guest(casTable(0xc0)), 0x10000, XIVE_ONLY).status).toBe(
      CAS_STATUS_EXIT,
    );
  });

  it('no OV5 → H_PARAMETER', () => {
    const r = doClientArchitectureSupport(guest(casTable(null)), 0x10000, XIVE_ONLY);
    expect(r.status).toBe(CAS_STATUS_RETURN);
    expect(r.rc).toBe(-4);
    expect(r.message).toBe("guest didn't provide option vector 5");
    expect(r.ov1).not.toBeNull();
  });

  it('legacy (byte 23 = 0) on a XIVE-only machine → exit asking for XICS', () => {
    const r = doClientArchitectureSupport(guest(casTable(0x00)), 0x10000, XIVE_ONLY);
    expect(r.status).toBe(CAS_STATUS_EXIT);
    expect(r.message).toMatch(/^Guest requested unavailable interrupt mode \(XICS\)/);
    const xics = doClientArchitectureSupport(guest(casTable(0x00)), 0x10000, { ...XIVE_ONLY, xics: true });
    expect([xics.status, xics.rc, xics.xiveExploitation]).toEqual([CAS_STATUS_RETURN, 0, false]);
    const noXive = doClientArchitectureSupport(guest(casTable(0x40)), 0x10000, {
      ...XIVE_ONLY,
      xics: true,
      xive: false,
    });
    expect(noXive.message).toMatch(/^Guest requested unavailable interrupt mode \(XIVE\)/);
  });

  it('PVR list: no match and no compat → H_HARDWARE; a logical PVR is accepted', () => {
    const none = doClientArchitectureSupport(
      guest(casTable(0x40, [[0xffff0000, 0x004d0000]])),
      0x10000,
      XIVE_ONLY,
    );
    expect([none.rc, none.message]).toEqual([-1, "Couldn't negotiate a suitable PVR during CAS"]);
    const compat = doClientArchitectureSupport(
      guest(
        casTable(0x40, [
          [0xffffffff, 0x0f000004],
          [0xffffffff, 0x0f000005],
          [0xffff0000, 0x004d0000],
        ]),
      ),
      0x10000,
      XIVE_ONLY,
    );
    expect([compat.rc, compat.compatPvr, compat.explicitPvrMatch]).toEqual([0, 0x0f000005, false]);
  });

  it('OV5 byte 24: both MMUs → exit; radix recorded', () => {
    const mem = guest(casTable(0x40));
    const ov5Byte24 = 0x10000 + 16 + 1 + 4 + 6 + 1 + 23;
    mem.store(ov5Byte24, 1, 0, 0x80, -1);
    expect(doClientArchitectureSupport(mem, 0x10000, XIVE_ONLY).message).toBe(
      'guest requested hash and radix MMU, which is invalid.',
    );
    mem.store(ov5Byte24, 1, 0, 0x40, -1);
    expect(doClientArchitectureSupport(mem, 0x10000, XIVE_ONLY).guestRadix).toBe(true);
  });

  it('parses vectors by number and tests bits', () => {
    const mem = guest(casTable(0x40));
    const table = 0x10000 + 16;
    expect([...spaprOvecParseVector(mem, table, 2)!]).toEqual([0]);
    expect(spaprOvecParseVector(mem, table, 6)).toBeNull();
    expect(spaprOvecTest(spaprOvecParseVector(mem, table, 5), OV5_XIVE_EXPLOIT)).toBe(true);
    expect(spaprOvecTest(null, OV5_XIVE_EXPLOIT)).toBe(false);
    expect(ppc64PhysToReal(0xc000_0000_0001_0000n)).toBe(0x10000);
  });
});
