/**
 * The trace contract, defined at the bottom of the stack so every layer can emit into it; the
 * ring buffer that implements it lives in `sim/trace.ts`.
 *
 * Emitters check `sink.mask & CATEGORY` before doing any work, so a disabled category costs one
 * load and one AND (the v86 `LOG_*` idea).
 */

import type { TraceKind } from './trace-events.ts';

/** Guest misuse of hardware (QEMU's `-d guest_errors`). */
export const TRACE_GUEST_ERROR = 0x1;
/** ESB / PQ transitions. */
export const TRACE_ESB = 0x2;
/** Router: EAS, END, enqueue, presenter. */
export const TRACE_ROUTER = 0x4;
/** Thread context / TIMA. */
export const TRACE_TIMA = 0x8;
/** Hypercalls. */
export const TRACE_HCALL = 0x10;
/** Host memory manager: mmap, fault, zap. */
export const TRACE_MM = 0x20;
/** KVM. */
export const TRACE_KVM = 0x40;
/** Guest driver. */
export const TRACE_GUEST = 0x80;
/** VMM (memory regions, machine). */
export const TRACE_VMM = 0x100;
/** Everything. */
export const TRACE_ALL = 0xffff;

export interface TraceSink {
  /** Enabled categories. */
  mask: number;
  /** A structured event: `kind` is a short stable name (`esb.trigger`), args are numbers. */
  emit(cat: number, kind: TraceKind, a0: number, a1: number, a2: number, a3: number): void;
  /** A human-readable guest-error line, worded like QEMU's where QEMU has one. */
  guestError(msg: string): void;
}

/** A sink that records nothing. */
export const NULL_TRACE: TraceSink = {
  mask: 0,
  emit() {},
  guestError() {},
};
