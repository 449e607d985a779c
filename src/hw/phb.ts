/**
 * A PCI host bridge (PHB4-like) with hot-pluggable slots for assignable PCI devices, each slot
 * backed by its own hardware XIVE source blocks registered in the {@link P9Chip}: one MSI block
 * (`maxVectors` sources, 2 × 64 KiB ESB pages each, trigger page present) and one LSI block
 * (4 sources, INTA..INTD, no trigger page reported, as PHB LSIs).
 *
 * Host physical ESB layout (chosen for the model; it sits above the chip's END ESB window):
 *
 * | range | contents |
 * |---|---|
 * | `PHB_ESB_BASE + phb·PHB_ESB_WINDOW + slot·PHB_SLOT_WINDOW` | MSI vector v: trigger (+v·0x20000), EOI/management (+v·0x20000 + 0x10000) |
 * | … `+ PHB_SLOT_LSI_OFFSET` | LSI i (INTA+i): same 2-page geometry, trigger page unreported |
 *
 * Device presence: the ESB frames of a slot belong to the device plugged in it. When the slot is
 * empty (never plugged, or after a hot-unplug) its frames are replaced, in every physical frame
 * map the PHB was given, by a {@link PhbGoneWindow}: loads read all-ones, stores are dropped, and
 * every access is counted and logged as "access to a device that is gone" so that the invariant
 * checker can ask {@link Phb.goneAccesses}. A PTE left pointing at those frames after an unplug is
 * the bug that counter catches.
 *
 * A device raises MSI vector v by a store to its source's trigger page (the PHB turns the MSI
 * write into an ESB trigger); an LSI is a level on its source. The device honours the function's
 * MSI-X enable and per-vector masks (a masked vector sets its pending bit and fires on unmask),
 * which the host driver programs through {@link PciDevice.setMsiEnabled} / `setVectorMask`.
 */

import { traceEvent } from '../sim/trace-events.ts';
import { TRACE_ESB, type TraceSink } from '../sim/trace-sink.ts';
import type { AccessSize, MmioDevice, Word64 } from './mmio.ts';
import type { PhysMem } from './phys-mem.ts';
import type { P9Chip } from './xive/p9-chip.ts';
import { XIVE_ESB_OFF } from './xive/regs.ts';
import { XiveSource } from './xive/source.ts';

/** Base of all PHB ESB windows (above `P9_END_ESB_BASE` + its 2^39 bytes). */
export const PHB_ESB_BASE = 0x0006_0500_0000_0000;
/** ESB window of one PHB (64 GiB). */
export const PHB_ESB_WINDOW = 0x10_0000_0000;
/** ESB window of one slot (4 GiB): MSIs from 0, LSIs from {@link PHB_SLOT_LSI_OFFSET}. */
export const PHB_SLOT_WINDOW = 0x1_0000_0000;
/** Offset of the LSI block inside a slot window. */
export const PHB_SLOT_LSI_OFFSET = 0xf000_0000;
/** Slots per PHB at most (the window holds 16). */
export const PHB_MAX_SLOTS = 16;
/** ESB geometry of PHB sources: 2 pages of 64 KiB. */
export const PHB_ESB_SHIFT = 17;
/** `PCI_NUM_INTX`: INTA..INTD. */
export const PCI_NUM_INTX = 4;
/** Largest MSI (not MSI-X) vector count a function can advertise. */
export const PCI_MSI_MAX_VECTORS = 32;

const ESB2 = 2 ** PHB_ESB_SHIFT;
const hex = (n: number): string => n.toString(16);

/** A physical frame map the PHB keeps its slot windows in (`hw/phys-mem.ts`, mm's frames…). */
export interface PhysFrameMap {
  addMmio(base: number, size: number, owner: MmioDevice, name: string): void;
  /** Remove the region that starts at `base`. */
  remove(base: number): void;
}

/** Adapter for a registry that names its removal `removeMmio` (mm's `FrameTable`). */
export function frameTableMap(ft: {
  addMmio(base: number, size: number, owner: MmioDevice, name: string): void;
  removeMmio(base: number): void;
}): PhysFrameMap {
  return {
    addMmio: (base, size, owner, name) => ft.addMmio(base, size, owner, name),
    remove: (base) => ft.removeMmio(base),
  };
}

/** Identity and interrupt resources of an assignable PCI function. */
export interface PciDeviceConfig {
  name: string;
  /** MSI-X table size (0 = no MSI-X). */
  msix: number;
  /** MSI capability vector count (0 = none, at most 32, a power of two). */
  msi?: number;
  /** Interrupt pins wired (0..4): INTA.. (LSIs). */
  lsis?: number;
  vendorId?: number;
  deviceId?: number;
}

