/**
 * The host's physical POWER9 XIVE as the host kernel sees it through OPAL: hardware IPIs, other
 * hardware source blocks (PHB MSI/LSI, registered later by VFIO/PHB code) in one global hardware
 * irq number space, the EAS/END/NVT tables (the router backend), one thread context per host CPU
 * thread, the physical TIMA, END ESB pages (escalation interrupts), and the OPAL calls the host
 * kernel uses (`opal_xive_*`).
 *
 * Host physical memory map (all in the chip's {@link PhysMem}; chosen after real P9 layouts):
 *
 * | range | contents |
 * |---|---|
 * | `P9_IPI_ESB_BASE` + k·0x20000 | HW IPI k: trigger page (+0), EOI/management page (+0x10000), in the VC BAR's ESB sets |
 * | `P9_TIMA_BASE` | physical TIMA: HW, HV, OS, USER pages (4 × 64 KiB); same address on every thread |
 * | `P9_END_ESB_BASE` + e·0x20000 | END e: ESn page (+0), ESe page (+0x10000) = escalation ESB |
 * | caller's choice | other source blocks ({@link P9Chip.addSourceBlock}) |
 *
 * Hardware irq numbers (`hw_irq`, OPAL "girq"), all below 2^28 so that the router LISN is the
 * hardware number with block 0:
 *
 * | range | source |
 * |---|---|
 * | `P9_IPI_HWIRQ_BASE` + k | HW IPI k |
 * | `P9_EXT_HWIRQ_BASE` … | blocks added with {@link P9Chip.addSourceBlock}, 1024-aligned |
 * | `P9_ESC_HWIRQ_BASE` + e | escalation interrupt of END e (its EAS is END words 4–5, its PQ the END's ESe) |
 *
 * VPs (NVTs): index = VP id, block 0. VPs below {@link P9_HOST_VP_RESERVED} belong to the host
 * (the physical thread of PIR p is VP `0x80 | p`, the HW CAM line); VMs get power-of-two blocks
 * above it from {@link P9Chip.allocVpBlock}. END index = `vp * 8 + prio`.
 *
 * Escalations: every END configured with {@link OPAL_XIVE_EQ_ESCALATE} escalates, when its VP is
 * not dispatched, through its own ESe PQ to its escalation EAS (END words 4–5), which the host
 * routes to one of its own queues with {@link P9Chip.setIrqConfig} on the escalation irq.
 * Deviation: skiboot's single-escalation "silent gather" into END 7 is not modelled; each queue
 * has its own escalation irq (for a guest using one priority, as Linux does, the two agree).
 */

import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_ESB, TRACE_ROUTER, type TraceSink } from '../../sim/trace-sink.ts';
import { getField32, setField32 } from '../bits.ts';
import type { AccessSize, MmioDevice, Word64 } from '../mmio.ts';
import type { PhysMem } from '../phys-mem.ts';
import { XIVE_ESB_FORWARD, xiveEsbEoi } from './esb.ts';
import {
  EAS_END_BLOCK_HI,
  EAS_END_DATA_LO,
  EAS_END_INDEX_HI,
  EAS_MASKED_LO,
  EAS_VALID_HI,
  END_W0_BACKLOG,
  END_W0_ENQUEUE,
  END_W0_ESCALATE_CTL,
  END_W0_QSIZE,
  END_W0_UCOND_NOTIFY,
  END_W0_VALID,
  END_W1_ESe,
  END_W1_ESn,
  END_W1_GENERATION,
  END_W1_PAGE_OFF,
  END_W2_EQ_ADDR_HI,
  END_W4_ESC_END_BLOCK,
  END_W4_ESC_END_INDEX,
  END_W6_NVT_BLOCK,
  END_W6_NVT_INDEX,
  END_W7_F0_PRIORITY,
  NVT_W0_VALID,
  NVT_W4_IPB,
  TM_QW3_HV_PHYS,
  TM_QW3W2_VT,
  TM_SHIFT,
  XIVE_ESB_GET,
  XIVE_ESB_OFF,
  XIVE_ESB_SET_PQ_00,
  XIVE_PRIORITY_MAX,
  XIVE_TM_OS_PAGE,
  xiveNvtCam,
} from './regs.ts';
import { XiveRouter, type XiveRouterBackend, type XiveTctxMatch, xiveMatchTctxs } from './router.ts';
import { XIVE_SRC_STORE_EOI, XiveSource } from './source.ts';
import { XiveTctx } from './tctx.ts';
import { XIVE_TM_SIZE, XiveTima } from './tima.ts';

// ---------------------------------------------------------------------------------------------
// Memory map and numbering
// ---------------------------------------------------------------------------------------------

/**
 * The chip's VC BAR: skiboot's P9 physical map (hw/phys-map.c `phys_map_table_nimbus`, chip 0)
 * puts `XIVE_VC` at 0x0006_0100_0000_0000, 512 GiB. skiboot hw/xive.c splits it into 64 sets
 * (`VC_MAX_SETS`), the first 48 (`VC_ESB_SETS`, 384 GiB) holding the IPI ESB pages
 * (`esb_mmio` = the VC BAR base, xive_configure_bars()).
 */
export const P9_VC_BAR_BASE = 0x0006_0100_0000_0000;
/**
 * Interrupt numbers per chip: skiboot hw/xive.c `XIVE_INT_ORDER` 20 (`XIVE_INT_COUNT` = 1M, the
 * SBE and IVT tables are pre-allocated that large for the chip's one block; the block + index
 * must fit in 24 bits for XICS emulation).
 */
