import { assert, describe, expect, it } from 'vitest';
import { EBADF, EBUSY, EEXIST, EFAULT, EINVAL, ENXIO, EPERM } from '../../../../src/host/errno.ts';
import {
  encodeKvmDirtyLog,
  encodeKvmEnableCap,
  encodeKvmOneReg,
  encodeVpState,
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_XIVE_GRP_CTRL,
  KVM_DEV_XIVE_NR_SERVERS,
  KVM_ENABLE_CAP,
  KVM_GET_DIRTY_LOG,
  KVM_GET_ONE_REG,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_REG_PPC,
  KVM_REG_PPC_VP_STATE,
  KVM_REG_SIZE_U64,
  KVM_RUN,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_ONE_REG,
} from '../../../../src/host/kvm/uapi.ts';
import type { KvmVcpuRun } from '../../../../src/host/kvm/vcpu.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../../../src/host/mm/constants.ts';
import type { HostProcess } from '../../../../src/host/syscalls.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { Trace } from '../../../../src/sim/trace.ts';
import { TRACE_KVM } from '../../../../src/sim/trace-sink.ts';
import {
  eqGpa,
  makeVm,
  mgmtGpa,
  NR_IRQS,
  P,
  RAM_SIZE,
  RecordingExits,
  run,
  TIMA_OS_GPA,
  trigGpa,
  type VmEnv,
} from './host-env.ts';
import { configSource, connect, createSource, devAttr, setRegion } from './kvm-ioctls.ts';

function enableCap(p: HostProcess, vcpu: number, cap: number, args: (number | bigint)[], flags = 0): number {
  return p.ioctl(vcpu, KVM_ENABLE_CAP, p.userStruct(encodeKvmEnableCap({ cap, flags, args })));
}

/** GET_ONE_REG(VP_STATE): [rc, word0 hi, word0 lo, word1]. */
function getVp(e: VmEnv, i = 0): [number, number, number, bigint] {
  const p = e.vmm;
  const val = p.userAlloc(16);
  const rc = p.ioctl(
    e.vcpuFds[i]!,
    KVM_GET_ONE_REG,
    p.userStruct(encodeKvmOneReg({ id: KVM_REG_PPC_VP_STATE, addr: val })),
  );
  return [rc, p.getU32(val), p.getU32(val + 4), p.getU64(val + 8)];
}

function setVp(e: VmEnv, hi: number, lo: number, i = 0): number {
  const p = e.vmm;
  const val = p.userStruct(encodeVpState(hi, lo));
  return p.ioctl(
    e.vcpuFds[i]!,
    KVM_SET_ONE_REG,
    p.userStruct(encodeKvmOneReg({ id: KVM_REG_PPC_VP_STATE, addr: val })),
  );
}

