/**
 * A seeded generator of differential sequences: mostly valid-looking guest behaviour (queues
 * configured, sources routed, triggers, ACK, EOI, CPPR) mixed with hostile operations (odd
 * sizes and offsets, bad hcall arguments, unclaimed sources, context pulls, TIMA ops from the
 * wrong page). The same seed always yields the same operations.
 */

import { Rng } from '../../src/sim/rng.ts';
import type { Op, Size } from './ops.ts';
import { esbMgmt, esbTrig, TIMA_HV, TIMA_HW, TIMA_OS, TIMA_USER } from './qemu-driver.ts';
import {
  ack,
  CLAIMED_LSI,
  CLAIMED_MSI,
  cppr,
  eqPage,
  H,
  hc,
  qld,
  qst,
  queue,
  route,
  vld,
  vst,
} from './sequences.ts';

const CLAIMED = [...CLAIMED_MSI, ...CLAIMED_LSI];
const ESB_OFFS = [0x000, 0x400, 0x800, 0xc00, 0xd00, 0xe00, 0xf00];
const TIMA_PAGES = [TIMA_HW, TIMA_HV, TIMA_OS, TIMA_USER];
const SPECIAL = [0x800, 0x810, 0x812, 0x818, 0x828, 0x830, 0x838, 0xc10];

/** A 64-bit value: small, a field-shaped value, or anything. */
function val64(r: Rng): bigint {
  switch (r.int(0, 3)) {
    case 0:
      return BigInt(r.int(0, 3));
    case 1:
      return BigInt(r.int(0, 0xffff_ffff));
    case 2:
      return 0xffff_ffff_ffff_ffffn;
    default:
      return (BigInt(r.int(0, 0xffff_ffff)) << 32n) | BigInt(r.int(0, 0xffff_ffff));
  }
}

function lisn(r: Rng): number {
  const x = r.int(0, 99);
  if (x < 85) return r.pick(CLAIMED);
  if (x < 95) return r.int(0, 0x1fff);
  return r.int(0x2000, 0x2003);
}

function prio(r: Rng): number {
  const x = r.int(0, 99);
  if (x < 80) return r.int(0, 6);
  if (x < 88) return 7;
  if (x < 95) return 0xff;
  return r.int(8, 0x1ff);
}

function target(r: Rng): bigint {
  return r.chance(0.9) ? 0n : r.pick([1n, 2n, 0x400n, 0xffff_ffffn, 0xffff_ffff_ffff_ffffn]);
}

function qpage(r: Rng): bigint {
  const x = r.int(0, 99);
  if (x < 85) return BigInt(eqPage(r.int(0, 7)));
  if (x < 90) return BigInt(eqPage(r.int(0, 7)) + r.pick([0x8, 0x800, 0x1000]));
  if (x < 95) return r.pick([0x4000_0000n, 0x3fff_0000n, 0x8_0000_0000n]);
  return BigInt(esbMgmt(r.pick(CLAIMED)));
}

function size(r: Rng, eight: number): Size {
  return r.chance(eight) ? 8 : r.pick([1, 2, 4] as const);
}

function esbOp(r: Rng, viaCpu: boolean): Op {
  const l = lisn(r);
  const trig = r.chance(0.3);
  const base = trig ? esbTrig(l) : esbMgmt(l);
  const off = r.chance(0.9) ? r.pick(ESB_OFFS) : r.int(0, 0x1fff) * 8;
  const sz = size(r, 0.93);
  const load = r.chance(0.5);
  if (viaCpu) return load ? vld(base + off, sz) : vst(base + off, val64(r), sz);
  return load ? qld(base + off, sz) : qst(base + off, val64(r), sz);
}