export const P9_XIVE_INT_COUNT = 2 ** 20;
/** First interrupt index handed out (skiboot hw/xive.c `XIVE_INT_FIRST`; below it ISA numbers). */
export const P9_XIVE_INT_FIRST = 0x10;
/**
 * HW IPI ESB pages: 2 × 64 KiB per IPI. The IPI of interrupt index i has its pages at
 * `esb_mmio + i × XIVE_ESB_PAGE_SIZE` (skiboot hw/xive.c xive_get_trigger_port()); the model's
 * IPI k is index {@link P9_IPI_HWIRQ_BASE} + k, so its pages start here + k·0x20000.
 */
export const P9_IPI_ESB_BASE = P9_VC_BAR_BASE + P9_XIVE_INT_FIRST * 2 ** 17;
/** Physical TIMA (the address QEMU's sPAPR `tm-base` was taken from). */
export const P9_TIMA_BASE = 0x0006_0302_0318_0000;
/** END ESB pages: ESn (even) and ESe (odd) per END. */
export const P9_END_ESB_BASE = 0x0006_0400_0000_0000;
/** ESB shift of HW IPIs and END ESBs: 2 pages of 64 KiB. */
export const P9_IPI_ESB_SHIFT = 17;
/** First HW IPI number (hw irq 0 is "no interrupt" in Linux): the chip's first interrupt index. */
export const P9_IPI_HWIRQ_BASE = P9_XIVE_INT_FIRST;
/** First hardware irq number handed to {@link P9Chip.addSourceBlock}. */
export const P9_EXT_HWIRQ_BASE = 0x0100_0000;
/** Escalation interrupt of END e: `P9_ESC_HWIRQ_BASE + e`. */
export const P9_ESC_HWIRQ_BASE = 0x0800_0000;
/** VPs reserved for the host; VM VP blocks are allocated above. */
export const P9_HOST_VP_RESERVED = 0x800;
/** Default VP space: the 19-bit NVT index. */
export const P9_NR_VPS = 1 << 19;
/** Default number of HW IPIs. */
export const P9_NR_IPIS = 0x1_0000;
/**
 * The most HW IPIs one chip can hand out: its interrupt indices from `XIVE_INT_FIRST` up to
 * `XIVE_INT_COUNT` (skiboot hw/xive.c xive_try_allocate_irq() searches
 * [`int_ipi_top`, `int_hw_bot`) of the chip's IPI bitmap; `int_ipi_top` starts at
 * `XIVE_INT_FIRST`, `int_hw_bot` at `XIVE_INT_COUNT`). Deviation: the model numbers PHB sources
 * apart ({@link P9_EXT_HWIRQ_BASE}) instead of from the top of the same index space, so they do
 * not lower `int_hw_bot`; skiboot's boot-time per-thread IPIs (xive_alloc_ipi_irqs()) are not
 * modelled either. Their ESB pages, 2^20 × 128 KiB = 128 GiB, fit the VC BAR's 384 GiB of ESB sets.
 */
export const P9_MAX_IPIS = P9_XIVE_INT_COUNT - P9_XIVE_INT_FIRST;
/** Hardware threads the model's chip has at most (a thread's HW CAM line is 0x80 | PIR). */
export const P9_MAX_THREADS = 128;

const PAGE = 2 ** 16;
const ESB2 = 2 ** 17;

// ---------------------------------------------------------------------------------------------
// OPAL constants (skiboot include/opal-api.h; Linux arch/powerpc/include/asm/opal-api.h)
// ---------------------------------------------------------------------------------------------

export const OPAL_SUCCESS = 0;
export const OPAL_PARAMETER = -1;
export const OPAL_BUSY = -2;
export const OPAL_HARDWARE = -6;
export const OPAL_UNSUPPORTED = -7;
export const OPAL_RESOURCE = -10;
export const OPAL_WRONG_STATE = -14;
export const OPAL_XIVE_PROVISIONING = -31;
export const OPAL_XIVE_FREE_ACTIVE = -32;

/** `opal_xive_get_irq_info` flags. */
export const OPAL_XIVE_IRQ_TRIGGER_PAGE = 0x1;
export const OPAL_XIVE_IRQ_STORE_EOI = 0x2;
export const OPAL_XIVE_IRQ_LSI = 0x4;

/** `opal_xive_set_queue_info` flags. */
export const OPAL_XIVE_EQ_ENABLED = 0x1;
export const OPAL_XIVE_EQ_ALWAYS_NOTIFY = 0x2;
export const OPAL_XIVE_EQ_ESCALATE = 0x4;

/** `opal_xive_set_vp_info` flags. */
export const OPAL_XIVE_VP_ENABLED = 0x1;
export const OPAL_XIVE_VP_SINGLE_ESCALATION = 0x2;

/** `opal_xive_sync` types. */
export const XIVE_SYNC_EAS = 0x1;
export const XIVE_SYNC_QUEUE = 0x2;

const hex = (n: number): string => n.toString(16);

// ---------------------------------------------------------------------------------------------
// Result records (caller-owned, reused: no allocation per call)
// ---------------------------------------------------------------------------------------------

/** `opal_xive_get_irq_info` outputs. Page addresses are host physical; 0 = no such page. */
export class XiveIrqInfo {
  flags = 0;
  eoiPage = 0;
  trigPage = 0;
  esbShift = 0;
  srcChip = 0;
}

/** `opal_xive_get_irq_config` outputs. */
export class XiveIrqConfig {
  vp = 0;
  prio = 0xff;
  lirq = 0;
}

/** `opal_xive_get_queue_info` outputs. */
export class XiveQueueInfo {
  qpage = 0;
  qsize = 0;
  qeoiPage = 0;
  escIrq = 0;
  qflags = 0;
}

/** `opal_xive_get_queue_state` outputs: generation (toggle) and index. */
export class XiveQueueState {
  toggle = 0;
  index = 0;
}

