import { describe, expect, it } from 'vitest';
import { type AssignedDevice, vfioHotplug, vfioHotUnplug } from '../../../../src/host/vfio/hotplug.ts';
import { PciDevice } from '../../../../src/hw/phb.ts';
import { P9_IPI_ESB_BASE } from '../../../../src/hw/xive/p9-chip.ts';
import { Rng } from '../../../../src/sim/rng.ts';
import { LISN_BASE, makeEnv, P, stalePtes, type VfioEnv } from './env.ts';

const NVEC = 64;
const eisnOf = (v: number): number => 0x1000 + v;

function plug(e: VfioEnv, pdev: PciDevice, slot: number): AssignedDevice {
  const gsis = Array.from({ length: NVEC }, (_, v) => LISN_BASE + v);
  const a = vfioHotplug(e.vfio, e.irqfds, e.phb, slot, pdev, gsis);
  if (typeof a === 'number') throw new Error(`hotplug failed ${a}`);
  return a;
}

/** QEMU claims the LISNs (GRP_SOURCE) when the guest allocates its MSIs, before MSI-X is enabled. */
function claim(e: VfioEnv): void {
  for (let v = 0; v < NVEC; v++) expect(e.guest.createSource(LISN_BASE + v)).toBe(0);
}

/** The guest driver's probe: start every vector (SOURCE_CONFIG, then the ESB unmask). */
function guestStart(e: VfioEnv): void {
  for (let v = 0; v < NVEC; v++) {
    expect(e.guest.sourceConfig(LISN_BASE + v, eisnOf(v))).toBe(0);
    e.guest.unmask(LISN_BASE + v);
  }
}

/** The guest driver's remove: mask every vector at the source and untarget it. */
function guestStop(e: VfioEnv): void {
  for (let v = 0; v < NVEC; v++) {
    e.guest.mask(LISN_BASE + v);
    expect(e.guest.sourceConfig(LISN_BASE + v, 0, true)).toBe(0);
  }
}

/**
 * Device traffic: each round raises a random subset of vectors once or twice, then the guest
 * handles its EQ (EOI with re-trigger on Q) until it is empty. Returns per-vector received counts.
 */
function traffic(e: VfioEnv, a: AssignedDevice, rng: Rng, rounds: number, got: Uint32Array): void {
  for (let r = 0; r < rounds; r++) {
    for (let v = 0; v < NVEC; v++) {
      if (!rng.chance(0.5)) continue;
      const n = rng.int(1, 2);
      for (let k = 0; k < n; k++) expect(a.pdev.raiseMsi(v)).toBe(true);
    }
    for (;;) {
      const batch = e.guest.drain();
      if (batch.length === 0) break;
      for (const eisn of batch) {
        const v = eisn - 0x1000;
        if (!(v >= 0 && v < NVEC)) throw new Error(`spurious EISN 0x${eisn.toString(16)}`);
        got[v]!++;
        e.guest.eoi(LISN_BASE + v);
      }
    }
  }
}

