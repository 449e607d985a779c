import { describe, expect, it } from 'vitest';
import { ppcBit32, ppcBitmask32 } from '../../../../src/hw/bits.ts';
import * as R from '../../../../src/hw/xive/regs.ts';

describe('xive regs', () => {
  it('masks sit at the IBM bit numbers of xive_regs.h', () => {
    expect(R.EAS_VALID_HI).toBe(ppcBit32(0));
    expect(R.EAS_END_BLOCK_HI).toBe(ppcBitmask32(4, 7));
    expect(R.EAS_END_INDEX_HI).toBe(ppcBitmask32(8, 31));
    expect(R.EAS_MASKED_LO).toBe(ppcBit32(32 - 32));
    expect(R.EAS_END_DATA_LO).toBe(ppcBitmask32(33 - 32, 63 - 32));
    expect(R.END_W0_VALID).toBe(ppcBit32(0));
    expect(R.END_W0_ENQUEUE).toBe(ppcBit32(1));
    expect(R.END_W0_UCOND_NOTIFY).toBe(ppcBit32(2));
    expect(R.END_W0_BACKLOG).toBe(ppcBit32(3));
    expect(R.END_W0_ESCALATE_CTL).toBe(ppcBit32(5));
    expect(R.END_W0_UNCOND_ESCALATE).toBe(ppcBit32(6));
    expect(R.END_W0_SILENT_ESCALATE).toBe(ppcBit32(7));
    expect(R.END_W0_QSIZE).toBe(ppcBitmask32(12, 15));
    expect(R.END_W1_ESn).toBe(ppcBitmask32(0, 1));
    expect(R.END_W1_ESe).toBe(ppcBitmask32(2, 3));
    expect(R.END_W1_GENERATION).toBe(ppcBit32(9));
    expect(R.END_W1_PAGE_OFF).toBe(ppcBitmask32(10, 31));
    expect(R.END_W2_EQ_ADDR_HI).toBe(ppcBitmask32(4, 31));
    expect(R.END_W6_FORMAT_BIT).toBe(ppcBit32(8));
    expect(R.END_W6_NVT_BLOCK).toBe(ppcBitmask32(9, 12));
    expect(R.END_W6_NVT_INDEX).toBe(ppcBitmask32(13, 31));
    expect(R.END_W7_F0_PRIORITY).toBe(ppcBitmask32(8, 15));
    expect(R.END_W7_F1_LOG_SERVER_ID).toBe(ppcBitmask32(1, 31));
    expect(R.NVT_W4_IPB).toBe(ppcBitmask32(16, 23));
    expect(R.TM_QW1W2_OS_CAM).toBe(ppcBitmask32(8, 31));
    expect(R.TM_QW3W2_LP).toBe(ppcBit32(6));
    expect(R.TM_QW3W2_T).toBe(ppcBit32(31));
  });

  it('offsets and constants keep their C values', () => {
    expect([R.XIVE_ESB_LOAD_EOI, R.XIVE_ESB_STORE_EOI, R.XIVE_ESB_GET]).toEqual([0, 0x400, 0x800]);
    expect([R.XIVE_ESB_SET_PQ_00, R.XIVE_ESB_SET_PQ_01, R.XIVE_ESB_SET_PQ_10, R.XIVE_ESB_SET_PQ_11]).toEqual([
      0xc00, 0xd00, 0xe00, 0xf00,
    ]);
    expect([R.TM_SPC_ACK_OS_REG, R.TM_SPC_SET_OS_PENDING, R.TM_SPC_PULL_OS_CTX]).toEqual([
      0x810, 0x812, 0x818,
    ]);
    expect([R.TM_SPC_PULL_POOL_CTX, R.TM_SPC_ACK_HV_REG]).toEqual([0x828, 0x830]);
    expect([R.TM_QW0_USER, R.TM_QW1_OS, R.TM_QW2_HV_POOL, R.TM_QW3_HV_PHYS]).toEqual([0, 0x10, 0x20, 0x30]);
    expect(R.TM_QW3_HV_PHYS + R.TM_WORD2).toBe(0x38);
  });

  it('priority ↔ IPB ↔ PIPR helpers', () => {
    expect([0, 3, 7, 8, 0xff].map(R.xivePriorityToIpb)).toEqual([0x80, 0x10, 0x01, 0, 0]);
    expect([0, 0x80, 0x10, 0x18, 0x01, 0x1ff].map(R.xiveIpbToPipr)).toEqual([0xff, 0, 3, 3, 7, 0]);
    expect(R.xiveNvtCam(0, 0x400)).toBe(0x400);
    expect(R.xiveNvtCam(0xf, 0x7ffff)).toBe(0x7fffff);
    expect(R.xiveEasBlock(0x3000_1234)).toBe(3);
    expect(R.xiveEasIndex(0x3000_1234)).toBe(0x1234);
    expect(R.xiveSrcno(0xf, 0x1200)).toBe(0xf000_1200);
  });
});
