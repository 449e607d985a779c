/**
 * The sPAPR XIVE controller on the in-kernel KVM device: the connect flow (device, NR_SERVERS,
 * ESB/TIMA mmaps overlaid at priority 1 → one memslot each, vCPUs connected, valid sources
 * declared), the hcalls' device attributes with KVM refusals as H_HARDWARE, LSIs through
 * H_INT_ESB with the load-EOI special case, device lines as trigger stores, VM stop/run PQ
 * handling, disconnect back to emulation. Everything observed on the real host model.
 */

import { describe, expect, test } from 'vitest';
import { createHost } from '../../../src/host/host.ts';
import type { KvmXiveNative } from '../../../src/host/kvm/xive-native.ts';
import { KVMPPC_IRQ_DEFAULT, KVMPPC_IRQ_XIVE, MASKED } from '../../../src/host/kvm/xive-native-uapi.ts';
import { Word64 } from '../../../src/hw/mmio.ts';
import { EAS_MASKED_LO, EAS_VALID_HI } from '../../../src/hw/xive/regs.ts';
import { bootGuestOnSlots } from '../../../src/scenario/guest-port.ts';
import type { TraceSink } from '../../../src/sim/trace-sink.ts';
import type { SpaprKvmCpu } from '../../../src/vmm/kvm-accel.ts';
import { SpaprMachine } from '../../../src/vmm/spapr-machine.ts';
import { SPAPR_XIVE_TM_BASE, SPAPR_XIVE_VC_BASE } from '../../../src/vmm/spapr-xive.ts';
import {
  H_HARDWARE,
  H_INT_ESB,
  H_INT_GET_QUEUE_CONFIG,
  H_INT_GET_SOURCE_INFO,
  H_INT_RESET,
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  H_INT_SYNC,
  H_SUCCESS,
} from '../../../src/vmm/spapr-xive-hcalls.ts';

const MiB = 1024 * 1024;
const QPAGE = 0x200_0000; // 64 KiB-aligned guest RAM for EQs
const MSI0 = 0x1300; // first device MSI
const LSI0 = 0x1200; // PHB INTx A

function setup(emulated = false) {
  const errors: string[] = [];
  const trace: TraceSink = { mask: 0, emit() {}, guestError: (s) => errors.push(s) };
  const host = createHost({ nrCpus: 8 });
  const m = new SpaprMachine({
    smp: 2,
    ramSize: 64 * MiB,
    devices: [{ name: 'nic', msis: 4, lsis: 1 }],
    trace,
    ...(emulated ? {} : { accel: { kind: 'kvm' as const, host } }),
  });
  m.xive.exploitation = true; // as after CAS
  const vm = host.kvm.vms[0]!;
  const dev = vm?.arch.xive as KvmXiveNative;
  const out: bigint[] = [];
  const hcall = (cpu: number, op: number, ...args: (number | bigint)[]) =>
    m.cpus[cpu]!.hcall(
      op,
      args.map((a) => BigInt(a)),
      out,
    );
  const esbLoad = (cpu: number, lisn: number, off: number): number => {
    const w = new Word64();
    m.cpus[cpu]!.load(SPAPR_XIVE_VC_BASE + lisn * 0x2_0000 + 0x1_0000 + off, 8, w);
    return w.lo;
  };
  return { m, host, vm, dev, out, hcall, esbLoad, errors };
}

