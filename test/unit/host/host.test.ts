import { readFileSync } from 'node:fs';
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
import { P9_TIMA_BASE } from '../../../src/hw/xive/p9-chip.ts';

/** The ts code block of README's "The host API" section. */
function readmeExample(): string {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const sec = readme.slice(readme.indexOf('## The host API'));
  const m = /```ts\n([\s\S]*?)```/.exec(sec);
  if (!m) throw new Error('README: no ts block in "The host API"');
  return m[1]!;
}

describe('the host API (README example)', () => {
  it('this test runs the README block verbatim', () => {
    const src = readFileSync(new URL(import.meta.url), 'utf8');
    const block = readmeExample()
      .split('\n')
      .map((l) => (l ? `    ${l}` : l))
      .join('\n');
    expect(src).toContain(block);
  });

  it('creates a VM with a XIVE device and maps its ESB pages', () => {
    // README begin
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
    // README end
    expect([kvm, vm, xive]).toEqual([0, 1, 2]);
    expect(esb).toBeGreaterThan(0);
    // No source 0 yet: the ESB fault handler raises SIGBUS (xive_native_esb_fault()).
    expect(vmm.load(esb + P + 0x800, 8, new Word64())).toBe(7);
  });
});

describe('createHost: one physical memory', () => {
  it('the mm’s frames are PhysMem RAM; the chip’s MMIO is reachable through the same pfns', () => {
    const host = createHost({ nrCpus: 4, ramFrames: 64 });
    expect(host.phys.ownerName(0)).toBe('host.ram');
    expect(host.mm.frames).toBe(host.frames);
    const p = host.spawn();
    const a = p.userAlloc(8);
    p.putU64(a, 0x0102_0304_0506_0708n);
    const pfn = p.proc.mm.pgtable.pfn(Math.floor(a / 0x1_0000));
    expect(host.phys.loadBe32(pfn * 0x1_0000 + (a % 0x1_0000))).toBe(0x0102_0304);
    const w = new Word64();
    host.frames.load(P9_TIMA_BASE / 0x1_0000 + 2, 0x10, 8, 0, w);
    expect(w.lo >>> 24).toBe(0xff); // QW1 word 1 of thread 0 (ACK_CNT byte), read through the frame
    expect(host.chip.nrCpus).toBe(4);
    expect(host.phbs).toHaveLength(1);
    expect(host.phbs[0]!.slots).toHaveLength(4);
  });

  it('RAM exhaustion: a fault with no frame left is an OOM kill (SIGKILL) for the process', () => {
    const host = createHost({ ramFrames: 2 });
    const p = host.spawn();
    const a = p.mmap(0, 4 * 0x1_0000, PROT_READ | PROT_WRITE, 0x22, -1, 0);
    expect(p.store(a, 8, 0, 1)).toBe(0);
    expect(p.store(a + 0x1_0000, 8, 0, 1)).toBe(0);
    expect(p.store(a + 0x2_0000, 8, 0, 1)).toBe(9);
  });
});
