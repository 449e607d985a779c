/**
 * Targeted differential sequences: every ESB operation in every PQ state (MSI and LSI, qtest
 * and vCPU, rejected sizes), every H_INT_* error path, the full interrupt path, queue wrap,
 * CPPR, ACK, SET_OS_PENDING, LSI, masks, retargets, context pull/push, TIMA page views, reset.
 */

import type { Op, Size } from './ops.ts';
import { esbMgmt, esbTrig, TIMA_HV, TIMA_HW, TIMA_OS, TIMA_USER } from './qemu-driver.ts';

export const H = {
  GET_SOURCE_INFO: 0x3a8,
  SET_SOURCE_CONFIG: 0x3ac,
  GET_SOURCE_CONFIG: 0x3b0,
  GET_QUEUE_INFO: 0x3b4,
  SET_QUEUE_CONFIG: 0x3b8,
  GET_QUEUE_CONFIG: 0x3bc,
  SET_OS_REPORTING_LINE: 0x3c0,
  GET_OS_REPORTING_LINE: 0x3c4,
  ESB: 0x3c8,
  SYNC: 0x3cc,
  RESET: 0x3d0,
} as const;

/** Claimed sources of the 1-vCPU machine: IPI 0, EPOW, HOTPLUG, VIO (MSI); PHB INTx (LSI). */
export const CLAIMED_MSI = [0, 0x1000, 0x1001, 0x1100] as const;
export const CLAIMED_LSI = [0x1200, 0x1201, 0x1202, 0x1203] as const;
/** Event queue pages (above the CAS FDT buffer at 1 MiB). */
export const EQ_BASE = 0x20_0000;
export const eqPage = (i: number): number => EQ_BASE + i * 0x1_0000;

export const hc = (opcode: number, ...args: (number | bigint)[]): Op => ({
  k: 'hcall',
  opcode,
  args: args.map((a) => BigInt.asUintN(64, BigInt(a))),
});
export const qld = (addr: number, size: Size = 8): Op => ({ k: 'qld', addr, size });
export const qst = (addr: number, val: number | bigint = 0, size: Size = 8): Op => ({
  k: 'qst',
  addr,
  size,
  val: BigInt(val),
});
export const vld = (addr: number, size: Size = 8): Op => ({ k: 'vld', addr, size });
export const vst = (addr: number, val: number | bigint, size: Size = 8): Op => ({
  k: 'vst',
  addr,
  size,
  val: BigInt.asUintN(64, BigInt(val)),
});
const PIC: Op = { k: 'pic' };

/** Zero an EQ page and configure the END of (vCPU 0, prio) on it. */
export function queue(prio: number, page: number, qsize = 12, flags = 1): Op[] {
  return [
    { k: 'memset', addr: page, len: 2 ** qsize, val: 0 },
    hc(H.SET_QUEUE_CONFIG, flags, 0, prio, page, qsize),
  ];
}
/** Route `lisn` to (vCPU 0, prio) with `eisn`, and unmask it at the source (PQ 00). */
export function route(lisn: number, prio: number, eisn: number): Op[] {
  return [hc(H.SET_SOURCE_CONFIG, 2, lisn, 0, prio, eisn), qld(esbMgmt(lisn) + 0xc00)];
}
export const cppr = (v: number): Op => vst(TIMA_OS + 0x11, v, 1);
export const ack = (): Op => vld(TIMA_OS + 0x810, 2);
export const setPq = (lisn: number, pq: number): Op => qld(esbMgmt(lisn) + 0xc00 + pq * 0x100);

const ESB_LOADS = [0x000, 0x400, 0x800, 0xc00, 0xd00, 0xe00, 0xf00];
const ESB_STORES = [0x000, 0x400, 0x800, 0xc00, 0xd00, 0xe00, 0xf00];

