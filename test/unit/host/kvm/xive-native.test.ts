import { describe, expect, it } from 'vitest';
import { type AtomicStep, driveSteps } from '../../../../src/host/atomic-step.ts';
import {
  E2BIG,
  EBUSY,
  EDEADLK,
  EEXIST,
  EFAULT,
  EINVAL,
  EIO,
  ENODEV,
  ENOENT,
  ENOSPC,
  ENXIO,
  EPERM,
} from '../../../../src/host/errno.ts';
import {
  KvmXiveNative,
  kvmppcXiveNativeCreate,
  XIVE_FAULT_HANG,
} from '../../../../src/host/kvm/xive-native.ts';
import { XIVE_NATIVE_MAINLINE } from '../../../../src/host/kvm/xive-native-flags.ts';
import {
  KVM_CAP_PPC_IRQ_XIVE,
  KVM_DEV_TYPE_XIVE,
  KVM_DEV_XIVE_EQ_SYNC,
  KVM_DEV_XIVE_GRP_CTRL,
  KVM_DEV_XIVE_GRP_EQ_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE,
  KVM_DEV_XIVE_GRP_SOURCE_CONFIG,
  KVM_DEV_XIVE_GRP_SOURCE_SYNC,
  KVM_DEV_XIVE_NR_SERVERS,
  KVM_DEV_XIVE_RESET,
  KVM_MAX_VCPU_IDS,
  KVM_MAX_VCPUS,
  KVM_REG_PPC_VP_STATE,
  KVM_XIVE_ESB_PAGE_OFFSET,
  KVM_XIVE_TIMA_PAGE_OFFSET,
  KVMPPC_IRQ_XIVE,
  KVMPPC_XIVE_NR_IRQS,
  kvmXiveEqId,
  kvmXiveSourceConfig,
} from '../../../../src/host/kvm/xive-native-uapi.ts';
import type { XiveVcpuArch } from '../../../../src/host/kvm/xive-state.ts';
import { VM_FAULT_SIGBUS } from '../../../../src/host/mm/constants.ts';
import { Word64 } from '../../../../src/hw/mmio.ts';
import { P9_IPI_ESB_BASE, P9_TIMA_BASE, XiveIrqConfig } from '../../../../src/hw/xive/p9-chip.ts';
import { XIVE_ESB_OFF } from '../../../../src/hw/xive/regs.ts';
import { GUEST_HPA, makeEnv, makeVcpu, TestMapping, type XiveEnv } from './xive-env.ts';

const P = 0x1_0000; // user buffer
const EQP = 0x1_0100; // user struct kvm_ppc_xive_eq
const SIGBUS = -VM_FAULT_SIGBUS;
const IPI_PFN = P9_IPI_ESB_BASE / 0x1_0000;

/** Connect vCPUs with servers `servers` and configure their prio-6 queue at gpa 0x10000·(i+1). */
function connect(e: XiveEnv, servers: number[], eqs = true): XiveVcpuArch[] {
  return servers.map((s, i) => {
    const v = makeVcpu(e.kvm);
    expect(e.dev.connectVcpu(v, s)).toBe(0);
    if (eqs) {
      e.um.putEq(EQP, { flags: 1, qshift: 16, qaddr: BigInt(0x1_0000 * (i + 1)), qtoggle: 1, qindex: 0 });
      expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(s, 6), EQP, e.um)).toBe(0);
    }
    return v;
  });
}

function source(e: XiveEnv, irq: number, val = 0n): number {
  return e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE, BigInt(irq), e.um.putU64(P, val), e.um);
}

function sourceConfig(
  e: XiveEnv,
  irq: number,
  prio: number,
  server: number,
  masked: boolean,
  eisn: number,
): number {
  e.um.putU64(P, kvmXiveSourceConfig(prio, server, masked, eisn));
  return e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, BigInt(irq), P, e.um);
}

function easOf(e: XiveEnv, hw: number): XiveIrqConfig {
  const c = new XiveIrqConfig();
  e.chip.getIrqConfig(hw, c);
  return c;
}

describe('uapi constants (arch/powerpc/include/uapi/asm/kvm.h)', () => {
  it('keeps the C values', () => {
    expect(KVM_DEV_TYPE_XIVE).toBe(9);
    expect(KVM_CAP_PPC_IRQ_XIVE).toBe(169);
    expect(KVM_REG_PPC_VP_STATE).toBe(0x1040_0000_0000_008dn);
    expect([KVM_XIVE_TIMA_PAGE_OFFSET, KVM_XIVE_ESB_PAGE_OFFSET]).toEqual([0, 4]);
    expect(kvmXiveSourceConfig(6, 3, true, 0x1234)).toBe(0x2468_0000_0000n | 0x1_0000_0000n | 0x18n | 6n);
    expect(kvmXiveEqId(5, 6)).toBe(0x2en);
  });
});

