/**
 * The machine builder of a workload run: the virtual clock, the run probe, the sPAPR machine —
 * emulated (QEMU's `kernel_irqchip=off`) or under KVM on a host model (`-accel
 * kvm,kernel-irqchip=on`) — and how the run reads the source behind each of the guest's
 * interrupts. Under KVM the counters come from the host's POWER9 chip: the IPI that backs each
 * guest source (its PQ, its `XIVE_STAT_*` counters, its trace events) and the ENDs of the
 * guest's VPs (see {@link HostView}).
 *
 * The builder boots no guest: the caller boots the one it wants on {@link RunSetup.machine}
 * (after instrumenting the machine or the host, if it must) and hands both to the driver.
 */

import { kvmVcpuLimit } from '../designs/index.ts';
import { createHost, type Host, type HostConfig } from '../host/host.ts';
import { P9_IPI_HWIRQ_BASE } from '../hw/xive/p9-chip.ts';
import type { XiveSource } from '../hw/xive/source.ts';
import { SimClock } from '../sim/clock.ts';
import type { Trace } from '../sim/trace.ts';
import { SPAPR_XIVE_NR_IRQS } from '../vmm/spapr-irq.ts';
import { SpaprMachine } from '../vmm/spapr-machine.ts';
import { type HostView, RunProbe } from './metrics.ts';
import type { Scenario } from './schema.ts';

/** The host of a KVM run (its trace is the run's; it has at least one thread per vCPU). */
export type KvmConfig = Omit<HostConfig, 'trace'>;

/** The source behind the guest's interrupts, by LISN: its PQ and its `XIVE_STAT_*` counters. */
export interface SourceView {
  pq(lisn: number): number;
  counter(lisn: number, stat: number): number;
}

/** A machine ready for its guest: what the driver and the collector read. */
export interface RunSetup {
  readonly scenario: Scenario;
  readonly seed: number;
  readonly clock: SimClock;
  readonly probe: RunProbe;
  readonly machine: SpaprMachine;
  readonly source: SourceView;
  /** The host of a KVM run, null emulated. */
  readonly host: Host | null;
  /** How the probe reads the host chip (KVM), null emulated. */
  readonly view: HostView | null;
  /** The ring trace that also receives the model's events, stamped with the run's clock. */
  readonly trace: Trace | null;
}

/** A machine under KVM. */
export interface KvmRunSetup extends RunSetup {
  readonly host: Host;
  readonly view: HostView;
}

/** How a machine is built. */
export interface BuildOptions {
  /** A ring trace to receive the model's events too (failure messages, the visualizer). */
  readonly trace?: Trace;
}

/** QEMU's XIVE source, numbered by LISN (emulated). */
function emulatedSources(source: XiveSource): SourceView {
  return { pq: (lisn) => source.getPq(lisn), counter: (lisn, k) => source.counter(lisn, k) };
}

/** The chip's IPI source number behind each LISN the KVM device backs, and the inverse. */
function ipiNumbering(host: Host, machine: SpaprMachine): { lisnOfSrc: Int32Array; srcOfLisn: Int32Array } {
  const xive = host.kvm.vms[0]?.devices[0]?.xive;
  if (xive === undefined) throw new Error('KVM mode: no VM with a XIVE device');
  const ipis = host.chip.ipiSource;
  const nr = machine.xive.nrIrqs;
  const lisnOfSrc = new Int32Array(ipis.nrIrqs).fill(-1);
  const srcOfLisn = new Int32Array(nr).fill(-1);
  for (let lisn = 0; lisn < nr; lisn++) {
    const hw = xive.irqState(lisn)?.ipiNumber ?? 0;
    const at = hw === 0 ? null : host.chip.sourceOf(hw);
    if (at === null || at.source !== ipis) continue;
    lisnOfSrc[at.srcno] = lisn;
    srcOfLisn[lisn] = at.srcno;
  }
  return { lisnOfSrc, srcOfLisn };
}