/** Every ESB load and store × PQ state, on an MSI and an LSI, masked and routed. */
function esbTable(): Op[] {
  const ops: Op[] = [...queue(2, eqPage(0)), ...route(0x1001, 2, 0x77), cppr(0xff)];
  for (const lisn of [0x1000, 0x1001, 0x1200]) {
    for (let pq = 0; pq < 4; pq++) {
      for (const off of ESB_LOADS) ops.push(setPq(lisn, pq), qld(esbMgmt(lisn) + off));
      ops.push(setPq(lisn, pq), qld(esbTrig(lisn) + 0x800));
      for (const off of ESB_STORES) ops.push(setPq(lisn, pq), qst(esbMgmt(lisn) + off, 0));
      for (const off of [0x000, 0xc00, 0x400]) ops.push(setPq(lisn, pq), qst(esbTrig(lisn) + off, 0));
      // Rejected sizes (8-byte-only ESB), qtest and vCPU.
      for (const size of [1, 2, 4] as const) {
        ops.push(setPq(lisn, pq), qld(esbMgmt(lisn) + 0x800, size), qld(esbMgmt(lisn) + 0xc00, size));
        ops.push(qst(esbTrig(lisn), 0, size), qst(esbMgmt(lisn) + 0xe00, 0, size));
        ops.push(vld(esbMgmt(lisn) + 0xd00, size), vst(esbTrig(lisn), 0, size));
      }
      ops.push(setPq(lisn, pq), vld(esbMgmt(lisn)), setPq(lisn, pq), vst(esbTrig(lisn), 0));
      ops.push(setPq(lisn, pq), vld(esbMgmt(lisn) + 0xf00), vst(esbMgmt(lisn) + 0xc00, 0));
      // Unaligned and odd offsets in the management page.
      ops.push(
        setPq(lisn, pq),
        qld(esbMgmt(lisn) + 0x804),
        qld(esbMgmt(lisn) + 0x840),
        qld(esbMgmt(lisn) + 0x1000),
      );
    }
    ops.push(PIC);
  }
  // Beyond the sources: END ESB window (disabled) and the last source.
  ops.push(qld(esbMgmt(0x1fff) + 0x800), qld(esbMgmt(0x2000) + 0x800), qst(esbTrig(0x2001), 0));
  return ops;
}

