/**
 * The two PQ primitives every XIVE event state buffer runs (source ESBs, END ESn/ESe).
 *
 * Both are pure: they take a PQ value (0..3) and return the new PQ in bits 1:0 with bit 2
 * ({@link XIVE_ESB_FORWARD}) set when the event must be forwarded. No allocation, no state.
 */

import * as regs from './regs.ts';

// Module-local copies of the imported constants and helpers the hot paths use: V8 reads an
// imported binding through its module cell (a load and a hole check) at every use, while a
// module-local const folds to an immediate in optimised code.
const { XIVE_ESB_OFF, XIVE_ESB_PENDING, XIVE_ESB_QUEUED, XIVE_ESB_RESET } = regs;

/** Bit 2 of a primitive's result: forward the event (notify). */
export const XIVE_ESB_FORWARD = 0x4;

/**
 * Trigger: 00 → 10 forward; 10, 11 → 11 (coalesced); 01 → 01 (off, dropped).
 *
 * @remarks Models hw/intc/xive.c:xive_esb_trigger().
 */
export function xiveEsbTrigger(pq: number): number {
  switch (pq & 3) {
    case XIVE_ESB_RESET:
      return XIVE_ESB_PENDING | XIVE_ESB_FORWARD;
    case XIVE_ESB_PENDING:
    case XIVE_ESB_QUEUED:
      return XIVE_ESB_QUEUED;
    default:
      return XIVE_ESB_OFF;
  }
}

/**
 * EOI: 10 → 00; 11 → 10 forward (the queued event is re-notified); 00 and 01 unchanged.
 *
 * @remarks Models hw/intc/xive.c:xive_esb_eoi().
 */
export function xiveEsbEoi(pq: number): number {
  switch (pq & 3) {
    case XIVE_ESB_RESET:
    case XIVE_ESB_PENDING:
      return XIVE_ESB_RESET;
    case XIVE_ESB_QUEUED:
      return XIVE_ESB_PENDING | XIVE_ESB_FORWARD;
    default:
      return XIVE_ESB_OFF;
  }
}
