/**
 * The reference (option 0): `kernel_irqchip=off`. There is no KVM XIVE device; the VMM emulates
 * the controller and relays a passthrough function's MSIs to its emulated sources, so no page is
 * ever re-pointed and the guest sees QEMU's irq numbers. Every other design is compared with it
 * (I6). Its `accel` is `emulated`: the runners build the emulated machine, and it has no seams.
 *
 * @remarks Models QEMU's spapr XIVE in TCG-like emulation (hw/intc/spapr_xive.c) with vfio-pci
 * MSIs routed through the VMM (hw/vfio/pci.c without KVM irqfds).
 */

import type { Design } from './design.ts';

export const emulated: Design = {
  name: 'emulated',
  accel: 'emulated',
  option: 0,
  summary: 'the reference: kernel_irqchip=off, the VMM emulates XIVE and relays passthrough MSIs',
  xiveFlags: {},
  kernelSeam: () => null,
};