describe('creation and has_attr (kvmppc_xive_native_create(), kvmppc_xive_native_has_attr())', () => {
  it('one device per VM (-EEXIST), the struct is reused after release', () => {
    const e = makeEnv();
    const opts = { kvm: e.kvm, lpid: 1, host: e.host, guestMem: e.gm, wake: () => {}, trace: e.trace };
    expect(kvmppcXiveNativeCreate(e.arch, opts)).toBe(-EEXIST);
    e.dev.release();
    expect(e.arch.xive).toBe(null);
    const again = kvmppcXiveNativeCreate(e.arch, opts);
    expect(again).toBe(e.dev);
    expect(again instanceof KvmXiveNative && again.vpBase).toBe(0xffff_ffff);
  });

  it('has_attr: CTRL 1–3, SOURCE*/SYNC below 0x100000, EQ_CONFIG any, else -ENXIO', () => {
    const { dev } = makeEnv();
    for (const a of [1n, 2n, 3n]) expect(dev.hasAttr(KVM_DEV_XIVE_GRP_CTRL, a)).toBe(0);
    expect(dev.hasAttr(KVM_DEV_XIVE_GRP_CTRL, 4n)).toBe(-ENXIO);
    for (const g of [KVM_DEV_XIVE_GRP_SOURCE, KVM_DEV_XIVE_GRP_SOURCE_CONFIG, KVM_DEV_XIVE_GRP_SOURCE_SYNC]) {
      expect(dev.hasAttr(g, 0xf_ffffn)).toBe(0);
      expect(dev.hasAttr(g, 0x10_0000n)).toBe(-ENXIO);
    }
    expect(dev.hasAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, 0xffff_ffff_ffffn)).toBe(0);
    expect(dev.hasAttr(6, 0n)).toBe(-ENXIO);
  });

  it('unknown CTRL attr / group → -ENXIO; get_attr only EQ_CONFIG', () => {
    const { dev, um } = makeEnv();
    expect(dev.setAttr(KVM_DEV_XIVE_GRP_CTRL, 9n, P, um)).toBe(-ENXIO);
    expect(dev.setAttr(7, 0n, P, um)).toBe(-ENXIO);
    expect(dev.getAttr(KVM_DEV_XIVE_GRP_SOURCE, 0n, P, um)).toBe(-ENXIO);
  });
});

describe('NR_SERVERS (kvmppc_xive_set_nr_servers())', () => {
  it('-EFAULT, 0 / > KVM_MAX_VCPU_IDS → -EINVAL, clamp to KVM_MAX_VCPUS, -EBUSY after a connect', () => {
    const e = makeEnv();
    const set = (n: number): number => e.dev.setAttr(KVM_DEV_XIVE_GRP_CTRL, 3n, e.um.putU32(P, n), e.um);
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_CTRL, BigInt(KVM_DEV_XIVE_NR_SERVERS), 8, e.um)).toBe(-EFAULT);
    expect(set(0)).toBe(-EINVAL);
    expect(set(KVM_MAX_VCPU_IDS + 1)).toBe(-EINVAL);
    expect(set(KVM_MAX_VCPU_IDS)).toBe(0);
    expect(e.dev.nrServers).toBe(KVM_MAX_VCPUS);
    expect(set(4)).toBe(0);
    expect(e.dev.nrServers).toBe(4);
    connect(e, [0], false);
    expect(e.dev.vpBase).toBe(0x800);
    expect(set(8)).toBe(-EBUSY);
  });
});

describe('vCPU connect (kvmppc_xive_native_connect_vcpu())', () => {
  it('checks in order: -EPERM other VM, -EBUSY connected, -EINVAL id ≥ nr_servers, -EEXIST VP in use', () => {
    const e = makeEnv();
    e.dev.setAttr(KVM_DEV_XIVE_GRP_CTRL, 3n, e.um.putU32(P, 2), e.um);
    expect(e.dev.connectVcpu(makeVcpu({}), 0)).toBe(-EPERM);
    const v = makeVcpu(e.kvm);
    expect(e.dev.connectVcpu(v, 2)).toBe(-EINVAL);
    expect(e.dev.vpBase).toBe(0xffff_ffff);
    expect(e.dev.connectVcpu(v, 1)).toBe(0);
    expect(e.dev.connectVcpu(v, 1)).toBe(-EBUSY);
    expect(e.dev.connectVcpu(makeVcpu(e.kvm), 1)).toBe(-EEXIST);
    expect(v.irqType).toBe(KVMPPC_IRQ_XIVE);
    const xc = v.xiveVcpu!;
    expect(xc.vpId).toBe(e.dev.vpBase + 1);
    expect(Array.from(xc.savedW01)).toEqual([0, 0xff00_0000]);
    expect(xc.camWord).toBe((0x8000_0000 | xc.vpId) >>> 0);
    expect(e.chip.isVpEnabled(xc.vpId)).toBe(true);
  });

  it('-ENOSPC when OPAL has no VP block left (second VM on a small chip)', () => {
    const e = makeEnv({ nrVps: 0x1000 });
    connect(e, [0], false);
    const arch2 = { xive: null, xiveNative: null };
    const kvm2 = {};
    const d2 = kvmppcXiveNativeCreate(arch2, {
      kvm: kvm2,
      lpid: 2,
      host: e.host,
      guestMem: e.gm,
      wake: () => {},
      trace: e.trace,
    }) as KvmXiveNative;
    const v = makeVcpu(kvm2);
    expect(d2.connectVcpu(v, 0)).toBe(-ENOSPC);
    expect(v.irqType).toBe(0);
  });
});

