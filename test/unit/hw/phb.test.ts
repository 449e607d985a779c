import { describe, expect, it } from 'vitest';
import { FrameTable } from '../../../src/host/mm/frames.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import {
  frameTableMap,
  PCI_NUM_INTX,
  PciDevice,
  PHB_ESB_BASE,
  PHB_ESB_WINDOW,
  PHB_GONE_LOG_MAX,
  PHB_SLOT_LSI_OFFSET,
  PHB_SLOT_WINDOW,
  Phb,
} from '../../../src/hw/phb.ts';
import { PhysMem } from '../../../src/hw/phys-mem.ts';
import {
  OPAL_XIVE_IRQ_LSI,
  OPAL_XIVE_IRQ_TRIGGER_PAGE,
  P9_EXT_HWIRQ_BASE,
  P9Chip,
  XiveIrqInfo,
} from '../../../src/hw/xive/p9-chip.ts';
import { XIVE_STAT_TRIGGER } from '../../../src/hw/xive/source.ts';
import { Trace } from '../../../src/sim/trace.ts';

const P = 0x1_0000;

function setup(slots = 2, maxVectors = 64) {
  const trace = new Trace();
  const mem = new PhysMem(trace);
  const chip = new P9Chip({ nrCpus: 2, nrIpis: 64 }, mem, trace);
  const frames = new FrameTable({ ramBase: 0x1000_0000, ramFrames: 4 }, trace);
  const phb = new Phb({ index: 1, slots, maxVectors }, chip, trace, [frameTableMap(frames)]);
  return { trace, mem, chip, frames, phb, out: new Word64() };
}

describe('PHB slots and their hardware sources', () => {
  it('registers an MSI block and a 4-LSI block per slot in the chip, at fixed ESB addresses', () => {
    const { chip, phb } = setup();
    const base = PHB_ESB_BASE + PHB_ESB_WINDOW;
    expect(phb.slots.map((s) => [s.msiHwBase, s.lsiHwBase])).toEqual([
      [P9_EXT_HWIRQ_BASE, P9_EXT_HWIRQ_BASE + 0x400],
      [P9_EXT_HWIRQ_BASE + 0x800, P9_EXT_HWIRQ_BASE + 0xc00],
    ]);
    expect(phb.slots[1]!.msiEsbBase).toBe(base + PHB_SLOT_WINDOW);
    expect(phb.slots[1]!.lsiEsbBase).toBe(base + PHB_SLOT_WINDOW + PHB_SLOT_LSI_OFFSET);
    const info = new XiveIrqInfo();
    expect(chip.getIrqInfo(phb.msiHwIrq(1, 5), info)).toBe(0);
    expect(info.flags).toBe(OPAL_XIVE_IRQ_TRIGGER_PAGE);
    expect(info.trigPage).toBe(base + PHB_SLOT_WINDOW + 5 * 2 * P);
    expect(info.eoiPage).toBe(base + PHB_SLOT_WINDOW + 5 * 2 * P + P);
    expect(info.esbShift).toBe(16);
    // PHB LSIs: no trigger page reported.
    expect(chip.getIrqInfo(phb.lsiHwIrq(0, 2), info)).toBe(0);
    expect(info.flags).toBe(OPAL_XIVE_IRQ_LSI);
    expect(info.trigPage).toBe(0);
    expect(info.eoiPage).toBe(phb.slots[0]!.lsiEsbBase + 2 * 2 * P + P);
    expect(() => new Phb({ index: 0, slots: 17 }, chip, new Trace())).toThrow(/slot count/);
  });

  it('an empty slot: its frames read all-ones, drop stores, and count as accesses to a gone device, in every frame map', () => {
    const { mem, frames, phb, out } = setup();
    const s0 = phb.slots[0]!;
    mem.load(s0.msiEsbBase + P + 0x800, 8, out);
    expect([out.hi, out.lo]).toEqual([0xffff_ffff, 0xffff_ffff]);
    mem.store(s0.msiEsbBase, 8, 0, 0);
    frames.load(s0.lsiEsbBase / P + 1, 0x800, 4, -1, out);
    expect(out.lo).toBe(0xffff_ffff);
    expect([phb.stats.goneLoads, phb.stats.goneStores, phb.goneAccesses, s0.goneAccesses]).toEqual([
      2, 1, 3, 3,
    ]);
    expect(phb.goneLog.map((g) => [g.slot, g.device, g.addr, g.store])).toEqual([
      [0, '', s0.msiEsbBase + P + 0x800, false],
      [0, '', s0.msiEsbBase, true],
      [0, '', s0.lsiEsbBase + P + 0x800, false],
    ]);
    for (let i = 0; i < PHB_GONE_LOG_MAX + 5; i++) mem.load(s0.msiEsbBase + P, 8, out);
    expect(phb.goneLog.length).toBe(PHB_GONE_LOG_MAX);
  });

  it('plug maps the live sources (reset: PQ 01) in every map; unplug puts the gone window back', () => {
    const { mem, frames, phb, out } = setup();
    const dev = new PciDevice({ name: 'nic', msix: 8, lsis: 1 });
    expect(phb.plug(0, dev)).toBe(true);
    expect(phb.plug(0, new PciDevice({ name: 'x', msix: 1 }))).toBe(false); // slot taken
    expect(phb.plug(1, dev)).toBe(false); // plugged elsewhere
    expect(phb.plug(1, new PciDevice({ name: 'big', msix: 65 }))).toBe(false); // too many vectors
    const s0 = phb.slots[0]!;
    mem.load(s0.msiEsbBase + 3 * 2 * P + P + 0x800, 8, out);
    expect(out.lo).toBe(1);
    frames.load(s0.msiEsbBase / P + 7, 0xc00, 8, -1, out); // SET_PQ_00 on vector 3 through the mm map
    expect(out.lo).toBe(1);
    expect(s0.msiSource.getPq(3)).toBe(0);
    expect(phb.goneAccesses).toBe(0);
    expect(phb.unplug(0)).toBe(dev);
    expect(phb.unplug(0)).toBe(null);
    expect(dev.plugged).toBe(false);
    mem.load(s0.msiEsbBase + 3 * 2 * P + P + 0x800, 8, out);
    expect(out.lo).toBe(0xffff_ffff);
    expect(phb.goneLog.at(-1)!.device).toBe('nic');
    // Re-plug: the sources come back reset.
    expect(phb.plug(0, dev)).toBe(true);
    expect(s0.msiSource.getPq(3)).toBe(1);
    expect(s0.lsiSource.isLsi(0)).toBe(true);
    expect([phb.stats.plugs, phb.stats.unplugs]).toEqual([2, 1]);
  });

  it('pfn ranges of a slot cover exactly its MSI and LSI frames', () => {
    const { phb } = setup(1, 4);
    const s = phb.slots[0]!;
    expect(phb.slotPfnRanges(0)).toEqual([
      [s.msiEsbBase / P, s.msiEsbBase / P + 8],
      [s.lsiEsbBase / P, s.lsiEsbBase / P + 2 * PCI_NUM_INTX],
    ]);
    expect(phb.pfnInSlot(0, s.msiEsbBase / P + 7)).toBe(true);
    expect(phb.pfnInSlot(0, s.msiEsbBase / P + 8)).toBe(false);
  });
});

