/**
 * Names of the shared objects the XIVE device's atomic steps read and write (AtomicStep
 * footprints; the memory manager's are in atomic-step.ts): two steps of different threads
 * conflict when they share one and one of them writes it. A lock is an object its acquire and
 * release both write.
 */

/** The source blocks and their `valid` bits (release frees them). */
export const XIVE_SOURCES = 'xive.sources';
/** `kvm->arch.xive`: set/clr_mapped find the device through it; release clears it. */
export const KVM_ARCH_XIVE = 'kvm.arch.xive';
/** `xive->mapping`: recorded at mmap, read by the zap, cleared by release. */
export const XIVE_MAPPING = 'xive.mapping';
/** The host irq mappings and their forwarding state (`irq_set_vcpu_affinity`). */
export const HOST_IRQS = 'host.irqs';
/** `xive->memory_lock` (the vfio-pci pattern; see `XiveNativeFlags.esbMemoryLock`). */
export const XIVE_MEMORY_LOCK = 'lock:xive->memory_lock';

/** `sb->lock` of source block `id`. */
export function sbLockObj(id: number): string {
  return `lock:sb${id}->lock`;
}

/** `pt_number` / `pt_data` of guest irq `irq`: what `kvmppc_xive_select_irq` reads. */
export function irqBackingObj(irq: number): string {
  return `girq${irq}.backing`;
}
