/**
 * A VMM process on a {@link createHost} host, driving KVM only through syscalls: a VM with guest
 * RAM in a memslot, the XIVE device with its ESB and TIMA mappings exposed to the guest as
 * memslots (RAM-device regions, as QEMU does), vCPUs connected to the device.
 */

import { expect } from 'vitest';
import { createHost, type Host, type HostConfig } from '../../../../src/host/host.ts';
import {
  encodeKvmCreateDevice,
  KVM_CREATE_DEVICE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_XIVE,
} from '../../../../src/host/kvm/uapi.ts';
import type { KvmExitHandler, KvmVcpuRun } from '../../../../src/host/kvm/vcpu.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '../../../../src/host/mm/constants.ts';
import type { HostProcess } from '../../../../src/host/syscalls.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { SPAPR_XIVE_NR_IRQS } from '../../../../src/vmm/spapr-irq.ts';
import { SPAPR_XIVE_TM_BASE, SPAPR_XIVE_VC_BASE } from '../../../../src/vmm/spapr-xive-layout.ts';
import { connect, setEq, setRegion } from './kvm-ioctls.ts';

export const P = 0x1_0000;
/** Guest RAM size (slot 0 at gpa 0). */
export const RAM_SIZE = 0x400_0000;
/** QEMU sPAPR: ESB pages and TIMA. */
export const ESB_GPA = SPAPR_XIVE_VC_BASE;
export const TIMA_GPA = SPAPR_XIVE_TM_BASE;
/** Sources the ESB mapping covers. */
export const NR_IRQS = SPAPR_XIVE_NR_IRQS;
/** Guest physical address of vCPU i's priority-6 EQ. */
export const eqGpa = (i: number): number => 0x10_0000 + i * P;

export interface VmEnv {
  host: Host;
  vmm: HostProcess;
  kvmFd: number;
  vmFd: number;
  devFd: number;
  ram: number;
  esb: number;
  tima: number;
  vcpuFds: number[];
  out: Word64;
}

export interface VmEnvOptions extends HostConfig {
  vcpus?: number;
  /** Create the XIVE device and map it (default true). */
  xive?: boolean;
  /** Configure each vCPU's priority-6 EQ (default true). */
  eqs?: boolean;
}

/** The full set-up; every step checked. */
export function makeVm(opts: VmEnvOptions = {}): VmEnv {
  const host = createHost(opts);
  const vmm = host.spawn();
  const kvmFd = vmm.open('/dev/kvm');
  const vmFd = vmm.ioctl(kvmFd, KVM_CREATE_VM, 0);
  expect(vmFd).toBeGreaterThanOrEqual(0);
  const ram = vmm.mmap(0, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  expect(ram).toBeGreaterThan(0);
  expect(setRegion(vmm, vmFd, 0, 0, RAM_SIZE, ram)).toBe(0);
  const vcpuFds: number[] = [];
  for (let i = 0; i < (opts.vcpus ?? 1); i++) {
    const fd = vmm.ioctl(vmFd, KVM_CREATE_VCPU, i);
    expect(fd).toBeGreaterThanOrEqual(0);
    vcpuFds.push(fd);
  }
  let devFd = -1;
  let esb = -1;
  let tima = -1;
  if (opts.xive ?? true) {
    const cd = vmm.userStruct(encodeKvmCreateDevice({ type: KVM_DEV_TYPE_XIVE }));
    expect(vmm.ioctl(vmFd, KVM_CREATE_DEVICE, cd)).toBe(0);
    devFd = vmm.getU32(cd + 4);
    tima = vmm.mmap(0, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, devFd, 0);
    esb = vmm.mmap(0, 2 * NR_IRQS * P, PROT_READ | PROT_WRITE, MAP_SHARED, devFd, 4 * P);
    expect(tima).toBeGreaterThan(0);
    expect(esb).toBeGreaterThan(0);
    expect(setRegion(vmm, vmFd, 1, ESB_GPA, 2 * NR_IRQS * P, esb)).toBe(0);
    expect(setRegion(vmm, vmFd, 2, TIMA_GPA, 4 * P, tima)).toBe(0);
    vcpuFds.forEach((fd, i) => {
      expect(connect(vmm, fd, devFd, i)).toBe(0);
      if (opts.eqs ?? true) expect(setEq(vmm, devFd, i, 6, { qshift: 16, qaddr: eqGpa(i) })).toBe(0);
    });
  }
  return { host, vmm, kvmFd, vmFd, devFd, ram, esb, tima, vcpuFds, out: new Word64() };
}

/** Exit handler that records exits; MMIO loads read `mmioValue`. */
export class RecordingExits implements KvmExitHandler {
  readonly mmios: { gpa: number; size: number; write: boolean; hi: number; lo: number }[] = [];
  readonly hcalls: { nr: number; args: bigint[] }[] = [];
  readonly failures: { errno: number; gpa: number }[] = [];
  mmioValue = 0x1234_5678;
  hcallRet = 0;
  onHcall: ((nr: number) => void) | null = null;
  onMmio: ((gpa: number) => void) | null = null;
  mmio(gpa: number, size: 1 | 2 | 4 | 8, isWrite: boolean, data: Word64): void {
    if (!isWrite) data.set(0, this.mmioValue);
    this.mmios.push({ gpa, size, write: isWrite, hi: data.hi, lo: data.lo });
    this.onMmio?.(gpa);
  }
  paprHcall(nr: number, args: readonly bigint[], out: bigint[]): number {
    this.hcalls.push({ nr, args: [...args] });
    this.onHcall?.(nr);
    out[0] = 0x77n;
    return this.hcallRet;
  }
  runFailed(errno: number, gpa: number): void {
    this.failures.push({ errno, gpa });
  }
}

export function run(e: VmEnv, i = 0, exits: KvmExitHandler = new RecordingExits()): KvmVcpuRun {
  const r = e.vmm.kvmRun(e.vcpuFds[i]!, exits);
  if (typeof r === 'number') throw new Error(`kvmRun: ${r}`);
  return r;
}

/** Guest ESB page addresses of guest irq `irq`. */
export const trigGpa = (irq: number): number => ESB_GPA + 2 * irq * P;
export const mgmtGpa = (irq: number): number => ESB_GPA + (2 * irq + 1) * P;
/** Guest TIMA OS page. */
export const TIMA_OS_GPA = TIMA_GPA + 2 * P;
