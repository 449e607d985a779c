/**
 * Device drivers of the guest: one per device-tree device. A driver maps its MSIs and INTx
 * lines on the XIVE domain, requests them (INTx shared, as PCI INTx lines are), and its handlers
 * record every invocation: per vector, per CPU.
 *
 * @remarks Models what a PCI driver's probe does with its interrupts (pci_alloc_irq_vectors →
 * irq_create_mapping, request_irq / free_irq) and a handler that acknowledges its device.
 */

import type { GuestDeviceInfo } from './platform.ts';

/** A device driver's view of its interrupts and the deliveries its handlers saw. */
export class DeviceDriver {
  readonly name: string;
  readonly info: GuestDeviceInfo;
  /** virq of each MSI vector (−1 until probed). */
  readonly msiVirqs: Int32Array;
  /** virq of each INTx pin (−1 until probed). */
  readonly lsiVirqs: Int32Array;
  /** Handler calls per MSI vector / INTx pin. */
  readonly msiCalls: Uint32Array;
  readonly lsiCalls: Uint32Array;
  /** Handler calls per CPU. */
  readonly cpuCalls: Uint32Array;
  /** All handler calls. */
  calls: number;
  probed: boolean;
  /** Called from every handler invocation (the device's "clear interrupt status" point). */
  onInterrupt: ((kind: 'msi' | 'lsi', vector: number, cpu: number) => void) | null;

  constructor(info: GuestDeviceInfo, nrCpus: number) {
    this.name = info.name;
    this.info = info;
    this.msiVirqs = new Int32Array(info.msis.length).fill(-1);
    this.lsiVirqs = new Int32Array(info.lsis.length).fill(-1);
    this.msiCalls = new Uint32Array(info.msis.length);
    this.lsiCalls = new Uint32Array(info.lsis.length);
    this.cpuCalls = new Uint32Array(nrCpus);
    this.calls = 0;
    this.probed = false;
    this.onInterrupt = null;
  }

  /** The handler of MSI vector `v`. */
  msiHandler(v: number): (irq: number, cpu: number) => number {
    return (_irq: number, cpu: number): number => {
      this.msiCalls[v]!++;
      this.cpuCalls[cpu]!++;
      this.calls++;
      this.onInterrupt?.('msi', v, cpu);
      return 1; // IRQ_HANDLED
    };
  }

  /** The (shared) handler of INTx pin `pin`. */
  lsiHandler(pin: number): (irq: number, cpu: number) => number {
    return (_irq: number, cpu: number): number => {
      this.lsiCalls[pin]!++;
      this.cpuCalls[cpu]!++;
      this.calls++;
      this.onInterrupt?.('lsi', pin, cpu);
      return 1;
    };
  }
}
