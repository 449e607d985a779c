import { describe, expect, it } from 'vitest';
import { vfioHotplug, vfioHotUnplug } from '../../../../src/host/vfio/hotplug.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import { P9_IPI_ESB_BASE } from '../../../../src/hw/xive/p9-chip.ts';
import { LISN_BASE, makeEnv, P, stalePtes, type VfioEnv } from './env.ts';

const L = LISN_BASE;

/** The VMM's PTE pfn for the LISN's trigger (even) or EOI (odd) page, or -1 when absent. */
function ptePfn(e: VfioEnv, lisn: number, odd: boolean): number {
  const vpn = e.esb / P + 2 * lisn + (odd ? 1 : 0);
  return e.vmm.mm.pgtable.flags(vpn) & 1 ? e.vmm.mm.pgtable.pfn(vpn) : -1;
}

function ipiPfn(e: VfioEnv, lisn: number, odd: boolean): number {
  const hw = e.dev.irqState(lisn)!.ipiNumber;
  return (P9_IPI_ESB_BASE + (hw - 0x10) * 2 * P) / P + (odd ? 1 : 0);
}

function devPfn(e: VfioEnv, slot: number, v: number, odd: boolean): number {
  return e.phb.msiTriggerPage(slot, v) / P + (odd ? 1 : 0);
}

function plug(e: VfioEnv, n: number, slot = 0) {
  const pdev = new PciDevice({ name: `nic${slot}`, msix: n });
  const gsis = Array.from({ length: n }, (_, v) => L + v);
  const a = vfioHotplug(e.vfio, e.irqfds, e.phb, slot, pdev, gsis);
  if (typeof a === 'number') throw new Error(`hotplug failed ${a}`);
  return a;
}

describe('bind / unbind re-point the guest ESB pages (kvmppc_xive_native_reset_mapped(); S4, S11)', () => {
  it('bind zaps the LISN pages; the next faults insert the device trigger/EOI pfns; unbind goes back to the IPI', () => {
    const e = makeEnv();
    expect(e.guest.createSource(L)).toBe(0);
    expect(e.guest.createSource(L + 1)).toBe(0);
    expect(e.guest.esbLoad(L, 0x800)).toBe(1); // IPI, PQ 01 after GRP_SOURCE
    e.guest.esbLoad(L + 1, 0x800);
    e.guest.esbTrigger(L); // maps the trigger page too (PQ 01: dropped)
    expect(ptePfn(e, L, true)).toBe(ipiPfn(e, L, true));
    expect(ptePfn(e, L, false)).toBe(ipiPfn(e, L, false));
    const zaps = e.dev.stats.zaps;
    const a = plug(e, 1);
    expect(a.isBound(0)).toBe(true);
    expect(e.dev.stats.zaps).toBe(zaps + 1);
    expect(ptePfn(e, L, true)).toBe(-1);
    expect(ptePfn(e, L, false)).toBe(-1);
    expect(ptePfn(e, L + 1, true)).toBe(ipiPfn(e, L + 1, true)); // the neighbour is untouched
    const faults = e.dev.stats.esbFaults;
    expect(e.guest.esbLoad(L, 0x800)).toBe(2); // the device source: PQ 10 after the host handed it over
    e.guest.esbTrigger(L);
    expect(e.dev.stats.esbFaults).toBe(faults + 2);
    expect(ptePfn(e, L, false)).toBe(devPfn(e, 0, 0, false));
    expect(ptePfn(e, L, true)).toBe(devPfn(e, 0, 0, true));
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    expect(e.dev.stats.zaps).toBe(zaps + 2);
    expect(stalePtes(e, 0)).toEqual([]);
    expect(e.guest.esbLoad(L, 0x800)).toBe(2); // the IPI again: mainline clr_mapped leaves PQ 10
    expect(ptePfn(e, L, true)).toBe(ipiPfn(e, L, true));
    expect(e.phb.goneAccesses).toBe(0);
  });
});