/** Counters of a device: counts of each path running. */
export class PciDeviceStats {
  /** MSI writes that reached the PHB (trigger-page stores). */
  msiSent = 0;
  /** MSIs not sent because MSI/MSI-X was disabled (a device may not signal then). */
  msiDroppedDisabled = 0;
  /** MSIs held in the pending bit array because the vector was masked. */
  msiPended = 0;
  /** Pending MSIs sent on unmask. */
  msiPendingSent = 0;
  /** Raise attempts while the device was not plugged. */
  raisedWhileUnplugged = 0;
}

/**
 * An assignable PCI function. Its interrupt resources live in the slot it is plugged in.
 */
export class PciDevice {
  readonly name: string;
  readonly msixCount: number;
  readonly msiCount: number;
  readonly lsiCount: number;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly stats: PciDeviceStats;
  /** MSIs sent per vector (trigger-page stores). */
  readonly sentPerVector: Uint32Array;
  /** The PHB and slot it is plugged in, or null / -1. */
  phb: Phb | null;
  slot: number;
  /** MSI-X enable (or MSI enable) as programmed by the host driver; 'msi' | 'msix' | null. */
  msiMode: 'msi' | 'msix' | null;
  /** Vectors enabled by the host driver (pci_alloc_irq_vectors). */
  msiVectors: number;
  /** Per-vector mask bits (MSI-X vector control) and pending bits (PBA). */
  readonly vectorMasked: Uint8Array;
  readonly vectorPending: Uint8Array;

  constructor(cfg: PciDeviceConfig) {
    const msi = cfg.msi ?? 0;
    const lsis = cfg.lsis ?? 0;
    if (!Number.isInteger(cfg.msix) || cfg.msix < 0 || cfg.msix > 2048) {
      throw new Error(`PciDevice ${cfg.name}: invalid MSI-X table size ${cfg.msix}`);
    }
    if (msi < 0 || msi > PCI_MSI_MAX_VECTORS || (msi & (msi - 1)) !== 0) {
      throw new Error(`PciDevice ${cfg.name}: invalid MSI count ${msi}`);
    }
    if (!Number.isInteger(lsis) || lsis < 0 || lsis > PCI_NUM_INTX) {
      throw new Error(`PciDevice ${cfg.name}: invalid LSI count ${lsis}`);
    }
    this.name = cfg.name;
    this.msixCount = cfg.msix;
    this.msiCount = msi;
    this.lsiCount = lsis;
    this.vendorId = cfg.vendorId ?? 0x1014;
    this.deviceId = cfg.deviceId ?? 0x0000;
    this.stats = new PciDeviceStats();
    const n = Math.max(cfg.msix, msi);
    this.sentPerVector = new Uint32Array(n);
    this.phb = null;
    this.slot = -1;
    this.msiMode = null;
    this.msiVectors = 0;
    this.vectorMasked = new Uint8Array(n).fill(1);
    this.vectorPending = new Uint8Array(n);
  }

  /** Vectors the device can use in a mode. */
  maxVectors(mode: 'msi' | 'msix'): number {
    return mode === 'msix' ? this.msixCount : this.msiCount;
  }

  get plugged(): boolean {
    return this.phb !== null;
  }

  /**
   * The host driver enables MSI or MSI-X with `nvec` vectors (all masked), or disables it
   * (`mode` null: vectors and pending bits are cleared, as a function reset of the capability).
   */
  setMsiEnabled(mode: 'msi' | 'msix' | null, nvec: number): void {
    this.msiMode = mode;
    this.msiVectors = mode === null ? 0 : nvec;
    this.vectorMasked.fill(1);
    this.vectorPending.fill(0);
  }

  /** MSI-X vector control mask bit. Unmasking a pending vector sends it. */
  setVectorMask(v: number, masked: boolean): void {
    if (!(v >= 0 && v < this.msiVectors)) return;
    this.vectorMasked[v] = masked ? 1 : 0;
    if (!masked && this.vectorPending[v]) {
      this.vectorPending[v] = 0;
      this.stats.msiPendingSent++;
      this.sendMsi(v);
    }
  }

