import { describe, expect, it } from 'vitest';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { PhysMem } from '../../../../src/hw/phys-mem.ts';
import {
  OPAL_PARAMETER,
  OPAL_RESOURCE,
  OPAL_SUCCESS,
  OPAL_WRONG_STATE,
  OPAL_XIVE_EQ_ALWAYS_NOTIFY,
  OPAL_XIVE_EQ_ENABLED,
  OPAL_XIVE_EQ_ESCALATE,
  OPAL_XIVE_FREE_ACTIVE,
  OPAL_XIVE_IRQ_LSI,
  OPAL_XIVE_IRQ_STORE_EOI,
  OPAL_XIVE_IRQ_TRIGGER_PAGE,
  OPAL_XIVE_VP_ENABLED,
  P9_END_ESB_BASE,
  P9_ESC_HWIRQ_BASE,
  P9_EXT_HWIRQ_BASE,
  P9_IPI_ESB_BASE,
  P9_IPI_HWIRQ_BASE,
  P9_MAX_IPIS,
  P9_TIMA_BASE,
  P9Chip,
  XiveIrqConfig,
  XiveIrqInfo,
  XiveQueueInfo,
  XiveQueueState,
} from '../../../../src/hw/xive/p9-chip.ts';
import {
  TM_QW1_OS,
  TM_QW1W2_VO,
  TM_QW3_HV_PHYS,
  XIVE_ESB_OFF,
  XIVE_ESB_SET_PQ_00,
} from '../../../../src/hw/xive/regs.ts';
import { XIVE_SRC_STORE_EOI, XiveSource } from '../../../../src/hw/xive/source.ts';
import { Trace } from '../../../../src/sim/trace.ts';

const RAM = 0x1000_0000;

function setup(nrVps?: number): { chip: P9Chip; mem: PhysMem; out: Word64 } {
  const trace = new Trace();
  const mem = new PhysMem(trace);
  mem.addRam(RAM, 0x100_0000, 'ram');
  const cfg: { nrCpus: number; nrIpis: number; nrVps?: number } = { nrCpus: 4, nrIpis: 8 };
  if (nrVps !== undefined) cfg.nrVps = nrVps;
  return { chip: new P9Chip(cfg, mem, trace), mem, out: new Word64() };
}

describe('P9Chip HW IPIs', () => {
  it('allocates IPIs from hw irq 0x10 with 2 × 64 KiB ESB pages in the VC BAR at 0x0006_0100_0000_0000 + irq·0x20000', () => {
    const { chip, mem } = setup();
    expect(P9_IPI_ESB_BASE).toBe(0x0006_0100_0020_0000);
    const a = chip.allocIrq();
    const b = chip.allocIrq();
    expect([a, b]).toEqual([P9_IPI_HWIRQ_BASE, P9_IPI_HWIRQ_BASE + 1]);
    const info = new XiveIrqInfo();
    expect(chip.getIrqInfo(b, info)).toBe(OPAL_SUCCESS);
    expect(info.trigPage).toBe(0x0006_0100_0022_0000);
    expect(info.eoiPage).toBe(0x0006_0100_0023_0000);
    expect(info.esbShift).toBe(16);
    expect(info.flags).toBe(OPAL_XIVE_IRQ_TRIGGER_PAGE);
    expect(mem.ownerName(info.eoiPage)).toBe('p9.ipi-esb');
    // A fresh IPI is off (PQ 01) and its EAS masked.
    const out = new Word64();
    mem.load(info.eoiPage + 0x800, 8, out);
    expect(out.lo).toBe(XIVE_ESB_OFF);
    const cfg = new XiveIrqConfig();
    chip.getIrqConfig(b, cfg);
    expect(cfg.prio).toBe(0xff);
  });

  it('returns 0 when the IPIs are exhausted; free rejects a free IPI', () => {
    const { chip } = setup();
    const got: number[] = [];
    for (let i = 0; i < 9; i++) got.push(chip.allocIrq());
    expect(got[8]).toBe(0);
    expect(chip.freeIrq(got[3]!)).toBe(OPAL_SUCCESS);
    expect(chip.freeIrq(got[3]!)).toBe(OPAL_PARAMETER);
    expect(chip.allocIrq()).toBe(got[3]);
    expect(chip.getIrqInfo(0x5, new XiveIrqInfo())).toBe(OPAL_PARAMETER);
  });

  it("holds at most skiboot's XIVE_INT_COUNT − XIVE_INT_FIRST IPIs, the last one's pages inside the VC BAR's ESB sets", () => {
    const trace = new Trace();
    expect(P9_MAX_IPIS).toBe(0x10_0000 - 0x10);
    expect(() => new P9Chip({ nrCpus: 1, nrIpis: P9_MAX_IPIS + 1 }, new PhysMem(trace), trace)).toThrow(
      'P9Chip: invalid nrIpis 1048561 (at most 1048560)',
    );
    const chip = new P9Chip({ nrCpus: 1, nrIpis: P9_MAX_IPIS }, new PhysMem(trace), trace);
    const info = new XiveIrqInfo();
    expect(chip.getIrqInfo(P9_IPI_HWIRQ_BASE + P9_MAX_IPIS - 1, info)).toBe(OPAL_SUCCESS);
    // Interrupt index 2^20 − 1 at esb_mmio + index × 128 KiB; the ESB sets end at +384 GiB.
    expect(info.trigPage).toBe(0x0006_0100_0000_0000 + (0x10_0000 - 1) * 0x2_0000);
    expect(info.eoiPage + 0x1_0000).toBeLessThanOrEqual(0x0006_0100_0000_0000 + 384 * 2 ** 30);
    expect(chip.getIrqInfo(P9_IPI_HWIRQ_BASE + P9_MAX_IPIS, info)).toBe(OPAL_PARAMETER);
  });
});