describe('KVM_ENABLE_CAP(KVM_CAP_PPC_IRQ_XIVE) on a vCPU (book3s_xive_native.c:kvmppc_xive_native_connect_vcpu())', () => {
  it('flags ≠ 0 or another cap → -EINVAL; bad fd → -EBADF; not a KVM device → -EPERM', () => {
    const e = makeVm({ vcpus: 0 });
    const p = e.vmm;
    const v = p.ioctl(e.vmFd, KVM_CREATE_VCPU, 0);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [e.devFd, 0], 1)).toBe(-EINVAL);
    expect(enableCap(p, v, 168, [e.devFd, 0])).toBe(-EINVAL);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [77, 0])).toBe(-EBADF);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [-1, 0])).toBe(-EBADF);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [p.eventfd(), 0])).toBe(-EPERM);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [e.vmFd, 0])).toBe(-EPERM);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [e.kvmFd, 0])).toBe(-EPERM);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [e.devFd, 0])).toBe(0);
    expect(enableCap(p, v, KVM_CAP_PPC_IRQ_XIVE, [e.devFd, 0])).toBe(-EBUSY);
  });

  it('a device of another VM → -EPERM; a used server → -EEXIST; server ≥ nr_servers → -EINVAL', () => {
    const e = makeVm({ vcpus: 1 });
    const p = e.vmm;
    const vm2 = p.ioctl(e.kvmFd, KVM_CREATE_VM, 0);
    const v2 = p.ioctl(vm2, KVM_CREATE_VCPU, 0);
    expect(connect(p, v2, e.devFd, 0)).toBe(-EPERM);
    const v1 = p.ioctl(e.vmFd, KVM_CREATE_VCPU, 1);
    expect(connect(p, v1, e.devFd, 0)).toBe(-EEXIST);
    // 2048 packs onto 0 (kvmppc_pack_vcpu_id gives up on a too-large id): VP in use.
    expect(connect(p, v1, e.devFd, 2048)).toBe(-EEXIST);
    expect(connect(p, v1, e.devFd, 1)).toBe(0);
    // With NR_SERVERS = 2 set before the first connect, server 2 is out of range.
    const f = makeVm({ vcpus: 0 });
    const a = f.vmm.userAlloc(4);
    f.vmm.putU32(a, 2);
    expect(
      devAttr(f.vmm, f.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS, a),
    ).toBe(0);
    const w = f.vmm.ioctl(f.vmFd, KVM_CREATE_VCPU, 0);
    expect(connect(f.vmm, w, f.devFd, 2)).toBe(-EINVAL);
    expect(connect(f.vmm, w, f.devFd, 1)).toBe(0);
  });

  it('NR_SERVERS after a connect → -EBUSY (the VP block is allocated)', () => {
    const e = makeVm({ vcpus: 1 });
    const a = e.vmm.userAlloc(4);
    e.vmm.putU32(a, 4);
    expect(
      devAttr(e.vmm, e.devFd, KVM_SET_DEVICE_ATTR, KVM_DEV_XIVE_GRP_CTRL, KVM_DEV_XIVE_NR_SERVERS, a),
    ).toBe(-EBUSY);
  });
});

describe('KVM_GET/SET_ONE_REG(KVM_REG_PPC_VP_STATE) (book3s_xive_native.c:kvmppc_xive_native_get_vp() / set_vp())', () => {
  it('-ENXIO without a XIVE context; other ids -EINVAL; > 16-byte ids -EINVAL', () => {
    const e = makeVm({ vcpus: 0 });
    const p = e.vmm;
    const v = p.ioctl(e.vmFd, KVM_CREATE_VCPU, 0);
    e.vcpuFds.push(v);
    expect(getVp(e)[0]).toBe(-ENXIO);
    expect(setVp(e, 0, 0)).toBe(-ENXIO);
    const val = p.userAlloc(32);
    const other = p.userStruct(encodeKvmOneReg({ id: KVM_REG_PPC | KVM_REG_SIZE_U64 | 0x1n, addr: val }));
    expect(p.ioctl(v, KVM_GET_ONE_REG, other)).toBe(-EINVAL);
    const u256 = p.userStruct(encodeKvmOneReg({ id: KVM_REG_PPC | 0x0050_0000_0000_008dn, addr: val }));
    expect(p.ioctl(v, KVM_GET_ONE_REG, u256)).toBe(-EINVAL);
  });

  it('connect gives w01 = 0x00000000_ff000000 (CPPR 0, ACK_CNT 0xff); word 1 is 0', () => {
    const e = makeVm();
    expect(getVp(e)).toEqual([0, 0, 0xff00_0000, 0n]);
  });

  it('the guest’s CPPR write is captured at pull and restored at push; SET while in KVM_RUN → -EBUSY', () => {
    const e = makeVm();
    const g = run(e);
    g.store(TIMA_OS_GPA + 0x11, 1, 0, 0x05);
    expect(getVp(e)[0]).toBe(-EBUSY);
    expect(setVp(e, 0, 0)).toBe(-EBUSY);
    g.stop();
    // Pulled back: NSR 0, CPPR 5, IPB 0, LSMFB 0 | ACK_CNT 0xff, INC 0, AGE 0, PIPR 0xff.
    expect(getVp(e)).toEqual([0, 0x0005_0000, 0xff00_00ff, 0n]);
    expect(setVp(e, 0x0006_0000, 0xff00_0000)).toBe(0);
    const g2 = run(e);
    const w = new Word64();
    g2.load(TIMA_OS_GPA + 0x10, 8, w);
    expect(w.hi >>> 16).toBe(0x0006);
  });

  it('an event for a vCPU out of KVM_RUN goes to the NVT backlog, OR-ed into IPB on get', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 0x40)).toBe(0);
    expect(configSource(e.vmm, e.devFd, 0x40, 6, 0, 1)).toBe(0);
    const g = run(e);
    const w = new Word64();
    g.store(TIMA_OS_GPA + 0x11, 1, 0, 0xff);
    g.load(mgmtGpa(0x40) + 0xc00, 8, w);
    g.stop();
    const h = e.vmm;
    // The VMM itself stores to the trigger page through its ESB mapping.
    expect(h.store(e.esb + 2 * 0x40 * 0x1_0000, 8, 0, 0)).toBe(0);
    const [rc, hi] = getVp(e);
    expect(rc).toBe(0);
    expect((hi >>> 8) & 0xff).toBe(0x02); // IPB bit of priority 6
    const g2 = run(e);
    expect(g2.externalInterrupt).toBe(true);
  });
});