describe('GRP_SOURCE (kvmppc_xive_native_set_source())', () => {
  it('-E2BIG out of range (also a u64 above 2^63), PQ 01 on (re-)init, same IPI kept', () => {
    const e = makeEnv();
    expect(source(e, KVMPPC_XIVE_NR_IRQS)).toBe(-E2BIG);
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE, 0x8000_0000_0000_0005n, P, e.um)).toBe(-E2BIG);
    expect(source(e, 0x10)).toBe(0);
    const st = e.dev.irqState(0x10)!;
    expect(st.valid).toBe(true);
    expect(e.host.pqOf(st.ipiData)).toBe(XIVE_ESB_OFF);
    e.host.esbRead(st.ipiData, 0xc00);
    expect(e.host.pqOf(st.ipiData)).toBe(0);
    const ipi = st.ipiNumber;
    expect(source(e, 0x10, 3n)).toBe(0);
    expect(e.host.pqOf(st.ipiData)).toBe(XIVE_ESB_OFF);
    expect(st.ipiNumber).toBe(ipi);
    expect([st.lsi, st.asserted]).toEqual([true, true]);
    expect(source(e, 0x10, 0n)).toBe(0);
    expect(st.lsi).toBe(true);
    expect(e.dev.srcCount).toBe(1);
  });

  it('creates the block before the user read: -EFAULT leaves an empty block', () => {
    const e = makeEnv();
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE, 0x2005n, 8, e.um)).toBe(-EFAULT);
    expect(e.dev.findSource(0x2005)).not.toBe(null);
    expect(e.dev.irqState(0x2005)!.valid).toBe(false);
  });

  it('-ENXIO when no HW IPI is left', () => {
    const e = makeEnv({ nrIpis: 2 });
    expect(source(e, 0)).toBe(0);
    expect(source(e, 1)).toBe(0);
    expect(source(e, 2)).toBe(-ENXIO);
  });
});

describe('GRP_SOURCE_CONFIG (kvmppc_xive_native_set_source_config())', () => {
  it('-ENOENT without a block, -EINVAL for an uninitialised source of an existing block', () => {
    const e = makeEnv();
    connect(e, [0]);
    expect(sourceConfig(e, 0x400, 6, 0, false, 1)).toBe(-ENOENT);
    source(e, 0x400);
    expect(sourceConfig(e, 0x401, 6, 0, false, 1)).toBe(-EINVAL);
    expect(sourceConfig(e, 0x7ff, 6, 0, false, 1)).toBe(-EINVAL);
    expect(sourceConfig(e, 0x800, 6, 0, false, 1)).toBe(-ENOENT);
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE_CONFIG, 0x400n, 8, e.um)).toBe(-EFAULT);
  });

  it('priority 7 → -EINVAL, 6 accepted; unknown server → -EINVAL', () => {
    const e = makeEnv();
    connect(e, [0]);
    source(e, 5);
    expect(sourceConfig(e, 5, 7, 0, false, 1)).toBe(-EINVAL);
    expect(sourceConfig(e, 5, 6, 9, false, 1)).toBe(-EINVAL);
    expect(sourceConfig(e, 5, 6, 0, false, 0x1234)).toBe(0);
    const st = e.dev.irqState(5)!;
    const c = easOf(e, st.ipiNumber);
    expect([c.vp, c.prio, c.lirq]).toEqual([e.dev.vpBase, 6, 0x1234]);
  });

  it('the mask bit is honoured and an unchanged config is a no-op', () => {
    const e = makeEnv();
    connect(e, [0]);
    source(e, 5);
    expect(sourceConfig(e, 5, 6, 0, false, 0x10)).toBe(0);
    const n = e.chip.stats.irqConfigs;
    expect(sourceConfig(e, 5, 6, 0, true, 0x10)).toBe(0);
    expect(e.chip.stats.irqConfigs).toBe(n);
    expect(sourceConfig(e, 5, 6, 0, true, 0x11)).toBe(0);
    const st = e.dev.irqState(5)!;
    expect([st.actPriority, st.actServer, st.eisn]).toEqual([0xff, 0, 0]);
    expect(easOf(e, st.ipiNumber).prio).toBe(0xff);
  });

  it('silently retargets to another vCPU, -EBUSY when no queue fits anywhere', () => {
    const e = makeEnv();
    const [, v1] = connect(e, [0, 1]);
    // vCPU 0 has no prio-5 queue; vCPU 1 gets one.
    e.um.putEq(EQP, { flags: 1, qshift: 16, qaddr: 0x5_0000n, qtoggle: 1, qindex: 0 });
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(1, 5), EQP, e.um)).toBe(0);
    source(e, 5);
    expect(sourceConfig(e, 5, 5, 0, false, 0x55)).toBe(0);
    const st = e.dev.irqState(5)!;
    expect(st.actServer).toBe(1);
    expect(easOf(e, st.ipiNumber).vp).toBe(v1!.xiveVcpu!.vpId);
    source(e, 6);
    expect(sourceConfig(e, 6, 4, 0, false, 0x66)).toBe(-EBUSY);
  });
});