describe('PQ transfers and EOI rules of set/clr_mapped (book3s_xive.c:kvmppc_xive_set_mapped() / clr_mapped())', () => {
  it('mainline, bound before the guest starts the irq: device PQ 10 until the guest unmask, IPI 01; unbind → device EOI to the host, IPI 10', () => {
    const e = makeEnv();
    e.guest.createSource(L);
    const a = plug(e, 1);
    const st = e.dev.irqState(L)!;
    const ipi = st.ipiData;
    const hw = a.hwIrq(0);
    const src = e.phb.slots[0]!.msiSource;
    expect(e.host.pqOf(ipi)).toBe(1); // SET_PQ_01 on the IPI
    expect(src.getPq(0)).toBe(2); // host: PQ 00 (request_irq) → SET_PQ_10
    const xd = e.host.irqOfHw(hw)!.data;
    expect([xd.savedP, xd.staleP]).toEqual([false, true]);
    expect(e.host.irqOfHw(hw)!.forwarded).toBe(true);
    expect(st.ptNumber).toBe(hw);
    // The guest starts the irq: SOURCE_CONFIG routes the device EAS, its unmask reaches the device page.
    expect(e.guest.sourceConfig(L, 0x1234)).toBe(0);
    expect(e.guest.unmask(L)).toBe(2);
    expect(src.getPq(0)).toBe(0);
    a.pdev.raiseMsi(0);
    expect(e.guest.drain()).toEqual([0x1234]);
    expect(src.getPq(0)).toBe(2);
    // Unbind with the event not EOI'd by the guest.
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    expect(e.host.pqOf(ipi)).toBe(2); // prio MASKED (native never sets guest_priority) → SET_PQ_10
    expect(st.ptNumber).toBe(0);
  });

  it('mainline, bound while the guest has the irq started: the device source stays at 10 and its MSIs coalesce (lost)', () => {
    const e = makeEnv();
    e.guest.createSource(L);
    e.guest.sourceConfig(L, 0x1234);
    expect(e.guest.unmask(L)).toBe(1); // IPI 01 → 00
    const a = plug(e, 1);
    const src = e.phb.slots[0]!.msiSource;
    expect(src.getPq(0)).toBe(2);
    a.pdev.raiseMsi(0);
    a.pdev.raiseMsi(0);
    expect(src.getPq(0)).toBe(3);
    expect(e.guest.drain()).toEqual([]);
  });

  it('fixed variant (nativeSetMappedUsesXicsPq off): the IPI PQ 00 carries over as a device source EOI; unbind carries the device PQ back', () => {
    const e = makeEnv({ flags: { nativeSetMappedUsesXicsPq: false, setMappedEisnIsStateNumber: false } });
    e.guest.createSource(L);
    e.guest.sourceConfig(L, 0x1234);
    e.guest.unmask(L);
    const a = plug(e, 1);
    const src = e.phb.slots[0]!.msiSource;
    expect(src.getPq(0)).toBe(0);
    a.pdev.raiseMsi(0);
    expect(e.guest.drain()).toEqual([0x1234]);
    expect(src.getPq(0)).toBe(2);
    const ipi = e.dev.irqState(L)!.ipiData;
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    // clr_mapped: device SET_PQ_01 returned 10 → P set: SET_PQ_11 (host resend); IPI gets SET_PQ_10.
    expect(e.host.pqOf(ipi)).toBe(2);
  });

  it('EISN: bound while targeted, the device EAS carries the LISN with the mainline flag, the guest EISN without', () => {
    for (const bug of [true, false]) {
      const e = makeEnv({ flags: { setMappedEisnIsStateNumber: bug } });
      e.guest.createSource(L);
      e.guest.sourceConfig(L, 0x1234);
      const a = plug(e, 1);
      e.guest.unmask(L); // mainline leaves the device at PQ 10: the guest's unmask enables it
      a.pdev.raiseMsi(0);
      expect(e.guest.drain()).toEqual([bug ? L : 0x1234]);
      // The next SOURCE_CONFIG with new values reprograms the device EAS with the guest EISN.
      e.guest.sourceConfig(L, 0x1235);
      e.guest.eoi(L);
      a.pdev.raiseMsi(0);
      expect(e.guest.drain()).toEqual([0x1235]);
      // Unbind: the IPI EAS is reprogrammed the same way.
      vfioHotUnplug(e.vfio, a);
      e.guest.unmask(L);
      e.guest.esbTrigger(L);
      expect(e.guest.drain()).toEqual([bug ? L : 0x1235]);
    }
  });
});