/** Every H_INT_* error path and check order (QEMU's hw/intc/spapr_xive.c h_int_* handlers). */
function hcallErrors(): Op[] {
  const big = 0xffff_ffff_ffff_ffffn;
  return [
    // GET_SOURCE_INFO
    hc(H.GET_SOURCE_INFO, 0, 0),
    hc(H.GET_SOURCE_INFO, 0, 0x1200),
    hc(H.GET_SOURCE_INFO, 1, 0),
    hc(H.GET_SOURCE_INFO, 0, 5),
    hc(H.GET_SOURCE_INFO, 0, 0x2000),
    hc(H.GET_SOURCE_INFO, 0, big),
    hc(H.GET_SOURCE_INFO, 1, 5),
    // SET_SOURCE_CONFIG: flags, lisn, prio 0xff first, reserved prio (P4), target (P3)
    hc(H.SET_SOURCE_CONFIG, 4, 0x1000, 0, 3, 1),
    hc(H.SET_SOURCE_CONFIG, 0, 5, 0, 3, 1),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 0, 7, 1),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 1, 3, 1),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 0xffff_ffff, 3, 1),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 1, 7, 1),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 1, 0xff, 1),
    hc(H.GET_SOURCE_CONFIG, 0, 0x1000),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 0, 0x107, 1),
    hc(H.SET_SOURCE_CONFIG, 3, 0x1000, 0, 3, 0x1234),
    hc(H.GET_SOURCE_CONFIG, 0, 0x1000),
    hc(H.SET_SOURCE_CONFIG, 2, 0x1000, 0, 3, 0x5678),
    hc(H.GET_SOURCE_CONFIG, 0, 0x1000),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 0, 4, 0x9999),
    hc(H.GET_SOURCE_CONFIG, 0, 0x1000),
    hc(H.GET_SOURCE_CONFIG, 1, 0x1000),
    hc(H.GET_SOURCE_CONFIG, 0, 0x2000),
    hc(H.GET_SOURCE_CONFIG, 0, 7),
    // GET_QUEUE_INFO: flags, prio (P3), target (P2)
    hc(H.GET_QUEUE_INFO, 0, 0, 3),
    hc(H.GET_QUEUE_INFO, 1, 0, 3),
    hc(H.GET_QUEUE_INFO, 0, 0, 7),
    hc(H.GET_QUEUE_INFO, 0, 1, 3),
    hc(H.GET_QUEUE_INFO, 0, 1, 7),
    hc(H.GET_QUEUE_INFO, 0, 0, 0xff),
    // SET_QUEUE_CONFIG: flags, prio, target, alignment, mapping, size
    hc(H.SET_QUEUE_CONFIG, 2, 0, 3, eqPage(0), 12),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 7, eqPage(0), 12),
    hc(H.SET_QUEUE_CONFIG, 0, 1, 3, eqPage(0), 12),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, eqPage(0) + 0x800, 12),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, eqPage(0) + 0x1000, 16),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, 0x4000_0000, 12),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, 0x3fff_f000, 16),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, 0x0006_0100_0000_0000, 16),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, big - 0xfffn, 12),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, eqPage(0), 13),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, eqPage(0), 11),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, eqPage(0), 0x10c),
    hc(H.GET_QUEUE_CONFIG, 1, 0, 3),
    hc(H.SET_QUEUE_CONFIG, 1, 0, 3, eqPage(0), 12),
    hc(H.GET_QUEUE_CONFIG, 0, 0, 3),
    hc(H.GET_QUEUE_CONFIG, 1, 0, 3),
    hc(H.GET_QUEUE_INFO, 0, 0, 3),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 3, eqPage(0), 0),
    hc(H.GET_QUEUE_CONFIG, 1, 0, 3),
    hc(H.GET_QUEUE_INFO, 0, 0, 3),
    hc(H.SET_QUEUE_CONFIG, 0, 0, 5, eqPage(1), 16),
    hc(H.GET_QUEUE_CONFIG, 1, 0, 5),
    hc(H.GET_QUEUE_CONFIG, 2, 0, 5),
    hc(H.GET_QUEUE_CONFIG, 0, 0, 7),
    hc(H.GET_QUEUE_CONFIG, 0, 1, 5),
    // ESB: flags, lisn, offset
    hc(H.ESB, 2, 0x1000, 0x800, 0),
    hc(H.ESB, 0, 5, 0x800, 0),
    hc(H.ESB, 0, 0x1000, 0x800, 0),
    hc(H.ESB, 0, 0x1000, 0xc00, 0),
    hc(H.ESB, 0, 0x1000, 0x800, 0),
    hc(H.ESB, 1, 0x1000, 0xe00, 0),
    hc(H.ESB, 0, 0x1000, 0x800, 0),
    hc(H.ESB, 0, 0x1000, 0x801, 0),
    hc(H.ESB, 0, 0x1000, 0xfff8, 0),
    hc(H.ESB, 0, 0x1000, 0x2_0001, 0),
    hc(H.ESB, 0, 0x1000, big, 0),
    hc(H.ESB, 0, 0x1200, 0x800, 0),
    hc(H.ESB, 0, 0x1200, 0x000, 0),
    hc(H.ESB, 1, 0x1200, 0x000, 0),
    // SYNC, RESET (flags ≠ 0), reporting lines, unknown opcode in the H_INT range
    hc(H.SYNC, 0, 0x1000),
    hc(H.SYNC, 1, 0x1000),
    hc(H.SYNC, 0, 5),
    hc(H.RESET, 1),
    hc(H.SET_OS_REPORTING_LINE, 0, 0x1000),
    hc(H.GET_OS_REPORTING_LINE, 0, 0, 0x1000),
    PIC,
  ];
}

/** The whole path: trigger → EQ → NSR → line → ACK → EOI. */
function fullPath(): Op[] {
  return [
    ...queue(3, eqPage(0)),
    ...route(0x1000, 3, 0xabc),
    cppr(0xff),
    qst(esbTrig(0x1000), 0),
    ack(),
    qst(esbTrig(0x1000), 0),
    qld(esbMgmt(0x1000)),
    ack(),
    qld(esbMgmt(0x1000)),
    cppr(0xff),
    PIC,
    { k: 'ram', addr: eqPage(0), len: 64 },
  ];
}

/** A 4K EQ (1024 entries): 1030 events wrap with the generation bit. */
function queueWrap(): Op[] {
  const ops: Op[] = [...queue(4, eqPage(2)), ...route(0x1100, 4, 0x42), cppr(0)];
  for (let i = 0; i < 1030; i++) ops.push(qst(esbTrig(0x1100), 0), qld(esbMgmt(0x1100) + 0xc00));
  ops.push(hc(H.GET_QUEUE_CONFIG, 1, 0, 4), { k: 'ram', addr: eqPage(2), len: 0x1000 }, PIC);
  return ops;
}