describe('KVM_RUN (kvmRun): push on entry, pull around exits', () => {
  it('push/pull counts: entry pushes; an MMIO or hcall exit pulls then pushes again; stop pulls', () => {
    const e = makeVm();
    const x = e.host.kvm.vms[0]!.devices[0]!.xive;
    const exits = new RecordingExits();
    const seen: boolean[] = [];
    exits.onHcall = () => seen.push(x.stats.pulls === x.stats.pushes, g.externalInterrupt);
    const g = run(e, 0, exits);
    expect([x.stats.pushes, x.stats.pulls]).toEqual([1, 0]);
    const w = new Word64();
    g.load(0x7000_0000, 4, w); // no memslot: MMIO exit
    expect(w.lo).toBe(0x1234_5678);
    expect([x.stats.pushes, x.stats.pulls]).toEqual([2, 1]);
    g.store(0x7000_0008, 8, 1, 2);
    expect(exits.mmios[1]).toEqual({ gpa: 0x7000_0008, size: 8, write: true, hi: 1, lo: 2 });
    const out: bigint[] = [];
    exits.hcallRet = -2;
    expect(g.hcall(0x3a8, [0n, 5n], out)).toBe(-2);
    expect(out[0]).toBe(0x77n);
    expect(exits.hcalls).toEqual([{ nr: 0x3a8, args: [0n, 5n] }]);
    expect(seen).toEqual([true, false]);
    const vm = e.host.kvm.vms[0]!;
    expect([vm.stats.mmioExits, vm.stats.hcallExits]).toEqual([2, 1]);
    g.stop();
    expect([x.stats.pushes, x.stats.pulls]).toEqual([4, 4]);
    expect(e.host.kvm.runningOn[0]).toBe(null);
  });

  it('vCPU ioctls are allowed inside an exit handler (context pulled)', () => {
    const e = makeVm();
    const exits = new RecordingExits();
    let inside: [number, number, number, bigint] | null = null;
    exits.onHcall = () => {
      inside = getVp(e);
    };
    const g = run(e, 0, exits);
    g.store(TIMA_OS_GPA + 0x11, 1, 0, 0x07);
    g.hcall(0x3d0, [0n], []);
    expect(inside).toEqual([0, 0x0007_0000, 0xff00_00ff, 0n]);
  });

  it('a busy preferred thread: the vCPU runs on the next free one; every thread busy → -EBUSY', () => {
    const e = makeVm({ nrCpus: 2, vcpus: 1 });
    const vm2 = e.vmm.ioctl(e.kvmFd, 0x2000_ae01, 0);
    const v2 = e.vmm.ioctl(vm2, KVM_CREATE_VCPU, 0);
    const v3 = e.vmm.ioctl(vm2, KVM_CREATE_VCPU, 1);
    run(e, 0);
    const r2 = e.vmm.kvmRun(v2, new RecordingExits());
    expect(typeof r2 === 'object' && r2.vcpu.hostCpu).toBe(1);
    expect(e.vmm.kvmRun(v3, new RecordingExits())).toBe(-EBUSY);
  });

  it('-EBUSY: a vCPU already in KVM_RUN, or a host thread already running another vCPU', () => {
    const e = makeVm({ nrCpus: 1, vcpus: 2 });
    const g = run(e, 0);
    expect(e.vmm.kvmRun(e.vcpuFds[0]!, new RecordingExits())).toBe(-EBUSY);
    expect(e.vmm.kvmRun(e.vcpuFds[1]!, new RecordingExits())).toBe(-EBUSY);
    g.stop();
    expect(typeof e.vmm.kvmRun(e.vcpuFds[1]!, new RecordingExits())).toBe('object');
    expect(e.vmm.ioctl(e.vcpuFds[0]!, KVM_RUN, 0)).toBe(-EINVAL);
  });

  it('KVM_RUN from inside an exit handler of a live run → -EBUSY (the vCPU mutex; the model cannot sleep)', () => {
    const e = makeVm({ nrCpus: 2 });
    const exits = new RecordingExits();
    let again = 0 as KvmVcpuRun | number;
    exits.onHcall = () => {
      again = e.vmm.kvmRun(e.vcpuFds[0]!, new RecordingExits());
    };
    const g = run(e, 0, exits);
    g.hcall(0x3d0, [0n], []);
    expect(again).toBe(-EBUSY);
    expect(e.host.kvm.runningOn).toEqual([g, null]);
  });

  it('a run stopped in its exit handler, then KVM_RUN again from that handler: the new run owns the vCPU — the stale run never clears it, so runningOn lists the vCPU once and a third KVM_RUN is refused', () => {
    const e = makeVm({ nrCpus: 2 });
    const x = e.host.kvm.vms[0]!.devices[0]!.xive;
    const vcpu = e.host.kvm.vms[0]!.vcpus[0]!;
    const exits = new RecordingExits();
    let g2 = 0 as KvmVcpuRun | number;
    exits.onHcall = () => {
      g.stop();
      g2 = e.vmm.kvmRun(e.vcpuFds[0]!, new RecordingExits());
    };
    const g = run(e, 0, exits);
    g.hcall(0x3d0, [0n], []);
    assert(typeof g2 !== 'number', `kvmRun: ${g2}`);
    expect(vcpu.run).toBe(g2);
    expect(g.running).toBe(false);
    expect(e.host.kvm.runningOn).toEqual([g2, null]);
    expect(e.vmm.kvmRun(e.vcpuFds[0]!, new RecordingExits())).toBe(-EBUSY);
    expect(e.host.kvm.runningOn).toEqual([g2, null]);
    expect([x.stats.pushes, x.stats.pulls]).toEqual([2, 1]);
    g.stop(); // stale: a no-op
    expect(vcpu.run).toBe(g2);
    g2.stop();
    expect(vcpu.run).toBe(null);
    expect(e.host.kvm.runningOn).toEqual([null, null]);
    expect([x.stats.pushes, x.stats.pulls]).toEqual([2, 2]);
  });

  it('a page-crossing load or store whose first byte’s exit handler stops the run is abandoned, as the hardware leaves the instruction: no throw, no further byte, the load target unwritten', () => {
    const e = makeVm();
    const exits = new RecordingExits();
    const w = new Word64();
    for (const store of [false, true]) {
      const g = run(e, 0, exits);
      exits.onMmio = () => g.stop();
      const gpa = 0x7000_0000 + P - 4; // no memslot on either page: every byte exits
      const before = exits.mmios.length;
      w.set(0xdead, 0xbeef);
      if (store) expect(() => g.store(gpa, 8, 0x0102_0304, 0x0506_0708)).not.toThrow();
      else expect(() => g.load(gpa, 8, w)).not.toThrow();
      expect(exits.mmios.slice(before).map((m) => [m.gpa, m.size, m.write])).toEqual([[gpa, 1, store]]);
      expect([w.hi, w.lo]).toEqual([0xdead, 0xbeef]);
      expect(g.running).toBe(false);
    }
  });

  it('a page-crossing store whose exit handler closes the VM’s device (release stops every run) is abandoned, never throws', () => {
    const e = makeVm();
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    exits.onMmio = () => {
      expect(e.vmm.munmap(e.esb, 2 * NR_IRQS * P)).toBe(0);
      expect(e.vmm.munmap(e.tima, 4 * P)).toBe(0);
      expect(e.vmm.close(e.devFd)).toBe(0);
    };
    expect(() => g.store(0x7000_0000 + P - 2, 4, 0, 0x0102_0304)).not.toThrow();
    expect(exits.mmios.map((m) => m.gpa)).toEqual([0x7000_0000 + P - 2]);
    expect(g.running).toBe(false);
    expect(e.host.kvm.vms[0]!.devices).toEqual([]);
  });

  it('each vCPU sees its own context through the one TIMA page (cpu = its host thread)', () => {
    const e = makeVm({ vcpus: 2 });
    for (const i of [0, 1]) {
      expect(createSource(e.vmm, e.devFd, 0x100 + i)).toBe(0);
      expect(configSource(e.vmm, e.devFd, 0x100 + i, 6, i, 0x10 + i)).toBe(0);
    }
    const g0 = run(e, 0);
    const g1 = run(e, 1);
    const w = new Word64();
    g0.store(TIMA_OS_GPA + 0x11, 1, 0, 0xff);
    g1.store(TIMA_OS_GPA + 0x11, 1, 0, 0xff);
    g0.load(mgmtGpa(0x101) + 0xc00, 8, w);
    g0.store(trigGpa(0x101), 8, 0, 0); // vCPU 0 triggers vCPU 1's source
    expect(g0.externalInterrupt).toBe(false);
    expect(g1.externalInterrupt).toBe(true);
    g1.load(eqGpa(1), 4, w);
    expect(w.lo >>> 0).toBe(0x8000_0011);
    g1.load(TIMA_OS_GPA + 0x810, 2, w); // TM_SPC_ACK_OS_REG
    expect(w.lo).toBe(0x8006);
    expect(g1.externalInterrupt).toBe(false);
  });

  it('an access whose host fault fails (ESB page of an invalid source: SIGBUS) fails KVM_RUN with -EFAULT', () => {
    const e = makeVm();
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    const w = new Word64();
    g.load(mgmtGpa(0x55) + 0x800, 8, w);
    expect([w.hi >>> 0, w.lo >>> 0]).toEqual([0xffff_ffff, 0xffff_ffff]);
    expect(exits.failures).toEqual([{ errno: -14, gpa: mgmtGpa(0x55) + 0x800 }]);
    expect(g.lastError).toBe(-14);
    expect(e.host.kvm.vms[0]!.devices[0]!.xive.stats.sigbus).toBe(1);
  });
});

