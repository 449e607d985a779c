import { describe, expect, it } from 'vitest';
import { MASKED } from '../../../../src/host/kvm/xive-native-uapi.ts';
import { XiveSrcBlock } from '../../../../src/host/kvm/xive-state.ts';
import { XIVE_INVALID_TARGET } from '../../../../src/host/xive/host-xive.ts';

describe('XiveSrcBlock source fields (book3s_xive.h struct kvmppc_xive_irq_state)', () => {
  it('a new source: masked priorities, no target, no IPI, no passthrough irq', () => {
    const st = new XiveSrcBlock(3).state(17);
    expect(st.number).toBe(3 * 1024 + 17);
    expect([st.guestPriority, st.savedPriority, st.actPriority]).toEqual([MASKED, MASKED, MASKED]);
    expect(st.ipiData.target).toBe(XIVE_INVALID_TARGET);
    expect([st.ipiNumber, st.ipiData.hwIrq, st.ptNumber, st.eisn, st.actServer]).toEqual([0, 0, 0, 0, 0]);
    expect(st.ptData).toBeNull();
    expect([st.ipiData.eoiPage, st.ipiData.trigPage]).toEqual([0, 0]);
  });

  it('ipi_data: ESB pages kept exactly, hw_irq is ipi_number, fields per source', () => {
    const sb = new XiveSrcBlock(0);
    const xd = sb.state(5).ipiData;
    xd.eoiPage = 2 ** 51 - 0x1000;
    xd.trigPage = 0x0006_0100_0014_0000;
    xd.hwIrq = 0x10;
    xd.target = 0;
    sb.state(6).actPriority = 0;
    const again = sb.state(5);
    expect(again.ipiData.eoiPage).toBe(0x7_ffff_ffff_f000);
    expect(again.ipiData.trigPage).toBe(0x0006_0100_0014_0000);
    expect(again.ipiNumber).toBe(0x10);
    expect(again.ipiData.target).toBe(0);
    expect(again.actPriority).toBe(MASKED);
    expect(sb.state(6).actPriority).toBe(0);
    expect(sb.state(6).ipiData.target).toBe(XIVE_INVALID_TARGET);
    // Kept as 4 KiB frame numbers: an address that is not one is a model bug.
    expect(() => {
      xd.eoiPage = 0x0006_0100_0014_0800;
    }).toThrow('ipi_data: ESB page 0x6010000140800 is not a 4 KiB page below 2^51');
    expect(() => {
      xd.trigPage = 2 ** 51;
    }).toThrow('ipi_data: ESB page 0x8000000000000 is not a 4 KiB page below 2^51');
    expect(again.ipiData.eoiPage).toBe(0x7_ffff_ffff_f000);
  });

  it('the passthrough irq and its data, set and cleared', () => {
    const st = new XiveSrcBlock(0).state(9);
    st.ptNumber = 0x2345;
    expect(st.ptNumber).toBe(0x2345);
    st.ptNumber = 0;
    expect(st.ptNumber).toBe(0);
  });
});