export interface P9ChipConfig {
  /** Host CPU threads (PIR 0 … nrCpus−1; at most 128, the HW CAM line holds 7 PIR bits). */
  nrCpus: number;
  /** HW IPIs (default {@link P9_NR_IPIS}, at most {@link P9_MAX_IPIS}). */
  nrIpis?: number;
  /** VP space (default {@link P9_NR_VPS}). */
  nrVps?: number;
}

/** A registered hardware source block. */
class SrcBlock {
  readonly base: number;
  readonly count: number;
  readonly source: XiveSource;
  readonly esbBase: number;
  readonly name: string;
  /** No trigger page (e.g. PHB LSIs): `trigPage` reported as 0. */
  readonly noTrigger: boolean;
  /** EAS per source, [hi, lo]. */
  readonly eas: Uint32Array;
  /** Bytes of ESB space per source, and the offset of its EOI page in them. */
  readonly esbSize: number;
  readonly eoiOffset: number;
  /** `esb_shift` OPAL reports: of one page (of two, in 2-page mode). */
  readonly pageShift: number;
  constructor(base: number, source: XiveSource, esbBase: number, name: string, noTrigger: boolean) {
    this.base = base;
    this.count = source.nrIrqs;
    this.source = source;
    this.esbBase = esbBase;
    this.name = name;
    this.noTrigger = noTrigger;
    this.eas = new Uint32Array(source.nrIrqs * 2);
    this.esbSize = 2 ** source.esbShift;
    this.eoiOffset = source.isTwoPage ? this.esbSize / 2 : 0;
    this.pageShift = source.isTwoPage ? source.esbShift - 1 : source.esbShift;
  }
}

/** A block of VPs with their NVTs and 8 ENDs each. */
class VpBlock {
  readonly base: number;
  readonly count: number;
  readonly ends: Uint32Array;
  readonly nvts: Uint32Array;
  constructor(base: number, count: number) {
    this.base = base;
    this.count = count;
    this.ends = new Uint32Array(count * 64);
    this.nvts = new Uint32Array(count * 16);
  }
}

/** Chip counters: counts of each OPAL path running. */
export interface P9ChipStats {
  ipiAllocs: number;
  ipiFrees: number;
  irqConfigs: number;
  queueConfigs: number;
  syncs: number;
  vpBlockAllocs: number;
}

/**
 * The END ESB pages: even page = ESn, odd page = ESe of END `page >> 1`. Management loads only
 * (EOI / GET / SET_PQ); an EOI that forwards re-fires the END's escalation.
 */
class EndEsb implements MmioDevice {
  private readonly chip: P9Chip;
  constructor(chip: P9Chip) {
    this.chip = chip;
  }
  load(offset: number, size: AccessSize, _cpu: number, out: Word64): void {
    if (size !== 8) {
      out.setOnes();
      return;
    }
    const page = Math.floor(offset * 2 ** -16);
    const endIdx = Math.floor(page / 2);
    const ese = page % 2 === 1;
    const r = this.chip.endEsbOp(endIdx, ese, (offset - page * PAGE) & 0xfff);
    if (r < 0) out.setOnes();
    else out.set(0, r);
  }
  store(offset: number, _size: AccessSize, _hi: number, _lo: number, _cpu: number): void {
    this.chip.trace.guestError(`XIVE: invalid END ESB write @0x${hex(offset)}`);
  }
}

/**
 * The host's POWER9 XIVE.
 *
 * @remarks Models the hardware and the OPAL firmware interface (skiboot hw/xive.c) as Linux
 * arch/powerpc/sysdev/xive/native.c calls it.
 */
export class P9Chip implements XiveRouterBackend {
  readonly mem: PhysMem;
  readonly trace: TraceSink;
  readonly nrCpus: number;
  readonly nrIpis: number;
  readonly nrVps: number;
  readonly router: XiveRouter;
  /** HW IPI source: 2 × 64 KiB ESB pages, PQ reset 01 (off), StoreEOI not advertised. */
  readonly ipiSource: XiveSource;
  /** One physical thread context per host CPU thread (index = PIR). */
  readonly tctxs: readonly XiveTctx[];
  /** The physical TIMA: the accessing thread is the `cpu` argument of the access. */
  readonly tima: XiveTima;
  readonly stats: P9ChipStats;
  private readonly blocks: SrcBlock[];
  private readonly vpBlocks: VpBlock[];
  private readonly ipiUsed: Uint8Array;
  private ipiNext: number;
  private extNext: number;
  private lastBlock: SrcBlock | null;
  private lastVp: VpBlock | null;