function timaOp(r: Rng): Op {
  const x = r.int(0, 99);
  if (x < 22) return ack();
  if (x < 40) return cppr(r.chance(0.7) ? r.pick([0, 1, 2, 3, 4, 5, 6, 7, 0xff]) : r.int(0, 0xff));
  if (x < 50) return vst(TIMA_OS + 0x812, r.chance(0.8) ? r.int(0, 7) : r.int(0, 0xff), 1);
  if (x < 55) return vld(TIMA_HV + 0x818, r.pick([4, 8] as const)); // pull OS ctx
  if (x < 63) return vst(TIMA_HV + 0x18, 0x8000_0400_0000_0000n, 8); // raw re-push of the OS CAM
  if (x < 66) return vld(r.pick([TIMA_HV, TIMA_HW]) + 0x828, r.pick([4, 8] as const));
  if (x < 70) return vst(TIMA_HW + 0x28, r.int(0, 0xffff_ffff), 4);
  if (x < 73) return vld(TIMA_HV + 0x830, 2);
  if (x < 76) return vst(TIMA_HV + 0x31, r.pick([0, 3, 7, 0xff]), 1);
  if (x < 80) return vst(TIMA_OS + 0x10, r.int(0, 0xffff_ffff), 4); // raw CPPR store
  if (x < 90) {
    const page = r.pick(TIMA_PAGES);
    const sz = r.pick([1, 2, 4, 8] as const);
    const off = Math.floor(r.int(0, 0x3f) / sz) * sz;
    return r.chance(0.7) ? vld(page + off, sz) : vst(page + off, val64(r), sz);
  }
  const page = r.pick(TIMA_PAGES);
  const sz = r.pick([1, 2, 4, 8] as const);
  const off = r.pick(SPECIAL);
  return r.chance(0.8) ? vld(page + off, sz) : vst(page + off, val64(r), sz);
}

function flags(r: Rng, valid: readonly number[]): bigint {
  return r.chance(0.9) ? BigInt(r.pick(valid)) : val64(r);
}

function hcallOp(r: Rng): Op {
  const x = r.int(0, 99);
  if (x < 8) return hc(H.GET_SOURCE_INFO, flags(r, [0]), lisn(r));
  if (x < 30) {
    return hc(
      H.SET_SOURCE_CONFIG,
      flags(r, [0, 1, 2, 2, 2, 3]),
      lisn(r),
      target(r),
      prio(r),
      r.int(0, 0xffff_ffff),
    );
  }
  if (x < 38) return hc(H.GET_SOURCE_CONFIG, flags(r, [0]), lisn(r));
  if (x < 44) return hc(H.GET_QUEUE_INFO, flags(r, [0]), target(r), prio(r));
  if (x < 58) {
    const qs = r.chance(0.85) ? 12 : r.pick([0, 16, 21, 13, 11]);
    return hc(H.SET_QUEUE_CONFIG, flags(r, [1, 1, 0]), target(r), prio(r), qpage(r), qs);
  }
  if (x < 66) return hc(H.GET_QUEUE_CONFIG, flags(r, [0, 1]), target(r), prio(r));
  if (x < 88) {
    const off = r.chance(0.85)
      ? BigInt(r.pick(ESB_OFFS))
      : r.chance(0.5)
        ? BigInt(r.int(0, 0xffff))
        : val64(r);
    return hc(H.ESB, flags(r, [0, 0, 1]), lisn(r), off, val64(r));
  }
  if (x < 93) return hc(H.SYNC, flags(r, [0]), lisn(r));
  if (x < 95) return hc(H.RESET, BigInt(r.int(1, 3)));
  return hc(r.pick([H.SET_OS_REPORTING_LINE, H.GET_OS_REPORTING_LINE]), val64(r), val64(r), val64(r));
}

/** A plausible guest set-up: three queues, every claimed source routed and unmasked, CPPR open. */
export function preamble(r: Rng): Op[] {
  const ops: Op[] = [];
  const prios = [1, 3, 5];
  prios.forEach((p, i) => {
    ops.push(...queue(p, eqPage(i)));
  });
  for (const l of CLAIMED) if (r.chance(0.8)) ops.push(...route(l, r.pick(prios), r.int(0, 0xffff_ffff)));
  ops.push(cppr(0xff));
  return ops;
}

/** `n` operations (after a preamble) from `seed`. */
export function randomSequence(seed: number, n: number): Op[] {
  const r = new Rng(seed);
  const ops = preamble(r);
  while (ops.length < n) {
    const x = r.int(0, 999);
    if (x < 330) ops.push(esbOp(r, false));
    else if (x < 380) ops.push(esbOp(r, true));
    else if (x < 640) ops.push(timaOp(r));
    else if (x < 960) ops.push(hcallOp(r));
    else if (x < 975)
      ops.push({ k: 'memset', addr: eqPage(r.int(0, 7)), len: 0x1000, val: r.pick([0, 0xff]) });
    else if (x < 997) ops.push({ k: 'pic' });
    else ops.push({ k: 'reset' });
  }
  ops.push({ k: 'pic' });
  return ops;
}
