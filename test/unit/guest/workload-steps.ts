/** Steps the seeded guest workloads of the KVM-mode, migration and sPAPR boot tests share. */
import type { GuestKernel } from '../../../src/guest/kernel.ts';
import type { SpaprMachine } from '../../../src/vmm/spapr-machine.ts';

/**
 * The drivers' handlers clear their device's interrupt status: an LSI the workload asserted
 * (`level[device][pin]` set) drops on the machine `machine()` returns (the current one).
 */
export function dropLsisOnInterrupt(k: GuestKernel, level: Uint8Array[], machine: () => SpaprMachine): void {
  k.drivers.forEach((drv, di) => {
    drv.onInterrupt = (kind, pin) => {
      if (kind === 'lsi' && level[di]![pin]) {
        level[di]![pin] = 0;
        machine().devices[di]!.setLsi(pin, 0);
      }
    };
  });
}

/** The workloads' mask step: unmask a guest irq the workload holds masked, else mask and hold it. */
export function toggleMask(k: GuestKernel, held: Set<number>, girq: number): void {
  if (held.delete(girq)) k.enableIrq(girq);
  else {
    held.add(girq);
    k.disableIrq(girq);
  }
}

/**
 * Takes the pending interrupts of every CPU in `cpus`, round after round, until a round takes
 * none or `rounds` rounds have run: how many were taken, and whether the guest went quiet.
 */
export function takeUntilQuiet(
  k: GuestKernel,
  cpus: readonly number[],
  rounds: number,
): { taken: number; quiet: boolean } {
  let taken = 0;
  for (let r = 0; r < rounds; r++) {
    let any = 0;
    for (const c of cpus) any += k.takePendingInterrupts(c);
    taken += any;
    if (any === 0) return { taken, quiet: true };
  }
  return { taken, quiet: false };
}