  constructor(cfg: P9ChipConfig, mem: PhysMem, trace: TraceSink) {
    if (!Number.isInteger(cfg.nrCpus) || cfg.nrCpus <= 0 || cfg.nrCpus > P9_MAX_THREADS) {
      throw new Error(`P9Chip: invalid nrCpus ${cfg.nrCpus}`);
    }
    this.mem = mem;
    this.trace = trace;
    this.nrCpus = cfg.nrCpus;
    this.nrIpis = cfg.nrIpis ?? P9_NR_IPIS;
    this.nrVps = cfg.nrVps ?? P9_NR_VPS;
    if (!Number.isInteger(this.nrIpis) || this.nrIpis <= 0 || this.nrIpis > P9_MAX_IPIS) {
      throw new Error(`P9Chip: invalid nrIpis ${this.nrIpis} (at most ${P9_MAX_IPIS})`);
    }
    if (this.nrVps > P9_NR_VPS || this.nrVps <= P9_HOST_VP_RESERVED) {
      throw new Error(`P9Chip: invalid nrVps ${this.nrVps}`);
    }
    this.stats = { ipiAllocs: 0, ipiFrees: 0, irqConfigs: 0, queueConfigs: 0, syncs: 0, vpBlockAllocs: 0 };
    this.blocks = [];
    this.vpBlocks = [new VpBlock(0, P9_HOST_VP_RESERVED)];
    this.ipiUsed = new Uint8Array(this.nrIpis);
    this.ipiNext = 0;
    this.extNext = P9_EXT_HWIRQ_BASE;
    this.lastBlock = null;
    this.lastVp = null;
    this.router = new XiveRouter(this, mem, trace);
    this.ipiSource = new XiveSource(
      { nrIrqs: this.nrIpis, esbShift: P9_IPI_ESB_SHIFT, flags: 0, resetPq: XIVE_ESB_OFF },
      trace,
    );
    this.addBlock(P9_IPI_HWIRQ_BASE, this.ipiSource, P9_IPI_ESB_BASE, 'p9.ipi-esb', false);
    const tctxs: XiveTctx[] = [];
    for (let cpu = 0; cpu < this.nrCpus; cpu++) {
      const t = new XiveTctx(cpu, trace);
      // Firmware leaves every thread with its physical context valid (the host runs there).
      t.setWord2(TM_QW3_HV_PHYS, TM_QW3W2_VT);
      tctxs.push(t);
    }
    this.tctxs = tctxs;
    // The hardware threads' NVTs (HW CAM lines 0x80 | PIR) are valid.
    for (let cpu = 0; cpu < this.nrCpus; cpu++) this.vpBlocks[0]!.nvts[(0x80 + cpu) * 16] = NVT_W0_VALID;
    this.tima = new XiveTima(tctxs, this, trace);
    mem.addMmio(P9_TIMA_BASE, XIVE_TM_SIZE, this.tima, 'p9.tima');
    mem.addMmio(P9_END_ESB_BASE, this.nrVps * 8 * ESB2, new EndEsb(this), 'p9.end-esb');
  }

  // -------------------------------------------------------------------------------------------
  // Source blocks and hardware irq numbers
  // -------------------------------------------------------------------------------------------

  private addBlock(
    base: number,
    source: XiveSource,
    esbBase: number,
    name: string,
    noTrig: boolean,
  ): SrcBlock {
    const b = new SrcBlock(base, source, esbBase, name, noTrig);
    this.blocks.push(b);
    this.blocks.sort((x, y) => x.base - y.base);
    this.mem.addMmio(esbBase, source.esbSize, source, name);
    source.notifier = (srcno, pqChecked) => this.router.notify(base + srcno, pqChecked);
    return b;
  }

  /**
   * Register another hardware source block (a PHB's MSIs or LSIs) whose ESB pages live at host
   * physical `esbBase`. Returns the hardware irq number of its source 0 (1024-aligned, from
   * {@link P9_EXT_HWIRQ_BASE}). `noTrigger`: the sources have no trigger page (PHB LSIs).
   */
  addSourceBlock(source: XiveSource, esbBase: number, name: string, noTrigger = false): number {
    const base = this.extNext;
    if (base + source.nrIrqs > P9_ESC_HWIRQ_BASE) throw new Error('P9Chip: hardware irq space exhausted');
    this.addBlock(base, source, esbBase, name, noTrigger);
    this.extNext = base + Math.ceil(source.nrIrqs / 1024) * 1024;
    return base;
  }

  private blockOf(hwIrq: number): SrcBlock | null {
    const l = this.lastBlock;
    if (l !== null && hwIrq >= l.base && hwIrq < l.base + l.count) return l;
    for (const b of this.blocks) {
      if (hwIrq >= b.base && hwIrq < b.base + b.count) {
        this.lastBlock = b;
        return b;
      }
    }
    return null;
  }

  /** The source and source number behind a hardware irq, or null (escalations have none). */
  sourceOf(hwIrq: number): { source: XiveSource; srcno: number } | null {
    const b = this.blockOf(hwIrq);
    return b ? { source: b.source, srcno: hwIrq - b.base } : null;
  }

  private isEscalation(hwIrq: number): boolean {
    const e = hwIrq - P9_ESC_HWIRQ_BASE;
    return e >= 0 && e < this.nrVps * 8;
  }

  /** The escalation interrupt number of END (vp, prio). */
  escalationIrq(vp: number, prio: number): number {
    return P9_ESC_HWIRQ_BASE + vp * 8 + prio;
  }

  /**
   * Allocate a HW IPI; returns its hardware irq number, or 0 when none is left (Linux's
   * convention for `xive_native_alloc_irq`).
   *
   * @remarks Models skiboot opal_xive_allocate_irq() behind Linux native.c:xive_native_alloc_irq().
   */
  allocIrq(): number {
    for (let n = 0; n < this.nrIpis; n++) {
      const k = (this.ipiNext + n) % this.nrIpis;
      if (this.ipiUsed[k] === 0) {
        this.ipiUsed[k] = 1;
        this.ipiNext = (k + 1) % this.nrIpis;
        this.stats.ipiAllocs++;
        const hw = P9_IPI_HWIRQ_BASE + k;
        // A fresh IPI is masked (EAS masked, PQ 01).
        const b = this.blockOf(hw)!;
        b.eas[k * 2] = EAS_VALID_HI;
        b.eas[k * 2 + 1] = EAS_MASKED_LO;
        this.ipiSource.setPq(k, XIVE_ESB_OFF);
        return hw;
      }
    }
    return 0;
  }

  /**
   * Free a HW IPI. Returns OPAL_SUCCESS, or OPAL_PARAMETER for a number that is not an allocated IPI.
   *
   * @remarks Models skiboot opal_xive_free_irq().
   */
  freeIrq(hwIrq: number): number {
    const k = hwIrq - P9_IPI_HWIRQ_BASE;
    if (!(k >= 0 && k < this.nrIpis) || this.ipiUsed[k] === 0) return OPAL_PARAMETER;
    this.ipiUsed[k] = 0;
    const b = this.blockOf(hwIrq)!;
    b.eas[k * 2] = 0;
    b.eas[k * 2 + 1] = 0;
    this.ipiSource.setPq(k, XIVE_ESB_OFF);
    this.stats.ipiFrees++;
    return OPAL_SUCCESS;
  }

