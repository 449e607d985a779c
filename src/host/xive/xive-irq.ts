/**
 * The host kernel's generic `irq_set_vcpu_affinity()` and the XIVE irq_chip operations behind it
 * (arch/powerpc/sysdev/xive/common.c:xive_irq_set_vcpu_affinity()): the host side of passthrough,
 * with the `saved_p` / `stale_p` bookkeeping that keeps a host queue slot from being reused while
 * an event may still sit in it.
 *
 * `saved_p`: a host queue entry exists for the irq even if P is now clear (the host will EOI it);
 * `stale_p`: P is set but no queue entry exists (the EOI was skipped), so P must not be trusted.
 *
 * The KVM XIVE device (`host/kvm/xive.ts`) calls {@link HostXive.irqSetVcpuAffinity}
 * directly with a hardware irq; this module is the virq-level entry (`irq_set_vcpu_affinity(virq,
 * vcpu_info)`), with the same chip operation written out from common.c, plus
 * `xive_do_source_set_mask`, which the disable path uses when the irq has no host target (there
 * HostXive's version only stores PQ 01 and leaves saved_p / stale_p untouched).
 */

import {
  XIVE_ESB_SET_PQ_00,
  XIVE_ESB_SET_PQ_01,
  XIVE_ESB_SET_PQ_10,
  XIVE_ESB_SET_PQ_11,
  XIVE_ESB_VAL_P,
} from '../../hw/xive/regs.ts';
import { traceEvent } from '../../sim/trace-events.ts';
import { TRACE_KVM } from '../../sim/trace-sink.ts';
import { EINVAL } from '../errno.ts';
import { HOST_XIVE_PRIO, type HostXive, XIVE_INVALID_TARGET, type XiveIrqData } from './host-xive.ts';

/**
 * Mask (PQ 01, remembering a set P in `saved_p` unless P was stale) or unmask (PQ 10 while
 * `saved_p`, else PQ 00).
 *
 * @remarks Models arch/powerpc/sysdev/xive/common.c:xive_do_source_set_mask().
 */
export function xiveDoSourceSetMask(host: HostXive, xd: XiveIrqData, mask: boolean): void {
  if (mask) {
    const val = host.esbRead(xd, XIVE_ESB_SET_PQ_01);
    if (!xd.staleP && (val & XIVE_ESB_VAL_P) !== 0) xd.savedP = true;
    xd.staleP = false;
  } else if (xd.savedP) {
    host.esbRead(xd, XIVE_ESB_SET_PQ_10);
    xd.savedP = false;
  } else {
    host.esbRead(xd, XIVE_ESB_SET_PQ_00);
    xd.staleP = false;
  }
}

/**
 * The XIVE chip's `irq_set_vcpu_affinity` on host virq `virq`. `forward` (KVM passes a non-NULL
 * state): mark forwarded, PQ 10; unless P was stale, `saved_p = P`, `stale_p = !saved_p`; with a
 * host target and `saved_p`: PQ 11 + source sync (the host still owes an EOI). Back (`!forward`):
 * clear forwarded; no host target → mask; else sync, route back to the host CPU (EISN = virq) and
 * source-EOI unless `saved_p`. 0, −EINVAL for an unknown virq, or configure_irq's error.
 *
 * @remarks Models arch/powerpc/sysdev/xive/common.c:xive_irq_set_vcpu_affinity().
 */
export function xiveIrqSetVcpuAffinity(host: HostXive, virq: number, forward: boolean): number {
  const d = host.irq(virq);
  if (d === null) return -EINVAL;
  const xd = d.data;
  const hw = xd.hwIrq;
  if (host.trace.mask & TRACE_KVM)
    traceEvent(host.trace, 'xive.set_vcpu_affinity', { virq, hwIrq: hw, forward: +forward });
  if (forward) {
    d.forwarded = true;
    const pq = host.esbRead(xd, XIVE_ESB_SET_PQ_10);
    if (!xd.staleP) {
      xd.savedP = (pq & XIVE_ESB_VAL_P) !== 0;
      xd.staleP = !xd.savedP;
    }
    // An untargeted irq should also be masked at the source (the kernel WARNs on saved_p).
    if (xd.target === XIVE_INVALID_TARGET) {
      if (xd.savedP) host.trace.guestError(`xive: untargeted irq ${virq} forwarded with saved_p (WARN)`);
      return 0;
    }
    if (xd.savedP) {
      host.esbRead(xd, XIVE_ESB_SET_PQ_11);
      host.syncSource(hw);
    }
    return 0;
  }
  d.forwarded = false;
  if (xd.target === XIVE_INVALID_TARGET) {
    xiveDoSourceSetMask(host, xd, true);
    return 0;
  }
  host.syncSource(hw);
  const rc = host.configureIrq(hw, host.chip.hostVp(xd.target), HOST_XIVE_PRIO, virq);
  if (rc) return rc;
  if (!xd.savedP) host.sourceEoi(xd);
  return 0;
}

/**
 * `irq_set_vcpu_affinity(irq, vcpu_info)`: −EINVAL without a descriptor; the XIVE chip op
 * otherwise (every host irq of the model is on the XIVE chip, so −ENOSYS cannot happen).
 * `vcpuInfo` non-null forwards the irq to a vCPU, null takes it back.
 *
 * @remarks Models kernel/irq/manage.c:irq_set_vcpu_affinity().
 */
export function irqSetVcpuAffinity(host: HostXive, virq: number, vcpuInfo: unknown): number {
  if (host.irq(virq) === null) return -EINVAL;
  return xiveIrqSetVcpuAffinity(host, virq, vcpuInfo !== null && vcpuInfo !== undefined);
}

/** `irqd_is_forwarded_to_vcpu()`. */
export function irqdIsForwardedToVcpu(host: HostXive, virq: number): boolean {
  return host.irq(virq)?.forwarded ?? false;
}