describe('GRP_EQ_CONFIG (kvmppc_xive_native_set_queue_config() / get_queue_config())', () => {
  it('set: -EFAULT before -ENOENT, prio 7, flags exactly 1, only qshift 16, alignment, page checks', () => {
    const e = makeEnv();
    const set = (server: number, prio: number, eq: Parameters<typeof e.um.putEq>[1]): number =>
      e.dev.setAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(server, prio), e.um.putEq(EQP, eq), e.um);
    const ok = { flags: 1, qshift: 16, qaddr: 0x2_0000n, qtoggle: 1, qindex: 0 };
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(3, 6), 8, e.um)).toBe(-EFAULT);
    expect(set(3, 6, ok)).toBe(-ENOENT);
    connect(e, [3], false);
    expect(set(3, 7, ok)).toBe(-EINVAL);
    expect(set(3, 6, { ...ok, flags: 3 })).toBe(-EINVAL);
    expect(set(3, 6, { ...ok, flags: 0 })).toBe(-EINVAL);
    for (const qshift of [12, 21, 24, 17]) expect(set(3, 6, { ...ok, qshift })).toBe(-EINVAL);
    expect(set(3, 6, { ...ok, qaddr: 0x2_1000n })).toBe(-EINVAL);
    expect(set(3, 6, { ...ok, qaddr: 0x1000_0000n })).toBe(-EINVAL);
    e.gm.pageSize = 0x1000;
    expect(set(3, 6, ok)).toBe(-EINVAL);
    expect(e.gm.pins.size).toBe(0);
    e.gm.pageSize = 0x1_0000;
    expect(set(3, 6, ok)).toBe(0);
    expect(e.gm.pins.get(GUEST_HPA + 0x2_0000)).toBe(1);
    // Reset with flags 0 succeeds and unpins (S20).
    expect(set(3, 6, { flags: 0, qshift: 0, qaddr: 0n, qtoggle: 0, qindex: 0 })).toBe(0);
    expect(e.gm.pins.size).toBe(0);
  });

  it('get: unconfigured → 0 and nothing written; configured → flags 1, toggle 1 index n', () => {
    const e = makeEnv();
    connect(e, [0], false);
    e.um.buf.fill(0xaa, 0x100, 0x140);
    expect(e.dev.getAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 6), EQP, e.um)).toBe(0);
    expect(e.um.buf.subarray(0x100, 0x140).every((b) => b === 0xaa)).toBe(true);
    expect(e.dev.getAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(1, 6), EQP, e.um)).toBe(-ENOENT);
    expect(e.dev.getAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 7), EQP, e.um)).toBe(-EINVAL);
    e.um.putEq(EQP, { flags: 1, qshift: 16, qaddr: 0x3_0000n, qtoggle: 0, qindex: 0x3ffe });
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 6), EQP, e.um)).toBe(0);
    expect(e.dev.getAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 6), EQP, e.um)).toBe(0);
    const v = new DataView(e.um.buf.buffer, 0x100);
    expect([v.getUint32(0), v.getUint32(4), v.getBigUint64(8), v.getUint32(16), v.getUint32(20)]).toEqual([
      1,
      16,
      0x3_0000n,
      0,
      0x3ffe,
    ]);
    expect(e.dev.getAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 6), 8, e.um)).toBe(-EFAULT);
  });
});