  /** Whether a HW IPI is allocated. */
  isIpiAllocated(hwIrq: number): boolean {
    const k = hwIrq - P9_IPI_HWIRQ_BASE;
    return k >= 0 && k < this.nrIpis && this.ipiUsed[k] === 1;
  }

  /**
   * ESB page addresses and flags of a hardware irq.
   *
   * @remarks Models skiboot opal_xive_get_irq_info().
   */
  getIrqInfo(hwIrq: number, out: XiveIrqInfo): number {
    if (this.isEscalation(hwIrq)) {
      const e = hwIrq - P9_ESC_HWIRQ_BASE;
      out.flags = 0;
      out.eoiPage = P9_END_ESB_BASE + e * ESB2 + PAGE;
      out.trigPage = 0;
      out.esbShift = P9_IPI_ESB_SHIFT - 1;
      out.srcChip = 0;
      return OPAL_SUCCESS;
    }
    const b = this.blockOf(hwIrq);
    if (!b) return OPAL_PARAMETER;
    const i = hwIrq - b.base;
    const src = b.source;
    out.flags =
      (b.noTrigger ? 0 : OPAL_XIVE_IRQ_TRIGGER_PAGE) |
      (src.flags & XIVE_SRC_STORE_EOI ? OPAL_XIVE_IRQ_STORE_EOI : 0) |
      (src.isLsi(i) ? OPAL_XIVE_IRQ_LSI : 0);
    out.trigPage = b.noTrigger ? 0 : b.esbBase + i * b.esbSize;
    out.eoiPage = b.esbBase + i * b.esbSize + b.eoiOffset;
    out.esbShift = b.pageShift;
    out.srcChip = 0;
    return OPAL_SUCCESS;
  }

  // -------------------------------------------------------------------------------------------
  // EAS
  // -------------------------------------------------------------------------------------------

  /**
   * Route a hardware irq: EAS → END (vp, prio) with EISN `lirq`; prio 0xFF masks the EAS (the
   * target and data are still recorded). An escalation irq's EAS is words 4–5 of its END.
   *
   * @remarks Models skiboot opal_xive_set_irq_config().
   */
  setIrqConfig(hwIrq: number, vp: number, prio: number, lirq: number): number {
    this.stats.irqConfigs++;
    const masked = prio === 0xff;
    if (!masked && (prio > XIVE_PRIORITY_MAX || !this.vpBlockOf(vp))) return OPAL_PARAMETER;
    const endIdx = masked ? 0 : vp * 8 + prio;
    const hi = (EAS_VALID_HI | setField32(EAS_END_INDEX_HI, 0, endIdx)) >>> 0;
    const lo = ((masked ? EAS_MASKED_LO : 0) | (lirq & EAS_END_DATA_LO)) >>> 0;
    if (this.isEscalation(hwIrq)) {
      const e = hwIrq - P9_ESC_HWIRQ_BASE;
      const vb = this.vpBlockOf(Math.floor(e / 8));
      if (!vb) return OPAL_PARAMETER;
      const o = (e - vb.base * 8) * 8;
      vb.ends[o + 4] = setField32(END_W4_ESC_END_INDEX, setField32(END_W4_ESC_END_BLOCK, 0, 0), endIdx);
      // The EAS masked bit sits where the END has no field (W5 bit 0); the router ignores it, so
      // a masked escalation is really masked through its ESB, as Linux does.
      vb.ends[o + 5] = lo;
      return OPAL_SUCCESS;
    }
    const b = this.blockOf(hwIrq);
    if (!b) return OPAL_PARAMETER;
    const i = hwIrq - b.base;
    b.eas[i * 2] = hi;
    b.eas[i * 2 + 1] = lo;
    if (this.trace.mask & TRACE_ROUTER) traceEvent(this.trace, 'opal.irq_config', { hwIrq, vp, prio, lirq });
    return OPAL_SUCCESS;
  }

  /**
   * @remarks Models skiboot opal_xive_get_irq_config().
   */
  getIrqConfig(hwIrq: number, out: XiveIrqConfig): number {
    let hi: number;
    let lo: number;
    if (this.isEscalation(hwIrq)) {
      const e = hwIrq - P9_ESC_HWIRQ_BASE;
      const vb = this.vpBlockOf(Math.floor(e / 8));
      if (!vb) return OPAL_PARAMETER;
      const o = (e - vb.base * 8) * 8;
      hi = getField32(END_W4_ESC_END_INDEX, vb.ends[o + 4]!);
      lo = vb.ends[o + 5]!;
    } else {
      const b = this.blockOf(hwIrq);
      if (!b) return OPAL_PARAMETER;
      const i = hwIrq - b.base;
      hi = b.eas[i * 2]! & EAS_END_INDEX_HI;
      lo = b.eas[i * 2 + 1]!;
    }
    out.lirq = lo & EAS_END_DATA_LO;
    if (lo & EAS_MASKED_LO) {
      out.prio = 0xff;
      out.vp = 0;
    } else {
      out.vp = Math.floor(hi / 8);
      out.prio = hi % 8;
    }
    return OPAL_SUCCESS;
  }

  /**
   * Wait for in-flight notifications of a source (EAS) or queue to land. The model is
   * synchronous, so this only counts.
   *
   * @remarks Models skiboot opal_xive_sync().
   */
  sync(type: number, hwIrq: number): number {
    this.stats.syncs++;
    if (this.trace.mask & TRACE_ROUTER) traceEvent(this.trace, 'opal.sync', { type, hwIrq });
    return OPAL_SUCCESS;
  }

