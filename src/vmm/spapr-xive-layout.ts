/**
 * The sPAPR XIVE controller's guest-visible layout: where its ESB and TIMA pages sit, its one
 * block, its ESB geometry. Its own file so that the hcalls and the controller both import it
 * without importing each other.
 *
 * @remarks Models the constants of QEMU include/hw/ppc/spapr_xive.h and hw/intc/spapr_xive.c
 * (`SPAPR_XIVE_VC_BASE`, `SPAPR_XIVE_TM_BASE`, `SPAPR_XIVE_BLOCK_ID`, `SPAPR_XIVE_NVT_BASE`).
 */

import { TM_SHIFT } from '../hw/xive/regs.ts';

/** Source ESB pages (`vc-base`). */
export const SPAPR_XIVE_VC_BASE = 0x0006_0100_0000_0000;
/** TIMA: HW page +0, HV +0x10000, OS +0x20000, USER +0x30000 (`tm-base`). */
export const SPAPR_XIVE_TM_BASE = 0x0006_0302_0318_0000;
/** NVT index of vCPU 0; never exposed to the guest. */
export const SPAPR_XIVE_NVT_BASE = 0x400;
/** The single XIVE block of the machine. */
export const SPAPR_XIVE_BLOCK_ID = 0;
/** The source ESB geometry on sPAPR: two 64 KiB pages per source, as KVM. */
export const SPAPR_XIVE_ESB_SHIFT = 17;

/** Guest physical address of the EOI/management page (the second 64 KiB page) of `lisn`. */
export function spaprEoiPageGpa(lisn: number): number {
  return SPAPR_XIVE_VC_BASE + (2 * lisn + 1) * 2 ** (SPAPR_XIVE_ESB_SHIFT - 1);
}
/** END ESB pages: `1 << 16` per page, an even/odd pair per END. */
export const SPAPR_XIVE_END_ESB_SHIFT = 16;
/** Size of the TIMA region: 4 pages. */
export const SPAPR_XIVE_TM_SIZE = 4 * 2 ** TM_SHIFT;