describe('SOURCE_SYNC, RESET, EQ_SYNC (kvmppc_xive_native_sync_source(), kvmppc_xive_reset(), kvmppc_xive_native_eq_sync())', () => {
  it('SOURCE_SYNC: -ENOENT / -EINVAL / 0 (one source sync)', () => {
    const e = makeEnv();
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE_SYNC, 3n, 0, e.um)).toBe(-ENOENT);
    source(e, 2);
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE_SYNC, 3n, 0, e.um)).toBe(-EINVAL);
    const n = e.chip.stats.syncs;
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_SOURCE_SYNC, 2n, 0, e.um)).toBe(0);
    expect(e.chip.stats.syncs).toBe(n + 1);
  });

  it('RESET masks targeted sources (PQ 01, EAS masked), keeps them valid, skips masked ones', () => {
    const e = makeEnv();
    connect(e, [0]);
    source(e, 1);
    source(e, 2);
    sourceConfig(e, 1, 6, 0, false, 0x11);
    const s1 = e.dev.irqState(1)!;
    const s2 = e.dev.irqState(2)!;
    e.host.esbRead(s1.ipiData, 0xc00);
    e.host.esbRead(s2.ipiData, 0xe00); // masked source with PQ 10: untouched by RESET
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_CTRL, BigInt(KVM_DEV_XIVE_RESET), 0, e.um)).toBe(0);
    // Step 1 (disable_vcpu_interrupts) already masked it, so step 2 skips it: the EISN survives.
    expect([s1.valid, s1.actPriority, s1.eisn]).toEqual([true, 0xff, 0x11]);
    expect(e.host.pqOf(s1.ipiData)).toBe(1);
    expect(e.host.pqOf(s2.ipiData)).toBe(2);
    expect(easOf(e, s1.ipiNumber).prio).toBe(0xff);
    expect(e.gm.pins.size).toBe(0);
  });

  it('EQ_SYNC syncs source and queue of targeted sources and dirties one gfn per queue', () => {
    const e = makeEnv();
    connect(e, [0, 1]);
    source(e, 1);
    source(e, 2);
    sourceConfig(e, 1, 6, 0, false, 0x11);
    const n = e.chip.stats.syncs;
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_CTRL, BigInt(KVM_DEV_XIVE_EQ_SYNC), 0, e.um)).toBe(0);
    expect(e.chip.stats.syncs).toBe(n + 2);
    expect(e.gm.dirty).toEqual([0x1_0000, 0x2_0000]);
  });
});

describe('VP_STATE (kvmppc_xive_native_get_vp() / set_vp())', () => {
  it('-EPERM before connect; raw w01 with CPPR 0; IPB backup OR-ed on get; -EBUSY while pushed', () => {
    const e = makeEnv();
    const v = makeVcpu(e.kvm);
    const out = new Word64();
    expect(e.dev.getVp(v, out)).toBe(-EPERM);
    expect(e.dev.setVp(v, 0, 0)).toBe(-EPERM);
    connect(e, [0]);
    const [v0] = [e.dev.findServer(0)!];
    expect(e.dev.getVp(v0, out)).toBe(0);
    expect([out.hi, out.lo]).toEqual([0, 0xff00_0000]);
    expect(e.dev.setVp(v0, 0x00ff_0000, 0xff00_0000)).toBe(0);
    e.dev.pushVcpu(v0, 1);
    expect(e.dev.setVp(v0, 0, 0)).toBe(-EBUSY);
    e.dev.pullVcpu(v0);
    expect(e.dev.getVp(v0, out)).toBe(0);
    // NSR 0, CPPR 0xff, IPB 0, LSMFB 0 | ACK 0xff, INC 0, AGE 0, PIPR 0xff.
    expect([out.hi, out.lo]).toEqual([0x00ff_0000, 0xff00_00ff]);
  });
});

describe('mmap and faults (kvmppc_xive_native_mmap(), xive_native_esb_fault(); S1, S2, S4, S19)', () => {
  it('mmapCheck: TIMA at 0 ≤ 4 pages, ESB at 4 ≤ 2^21 pages, any other offset -EINVAL', () => {
    const { dev } = makeEnv();
    expect(dev.mmapCheck(0, 4)).toBe(0);
    expect(dev.mmapCheck(0, 5)).toBe(-EINVAL);
    expect(dev.mmapCheck(4, 2 ** 21)).toBe(1);
    expect(dev.mmapCheck(4, 2 ** 21 + 1)).toBe(-EINVAL);
    for (const off of [1, 2, 3, 5, 6]) expect(dev.mmapCheck(off, 1)).toBe(-EINVAL);
  });

  it('TIMA fault: only the OS page (2) maps, to the physical TIMA OS page; 0, 1, 3, 4 SIGBUS', () => {
    const { dev } = makeEnv();
    expect(dev.timaFault(0, 2)).toBe((P9_TIMA_BASE + 0x2_0000) / 0x1_0000);
    for (const p of [0, 1, 3, 4]) expect(dev.timaFault(0, p)).toBe(SIGBUS);
  });

  it('ESB fault: SIGBUS without block or for an invalid source; even → trigger, odd → EOI page', () => {
    const e = makeEnv();
    expect(e.dev.esbFault(4, 4 + 2 * 7)).toBe(SIGBUS);
    source(e, 7);
    expect(e.dev.esbFault(4, 4 + 2 * 8)).toBe(SIGBUS);
    const k = e.dev.irqState(7)!.ipiNumber - 0x10;
    expect(e.dev.esbFault(4, 4 + 2 * 7)).toBe(IPI_PFN + 2 * k);
    expect(e.dev.esbFault(4, 5 + 2 * 7)).toBe(IPI_PFN + 2 * k + 1);
  });

  it('S10: a split VMA resolves relative to its own pgoff (mainline) or to the ESB base (fixed)', () => {
    for (const rel of [true, false]) {
      const e = makeEnv({ flags: { faultUsesVmaRelativePgoff: rel } });
      source(e, 0);
      source(e, 1);
      const k0 = e.dev.irqState(0)!.ipiNumber - 0x10;
      const k1 = e.dev.irqState(1)!.ipiNumber - 0x10;
      // Tail VMA after munmapping the first 2 pages: vm_pgoff 6; girq 1's even page is file page 6.
      expect(e.dev.esbFault(6, 6)).toBe(IPI_PFN + 2 * (rel ? k0 : k1));
    }
  });
});