  /**
   * The device signals MSI vector `v`. Returns true when the MSI write reached the PHB.
   * Not plugged, MSI disabled, or `v` beyond the enabled vectors → not sent (counted);
   * masked → pending bit (PCI semantics: sent on unmask).
   */
  raiseMsi(v: number): boolean {
    if (this.phb === null) {
      this.stats.raisedWhileUnplugged++;
      return false;
    }
    if (this.msiMode === null || !(v >= 0 && v < this.msiVectors)) {
      this.stats.msiDroppedDisabled++;
      return false;
    }
    if (this.vectorMasked[v]) {
      this.vectorPending[v] = 1;
      this.stats.msiPended++;
      return false;
    }
    this.sendMsi(v);
    return true;
  }

  private sendMsi(v: number): void {
    this.stats.msiSent++;
    this.sentPerVector[v]!++;
    this.phb!.msiWrite(this.slot, v);
  }

  /** Drive interrupt pin `pin` (0 = INTA) to `level`. Ignored when unplugged or not wired. */
  setIntx(pin: number, level: boolean): void {
    if (this.phb === null || !(pin >= 0 && pin < this.lsiCount)) return;
    this.phb.lsiLevel(this.slot, pin, level);
  }
}

/** One access that reached the frames of a device that is gone. */
export interface GoneAccess {
  phb: number;
  slot: number;
  /** Name of the device last plugged in the slot ('' if none ever was). */
  device: string;
  /** Host physical address. */
  addr: number;
  store: boolean;
}

/**
 * The stand-in owner of an empty slot's ESB frames: all-ones / ignored, counted and logged.
 */
export class PhbGoneWindow implements MmioDevice {
  readonly phb: Phb;
  readonly slot: number;
  /** Host physical base of the region this instance covers. */
  readonly base: number;
  constructor(phb: Phb, slot: number, base: number) {
    this.phb = phb;
    this.slot = slot;
    this.base = base;
  }
  load(offset: number, size: AccessSize, _cpu: number, out: Word64): void {
    this.phb.recordGone(this.slot, this.base + offset, false);
    if (size === 8) out.setOnes();
    else out.set(0, size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff);
  }
  store(offset: number, _size: AccessSize, _hi: number, _lo: number, _cpu: number): void {
    this.phb.recordGone(this.slot, this.base + offset, true);
  }
}

/** A slot: its hardware sources, hw irq numbers and ESB windows. */
export class PhbSlot {
  readonly index: number;
  readonly msiSource: XiveSource;
  readonly lsiSource: XiveSource;
  /** Hardware irq number of MSI source 0 / LSI source 0 (OPAL girq). */
  readonly msiHwBase: number;
  readonly lsiHwBase: number;
  readonly msiEsbBase: number;
  readonly lsiEsbBase: number;
  readonly goneMsi: PhbGoneWindow;
  readonly goneLsi: PhbGoneWindow;
  device: PciDevice | null;
  /** Name of the last device plugged here. */
  lastDevice: string;
  /** Accesses to this slot's frames while it was empty. */
  goneAccesses: number;
  constructor(
    index: number,
    msiSource: XiveSource,
    lsiSource: XiveSource,
    msiHwBase: number,
    lsiHwBase: number,
    msiEsbBase: number,
    lsiEsbBase: number,
    phb: Phb,
  ) {
    this.index = index;
    this.msiSource = msiSource;
    this.lsiSource = lsiSource;
    this.msiHwBase = msiHwBase;
    this.lsiHwBase = lsiHwBase;
    this.msiEsbBase = msiEsbBase;
    this.lsiEsbBase = lsiEsbBase;
    this.goneMsi = new PhbGoneWindow(phb, index, msiEsbBase);
    this.goneLsi = new PhbGoneWindow(phb, index, lsiEsbBase);
    this.device = null;
    this.lastDevice = '';
    this.goneAccesses = 0;
  }
}

/** Configuration of a {@link Phb}. */
export interface PhbConfig {
  /** PHB index (its ESB window is `PHB_ESB_BASE + index·PHB_ESB_WINDOW`). */
  index: number;
  /** Hot-plug slots (1..16). */
  slots: number;
  /** MSI sources per slot (default 2048, the largest MSI-X table). */
  maxVectors?: number;
  /** Source flags of the MSI blocks (e.g. `XIVE_SRC_STORE_EOI`); default 0. */
  msiFlags?: number;
}

/** PHB counters. */
export class PhbStats {
  plugs = 0;
  unplugs = 0;
  goneAccesses = 0;
  goneLoads = 0;
  goneStores = 0;
}

/** Entries kept in {@link Phb.goneLog}. */
export const PHB_GONE_LOG_MAX = 64;

/**
 * A PHB with hot-plug slots.
 *
 * @remarks Models the interrupt side of a POWER9 PHB4 (skiboot hw/phb4.c registering its
 * sources with XIVE) and PCI hot-plug presence, simplified to one source block per slot.
 */
