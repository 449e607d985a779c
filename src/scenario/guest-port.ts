/**
 * What the runner needs from the guest, in one narrow interface, and its implementation over
 * the Linux-like guest kernel (`src/guest`). Keeping the seam here means the runner and the
 * invariants do not change when the guest's own API grows.
 */

import { GuestKernel } from '../guest/kernel.ts';
import type { TraceSink } from '../hw/trace-sink.ts';
import type { SpaprMachine } from '../vmm/spapr-machine.ts';

/** One interrupt as the guest knows it. */
export interface GuestIrq {
  /** Linux virq. */
  readonly girq: number;
  /** Hardware number (LISN = EISN). */
  readonly lisn: number;
  readonly kind: 'ipi' | 'msi' | 'lsi';
  /** Device name, or `ipi`. */
  readonly device: string;
  /** MSI vector, INTx pin, or the CPU of an IPI. */
  readonly vector: number;
}

export interface GuestPort {
  /** Every interrupt the guest set up (IPIs first, then devices in order). */
  irqs(): readonly GuestIrq[];
  /** Called by the guest on every handler invocation (LISN, vCPU). */
  onDeliver: (lisn: number, cpu: number) => void;

  /** Take the external interrupt on `cpu` once (the arch's do_IRQ: fetch loop, handlers, EOIs). */
  handleInterrupt(cpu: number): void;
  isOnline(cpu: number): boolean;
  /** CPU hotplug; 0 or −errno. */
  cpuDown(cpu: number): number;
  cpuUp(cpu: number): number;
  disableIrq(girq: number): void;
  enableIrq(girq: number): void;
  /** 0 or −errno. */
  setAffinity(girq: number, cpu: number): number;
  sendIpi(from: number, to: number): void;
  isEnabled(girq: number): boolean;
  /** The vCPU the irq targets now, −1 for none. */
  target(girq: number): number;

  // Counters (counts of the guest's paths running).
  delivered(lisn: number): number;
  deferred(lisn: number): number;
  consumed(lisn: number): number;
  unknownEisns(): ReadonlyMap<number, number>;
  /** Entries the guest has read from (cpu, priority)'s queue. */
  queueRead(cpu: number, prio: number): number;
  queueCapacity(cpu: number, prio: number): number;
  cpuDelivered(cpu: number): number;
  cpuIpis(cpu: number): number;
  cpuEqEntries(cpu: number): number;
  cpuOfflines(cpu: number): number;
}

/** Boot the Linux-like guest kernel (`src/guest`) on `machine`'s vCPUs: CAS, XIVE, devices. */
export function bootGuest(machine: SpaprMachine, trace: TraceSink): GuestPort {
  const kernel = new GuestKernel(machine.cpus, machine.deviceTree(), trace);
  const rc = kernel.boot();
  if (rc !== 0) throw new Error(`guest boot failed: ${rc}`);
  const dev = kernel.startDevices();
  if (dev !== 0) throw new Error(`guest device probe failed: ${dev}`);
  return kernel;
}