describe('reset_mapped (kvmppc_xive_native_reset_mapped(); S3, S8)', () => {
  it('zaps exactly file pages 4+2n and 5+2n (or 2n with the pre-fix bug); -EINVAL above NR_IRQS', () => {
    for (const bug of [false, true]) {
      const e = makeEnv({ flags: { zapOmitsEsbOffset: bug } });
      expect(e.dev.resetMapped(1)).toBe(0); // no mapping yet (S8): nothing
      const m = new TestMapping();
      e.dev.mapping = m;
      for (const n of [0, 1, 2, KVMPPC_XIVE_NR_IRQS - 1]) expect(e.dev.resetMapped(n)).toBe(0);
      expect(e.dev.resetMapped(KVMPPC_XIVE_NR_IRQS)).toBe(-EINVAL);
      const b = bug ? 0 : 4;
      expect(m.zaps).toEqual([
        [b, 2],
        [b + 2, 2],
        [b + 4, 2],
        [b + 2 * (KVMPPC_XIVE_NR_IRQS - 1), 2],
      ]);
    }
  });
});

/** A device interrupt the host driver (VFIO) has requested; returns its hw irq. */
function addDevice(e: XiveEnv): number {
  // A HW IPI stands in for the device's MSI: any HW source behaves the same for the kernel.
  const hw = e.host.allocIrq();
  expect(e.host.requestIrq(e.host.createMapping(hw), () => {}, 'vfio-msi')).toBe(0);
  return hw;
}