  // -------------------------------------------------------------------------------------------
  // VPs
  // -------------------------------------------------------------------------------------------

  private vpBlockOf(vp: number): VpBlock | null {
    const l = this.lastVp;
    if (l !== null && vp >= l.base && vp < l.base + l.count) return l;
    for (const b of this.vpBlocks) {
      if (vp >= b.base && vp < b.base + b.count) {
        this.lastVp = b;
        return b;
      }
    }
    return null;
  }

  /**
   * Allocate `1 << order` VPs aligned to their size, above the host's reserved VPs. Returns the
   * first VP id or OPAL_RESOURCE (negative) when the VP space is exhausted.
   *
   * @remarks Models skiboot opal_xive_alloc_vp_block().
   */
  allocVpBlock(order: number): number {
    const size = 2 ** order;
    let base = Math.ceil(P9_HOST_VP_RESERVED / size) * size;
    const sorted = this.vpBlocks.slice().sort((a, b) => a.base - b.base);
    for (;;) {
      if (base + size > this.nrVps) return OPAL_RESOURCE;
      const clash = sorted.find((b) => base < b.base + b.count && b.base < base + size);
      if (!clash) break;
      base = Math.ceil((clash.base + clash.count) / size) * size;
    }
    this.vpBlocks.push(new VpBlock(base, size));
    this.stats.vpBlockAllocs++;
    return base;
  }

  /**
   * Free a VP block. OPAL_PARAMETER if `base` is not the start of a block;
   * OPAL_XIVE_FREE_ACTIVE if one of its VPs is still enabled.
   *
   * @remarks Models skiboot opal_xive_free_vp_block().
   */
  freeVpBlock(base: number): number {
    const i = this.vpBlocks.findIndex((b) => b.base === base && base >= P9_HOST_VP_RESERVED);
    if (i < 0) return OPAL_PARAMETER;
    const b = this.vpBlocks[i]!;
    for (let v = 0; v < b.count; v++) if (b.nvts[v * 16]! & NVT_W0_VALID) return OPAL_XIVE_FREE_ACTIVE;
    this.vpBlocks.splice(i, 1);
    this.lastVp = null;
    return OPAL_SUCCESS;
  }

  /** Number of VP blocks allocated to VMs. */
  get vmVpBlocks(): number {
    return this.vpBlocks.length - 1;
  }

  /**
   * Enable or disable a VP. Disabling invalidates the NVT, its backlog and all 8 ENDs. The
   * single-escalation flag is accepted and has no further effect (see the file comment).
   *
   * @remarks Models skiboot opal_xive_set_vp_info().
   */
  setVpInfo(vp: number, flags: number): number {
    const b = this.vpBlockOf(vp);
    if (!b || vp < P9_HOST_VP_RESERVED) return OPAL_PARAMETER;
    const v = vp - b.base;
    if (flags & OPAL_XIVE_VP_ENABLED) {
      b.nvts.fill(0, v * 16, v * 16 + 16);
      b.nvts[v * 16] = NVT_W0_VALID;
    } else {
      b.nvts.fill(0, v * 16, v * 16 + 16);
      b.ends.fill(0, v * 64, v * 64 + 64);
    }
    return OPAL_SUCCESS;
  }

  /** Whether a VP is enabled (NVT valid). */
  isVpEnabled(vp: number): boolean {
    const b = this.vpBlockOf(vp);
    return b !== null && (b.nvts[(vp - b.base) * 16]! & NVT_W0_VALID) !== 0;
  }

  /**
   * The CAM value of a VP (what KVM pushes into the OS ring with VO), or -1 for an unknown VP.
   *
   * @remarks Models skiboot opal_xive_get_vp_info() (`cam_value`).
   */
  getVpCam(vp: number): number {
    return this.vpBlockOf(vp) ? xiveNvtCam(0, vp) : -1;
  }

  /**
   * The VP state doubleword OPAL keeps for a VP not dispatched: NVT words 4–5 (the IPB backup
   * at bits 47..40, i.e. `hi & 0xFF00`). Returns OPAL_SUCCESS or OPAL_PARAMETER.
   *
   * @remarks Models skiboot opal_xive_get_vp_state().
   */
  getVpState(vp: number, out: Word64): number {
    const b = this.vpBlockOf(vp);
    if (!b) return OPAL_PARAMETER;
    const o = (vp - b.base) * 16;
    out.set(b.nvts[o + 4]! & NVT_W4_IPB, 0);
    return OPAL_SUCCESS;
  }

  // -------------------------------------------------------------------------------------------
  // Queues (ENDs)
  // -------------------------------------------------------------------------------------------

  private endWords(vp: number, prio: number): { b: VpBlock; o: number } | null {
    if (!(prio >= 0 && prio <= XIVE_PRIORITY_MAX)) return null;
    const b = this.vpBlockOf(vp);
    return b ? { b, o: ((vp - b.base) * 8 + prio) * 8 } : null;
  }