describe("the run's translation cache: every change of the partition-scoped tree is seen by the very next access", () => {
  /**
   * A run that wrote 0xdead_beef at gpa 0x2000 (the first store faults the entry in, the second
   * caches it for writes) and read it back.
   */
  function cached(): { e: VmEnv; g: KvmVcpuRun; exits: RecordingExits; w: Word64 } {
    const e = makeVm({ xive: false });
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    const w = new Word64();
    g.store(0x2000, 4, 0, 0xdead_beef);
    g.store(0x2000, 4, 0, 0xdead_beef);
    g.load(0x2000, 4, w);
    expect(w.lo).toBe(0xdead_beef);
    return { e, g, exits, w };
  }

  it('a zap (the VMM maps fresh memory over guest RAM): the next load reads the new page', () => {
    const { e, g, w } = cached();
    const rw = PROT_READ | PROT_WRITE;
    expect(e.vmm.mmap(e.ram, P, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)).toBe(e.ram);
    g.load(0x2000, 4, w);
    expect(w.lo).toBe(0);
    g.store(0x2000, 4, 0, 0x1234);
    expect(e.vmm.getU32(e.ram + 0x2000)).toBe(0x1234);
  });

  it('munmap of guest RAM: the next load fails (-EFAULT) instead of reading the freed frame', () => {
    const { e, g, exits, w } = cached();
    expect(e.vmm.munmap(e.ram, P)).toBe(0);
    g.load(0x2000, 4, w);
    expect([w.hi, w.lo]).toEqual([0xffff_ffff, 0xffff_ffff]);
    expect(exits.failures).toEqual([{ errno: -EFAULT, gpa: 0x2000 }]);
  });

  it('mprotect(PROT_READ): loads still hit, the next store fails (-EFAULT)', () => {
    const { e, g, exits, w } = cached();
    expect(e.vmm.mprotect(e.ram, P, PROT_READ)).toBe(0);
    g.load(0x2000, 4, w);
    expect(w.lo).toBe(0xdead_beef);
    g.store(0x2000, 4, 0, 1);
    expect(exits.failures).toEqual([{ errno: -EFAULT, gpa: 0x2000 }]);
    expect(e.vmm.getU32(e.ram + 0x2000)).toBe(0xdead_beef);
  });

  it('a passthrough bind zaps the irq’s ESB pages: the next guest GET reaches the device source', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 5)).toBe(0);
    const g = run(e, 0);
    const w = new Word64();
    g.load(mgmtGpa(5) + 0x800, 8, w);
    g.load(mgmtGpa(5) + 0x800, 8, w);
    expect(w.lo).toBe(1); // the IPI, PQ 01
    const hx = e.host.xive;
    const hw = hx.allocIrq();
    hx.requestIrq(hx.createMapping(hw), () => {}, 'vfio-msi');
    expect(e.host.kvm.vms[0]!.devices[0]!.xive.setMapped(5, hw)).toBe(0);
    g.load(mgmtGpa(5) + 0x800, 8, w);
    expect(w.lo).toBe(2); // the device source, PQ 10 after the host handed it over
  });

  it('memslot delete: the next load exits as MMIO', () => {
    const { e, g, exits, w } = cached();
    expect(setRegion(e.vmm, e.vmFd, 0, 0, 0, 0)).toBe(0);
    g.load(0x2000, 4, w);
    expect(w.lo).toBe(0x1234_5678);
    expect(exits.mmios).toEqual([{ gpa: 0x2000, size: 4, write: false, hi: 0, lo: 0x1234_5678 }]);
  });

  it('memslot move: the old gpa exits as MMIO, the new one reaches the same RAM', () => {
    const { e, g, exits, w } = cached();
    expect(setRegion(e.vmm, e.vmFd, 0, 0x1_0000_0000, RAM_SIZE, e.ram)).toBe(0);
    g.store(0x2000, 4, 0, 5);
    expect(exits.mmios).toEqual([{ gpa: 0x2000, size: 4, write: true, hi: 0, lo: 5 }]);
    g.load(0x1_0000_2000, 4, w);
    expect(w.lo).toBe(0xdead_beef);
  });

  it('dirty-log re-protection: the next store faults again and is logged', () => {
    const e = makeVm({ xive: false });
    const p = e.vmm;
    expect(setRegion(p, e.vmFd, 0, 0, RAM_SIZE, e.ram, KVM_MEM_LOG_DIRTY_PAGES)).toBe(0);
    const bm = p.userAlloc(1024 * 8);
    const log = p.userStruct(encodeKvmDirtyLog({ slot: 0, dirtyBitmap: bm }));
    const g = run(e, 0);
    g.store(0x2000, 4, 0, 1);
    g.store(0x2004, 4, 0, 1);
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, log)).toBe(0);
    expect(p.getBytes(bm, 1)[0]).toBe(1);
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, log)).toBe(0);
    expect(p.getBytes(bm, 1)[0]).toBe(0);
    g.store(0x2000, 4, 0, 2);
    expect(p.ioctl(e.vmFd, KVM_GET_DIRTY_LOG, log)).toBe(0);
    expect(p.getBytes(bm, 1)[0]).toBe(1);
  });

  it('a second vCPU sees the first one’s invalidation too; each caches its own translations', () => {
    const e = makeVm({ xive: false, vcpus: 2 });
    const g0 = run(e, 0);
    const g1 = run(e, 1);
    const w = new Word64();
    g0.store(0x2000, 4, 0, 7);
    g1.load(0x2000, 4, w);
    expect(w.lo).toBe(7);
    expect(e.vmm.munmap(e.ram, P)).toBe(0);
    expect(e.vmm.mmap(e.ram, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)).toBe(
      e.ram,
    );
    g1.load(0x2000, 4, w);
    expect(w.lo).toBe(0);
    g0.load(0x2000, 4, w);
    expect(w.lo).toBe(0);
  });
});

describe('trace', () => {
  it('KVM events: VM creation, memslots, MMIO and hcall exits, run failures', () => {
    const trace = new Trace(TRACE_KVM);
    const e = makeVm({ trace, xive: false });
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    const w = new Word64();
    g.load(0x7000_0000, 4, w);
    g.hcall(0x3a8, [0n], []);
    const kinds = trace.events().map((ev) => ev.kind);
    expect(kinds).toEqual([
      'kvm.vm.create',
      'kvm.memslot',
      'kvm.memslot.range',
      'kvm.exit.mmio',
      'kvm.exit.hcall',
    ]);
  });
});