describe('PCI device interrupts', () => {
  it('MSI: not sent unplugged or disabled; masked → pending bit, sent on unmask; sent = a trigger-page store', () => {
    const { phb } = setup();
    const dev = new PciDevice({ name: 'nic', msix: 4 });
    expect(dev.raiseMsi(0)).toBe(false);
    expect(dev.stats.raisedWhileUnplugged).toBe(1);
    phb.plug(1, dev);
    const src = phb.slots[1]!.msiSource;
    expect(dev.raiseMsi(0)).toBe(false);
    expect(dev.stats.msiDroppedDisabled).toBe(1);
    dev.setMsiEnabled('msix', 2);
    expect(dev.raiseMsi(2)).toBe(false); // beyond the enabled vectors
    expect(dev.stats.msiDroppedDisabled).toBe(2);
    expect(dev.raiseMsi(1)).toBe(false); // masked
    expect([dev.stats.msiPended, dev.vectorPending[1]]).toEqual([1, 1]);
    src.setPq(1, 0);
    dev.setVectorMask(1, false);
    expect([dev.stats.msiPendingSent, dev.stats.msiSent, dev.vectorPending[1]]).toEqual([1, 1, 0]);
    expect(src.getPq(1)).toBe(2); // the trigger reached the source: 00 → 10
    expect(dev.raiseMsi(1)).toBe(true);
    expect(src.getPq(1)).toBe(3);
    expect(src.counter(1, XIVE_STAT_TRIGGER)).toBe(2);
    expect(Array.from(dev.sentPerVector)).toEqual([0, 2, 0, 0]);
    dev.setMsiEnabled(null, 0);
    expect(dev.raiseMsi(1)).toBe(false);
  });

  it('INTx: a level on the slot LSI (assert 00 → 10, deassert keeps PQ), ignored when not wired', () => {
    const { phb } = setup();
    const dev = new PciDevice({ name: 'old', msix: 0, lsis: 1 });
    phb.plug(0, dev);
    const lsi = phb.slots[0]!.lsiSource;
    lsi.setPq(0, 0);
    dev.setIntx(0, true);
    expect([lsi.getPq(0), lsi.isAsserted(0)]).toEqual([2, true]);
    dev.setIntx(0, false);
    expect([lsi.getPq(0), lsi.isAsserted(0)]).toEqual([2, false]);
    dev.setIntx(1, true);
    expect(lsi.isAsserted(1)).toBe(false);
  });

  it('rejects invalid configurations', () => {
    expect(() => new PciDevice({ name: 'a', msix: -1 })).toThrow(/MSI-X/);
    expect(() => new PciDevice({ name: 'a', msix: 1, msi: 3 })).toThrow(/MSI count/);
    expect(() => new PciDevice({ name: 'a', msix: 1, lsis: 5 })).toThrow(/LSI/);
  });
});