  /**
   * Configure the queue of (vp, prio): `qpage` host physical (0 = none), `qsize` log2 bytes
   * (0 = none). Without a page or without ENABLED the END stops enqueuing. ALWAYS_NOTIFY sets
   * the END's unconditional notify, ESCALATE makes the END escalate through its ESe (reset to
   * 01, off). Generation 1, index 0 after each configuration. The escalation EAS (words 4–5)
   * is preserved.
   *
   * @remarks Models skiboot opal_xive_set_queue_info().
   */
  setQueueInfo(vp: number, prio: number, qpage: number, qsize: number, qflags: number): number {
    const w = this.endWords(vp, prio);
    if (!w) return OPAL_PARAMETER;
    if (qsize !== 0 && (qsize < 12 || qsize > 27)) return OPAL_PARAMETER;
    this.stats.queueConfigs++;
    const { b, o } = w;
    const e = b.ends;
    const enable = (qflags & OPAL_XIVE_EQ_ENABLED) !== 0 && qpage !== 0 && qsize !== 0;
    if (!enable) {
      e.fill(0, o, o + 4);
      e[o + 1] = setField32(END_W1_ESe, setField32(END_W1_ESn, 0, XIVE_ESB_OFF), XIVE_ESB_OFF);
      return OPAL_SUCCESS;
    }
    let w0 = END_W0_VALID | END_W0_ENQUEUE | END_W0_BACKLOG;
    if (qflags & OPAL_XIVE_EQ_ALWAYS_NOTIFY) w0 |= END_W0_UCOND_NOTIFY;
    // Escalation through the END's ESe to its escalation EAS (words 4-5, kept across configurations).
    if (qflags & OPAL_XIVE_EQ_ESCALATE) w0 |= END_W0_ESCALATE_CTL;
    e[o] = setField32(END_W0_QSIZE, w0 >>> 0, qsize - 12);
    e[o + 1] =
      (END_W1_GENERATION | setField32(END_W1_ESe, setField32(END_W1_ESn, 0, XIVE_ESB_OFF), XIVE_ESB_OFF)) >>>
      0;
    e[o + 2] = Math.floor(qpage * 2 ** -32) & END_W2_EQ_ADDR_HI;
    e[o + 3] = (qpage % 2 ** 32) >>> 0;
    e[o + 6] = setField32(END_W6_NVT_INDEX, setField32(END_W6_NVT_BLOCK, 0, 0), vp);
    e[o + 7] = setField32(END_W7_F0_PRIORITY, 0, prio);
    return OPAL_SUCCESS;
  }

  /**
   * @remarks Models skiboot opal_xive_get_queue_info().
   */
  getQueueInfo(vp: number, prio: number, out: XiveQueueInfo): number {
    const w = this.endWords(vp, prio);
    if (!w) return OPAL_PARAMETER;
    const e = w.b.ends;
    const w0 = e[w.o]!;
    const enabled = (w0 & END_W0_VALID) !== 0 && (w0 & END_W0_ENQUEUE) !== 0;
    out.qpage = enabled ? (e[w.o + 2]! & END_W2_EQ_ADDR_HI) * 2 ** 32 + e[w.o + 3]! : 0;
    out.qsize = enabled ? getField32(END_W0_QSIZE, w0) + 12 : 0;
    const endIdx = vp * 8 + prio;
    out.qeoiPage = P9_END_ESB_BASE + endIdx * ESB2;
    out.escIrq = this.escalationIrq(vp, prio);
    out.qflags =
      (enabled ? OPAL_XIVE_EQ_ENABLED : 0) |
      (w0 & END_W0_UCOND_NOTIFY ? OPAL_XIVE_EQ_ALWAYS_NOTIFY : 0) |
      (w0 & END_W0_ESCALATE_CTL ? OPAL_XIVE_EQ_ESCALATE : 0);
    return OPAL_SUCCESS;
  }

  /**
   * The live generation and index of a queue.
   *
   * @remarks Models skiboot opal_xive_get_queue_state().
   */
  getQueueState(vp: number, prio: number, out: XiveQueueState): number {
    const w = this.endWords(vp, prio);
    if (!w) return OPAL_PARAMETER;
    const e = w.b.ends;
    if ((e[w.o]! & END_W0_ENQUEUE) === 0) return OPAL_WRONG_STATE;
    out.toggle = e[w.o + 1]! & END_W1_GENERATION ? 1 : 0;
    out.index = e[w.o + 1]! & END_W1_PAGE_OFF;
    return OPAL_SUCCESS;
  }

  /**
   * @remarks Models skiboot opal_xive_set_queue_state().
   */
  setQueueState(vp: number, prio: number, toggle: number, index: number): number {
    const w = this.endWords(vp, prio);
    if (!w) return OPAL_PARAMETER;
    const e = w.b.ends;
    if ((e[w.o]! & END_W0_ENQUEUE) === 0) return OPAL_WRONG_STATE;
    const entries = 2 ** (getField32(END_W0_QSIZE, e[w.o]!) + 10);
    if (!(index >= 0 && index < entries)) return OPAL_PARAMETER;
    e[w.o + 1] = setField32(END_W1_PAGE_OFF, setField32(END_W1_GENERATION, e[w.o + 1]!, toggle & 1), index);
    return OPAL_SUCCESS;
  }

  /** Raw END words of (vp, prio) for tests and debug dumps (a copy). */
  endOf(vp: number, prio: number): Uint32Array | null {
    const w = this.endWords(vp, prio);
    return w ? w.b.ends.slice(w.o, w.o + 8) : null;
  }

  /**
   * A management load on an END ESB page (ESe when `ese`): EOI, GET or SET_PQ on the END's
   * PQ pair; an ESe EOI that forwards re-fires the escalation. Returns the ESB load value, or
   * -1 for an unknown END.
   */
  endEsbOp(endIdx: number, ese: boolean, op: number): number {
    const vb = this.vpBlockOf(Math.floor(endIdx / 8));
    if (!vb) {
      this.trace.guestError(`XIVE: invalid END ESB access for END ${hex(endIdx)}`);
      return -1;
    }
    const o = (endIdx - vb.base * 8) * 8;
    const mask = ese ? END_W1_ESe : END_W1_ESn;
    const old = getField32(mask, vb.ends[o + 1]!);
    let ret = old;
    let fwd = false;
    if (op < XIVE_ESB_GET) {
      const r = xiveEsbEoi(old);
      vb.ends[o + 1] = setField32(mask, vb.ends[o + 1]!, r & 3);
      fwd = (r & XIVE_ESB_FORWARD) !== 0;
      ret = fwd ? 1 : 0;
    } else if (op >= XIVE_ESB_SET_PQ_00) {
      vb.ends[o + 1] = setField32(mask, vb.ends[o + 1]!, (op >>> 8) & 3);
    }
    if (this.trace.mask & TRACE_ESB) traceEvent(this.trace, 'end_esb', { endIdx, ese: +ese, op, oldPq: old });
    if (fwd && ese) this.router.notify(P9_ESC_HWIRQ_BASE + endIdx, true);
    return ret;
  }