/** CPPR: clamp, raise/lower around a pending priority, raw 4-byte store, HV CPPR. */
function cpprSeq(): Op[] {
  const ops: Op[] = [vst(TIMA_OS + 0x812, 4, 1)];
  for (const v of [9, 0xff, 3, 5, 4, 0, 7, 8, 0x80, 0xff, 2]) ops.push(cppr(v), ack());
  ops.push(vst(TIMA_OS + 0x10, 0x0022_0000, 4), vld(TIMA_OS + 0x10, 4));
  ops.push(vst(TIMA_OS + 0x10, 0xffff_ffff, 4), vld(TIMA_OS + 0x10, 4));
  ops.push(vst(TIMA_OS + 0x10, 0x0011_2233_4455_6677n, 8), vld(TIMA_OS + 0x10, 8));
  ops.push(vst(TIMA_OS + 0x11, 0xff, 1), vst(TIMA_OS + 0x812, 6, 1), ack(), ack());
  ops.push(vst(TIMA_HV + 0x31, 0xff, 1), vst(TIMA_HV + 0x31, 3, 1), vld(TIMA_HV + 0x830, 2), PIC);
  return ops;
}

/** ACK and SET_OS_PENDING for every priority (and invalid ones). */
function pendingSeq(): Op[] {
  const ops: Op[] = [ack(), cppr(0xff)];
  for (const p of [0, 1, 2, 3, 4, 5, 6, 7, 8, 0xff]) ops.push(vst(TIMA_OS + 0x812, p, 1), ack());
  ops.push(cppr(0xff));
  for (const p of [7, 3, 5, 1]) ops.push(vst(TIMA_OS + 0x812, p, 1));
  for (let i = 0; i < 6; i++) ops.push(ack(), cppr(0xff));
  // ACK sizes other than 2 and from other pages.
  ops.push(
    vld(TIMA_OS + 0x810, 4),
    vld(TIMA_OS + 0x810, 1),
    vld(TIMA_HV + 0x810, 2),
    vld(TIMA_USER + 0x810, 2),
  );
  ops.push(vst(TIMA_OS + 0x812, 2, 4), vst(TIMA_USER + 0x812, 2, 1), PIC);
  return ops;
}

/** LSI: routing, trigger, EOI through H_INT_ESB (the LSI path), Q on LSI. */
function lsiSeq(): Op[] {
  return [
    ...queue(1, eqPage(3)),
    hc(H.GET_SOURCE_INFO, 0, 0x1201),
    ...route(0x1201, 1, 0x1201),
    cppr(0xff),
    qst(esbTrig(0x1201), 0),
    qst(esbTrig(0x1201), 0),
    ack(),
    hc(H.ESB, 0, 0x1201, 0x000, 0),
    hc(H.ESB, 0, 0x1201, 0x800, 0),
    qst(esbTrig(0x1201), 0),
    hc(H.ESB, 1, 0x1201, 0x400, 0),
    hc(H.ESB, 0, 0x1201, 0xc00, 0),
    ack(),
    cppr(0xff),
    PIC,
  ];
}

/** Masks (flag and prio 0xff), retarget between queues, ESn coalescing without always-notify. */
function masksAndRetargets(): Op[] {
  return [
    ...queue(1, eqPage(4)),
    ...queue(5, eqPage(5)),
    ...queue(6, eqPage(6), 12, 0),
    cppr(0xff),
    hc(H.SET_SOURCE_CONFIG, 3, 0x1000, 0, 1, 0x11),
    qld(esbMgmt(0x1000) + 0xc00),
    qst(esbTrig(0x1000), 0),
    hc(H.GET_SOURCE_CONFIG, 0, 0x1000),
    hc(H.SET_SOURCE_CONFIG, 2, 0x1000, 0, 1, 0x12),
    qld(esbMgmt(0x1000)),
    qst(esbTrig(0x1000), 0),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 0, 5, 0),
    qld(esbMgmt(0x1000)),
    qst(esbTrig(0x1000), 0),
    hc(H.SET_SOURCE_CONFIG, 0, 0x1000, 0, 0xff, 0),
    hc(H.GET_SOURCE_CONFIG, 0, 0x1000),
    qld(esbMgmt(0x1000)),
    qst(esbTrig(0x1000), 0),
    ...route(0x1001, 6, 0x66),
    qst(esbTrig(0x1001), 0),
    qld(esbMgmt(0x1001) + 0xc00),
    qst(esbTrig(0x1001), 0),
    hc(H.GET_QUEUE_CONFIG, 1, 0, 6),
    ack(),
    ack(),
    cppr(0xff),
    ack(),
    PIC,
  ];
}