describe('kvmppc_xive_connect (kernel-irqchip=on)', () => {
  test('creates the device, maps ESB/TIMA from it as priority-1 RAM devices: 3 memslots', () => {
    const { m, vm, dev, host } = setup();
    const xk = m.xiveKvm!;
    expect(xk.inKernel).toBe(true);
    expect(host.kvm.stats.devicesCreated).toBe(1);
    expect(dev.nrServers).toBe(2);
    // One slot for RAM, one for the whole 1 GiB ESB window, one for the 4 TIMA pages.
    expect(m.kvm!.listener!.slots().map((s) => [s.slot, s.guestPhysAddr, s.memorySize, s.region])).toEqual([
      [0, 0, 64 * MiB, 'ppc_spapr.ram'],
      [1, SPAPR_XIVE_VC_BASE, 0x4000_0000, 'xive.esb-kvm'],
      [2, SPAPR_XIVE_TM_BASE, 0x4_0000, 'xive.tima'],
    ]);
    expect(m.kvm!.listener!.slots()[1]!.userspaceAddr).toBe(xk.esbMmap);
    expect(m.kvm!.listener!.slots()[2]!.userspaceAddr).toBe(xk.tmMmap);
    expect([vm.stats.memslotsUsed, vm.stats.memslotsPeak]).toEqual([3, 3]);
    // The flat view: the KVM mappings win over the emulated regions underneath.
    const at = (a: number) => m.sysmem.translate(a)!;
    expect([at(SPAPR_XIVE_VC_BASE).mr.name, at(SPAPR_XIVE_VC_BASE).mr.priority]).toEqual(['xive.esb-kvm', 1]);
    expect([at(SPAPR_XIVE_TM_BASE + 0x2_0000).mr.name, at(SPAPR_XIVE_TM_BASE).mr.kind]).toEqual([
      'xive.tima',
      3,
    ]);
    // Every vCPU is connected to the device.
    expect(vm.vcpus.map((v) => v.arch.irqType)).toEqual([KVMPPC_IRQ_XIVE, KVMPPC_IRQ_XIVE]);
    expect([...xk.enabledCpus].sort()).toEqual([0, 1]);
  });

  test('declares every valid LISN (GRP_SOURCE): IPIs, events, VIO, LSIs (level-sensitive), MSIs', () => {
    const { dev } = setup();
    const valid: number[] = [];
    for (let i = 0; i < 0x2000; i++) if (dev.irqState(i)?.valid) valid.push(i);
    expect(valid).toEqual([
      0, 1, 0x1000, 0x1001, 0x1100, 0x1200, 0x1201, 0x1202, 0x1203, 0x1300, 0x1301, 0x1302, 0x1303,
    ]);
    expect(valid.map((i) => dev.irqState(i)!.lsi)).toEqual([
      ...[false, false, false, false, false],
      ...[true, true, true, true],
      ...[false, false, false, false],
    ]);
    // Declared sources are masked (act_priority MASKED, PQ 01).
    expect(dev.irqState(MSI0)!.actPriority).toBe(MASKED);
  });

  test('guest ESB and TIMA accesses go through the memslots: no MMIO exit, HW PQ', () => {
    const { m, vm, esbLoad } = setup();
    const exits = vm.stats.mmioExits;
    expect(esbLoad(0, MSI0, 0x800)).toBe(1); // XIVE_ESB_GET: PQ 01 after GRP_SOURCE
    expect(esbLoad(0, MSI0, 0xc00)).toBe(1); // SET_PQ_00 returns the old PQ
    expect(esbLoad(0, MSI0, 0x800)).toBe(0);
    const w = new Word64();
    m.cpus[1]!.load(SPAPR_XIVE_TM_BASE + 0x2_0000 + 0x10, 8, w); // OS ring word 0-1
    // KVM's initial VP state (kvmppc_xive_native_connect_vcpu()): CPPR 0, ACK# 0xFF, on the
    // pushed context.
    expect(w.hi & 0x00ff_0000).toBe(0);
    expect(vm.stats.mmioExits).toBe(exits);
    expect(vm.stats.partitionFaults).toBeGreaterThan(0);
  });
});