describe('P9Chip source blocks', () => {
  it('numbers added blocks from 0x0100_0000, 1024-aligned, with LSI/StoreEOI/no-trigger info', () => {
    const { chip } = setup();
    const trace = new Trace();
    const msi = new XiveSource({ nrIrqs: 64, esbShift: 16, flags: XIVE_SRC_STORE_EOI, resetPq: 1 }, trace);
    const lsi = new XiveSource({ nrIrqs: 4, esbShift: 16, flags: 0, resetPq: 1 }, trace);
    lsi.setLsi(2, true);
    const b1 = chip.addSourceBlock(msi, 0x0006_0200_0000_0000, 'phb0.msi');
    const b2 = chip.addSourceBlock(lsi, 0x0006_0201_0000_0000, 'phb0.lsi', true);
    expect(b1).toBe(P9_EXT_HWIRQ_BASE);
    expect(b2).toBe(P9_EXT_HWIRQ_BASE + 1024);
    const info = new XiveIrqInfo();
    chip.getIrqInfo(b1 + 3, info);
    // Single 64 KiB page: trigger and EOI on the same page.
    expect(info.trigPage).toBe(0x0006_0200_0003_0000);
    expect(info.eoiPage).toBe(0x0006_0200_0003_0000);
    expect(info.flags).toBe(OPAL_XIVE_IRQ_TRIGGER_PAGE | OPAL_XIVE_IRQ_STORE_EOI);
    chip.getIrqInfo(b2 + 2, info);
    expect(info.trigPage).toBe(0);
    expect(info.flags).toBe(OPAL_XIVE_IRQ_LSI);
    expect(chip.sourceOf(b2 + 2)?.srcno).toBe(2);
  });
});