describe('set_mapped / clr_mapped (book3s_xive.c; S11, S13)', () => {
  it('mainline: IPI off, zap, EAS with state->number, no EOI; clr leaves the IPI at PQ 10', () => {
    const e = makeEnv();
    connect(e, [0]);
    source(e, 5);
    sourceConfig(e, 5, 6, 0, false, 0x1234);
    const st = e.dev.irqState(5)!;
    e.host.esbRead(st.ipiData, 0xc00); // guest enabled it
    const dev = addDevice(e);
    const m = new TestMapping();
    e.dev.mapping = m;
    expect(e.dev.setMapped(5, dev)).toBe(0);
    expect(st.ptNumber).toBe(dev);
    expect(e.host.pqOf(st.ipiData)).toBe(1);
    expect(e.host.pqOf(st.ptData!)).toBe(2); // host affinity: PQ 10, no EOI
    const c = easOf(e, dev);
    expect([c.vp, c.prio, c.lirq]).toEqual([e.dev.vpBase, 6, 5]);
    expect(m.zaps).toEqual([[14, 2]]);
    // The ESB pages now resolve to the device's (S4, S14 transparent switch).
    expect(e.dev.esbFault(4, 14)).toBe(IPI_PFN + 2 * (dev - 0x10));
    expect(e.dev.clrMapped(5, dev)).toBe(0);
    expect(st.ptNumber).toBe(0);
    expect(e.host.pqOf(st.ipiData)).toBe(2);
    expect(easOf(e, st.ipiNumber).lirq).toBe(5);
    // Back to the host: routed to its host CPU at priority 7 and EOI'd (PQ 00).
    const h = easOf(e, dev);
    expect([h.vp, h.prio]).toEqual([e.chip.hostVp(e.host.irqOfHw(dev)!.data.target), 7]);
    expect(e.host.pqOf(e.host.irqOfHw(dev)!.data)).toBe(0);
    expect(m.zaps).toEqual([
      [14, 2],
      [14, 2],
    ]);
  });

  it('fixed variant: EISN kept, guest PQ carried over (00 → device EOI’d to 00, back to IPI 00)', () => {
    const e = makeEnv({ flags: { nativeSetMappedUsesXicsPq: false, setMappedEisnIsStateNumber: false } });
    connect(e, [0]);
    source(e, 5);
    sourceConfig(e, 5, 6, 0, false, 0x1234);
    const st = e.dev.irqState(5)!;
    e.host.esbRead(st.ipiData, 0xc00);
    const dev = addDevice(e);
    expect(e.dev.setMapped(5, dev)).toBe(0);
    expect(easOf(e, dev).lirq).toBe(0x1234);
    expect(e.host.pqOf(st.ptData!)).toBe(0);
    expect(e.dev.clrMapped(5, dev)).toBe(0);
    expect(e.host.pqOf(st.ipiData)).toBe(0);
  });

  it('errors: -EINVAL without a source block (nothing zapped), -ENODEV after release (S13, S14)', () => {
    const e = makeEnv();
    const m = new TestMapping();
    e.dev.mapping = m;
    expect(e.dev.setMapped(0x999, 0x11)).toBe(-EINVAL);
    expect(m.zaps).toEqual([]);
    source(e, 1);
    e.dev.release();
    expect(e.dev.mapping).toBe(null);
    expect(e.dev.setMapped(1, 0x11)).toBe(-ENODEV);
    expect(e.dev.clrMapped(1, 0x11)).toBe(-ENODEV);
  });

  it('clr_mapped error keeps the block lock (mainline): later users of the block hang', () => {
    for (const keep of [true, false]) {
      const e = makeEnv({ flags: { clrMappedErrorKeepsLock: keep } });
      connect(e, [0]);
      source(e, 5);
      const dev = addDevice(e);
      expect(e.dev.setMapped(5, dev)).toBe(0);
      e.host.affinityHook = (_hw, fwd) => (fwd ? 0 : -EIO);
      expect(e.dev.clrMapped(5, dev)).toBe(-EIO);
      expect(sourceConfig(e, 5, 6, 0, false, 1)).toBe(keep ? -EDEADLK : 0);
      expect(e.dev.esbFault(4, 14)).toBe(keep ? XIVE_FAULT_HANG : IPI_PFN + 2 * (dev - 0x10));
    }
  });

  it('the sequential ESB fault (the plain twin the build derives) and its step generator driven to the end agree', () => {
    // Two identical devices: one faults through esbFault (the twin), the other drives the generator.
    const setup = () => {
      const e = makeEnv({ flags: { clrMappedErrorKeepsLock: true } });
      connect(e, [0]);
      source(e, 5);
      source(e, 6);
      const dev = addDevice(e);
      expect(e.dev.setMapped(6, dev)).toBe(0);
      return { e, dev };
    };
    const twin = setup();
    const gen = setup();
    const byGenerator = (vmaPgoff: number, pgoff: number): number => {
      const g = gen.e.dev.esbFaultSteps(vmaPgoff, pgoff, null);
      return driveSteps(g, () => XIVE_FAULT_HANG);
    };
    // Trigger and EOI pages of an IPI, of a passthrough irq, of no source, of a bad offset.
    const faults = [14, 15, 16, 17, 40, 2].map((pgoff) => [4, pgoff] as const);
    const run = (fault: (v: number, p: number) => number) => faults.map(([v, p]) => fault(v, p));
    const expected = [
      IPI_PFN + 2 * (twin.e.dev.irqState(5)!.ipiNumber - 0x10),
      IPI_PFN + 2 * (twin.e.dev.irqState(5)!.ipiNumber - 0x10) + 1,
    ];
    const results = run((v, p) => twin.e.dev.esbFault(v, p));
    expect(results.slice(0, 2)).toEqual(expected);
    expect(results[4]).toBe(SIGBUS);
    expect(results).toEqual(run(byGenerator));
    // The block lock kept by a failed clr_mapped: both hang on it.
    for (const { e, dev } of [twin, gen]) {
      e.host.affinityHook = (_hw, fwd) => (fwd ? 0 : -EIO);
      expect(e.dev.clrMapped(6, dev)).toBe(-EIO);
    }
    expect([twin.e.dev.esbFault(4, 14), byGenerator(4, 14)]).toEqual([XIVE_FAULT_HANG, XIVE_FAULT_HANG]);
    expect({ ...twin.e.dev.stats, hangs: 0 }).toEqual({ ...gen.e.dev.stats, hangs: 0 });
    expect(twin.e.dev.stats.hangs).toBe(1);
  });

  it('S12: a fault that selected the IPI before the bind published inserts the stale IPI page', () => {
    const e = makeEnv();
    source(e, 5);
    const ipiPfn = IPI_PFN + 2 * (e.dev.irqState(5)!.ipiNumber - 0x10);
    const dev = addDevice(e);
    const f = e.dev.esbFaultSteps(4, 14, null);
    expect((f.next().value as AtomicStep).label).toBe(
      'esb_fault(girq 5): find the source, kvmppc_xive_select_irq',
    );
    // The selection ran (the IPI); the locked page read is next.
    expect((f.next().value as AtomicStep).label).toBe(
      'arch_spin_lock(sb0->lock), read the trigger page, arch_spin_unlock',
    );
    expect(e.dev.setMapped(5, dev)).toBe(0);
    expect(f.next()).toEqual({ done: true, value: ipiPfn });
  });

  it('S12 fixed: a fault under the lock waits for the bind and gets the device page', () => {
    const e = makeEnv({ flags: { faultSelectsOutsideLock: false } });
    source(e, 5);
    const dev = addDevice(e);
    const b = e.dev.setMappedSteps(5, dev);
    b.next();
    expect((b.next().value as AtomicStep).label).toBe(
      'xive_lock_and_mask: arch_spin_lock(sb0->lock), IPI SET_PQ_01',
    );
    expect((b.next().value as AtomicStep).label).toMatch(/^reset_mapped\(girq 5\)/); // the block lock is held
    const f = e.dev.esbFaultSteps(4, 14, null);
    f.next();
    const read = f.next().value as AtomicStep;
    expect(read.label).toBe(
      'arch_spin_lock(sb0->lock), kvmppc_xive_select_irq, read the trigger page, arch_spin_unlock',
    );
    expect(read.canRun()).toBe(false);
    let r = b.next();
    while (!r.done) r = b.next();
    expect(r.value).toBe(0);
    expect(read.canRun()).toBe(true);
    expect(f.next()).toEqual({ done: true, value: IPI_PFN + 2 * (dev - 0x10) });
  });

  it('bindZapsBeforePublish=false publishes before zapping', () => {
    const e = makeEnv({ flags: { bindZapsBeforePublish: false } });
    source(e, 5);
    const steps = [...e.dev.setMappedSteps(5, addDevice(e))].map((st) => st.label.replace(/[ (:].*$/, ''));
    expect(steps).toEqual(['set_mapped', 'xive_lock_and_mask', 'publish', 'reset_mapped', 'route']);
    expect(XIVE_NATIVE_MAINLINE.bindZapsBeforePublish).toBe(true);
  });
});

describe('end to end: guest-like EQ, source, trigger through the host ESB page', () => {
  function boot(): { e: XiveEnv; v: XiveVcpuArch; trig: number; eoi: number } {
    const e = makeEnv();
    const v = makeVcpu(e.kvm);
    expect(e.dev.connectVcpu(v, 0)).toBe(0);
    e.um.putEq(EQP, { flags: 1, qshift: 16, qaddr: 0x1_0000n, qtoggle: 1, qindex: 0 });
    expect(e.dev.setAttr(KVM_DEV_XIVE_GRP_EQ_CONFIG, kvmXiveEqId(0, 6), EQP, e.um)).toBe(0);
    expect(source(e, 5)).toBe(0);
    expect(sourceConfig(e, 5, 6, 0, false, 0x1234)).toBe(0);
    const trig = e.dev.esbFault(4, 4 + 10) * 0x1_0000;
    const eoi = e.dev.esbFault(4, 5 + 10) * 0x1_0000;
    return { e, v, trig, eoi };
  }

  it('the EQ gets 0x80000000|eisn and the pushed vCPU’s OS line rises on its physical thread', () => {
    const { e, v, trig, eoi } = boot();
    e.dev.pushVcpu(v, 1);
    const os = e.dev.timaFault(0, 2) * 0x1_0000;
    e.mem.store(os + 0x11, 1, 0, 0xff, 1); // guest CPPR 0xff
    e.mem.load(eoi + 0xc00, 8, e.out); // guest unmask: PQ 01 → 00
    expect(e.out.lo).toBe(1);
    e.mem.store(trig, 8, 0, 0);
    expect(e.mem.loadBe32(GUEST_HPA + 0x1_0000)).toBe(0x8000_1234);
    expect(e.chip.tctxs[1]!.osLine).toBe(true);
    e.mem.load(os + 0x810, 2, e.out, 1);
    expect(e.out.lo).toBe(0x8006);
    expect(e.woken).toEqual([]);
  });

  it('not pushed: NVT backlog + escalation wakes the ceded vCPU; the push replays the backlog', () => {
    const { e, v, trig, eoi } = boot();
    v.ceded = true;
    expect(e.dev.rearmEscalation(v)).toBe(true);
    e.mem.load(eoi + 0xc00, 8, e.out);
    e.mem.store(trig, 8, 0, 0);
    expect(e.mem.loadBe32(GUEST_HPA + 0x1_0000)).toBe(0x8000_1234);
    expect(e.woken).toEqual([v]);
    expect(v.irqPending).toBe(true);
    expect(v.xiveVcpu!.escOn).toBe(false);
    expect(e.dev.stats.escalations).toBe(1);
    const out = new Word64();
    expect(e.dev.getVp(v, out)).toBe(0);
    expect(out.hi).toBe(0x0000_0200); // IPB byte: priority 6
    // Rearming while the escalation is still pending aborts the cede (PQ 10).
    e.dev.pushVcpu(v, 2);
    expect(e.chip.tctxs[2]!.regs[0x12]).toBe(0x02);
    expect(e.chip.tctxs[2]!.osLine).toBe(false); // CPPR 0 from connect
    const os = e.dev.timaFault(0, 2) * 0x1_0000;
    e.mem.store(os + 0x11, 1, 0, 0xff, 2);
    expect(e.chip.tctxs[2]!.osLine).toBe(true);
  });
});