describe('hcalls → KVM device attributes', () => {
  test('SET_QUEUE_CONFIG → EQ_CONFIG; SET_SOURCE_CONFIG → SOURCE_CONFIG (server, prio, eisn)', () => {
    const { m, dev, vm, hcall } = setup();
    expect(hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 1, 6, QPAGE, 16)).toBe(H_SUCCESS);
    const q = vm.vcpuArchs[1]!.xiveVcpu!.queues[6]!;
    expect([q.guestQaddr, q.guestQshift, q.idx, q.toggle]).toEqual([QPAGE, 16, 0, 0]);
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 2, MSI0, 1, 6, 0x42)).toBe(H_SUCCESS);
    const st = dev.irqState(MSI0)!;
    expect([st.actServer, st.actPriority, st.eisn]).toEqual([1, 6, 0x42]);
    expect([(m.xive.eat[MSI0 * 2]! & EAS_VALID_HI) >>> 0, m.xive.eat[MSI0 * 2 + 1]]).toEqual([
      EAS_VALID_HI,
      0x42,
    ]);
    // prio 0xFF: QEMU's EAS only, KVM keeps the targeting (QEMU 7.2).
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 0, MSI0, 1, 0xff, 0)).toBe(H_SUCCESS);
    expect(m.xive.eat[MSI0 * 2 + 1]).toBe(EAS_MASKED_LO);
    expect([st.actServer, st.actPriority]).toEqual([1, 6]);
    // MASK flag with the same (server, prio, eisn): KVM's no-op rule ignores the masked bit
    // (kvmppc_xive_native_update_source_config()), while QEMU's EAS is masked: a QEMU/KVM
    // divergence.
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 3, MSI0, 1, 6, 0x42)).toBe(H_SUCCESS);
    expect([st.actPriority, m.xive.eat[MSI0 * 2 + 1]]).toEqual([6, (EAS_MASKED_LO | 0x42) >>> 0]);
    // With another EISN the masked bit is honoured (act_priority MASKED, eisn 0).
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 3, MSI0, 1, 6, 0x43)).toBe(H_SUCCESS);
    expect([st.actPriority, st.eisn]).toEqual([MASKED, 0]);
  });

  test('KVM refusals are H_HARDWARE, and QEMU state is left unchanged (emulated accepts)', () => {
    const kvm = setup();
    const emu = setup(true);
    for (const { hcall, m } of [kvm, emu]) {
      const endBefore = Array.from(m.xive.endt.subarray(8 + 8 * 0, 8 + 8 * 0 + 8)); // vCPU 1, prio 0
      const rc4k = hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 1, 3, QPAGE, 12); // KVM takes 64 KiB only
      const rcSrc = hcall(0, H_INT_SET_SOURCE_CONFIG, 2, MSI0 + 1, 1, 5, 7); // no queue for prio 5
      const rcAlign = hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 1, 6, QPAGE + 0x1000, 16); // QEMU's own H_P4
      const rcNoN = hcall(0, H_INT_SET_QUEUE_CONFIG, 0, 1, 4, QPAGE, 16); // KVM wants ALWAYS_NOTIFY
      if (m.xiveKvm) {
        expect([rc4k, rcSrc, rcAlign, rcNoN]).toEqual([H_HARDWARE, H_HARDWARE, -57, H_HARDWARE]);
        expect(Array.from(m.xive.endt.subarray(8, 16))).toEqual(endBefore);
        expect(m.xive.eat[(MSI0 + 1) * 2 + 1]).toBe(EAS_MASKED_LO);
        expect(m.xiveKvm.failures).toBe(3);
      } else {
        expect([rc4k, rcSrc, rcAlign, rcNoN]).toEqual([H_SUCCESS, H_SUCCESS, -57, H_SUCCESS]);
      }
    }
  });

  test('device MSI → trigger store in the mapping → EQ entry in guest RAM; GET_QUEUE_CONFIG refreshes index', () => {
    const { m, hcall, out, esbLoad } = setup();
    expect(hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 0, 6, QPAGE, 16)).toBe(H_SUCCESS);
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 2, MSI0, 0, 6, 0x1300)).toBe(H_SUCCESS);
    expect(esbLoad(0, MSI0, 0xc00)).toBe(1); // enable: PQ 01 → 00
    const nic = m.devices[0]!;
    nic.raiseMsi(0);
    expect(esbLoad(0, MSI0, 0x800)).toBe(2); // P
    nic.raiseMsi(0);
    expect(esbLoad(0, MSI0, 0x800)).toBe(3); // coalesced in Q
    // The chip wrote the entry (generation 1) into the page the guest and the VMM see.
    expect(m.sysmem.loadBe32(QPAGE)).toBe(0x8000_1300);
    expect(m.cpus[0]!.externalInterrupt).toBe(false); // CPPR 0: nothing presented yet
    expect(hcall(0, H_INT_GET_QUEUE_CONFIG, 1, 0, 6)).toBe(H_SUCCESS);
    expect(out.slice(0, 4)).toEqual([0x4000_0000_0000_0001n, BigInt(QPAGE), 16n, 1n]);
    // The END in QEMU's table took generation 1 / index 1 from KVM (w1 rebuilt from them).
    expect(m.xive.endt[6 * 8 + 1]).toBe(0x0040_0001);
    // CPPR 0xFF opens the OS ring: the line rises on the host thread.
    m.cpus[0]!.store(SPAPR_XIVE_TM_BASE + 0x2_0000 + 0x11, 1, 0, 0xff);
    expect(m.cpus[0]!.externalInterrupt).toBe(true);
  });

  test('LSIs: source info forces H_INT_ESB; load-EOI is SET_PQ_00 + re-trigger while asserted, returns 0', () => {
    const { m, hcall, out, esbLoad, dev } = setup();
    expect(hcall(0, H_INT_GET_SOURCE_INFO, 0, LSI0)).toBe(H_SUCCESS);
    expect(out.slice(0, 4)).toEqual([0xcn, 0xffff_ffff_ffff_ffffn, 0xffff_ffff_ffff_ffffn, 16n]);
    expect(hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 0, 6, QPAGE, 16)).toBe(H_SUCCESS);
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 2, LSI0, 0, 6, 0x99)).toBe(H_SUCCESS);
    expect(hcall(0, H_INT_ESB, 0, LSI0, 0xc00, 0)).toBe(H_SUCCESS); // SET_PQ_00 via the hcall
    expect(out[0]).toBe(1n);
    m.devices[0]!.setLsi(0, 1); // assert → trigger store → PQ 10, entry
    expect(m.xive.source.isAsserted(LSI0)).toBe(true);
    expect(esbLoad(0, LSI0, 0x800)).toBe(2);
    // Load-EOI while still asserted: SET_PQ_00 then a trigger: a second entry, PQ 10, R4 = 0.
    expect(hcall(0, H_INT_ESB, 0, LSI0, 0, 0)).toBe(H_SUCCESS);
    expect(out[0]).toBe(0n);
    expect(esbLoad(0, LSI0, 0x800)).toBe(2);
    expect([m.sysmem.loadBe32(QPAGE), m.sysmem.loadBe32(QPAGE + 4)]).toEqual([0x8000_0099, 0x8000_0099]);
    // Deassert: QEMU 7.2 still issues a trigger store; with P set it only sets Q …
    m.devices[0]!.setLsi(0, 0);
    expect(esbLoad(0, LSI0, 0x800)).toBe(3);
    // … which the load-EOI's SET_PQ_00 drops (line low: no re-trigger, no third entry).
    expect(hcall(0, H_INT_ESB, 0, LSI0, 0, 0)).toBe(H_SUCCESS);
    expect([out[0], esbLoad(0, LSI0, 0x800), m.sysmem.loadBe32(QPAGE + 8)]).toEqual([0n, 0, 0]);
    // A deassert with PQ 00 fires: the IPI behind an emulated LSI is edge-triggered.
    m.devices[0]!.setLsi(0, 1);
    hcall(0, H_INT_ESB, 0, LSI0, 0xc00, 0); // PQ 00 again (guest-side EOI without the hcall)
    m.devices[0]!.setLsi(0, 0);
    expect(esbLoad(0, LSI0, 0x800)).toBe(2);
    expect(m.sysmem.loadBe32(QPAGE + 12)).toBe(0x8000_0099);
    expect(dev.irqState(LSI0)!.lsi).toBe(true);
    // An ESB store through the hcall: R4 = -1.
    expect(hcall(0, H_INT_ESB, 1, LSI0, 0xc00, 0)).toBe(H_SUCCESS);
    expect(out[0]).toBe(0xffff_ffff_ffff_ffffn);
  });

  test('GET_QUEUE_CONFIG on a queue never configured: QEMU 7.2 asserts (abort); here H_HARDWARE + a trace', () => {
    const { hcall, errors, m } = setup();
    const emu = setup(true);
    expect(emu.hcall(0, H_INT_GET_QUEUE_CONFIG, 0, 1, 6)).toBe(H_SUCCESS);
    expect(hcall(0, H_INT_GET_QUEUE_CONFIG, 0, 1, 6)).toBe(H_HARDWARE);
    expect(errors).toContain('kvmppc_xive_get_queue_config: assertion failed: END 14 valid');
    expect(m.xiveKvm!.failures).toBe(0); // refused before any ioctl
  });

  test('H_INT_SYNC → SOURCE_SYNC; H_INT_RESET → QEMU reset + KVM RESET (targeting masked, queues off)', () => {
    const { m, hcall, dev, vm, host } = setup();
    expect(hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 1, 6, QPAGE, 16)).toBe(H_SUCCESS);
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 2, MSI0, 1, 6, 5)).toBe(H_SUCCESS);
    const syncs = host.chip.stats.syncs;
    expect(hcall(0, H_INT_SYNC, 0, MSI0)).toBe(H_SUCCESS);
    expect(host.chip.stats.syncs).toBe(syncs + 1);
    expect(hcall(0, H_INT_RESET, 0)).toBe(H_SUCCESS);
    expect(dev.irqState(MSI0)!.actPriority).toBe(MASKED);
    expect(vm.vcpuArchs[1]!.xiveVcpu!.queues[6]!.qpage).toBe(0);
    expect(m.xive.eat[MSI0 * 2 + 1]).toBe(EAS_MASKED_LO);
    expect(m.xive.endt[(8 + 6) * 8]).toBe(0);
  });
});