/** Context pull/push and the trigger to a non-dispatched NVT; pool ctx; VT push/poll. */
function contexts(): Op[] {
  return [
    ...queue(2, eqPage(7)),
    ...route(0, 2, 0x22),
    cppr(0xff),
    vld(TIMA_HV + 0x18, 4),
    vld(TIMA_HV + 0x818, 4),
    vld(TIMA_HV + 0x18, 4),
    vld(TIMA_OS + 0x818, 4),
    qst(esbTrig(0), 0),
    vld(TIMA_HV + 0x818, 8),
    vst(TIMA_HV + 0x18, 0x8000_0400_0000_0000n, 8),
    vld(TIMA_HV + 0x18, 4),
    qld(esbMgmt(0)),
    qst(esbTrig(0), 0),
    ack(),
    vst(TIMA_HV + 0x18, 0x0000_0401, 4),
    vld(TIMA_HV + 0x18, 4),
    vst(TIMA_HV + 0x18, 0x8000_0400_0000_0000n, 8),
    vst(TIMA_HW + 0x28, 0x8000_1234, 4),
    vld(TIMA_HV + 0x828, 4),
    vld(TIMA_HW + 0x28, 4),
    vst(TIMA_HW + 0x28, 0x8000_1234, 4),
    vld(TIMA_HW + 0x828, 8),
    vst(TIMA_HV + 0x38, 0x80, 1),
    vld(TIMA_HV + 0x38, 1),
    vld(TIMA_HV + 0x838, 1),
    vld(TIMA_HV + 0x830, 2),
    vld(TIMA_HW + 0x830, 2),
    PIC,
  ];
}

/** Raw TIMA loads of every page × ring offset × size, and raw stores from each page. */
function timaViews(): Op[] {
  const ops: Op[] = [vst(TIMA_OS + 0x812, 3, 1), cppr(0xff)];
  for (const page of [TIMA_HW, TIMA_HV, TIMA_OS, TIMA_USER]) {
    for (let off = 0; off < 0x40; off += 4) {
      for (const size of [1, 2, 4, 8] as const) if (off % size === 0) ops.push(vld(page + off, size));
    }
  }
  for (const page of [TIMA_HW, TIMA_HV, TIMA_OS, TIMA_USER]) {
    ops.push(vst(page + 0x20, 0x0102_0304_0506_0708n, 8), vst(page + 0x30, 0x0a0b_0c0d, 4), PIC);
  }
  // Special-op offsets with the wrong size or page, and unimplemented ops.
  for (const off of [0x800, 0x808, 0x810, 0x818, 0x820, 0x828, 0x830, 0x838, 0xc08, 0xc10, 0xc38]) {
    for (const page of [TIMA_HV, TIMA_OS]) ops.push(vld(page + off, 4), vld(page + off, 8));
  }
  ops.push(PIC);
  return ops;
}

/** system_reset in the middle of a configured state. */
function resetSeq(): Op[] {
  return [
    ...queue(3, eqPage(0)),
    ...route(0x1000, 3, 0x31),
    cppr(0xff),
    qst(esbTrig(0x1000), 0),
    PIC,
    { k: 'reset' },
    PIC,
    hc(H.GET_SOURCE_CONFIG, 0, 0x1000),
    hc(H.GET_QUEUE_CONFIG, 1, 0, 3),
    qld(esbMgmt(0x1000) + 0x800),
    { k: 'ram', addr: eqPage(0), len: 64 },
  ];
}

export const SEQUENCES: Record<string, () => Op[]> = {
  'esb-table': esbTable,
  'hcall-errors': hcallErrors,
  'full-path': fullPath,
  'queue-wrap': queueWrap,
  cppr: cpprSeq,
  'ack-pending': pendingSeq,
  lsi: lsiSeq,
  'masks-retargets': masksAndRetargets,
  contexts,
  'tima-views': timaViews,
  reset: resetSeq,
};
