import { describe, expect, it } from 'vitest';
import { createHost } from '../../../src/host/host.ts';
import {
  encodeKvmCreateDevice,
  KVM_API_VERSION,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
  KVM_GET_API_VERSION,
} from '../../../src/host/kvm/uapi.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../src/host/mm/constants.ts';
import { Word64 } from '../../../src/hw/mmio.ts';

describe('the host API (README example)', () => {
  it('creates a VM with a XIVE device and maps its ESB pages', () => {
    // --- README: The host API ---
    const host = createHost();
    const vmm = host.spawn();
    const kvm = vmm.open('/dev/kvm');
    expect(vmm.ioctl(kvm, KVM_GET_API_VERSION, 0)).toBe(KVM_API_VERSION);
    const vm = vmm.ioctl(kvm, KVM_CREATE_VM, 0);
    const cd = vmm.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    expect(vmm.ioctl(vm, KVM_CREATE_DEVICE, cd)).toBe(0);
    const xive = vmm.getU32(cd + 4); // struct kvm_create_device.fd
    const P = 0x1_0000;
    const esb = vmm.mmap(0, 2 * 4096 * P, PROT_READ | PROT_WRITE, MAP_SHARED, xive, 4 * P);
    // --- end ---
    expect(kvm).toBe(0);
    expect(vm).toBe(1);
    expect(xive).toBe(2);
    expect(esb).toBeGreaterThan(0);
    // No source 0 yet: the ESB fault handler raises SIGBUS (kernel.md §4.3).
    expect(vmm.load(esb + P + 0x800, 8, new Word64())).toBe(7);
  });
});