describe('VM stop / run (kvmppc_xive_change_state_handler)', () => {
  test('stop: PQ≠01 → 10 with the old PQ saved, EQ_SYNC; a trigger while stopped is replayed at run', () => {
    const { m, hcall, esbLoad } = setup();
    expect(hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 0, 6, QPAGE, 16)).toBe(H_SUCCESS);
    for (let v = 0; v < 3; v++)
      expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 2, MSI0 + v, 0, 6, v)).toBe(H_SUCCESS);
    esbLoad(0, MSI0, 0xc00); // 00
    esbLoad(0, MSI0 + 1, 0xe00); // 10
    // MSI0+2 stays 01 (off)
    m.devices[0]!.raiseMsi(3); // MSI0+3 is off and unrouted: dropped
    const xk = m.xiveKvm!;
    const syncsBefore = m.kvm!.host.chip.stats.syncs;
    expect(m.vmStop()).toBe(0);
    expect([0, 1, 2].map((v) => m.xive.source.getPq(MSI0 + v))).toEqual([0, 2, 1]); // saved PQs
    expect(() => m.cpus[0]!.load(0, 4, new Word64())).toThrow(/stopped/);
    // While stopped the device raises MSI0: caught in Q of the PENDING source, no event.
    m.devices[0]!.raiseMsi(0);
    expect(m.sysmem.loadBe32(QPAGE)).toBe(0);
    expect(m.kvm!.host.chip.stats.syncs).toBeGreaterThanOrEqual(syncsBefore);
    expect(m.vmStart()).toBe(0);
    // Run: saved PQ 00 came back 11 → trigger → event for MSI0, PQ 10.
    expect(m.sysmem.loadBe32(QPAGE)).toBe(0x8000_0000);
    expect([0, 1, 2].map((v) => esbLoad(0, MSI0 + v, 0x800))).toEqual([2, 2, 1]);
    expect(xk.changeHandler).toBe(true);
    expect((m.cpus[0] as SpaprKvmCpu).run).not.toBeNull();
  });

  test('synchronize_state (info pic / pre_save): PQs pulled only while running, ENDs and OS rings from KVM', () => {
    const { m, hcall, esbLoad } = setup();
    expect(hcall(0, H_INT_SET_QUEUE_CONFIG, 1, 0, 6, QPAGE, 16)).toBe(H_SUCCESS);
    expect(hcall(0, H_INT_SET_SOURCE_CONFIG, 2, MSI0, 0, 6, 9)).toBe(H_SUCCESS);
    esbLoad(0, MSI0, 0xc00);
    m.cpus[0]!.store(SPAPR_XIVE_TM_BASE + 0x2_0000 + 0x11, 1, 0, 0xff); // CPPR
    m.devices[0]!.raiseMsi(0);
    const xk = m.xiveKvm!;
    expect(m.xive.source.getPq(MSI0)).toBe(1); // QEMU's copy is stale under KVM
    expect(xk.synchronizeState(true)).toBe(0);
    expect([m.xive.source.getPq(MSI0), m.xive.endt[6 * 8 + 1]]).toEqual([2, 0x0040_0001]);
    // VP_STATE needs the vCPU out of KVM_RUN (QEMU: run_on_cpu); then the OS ring: NSR EO,
    // CPPR 0xFF, IPB bit of priority 6, PIPR 6.
    m.vmStop();
    expect(xk.cpuGetState(0)).toBe(0);
    const os = [...m.xive.tctxs[0]!.regs.subarray(0x10, 0x18)];
    expect([os[0]! & 0x80, os[1], os[2], os[7]]).toEqual([0x80, 0xff, 0x02, 6]);
    // Stopped: the saved PQs are the truth and are not overwritten (PENDING in HW now).
    m.xive.source.setPq(MSI0, 0);
    expect(xk.synchronizeState(false)).toBe(0);
    expect(m.xive.source.getPq(MSI0)).toBe(0);
  });

  test('info pic under KVM pulls the device state: equal to emulated but for the OS ring LSMFB/AGE', () => {
    const pics: string[] = [];
    for (const emulated of [true, false]) {
      const { m } = setup(emulated);
      m.xive.exploitation = false;
      bootGuestOnSlots(m, { mask: 0, emit() {}, guestError() {} });
      m.devices[0]!.raiseMsi(1);
      m.devices[0]!.raiseMsi(1); // PQ 11
      m.devices[0]!.raiseMsi(2); // PQ 10
      pics.push(m.xive.infoPic());
    }
    const [emu, kvm] = pics as [string, string];
    expect(kvm).toContain('  00001301 MSI PQ    00000101   1/6      1/16384 @130000 ^1');
    expect(kvm).toContain('  00001302 MSI P-    00000102   0/6      1/16384 @120000 ^1');
    // The OS ring from VP_STATE: NSR 80, CPPR ff, IPB 02, PIPR 06 as emulated; LSMFB and AGE
    // are 00 under KVM (its initial w01 and the pull's LSMFB := 0) where QEMU's reset has ff.
    expect(kvm).toContain('CPU[0000]:   OS    80   ff  02    00   ff  00  00   06  80000400');
    expect(emu).toContain('CPU[0000]:   OS    80   ff  02    ff   ff  00  ff   06  80000400');
    expect(kvm.replaceAll('02    00   ff  00  00   06', '02    ff   ff  00  ff   06')).toBe(emu);
  });

  test('disconnect: overlays and memslots go, the device is released, emulation answers again', () => {
    const { m, host, vm, esbLoad } = setup();
    m.vmStop();
    m.xiveKvm!.disconnect();
    expect(m.xiveKvm!.inKernel).toBe(false);
    expect(m.kvm!.listener!.slots().map((s) => s.region)).toEqual(['ppc_spapr.ram']);
    expect(host.kvm.stats.devicesReleased).toBe(1);
    expect(vm.vcpus.map((v) => v.arch.irqType)).toEqual([KVMPPC_IRQ_DEFAULT, KVMPPC_IRQ_DEFAULT]);
    m.vmStart();
    const exits = vm.stats.mmioExits;
    expect(esbLoad(0, MSI0, 0x800)).toBe(1); // the emulated source, through an MMIO exit
    expect(vm.stats.mmioExits).toBe(exits + 1);
    // Device lines go to the emulated source again.
    esbLoad(0, MSI0, 0xc00);
    m.devices[0]!.raiseMsi(0);
    expect(m.xive.source.getPq(MSI0)).toBe(2);
  });
});