describe('P9Chip VPs, queues and routing', () => {
  it('allocates power-of-two VP blocks aligned above the host range, OPAL_RESOURCE when full', () => {
    const { chip } = setup(0x2000);
    expect(chip.allocVpBlock(11)).toBe(0x800);
    expect(chip.allocVpBlock(2)).toBe(0x1000);
    expect(chip.allocVpBlock(12)).toBe(OPAL_RESOURCE);
    expect(chip.allocVpBlock(11)).toBe(0x1800);
    expect(chip.setVpInfo(0x1000, OPAL_XIVE_VP_ENABLED)).toBe(OPAL_SUCCESS);
    expect(chip.freeVpBlock(0x1000)).toBe(OPAL_XIVE_FREE_ACTIVE);
    chip.setVpInfo(0x1000, 0);
    expect(chip.freeVpBlock(0x1000)).toBe(OPAL_SUCCESS);
    expect(chip.freeVpBlock(0x1000)).toBe(OPAL_PARAMETER);
    expect(chip.vmVpBlocks).toBe(2);
  });

  it('enqueues gen|EISN into the queue and presents on the pushed OS ring (TIMA via PhysMem)', () => {
    const { chip, mem, out } = setup();
    const vp = chip.allocVpBlock(0);
    chip.setVpInfo(vp, OPAL_XIVE_VP_ENABLED);
    expect(chip.setQueueInfo(vp, 5, RAM, 16, OPAL_XIVE_EQ_ENABLED | OPAL_XIVE_EQ_ALWAYS_NOTIFY)).toBe(0);
    const st = new XiveQueueState();
    chip.getQueueState(vp, 5, st);
    expect([st.toggle, st.index]).toEqual([1, 0]);
    const ipi = chip.allocIrq();
    chip.setIrqConfig(ipi, vp, 5, 0x42);
    // Push the VP's context on thread 2 through the HV TIMA page; open the CPPR (OS page).
    mem.store(P9_TIMA_BASE + 0x10000 + TM_QW1_OS + 8, 4, 0, (TM_QW1W2_VO | vp) >>> 0, 2);
    mem.store(P9_TIMA_BASE + 0x20000 + TM_QW1_OS + 1, 1, 0, 0xff, 2);
    const info = new XiveIrqInfo();
    chip.getIrqInfo(ipi, info);
    mem.load(info.eoiPage + XIVE_ESB_SET_PQ_00, 8, out);
    mem.store(info.trigPage, 8, 0, 0);
    expect(mem.loadBe32(RAM)).toBe(0x8000_0042);
    expect(chip.tctxs[2]!.osLine).toBe(true);
    mem.load(P9_TIMA_BASE + 0x20000 + 0x810, 2, out, 2);
    expect(out.lo).toBe(0x8005);
    chip.getQueueState(vp, 5, st);
    expect([st.toggle, st.index]).toEqual([1, 1]);
    expect(chip.setQueueState(vp, 5, 0, 7)).toBe(OPAL_SUCCESS);
    chip.getQueueState(vp, 5, st);
    expect([st.toggle, st.index]).toEqual([0, 7]);
    expect(chip.setQueueState(vp, 4, 0, 0)).toBe(OPAL_WRONG_STATE);
    expect(chip.setIrqConfig(ipi, vp, 8, 0)).toBe(OPAL_PARAMETER);
  });

  it('backlogs into the NVT and escalates through ESe to the escalation EAS when not dispatched', () => {
    const { chip, mem, out } = setup();
    const vp = chip.allocVpBlock(0);
    chip.setVpInfo(vp, OPAL_XIVE_VP_ENABLED);
    chip.setQueueInfo(
      vp,
      6,
      RAM,
      16,
      OPAL_XIVE_EQ_ENABLED | OPAL_XIVE_EQ_ALWAYS_NOTIFY | OPAL_XIVE_EQ_ESCALATE,
    );
    chip.setQueueInfo(
      chip.hostVp(1),
      7,
      RAM + 0x1_0000,
      16,
      OPAL_XIVE_EQ_ENABLED | OPAL_XIVE_EQ_ALWAYS_NOTIFY,
    );
    chip.tctxs[1]!.setCppr(TM_QW3_HV_PHYS, 0xff);
    const qi = new XiveQueueInfo();
    chip.getQueueInfo(vp, 6, qi);
    expect(qi.escIrq).toBe(P9_ESC_HWIRQ_BASE + vp * 8 + 6);
    expect(qi.qeoiPage).toBe(P9_END_ESB_BASE + (vp * 8 + 6) * 0x20000);
    chip.setIrqConfig(qi.escIrq, chip.hostVp(1), 7, 0x77);
    const info = new XiveIrqInfo();
    chip.getIrqInfo(qi.escIrq, info);
    // ESe starts off: arm it.
    mem.load(info.eoiPage + 0x800, 8, out);
    expect(out.lo).toBe(XIVE_ESB_OFF);
    mem.load(info.eoiPage + XIVE_ESB_SET_PQ_00, 8, out);
    const ipi = chip.allocIrq();
    chip.setIrqConfig(ipi, vp, 6, 0x99);
    chip.getIrqInfo(ipi, info);
    mem.load(info.eoiPage + XIVE_ESB_SET_PQ_00, 8, out);
    mem.store(info.trigPage, 8, 0, 0);
    expect(mem.loadBe32(RAM)).toBe(0x8000_0099);
    chip.getVpState(vp, out);
    expect(out.hi).toBe(0x0200);
    expect(mem.loadBe32(RAM + 0x1_0000)).toBe(0x8000_0077);
    expect(chip.tctxs[1]!.hvLine).toBe(true);
    expect(chip.escalationPq(vp, 6)).toBe(2);
    // A second event coalesces in ESe (PQ 11), no second host entry.
    mem.load(info.eoiPage + XIVE_ESB_SET_PQ_00, 8, out);
    mem.store(info.trigPage, 8, 0, 0);
    expect(mem.loadBe32(RAM + 0x1_0004)).toBe(0);
    expect(chip.escalationPq(vp, 6)).toBe(3);
  });
});