export class Phb {
  readonly index: number;
  readonly chip: P9Chip;
  readonly trace: TraceSink;
  readonly slots: readonly PhbSlot[];
  readonly stats: PhbStats;
  /** The last {@link PHB_GONE_LOG_MAX} accesses to gone devices (oldest first). */
  readonly goneLog: GoneAccess[];
  private readonly maps: readonly PhysFrameMap[];

  /**
   * `extraMaps`: physical frame maps besides the chip's {@link PhysMem} that must see the same
   * owners (e.g. the memory manager's frame table, when it is a separate registry).
   */
  constructor(cfg: PhbConfig, chip: P9Chip, trace: TraceSink, extraMaps: readonly PhysFrameMap[] = []) {
    if (!Number.isInteger(cfg.slots) || cfg.slots < 1 || cfg.slots > PHB_MAX_SLOTS) {
      throw new Error(`Phb: invalid slot count ${cfg.slots}`);
    }
    const maxVectors = cfg.maxVectors ?? 2048;
    if (!Number.isInteger(maxVectors) || maxVectors < 1 || maxVectors * ESB2 > PHB_SLOT_LSI_OFFSET) {
      throw new Error(`Phb: invalid maxVectors ${maxVectors}`);
    }
    this.index = cfg.index;
    this.chip = chip;
    this.trace = trace;
    this.stats = new PhbStats();
    this.goneLog = [];
    const mem: PhysMem = chip.mem;
    this.maps = [mem, ...extraMaps];
    const slots: PhbSlot[] = [];
    for (let s = 0; s < cfg.slots; s++) {
      const base = PHB_ESB_BASE + cfg.index * PHB_ESB_WINDOW + s * PHB_SLOT_WINDOW;
      const msi = new XiveSource(
        { nrIrqs: maxVectors, esbShift: PHB_ESB_SHIFT, flags: cfg.msiFlags ?? 0, resetPq: XIVE_ESB_OFF },
        trace,
      );
      const lsi = new XiveSource(
        { nrIrqs: PCI_NUM_INTX, esbShift: PHB_ESB_SHIFT, flags: 0, resetPq: XIVE_ESB_OFF },
        trace,
      );
      for (let i = 0; i < PCI_NUM_INTX; i++) lsi.setLsi(i, true);
      const lsiBase = base + PHB_SLOT_LSI_OFFSET;
      const msiHw = chip.addSourceBlock(msi, base, this.regionName(s, 'msi'));
      const lsiHw = chip.addSourceBlock(lsi, lsiBase, this.regionName(s, 'lsi'), true);
      const slot = new PhbSlot(s, msi, lsi, msiHw, lsiHw, base, lsiBase, this);
      slots.push(slot);
    }
    this.slots = slots;
    // Empty slots: the chip registered the live sources; put the gone windows in their place.
    for (const slot of slots) this.mapSlot(slot, false, true);
  }

  private regionName(slot: number, kind: string): string {
    return `phb${this.index}.slot${slot}.${kind}-esb`;
  }

  /** Swap a slot's ESB frames between the live sources and the gone windows in every map. */
  private mapSlot(slot: PhbSlot, live: boolean, initial: boolean): void {
    const msiSize = slot.msiSource.esbSize;
    const lsiSize = slot.lsiSource.esbSize;
    for (let i = 0; i < this.maps.length; i++) {
      const m = this.maps[i]!;
      // The chip's own map already holds the live sources at construction; extra maps hold nothing.
      const present = !initial || i === 0;
      if (present) {
        m.remove(slot.msiEsbBase);
        m.remove(slot.lsiEsbBase);
      }
      m.addMmio(
        slot.msiEsbBase,
        msiSize,
        live ? slot.msiSource : slot.goneMsi,
        this.regionName(slot.index, live ? 'msi' : 'gone'),
      );
      m.addMmio(
        slot.lsiEsbBase,
        lsiSize,
        live ? slot.lsiSource : slot.goneLsi,
        this.regionName(slot.index, live ? 'lsi' : 'gone'),
      );
    }
  }