describe('machine reset under KVM', () => {
  test('system_reset: QEMU tables reset, the device stays connected with its state; a new guest boots', () => {
    const { m, dev, host, esbLoad } = setup();
    m.xive.exploitation = false;
    const g1 = bootGuestOnSlots(m, { mask: 0, emit() {}, guestError() {} });
    const virq = g1.kernel.drivers[0]!.msiVirqs[0]!;
    const target = g1.kernel.target(virq);
    expect(dev.irqState(MSI0)!.actPriority).toBe(6);
    m.devices[0]!.raiseMsi(0); // in flight at the reset: an entry in the old guest's queue
    m.reset();
    // QEMU: EAS masked, ENDs off, PQs 01 in its copy, CAS forgotten.
    expect([m.xive.eat[MSI0 * 2 + 1], m.xive.endt[(target * 8 + 6) * 8], m.casDone]).toEqual([
      EAS_MASKED_LO,
      0,
      false,
    ]);
    // KVM (QEMU 7.2: no reset of the in-kernel device on system_reset): still connected, the
    // old targeting kept until the next guest reconfigures it.
    expect([m.xiveKvm!.inKernel, host.kvm.stats.devicesCreated, dev.irqState(MSI0)!.actPriority]).toEqual([
      true,
      1,
      6,
    ]);
    // The event in flight stays PENDING in the hardware (QEMU's copy says 01).
    expect([esbLoad(0, MSI0, 0x800), m.xive.source.getPq(MSI0)]).toEqual([2, 1]);
    // The guest boots again and every MSI is delivered once, on its target.
    const g2 = bootGuestOnSlots(m, { mask: 0, emit() {}, guestError() {} });
    const k = g2.kernel;
    for (let v = 0; v < 4; v++) m.devices[0]!.raiseMsi(v);
    let n = 0;
    for (const sl of g2.slots) n += k.takePendingInterrupts(sl.id);
    expect(n).toBe(4);
    expect([...k.drivers[0]!.msiCalls]).toEqual([1, 1, 1, 1]);
    expect(k.unknownEisns().size).toBe(0);
  });
});