describe('hot-plug / hot-unplug of a 64-vector passthrough NIC under traffic', () => {
  it('100 cycles, seed 0x5eed: no lost or spurious interrupt, no PTE left on the device frames, the IPI back after each unplug', () => {
    const e = makeEnv({ slots: 2, maxVectors: 64 });
    const rng = new Rng(0x5eed);
    const got = new Uint32Array(NVEC);
    const sentBefore = new Uint32Array(NVEC);
    let sent = 0;
    const devices = [
      new PciDevice({ name: 'nic-a', msix: NVEC }),
      new PciDevice({ name: 'nic-b', msix: NVEC }),
    ];
    claim(e);
    for (let c = 0; c < 100; c++) {
      const slot = c % 2;
      const pdev = devices[slot]!;
      sentBefore.set(pdev.sentPerVector);
      const a = plug(e, pdev, slot);
      for (let v = 0; v < NVEC; v++) expect(a.isBound(v)).toBe(true);
      guestStart(e);
      traffic(e, a, rng, 3, got);
      guestStop(e);
      expect(vfioHotUnplug(e.vfio, a)).toBe(0);
      for (let v = 0; v < NVEC; v++) sent += pdev.sentPerVector[v]! - sentBefore[v]!;
      // Nothing maps the unplugged frames, in any process.
      expect(stalePtes(e, slot)).toEqual([]);
      // A guest access to the LISNs reaches the IPI again (GET: PQ 10 after the mainline clr_mapped).
      const v = rng.index(NVEC);
      expect(e.guest.esbLoad(LISN_BASE + v, 0x800)).toBe(2);
      const ipi = e.dev.irqState(LISN_BASE + v)!.ipiNumber;
      const vpn = e.esb / P + 2 * (LISN_BASE + v) + 1;
      expect(e.vmm.mm.pgtable.pfn(vpn)).toBe((P9_IPI_ESB_BASE + (ipi - 0x10) * 2 * P) / P + 1);
      expect(a.pdev.raiseMsi(0)).toBe(false); // gone from the bus
    }
    let received = 0;
    for (let v = 0; v < NVEC; v++) received += got[v]!;
    const sentPerVector = new Uint32Array(NVEC);
    for (const d of devices) for (let v = 0; v < NVEC; v++) sentPerVector[v]! += d.sentPerVector[v]!;
    expect(received).toBe(sent);
    expect(Array.from(got)).toEqual(Array.from(sentPerVector));
    expect(sent).toBeGreaterThan(100 * 64);
    expect(e.phb.goneAccesses).toBe(0);
    expect(e.host.stats.spurious).toBe(0);
    // Unbinding a guest-masked vector (PQ 01) breaks the "PQ 10/11" convention of the host side:
    // its source EOI reads Q=1 and re-triggers; the host handler signals the eventfd and KVM
    // refuses the injection (pt_number is still set): one per vector and cycle, never delivered.
    expect(e.irqfds.stats.injectFailed).toBe(100 * 64);
    expect(e.irqfds.stats.injectPassthrough).toBe(100 * 64);
    expect(e.vfio.stats.hostIrqs).toBe(100 * 64);
    expect(e.vfio.stats.producerFailures).toBe(0);
    expect(e.bypass.stats.connects).toBe(100 * 64);
    expect(e.bypass.stats.disconnects).toBe(100 * 64);
    expect(e.dev.stats.setMapped).toBe(100 * 64);
    expect(e.dev.stats.clrMapped).toBe(100 * 64);
    expect(e.dev.stats.zaps).toBe(2 * 100 * 64);
    // The pimap keeps one entry per GSI and reuses it on every re-plug.
    expect(e.irqfds.pimap!.nMapped).toBe(64);
    expect(e.bypass.producers.length + e.bypass.consumers.length).toBe(0);
  });

  it('a stale PTE is caught: with the pre-fix zap offset (zapOmitsEsbOffset) the unplugged frames stay mapped and a guest access is counted as gone', () => {
    const e = makeEnv({ flags: { zapOmitsEsbOffset: true } });
    const pdev = new PciDevice({ name: 'nic', msix: NVEC });
    claim(e);
    const a = plug(e, pdev, 0);
    guestStart(e);
    expect(e.guest.esbLoad(LISN_BASE, 0x800)).toBe(0); // the device page, unmasked
    guestStop(e);
    expect(vfioHotUnplug(e.vfio, a)).toBe(0);
    // The zap of irq n hit file pages 2n, 2n+1 (irq n-2's): the last two LISNs keep their
    // device EOI pages mapped (the guest touched only EOI pages).
    const stale = stalePtes(e, 0);
    const eoiVpn = (v: number): number => e.esb / P + 2 * (LISN_BASE + v) + 1;
    expect(stale.map((x) => x.vpn)).toEqual([eoiVpn(62), eoiVpn(63)]);
    expect(stale.map((x) => x.pfn)).toEqual([62, 63].map((v) => e.phb.msiTriggerPage(0, v) / P + 1));
    expect(e.phb.goneAccesses).toBe(0);
    expect(e.guest.esbLoad(LISN_BASE + 63, 0x800)).toBe(0xff);
    expect(e.phb.goneAccesses).toBe(1);
    expect(e.phb.goneLog[0]).toEqual({
      phb: 0,
      slot: 0,
      device: 'nic',
      addr: e.phb.msiTriggerPage(0, 63) + P + 0x800,
      store: false,
    });
  });

  it('replug into the same slot with the guest not re-targeting: mainline set_mapped leaves the LISN as EISN (book3s_xive.c:kvmppc_xive_set_mapped())', () => {
    for (const bug of [true, false]) {
      const e = makeEnv({ flags: { setMappedEisnIsStateNumber: bug } });
      const pdev = new PciDevice({ name: 'nic', msix: NVEC });
      claim(e);
      let a = plug(e, pdev, 0);
      guestStart(e);
      expect(vfioHotUnplug(e.vfio, a)).toBe(0);
      // The guest keeps its sources targeted (no driver remove): the re-plug binds a targeted source.
      a = plug(e, pdev, 0);
      e.guest.unmask(LISN_BASE + 3);
      a.pdev.raiseMsi(3);
      expect(e.guest.drain()).toEqual([bug ? LISN_BASE + 3 : eisnOf(3)]);
    }
  });
});