  /**
   * Hot-plug `dev` into slot `s`: its sources come back reset (every PQ 01, no LSI asserted),
   * its ESB frames are mapped. Returns false if the slot is taken, the device is plugged
   * elsewhere, or it needs more vectors than the slot has.
   */
  plug(s: number, dev: PciDevice): boolean {
    const slot = this.slots[s];
    if (!slot || slot.device !== null || dev.phb !== null) return false;
    if (Math.max(dev.msixCount, dev.msiCount) > slot.msiSource.nrIrqs) return false;
    slot.msiSource.reset();
    slot.lsiSource.reset();
    for (let i = 0; i < PCI_NUM_INTX; i++) slot.lsiSource.setLsi(i, true);
    // Firmware brings the new function's sources up masked and unrouted.
    const nvec = Math.max(dev.msixCount, dev.msiCount);
    for (let v = 0; v < nvec; v++) this.chip.setIrqConfig(slot.msiHwBase + v, 0, 0xff, 0);
    for (let i = 0; i < dev.lsiCount; i++) this.chip.setIrqConfig(slot.lsiHwBase + i, 0, 0xff, 0);
    slot.device = dev;
    slot.lastDevice = dev.name;
    dev.phb = this;
    dev.slot = s;
    dev.setMsiEnabled(null, 0);
    this.mapSlot(slot, true, false);
    this.stats.plugs++;
    if (this.trace.mask & TRACE_ESB)
      traceEvent(this.trace, 'phb.plug', { phb: this.index, slot: s, msiHwBase: slot.msiHwBase });
    return true;
  }

  /**
   * Hot-unplug the device in slot `s`: its ESB frames are replaced by the gone window. Returns
   * the device, or null if the slot was empty.
   */
  unplug(s: number): PciDevice | null {
    const slot = this.slots[s];
    const dev = slot?.device ?? null;
    if (!slot || dev === null) return null;
    this.mapSlot(slot, false, false);
    slot.device = null;
    dev.setMsiEnabled(null, 0);
    dev.phb = null;
    dev.slot = -1;
    this.stats.unplugs++;
    if (this.trace.mask & TRACE_ESB) traceEvent(this.trace, 'phb.unplug', { phb: this.index, slot: s });
    return dev;
  }

  /** Hardware irq of MSI vector `v` of slot `s`. */
  msiHwIrq(s: number, v: number): number {
    return this.slots[s]!.msiHwBase + v;
  }

  /** Hardware irq of LSI `pin` of slot `s`. */
  lsiHwIrq(s: number, pin: number): number {
    return this.slots[s]!.lsiHwBase + pin;
  }

  /** Host physical trigger page of MSI vector `v` of slot `s`. */
  msiTriggerPage(s: number, v: number): number {
    return this.slots[s]!.msiEsbBase + v * ESB2;
  }

  /**
   * Page-frame ranges `[first, end)` of a slot's ESB frames (MSI block, then LSI block), for page
   * table walks looking for stale PTEs.
   */
  slotPfnRanges(s: number): [number, number][] {
    const slot = this.slots[s]!;
    const f = (a: number): number => Math.floor(a * 2 ** -16);
    return [
      [f(slot.msiEsbBase), f(slot.msiEsbBase + slot.msiSource.esbSize)],
      [f(slot.lsiEsbBase), f(slot.lsiEsbBase + slot.lsiSource.esbSize)],
    ];
  }

  /** Whether host page frame `pfn` belongs to the ESB frames of slot `s`. */
  pfnInSlot(s: number, pfn: number): boolean {
    for (const [a, b] of this.slotPfnRanges(s)) if (pfn >= a && pfn < b) return true;
    return false;
  }

  /** The MSI write of the device in slot `s`: a store to the vector's trigger page. */
  msiWrite(s: number, v: number): void {
    this.chip.mem.store(this.msiTriggerPage(s, v), 8, 0, 0);
  }

  /** An interrupt pin level of the device in slot `s`. */
  lsiLevel(s: number, pin: number, level: boolean): void {
    this.slots[s]!.lsiSource.setIrq(pin, level ? 1 : 0);
  }

  /** Called by the gone windows. */
  recordGone(s: number, addr: number, store: boolean): void {
    const slot = this.slots[s]!;
    slot.goneAccesses++;
    this.stats.goneAccesses++;
    if (store) this.stats.goneStores++;
    else this.stats.goneLoads++;
    if (this.goneLog.length >= PHB_GONE_LOG_MAX) this.goneLog.shift();
    this.goneLog.push({ phb: this.index, slot: s, device: slot.lastDevice, addr, store });
    this.trace.guestError(
      `phb${this.index}: ${store ? 'write' : 'read'} at 0x${hex(addr)}: access to a device that is gone (slot ${s}${slot.lastDevice ? `, was ${slot.lastDevice}` : ''})`,
    );
  }

  /** Accesses to the frames of devices that are gone (all slots). */
  get goneAccesses(): number {
    return this.stats.goneAccesses;
  }
}