  /** The ESe PQ (escalation ESB state) of END (vp, prio), or -1 for an unknown END. */
  escalationPq(vp: number, prio: number): number {
    const w = this.endWords(vp, prio);
    return w ? getField32(END_W1_ESe, w.b.ends[w.o + 1]!) : -1;
  }

  // -------------------------------------------------------------------------------------------
  // Thread contexts and TIMA
  // -------------------------------------------------------------------------------------------

  /** Host physical address of TIMA page `page` (0 = HW … 3 = USER). */
  timaPageAddr(page: number): number {
    return P9_TIMA_BASE + page * 2 ** TM_SHIFT;
  }

  /**
   * Whether the 64 KiB physical page `pfn` is one of the chip's pages that only the host may
   * reach: the TIMA's HW, HV and USER pages (a guest gets the OS page), the ESB pages of an IPI
   * not lent to a guest (`lent(srcno)` says which of the IPI source's numbers back a guest's
   * interrupts), and the END ESB pages (the host's escalations).
   */
  isHostOnlyPage(pfn: number, lent: (ipiSrcno: number) => boolean): boolean {
    const timaPage0 = P9_TIMA_BASE / PAGE;
    if (pfn >= timaPage0 && pfn < timaPage0 + XIVE_TM_SIZE / PAGE) return pfn !== timaPage0 + XIVE_TM_OS_PAGE;
    const ipi = Math.floor((pfn * PAGE - P9_IPI_ESB_BASE) / ESB2);
    if (ipi >= 0 && ipi < this.nrIpis) return !lent(ipi);
    return pfn >= P9_END_ESB_BASE / PAGE && pfn < (P9_END_ESB_BASE + this.nrVps * 8 * ESB2) / PAGE;
  }

  /** The host VP (HW CAM line) of a physical thread. */
  hostVp(cpu: number): number {
    return 0x80 + cpu;
  }

  // -------------------------------------------------------------------------------------------
  // XiveRouterBackend
  // -------------------------------------------------------------------------------------------

  getEas(_blk: number, idx: number, eas: Uint32Array): boolean {
    if (this.isEscalation(idx)) {
      const e = idx - P9_ESC_HWIRQ_BASE;
      const vb = this.vpBlockOf(Math.floor(e / 8));
      if (!vb) return false;
      const o = (e - vb.base * 8) * 8;
      const w4 = vb.ends[o + 4]!;
      eas[0] =
        (EAS_VALID_HI |
          setField32(EAS_END_BLOCK_HI, 0, getField32(END_W4_ESC_END_BLOCK, w4)) |
          setField32(EAS_END_INDEX_HI, 0, getField32(END_W4_ESC_END_INDEX, w4))) >>>
        0;
      eas[1] = vb.ends[o + 5]! & (EAS_END_DATA_LO | EAS_MASKED_LO);
      return true;
    }
    const b = this.blockOf(idx);
    if (!b) return false;
    const i = idx - b.base;
    eas[0] = b.eas[i * 2]!;
    eas[1] = b.eas[i * 2 + 1]!;
    return true;
  }

  getEnd(_blk: number, idx: number, end: Uint32Array): boolean {
    const vb = this.vpBlockOf(Math.floor(idx / 8));
    if (!vb) return false;
    const o = (idx - vb.base * 8) * 8;
    // Word loops, not `set(subarray(…))`: no view object per notification.
    const ends = vb.ends;
    for (let i = 0; i < 8; i++) end[i] = ends[o + i]!;
    return true;
  }

  writeEnd(_blk: number, idx: number, end: Uint32Array, word: number): void {
    const vb = this.vpBlockOf(Math.floor(idx / 8));
    if (!vb) return;
    const o = (idx - vb.base * 8) * 8;
    if (word < 0) for (let i = 0; i < 8; i++) vb.ends[o + i] = end[i]!;
    else vb.ends[o + word] = end[word]!;
  }

  /**
   * W0 (valid) and W4 (backlog IPB) only: the words the router and the TIMA read (both write
   * back W4 alone), so a notification does not copy the other 14.
   */
  getNvt(_blk: number, idx: number, nvt: Uint32Array): boolean {
    const vb = this.vpBlockOf(idx);
    if (!vb) return false;
    const o = (idx - vb.base) * 16;
    nvt[0] = vb.nvts[o]!;
    nvt[4] = vb.nvts[o + 4]!;
    return true;
  }

  writeNvt(_blk: number, idx: number, nvt: Uint32Array, word: number): void {
    const vb = this.vpBlockOf(idx);
    if (!vb) return;
    const o = (idx - vb.base) * 16;
    if (word < 0) for (let i = 0; i < 16; i++) vb.nvts[o + i] = nvt[i]!;
    else vb.nvts[o + word] = nvt[word]!;
  }

  /** The presenter: scan the physical threads (PHYS ring = host, OS ring = pushed vCPU). */
  matchNvt(
    format: number,
    nvtBlk: number,
    nvtIdx: number,
    ignore: boolean,
    _priority: number,
    logicServ: number,
    out: XiveTctxMatch,
  ): number {
    return xiveMatchTctxs(this.tctxs, format, nvtBlk, nvtIdx, ignore, logicServ, out, this.trace);
  }
}