/**
 * KVM mode: the host chip's IPIs behind the guest's sources (the KVM device's `ipiNumber` of
 * each LISN the VMM claimed) and the ENDs of the guest's VPs (END index `vp * 8 + prio`, VP =
 * the device's `vp_base` + packed server), as the probe's {@link HostView} and the run's
 * {@link SourceView}.
 *
 * @throws Error when the VM, its XIVE device or a connected vCPU is missing (a bug in xivelab).
 */
function kvmView(host: Host, machine: SpaprMachine): { view: HostView; sources: SourceView } {
  const vm = host.kvm.vms[0];
  if (vm === undefined) throw new Error('KVM mode: no VM with a XIVE device');
  const { lisnOfSrc, srcOfLisn } = ipiNumbering(host, machine);
  const serverOfVp = new Map<number, number>();
  for (const a of vm.vcpuArchs) {
    if (a.xiveVcpu === null) throw new Error('KVM mode: a vCPU is not connected to the XIVE device');
    serverOfVp.set(a.xiveVcpu.vpId, a.xiveVcpu.serverNum);
  }
  const lsi = new Uint8Array(machine.xive.nrIrqs);
  for (const d of machine.devices) for (const lisn of d.lsis) lsi[lisn] = 1;
  const ipis = host.chip.ipiSource;
  const src = (lisn: number): number => {
    const n = srcOfLisn[lisn] ?? -1;
    if (n < 0) throw new Error(`KVM mode: LISN 0x${lisn.toString(16)} has no IPI behind it`);
    return n;
  };
  const endOf = (end: number): number => {
    const server = serverOfVp.get(end >>> 3);
    return server === undefined ? -1 : (server << 3) | (end & 7);
  };
  return {
    view: { lisnOfSrc, srcOfLisn, hwBase: P9_IPI_HWIRQ_BASE, endOf, lsi },
    sources: { pq: (lisn) => ipis.getPq(src(lisn)), counter: (lisn, k) => ipis.counter(src(lisn), k) },
  };
}

/**
 * Build the machine of scenario `s` for a run with `seed`: emulated, or under KVM with `kvm`.
 *
 * @throws RangeError when KVM mode cannot run the scenario's vCPUs ({@link kvmVcpuLimit}).
 */
export function buildMachine(s: Scenario, seed: number, opts: BuildOptions & { kvm: KvmConfig }): KvmRunSetup;
export function buildMachine(s: Scenario, seed: number, opts?: BuildOptions & { kvm?: KvmConfig }): RunSetup;
export function buildMachine(
  s: Scenario,
  seed: number,
  opts: BuildOptions & { kvm?: KvmConfig } = {},
): RunSetup {
  const clock = new SimClock();
  const trace = opts.trace ?? null;
  if (trace !== null) trace.now = () => clock.nanos;
  const probe = new RunProbe(SPAPR_XIVE_NR_IRQS, s.vcpus * 8, trace);
  const devices = s.devices.map((d) => ({ name: d.name, msis: d.msis, lsis: d.lsis }));
  const base = { scenario: s, seed, clock, probe, trace };
  if (opts.kvm === undefined) {
    const machine = new SpaprMachine({ smp: s.vcpus, ramSize: s.ramSize, devices, trace: probe });
    return { ...base, machine, source: emulatedSources(machine.xive.source), host: null, view: null };
  }
  const why = kvmVcpuLimit(s.vcpus);
  if (why !== null) throw new RangeError(why);
  const host = createHost({ ...opts.kvm, nrCpus: Math.max(opts.kvm.nrCpus ?? 16, s.vcpus), trace: probe });
  const machine = new SpaprMachine({
    smp: s.vcpus,
    ramSize: s.ramSize,
    devices,
    trace: probe.vmmSide(),
    accel: { kind: 'kvm', host },
  });
  const kv = kvmView(host, machine);
  probe.hostView = kv.view;
  return { ...base, machine, source: kv.sources, host, view: kv.view };
}
