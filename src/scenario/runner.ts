/**
 * Run a scenario on the real pieces: the sPAPR machine and the Linux-like guest booted on its
 * vCPUs; drive the workload from a seeded {@link Rng} on a {@link SimClock}; after each virtual
 * instant run the guest's interrupt handling on every vCPU whose external-interrupt line is
 * high, until quiescent; check the accounting invariants; return the result.
 *
 * The machine emulates XIVE (QEMU's `kernel_irqchip=off`), or with {@link RunOptions.kvm} runs
 * the guest under KVM on a host model (`-accel kvm,kernel-irqchip=on`): the same guest and the
 * same workload, the interrupts now raised, routed and presented by the host's POWER9 chip
 * through the KVM XIVE native device. The counters then come from the chip: the IPI that backs
 * each guest source (its PQ, its `XIVE_STAT_*` counters, its trace events) and the ENDs of the
 * guest's VPs (see {@link HostView}).
 *
 * Deterministic: the same scenario and seed give the same result, byte for byte.
 */

import {
  checkInvariants,
  type IrqCounters,
  type QueueCounters,
  type Violation,
} from '../check/invariants.ts';
import { createHost, type Host, type HostConfig } from '../host/host.ts';
import type { TraceSink } from '../hw/trace-sink.ts';
import { P9_IPI_HWIRQ_BASE, P9_MAX_THREADS } from '../hw/xive/p9-chip.ts';
import {
  XIVE_STAT_COALESCED,
  XIVE_STAT_FORWARD,
  XIVE_STAT_OFF,
  XIVE_STAT_TRIGGER,
  type XiveSource,
} from '../hw/xive/source.ts';
import { SimClock } from '../sim/clock.ts';
import { Engine } from '../sim/engine.ts';
import { Rng } from '../sim/rng.ts';
import { SpaprMachine } from '../vmm/spapr-machine.ts';
import { bootGuest, type GuestIrq, type GuestPort } from './guest-port.ts';
import { type HostView, RunProbe } from './metrics.ts';
import type { CpuResult, IrqResult, Result } from './result.ts';
import type { Scenario, StreamSpec } from './schema.ts';

/** The host chip's threads (P9Chip): KVM mode runs each vCPU on a thread of its own. */
export const KVM_MAX_RUN_VCPUS = P9_MAX_THREADS;
/** Rate used for devices when a scenario lists no streams. */
const DEFAULT_RATE = 1e6;
/** Quiescent points between two intermediate invariant checks. */
const CHECK_EVERY = 4096;
/** Quiescent points between two {@link RunOptions.onProgress} calls (and abort checks). */
const PROGRESS_EVERY = 1024;

/** How far a run is, for {@link RunOptions.onProgress}. */
export interface RunProgress {
  readonly virtualTimeNs: number;
  readonly deviceTriggers: number;
  readonly ipisSent: number;
  readonly quiescePoints: number;
}

export interface RunOptions {
  /** A ring trace to receive the model's events too (failure messages, the visualizer). */
  trace?: TraceSink;
  /** Check the invariants at intermediate quiescent points too (default true). */
  checkQuiescent?: boolean;
  /** Boot a different guest (tests, later designs); default: the Linux-like guest kernel. */
  guest?: (machine: SpaprMachine, trace: TraceSink) => GuestPort;
  /** Called with the run's virtual clock before anything runs (a trace stamps events with it). */
  onClock?: (clock: SimClock) => void;
  /**
   * Run under KVM (`-accel kvm,kernel-irqchip=on`) on a host made with this configuration (its
   * trace is the run's; it has at least one thread per vCPU, vCPU i running on thread i).
   */
  kvm?: Omit<HostConfig, 'trace'>;
  /** Called with the KVM host and how the run reads its chip, once the machine is up and
   * before the guest boots (KVM mode). */
  onHost?: (host: Host, view: HostView) => void;
  /** Called every {@link PROGRESS_EVERY} quiescent points (a progress display). */
  onProgress?: (p: RunProgress) => void;
  /**
   * Checked at the same points: once aborted, the workload stops as at its limits (the run
   * drains and settles, and the result covers what ran).
   */
  signal?: AbortSignal;
}

/** The source behind the guest's interrupts, by LISN: its PQ and its `XIVE_STAT_*` counters. */
interface SourceView {
  pq(lisn: number): number;
  counter(lisn: number, stat: number): number;
}

/** QEMU's XIVE source, numbered by LISN (emulated). */
function emulatedSources(source: XiveSource): SourceView {
  return { pq: (lisn) => source.getPq(lisn), counter: (lisn, k) => source.counter(lisn, k) };
}

/**
 * KVM mode: the host chip's IPIs behind the guest's sources (the KVM device's `ipiNumber` of
 * each LISN the VMM claimed) and the ENDs of the guest's VPs (END index `vp * 8 + prio`, VP =
 * the device's `vp_base` + packed server), as the probe's {@link HostView} and the runner's
 * {@link SourceView}.
 *
 * @throws Error when the VM, its XIVE device or a connected vCPU is missing (a bug in xivelab).
 */
function kvmView(host: Host, machine: SpaprMachine): { view: HostView; sources: SourceView } {
  const vm = host.kvm.vms[0];
  const xive = vm?.devices[0]?.xive;
  if (vm === undefined || xive === undefined) throw new Error('KVM mode: no VM with a XIVE device');
  const chip = host.chip;
  const ipis = chip.ipiSource;
  const nr = machine.xive.nrIrqs;
  const lisnOfSrc = new Int32Array(ipis.nrIrqs).fill(-1);
  const srcOfLisn = new Int32Array(nr).fill(-1);
  for (let lisn = 0; lisn < nr; lisn++) {
    const hw = xive.irqState(lisn)?.ipiNumber ?? 0;
    const at = hw === 0 ? null : chip.sourceOf(hw);
    if (at === null || at.source !== ipis) continue;
    lisnOfSrc[at.srcno] = lisn;
    srcOfLisn[lisn] = at.srcno;
  }
  const serverOfVp = new Map<number, number>();
  for (const a of vm.vcpuArchs) {
    if (a.xiveVcpu === null) throw new Error('KVM mode: a vCPU is not connected to the XIVE device');
    serverOfVp.set(a.xiveVcpu.vpId, a.xiveVcpu.serverNum);
  }
  const lsi = new Uint8Array(nr);
  for (const d of machine.devices) for (const lisn of d.lsis) lsi[lisn] = 1;
  const src = (lisn: number): number => {
    const n = srcOfLisn[lisn] ?? -1;
    if (n < 0) throw new Error(`KVM mode: LISN 0x${lisn.toString(16)} has no IPI behind it`);
    return n;
  };
  return {
    view: {
      lisnOfSrc,
      srcOfLisn,
      hwBase: P9_IPI_HWIRQ_BASE,
      endOf: (end) => {
        const server = serverOfVp.get(end >>> 3);
        return server === undefined ? -1 : (server << 3) | (end & 7);
      },
      lsi,
    },
    sources: { pq: (lisn) => ipis.getPq(src(lisn)), counter: (lisn, k) => ipis.counter(src(lisn), k) },
  };
}

/** hcall opcodes → names, for the result. */
const HCALL_NAMES: Record<number, string> = {
  936: 'H_INT_GET_SOURCE_INFO',
  940: 'H_INT_SET_SOURCE_CONFIG',
  944: 'H_INT_GET_SOURCE_CONFIG',
  948: 'H_INT_GET_QUEUE_INFO',
  952: 'H_INT_SET_QUEUE_CONFIG',
  956: 'H_INT_GET_QUEUE_CONFIG',
  960: 'H_INT_SET_OS_REPORTING_LINE',
  964: 'H_INT_GET_OS_REPORTING_LINE',
  968: 'H_INT_ESB',
  972: 'H_INT_SYNC',
  976: 'H_INT_RESET',
  61442: 'KVMPPC_H_CAS',
};

/** A device trigger stream, resolved to the device and its vectors. */
interface LiveStream {
  readonly spec: StreamSpec;
  readonly deviceIndex: number;
  readonly vectors: readonly number[];
  /** Mean interval in virtual ns. */
  readonly mean: number;
  rr: number;
}

/** Uniform jitter with the given mean (≥ 1 ns). */
function jitter(rng: Rng, mean: number): number {
  const m = Math.max(1, Math.round(mean));
  return m === 1 ? 1 : rng.int(1, 2 * m - 1);
}

/**
 * Run `s` with `seed`.
 *
 * @throws Error when the model breaks one of its own invariants (a bug in xivelab) — never for
 * anything the scenario asks for.
 */
export function runScenario(s: Scenario, seed: number, opts: RunOptions = {}): Result {
  const rng = new Rng(seed);
  const clock = new SimClock();
  opts.onClock?.(clock);
  const engine = new Engine(clock);
  const probe = new RunProbe(0x2000, s.vcpus * 8, opts.trace ?? null);
  const devices = s.devices.map((d) => ({ name: d.name, msis: d.msis, lsis: d.lsis }));
  let host: Host | null = null;
  let machine: SpaprMachine;
  let source: SourceView;
  if (opts.kvm === undefined) {
    machine = new SpaprMachine({ smp: s.vcpus, ramSize: s.ramSize, devices, trace: probe });
    source = emulatedSources(machine.xive.source);
  } else {
    if (s.vcpus > KVM_MAX_RUN_VCPUS)
      throw new RangeError(
        `KVM mode runs at most ${KVM_MAX_RUN_VCPUS} vCPUs (one host thread each), not ${s.vcpus}`,
      );
    host = createHost({ ...opts.kvm, nrCpus: Math.max(opts.kvm.nrCpus ?? 16, s.vcpus), trace: probe });
    machine = new SpaprMachine({
      smp: s.vcpus,
      ramSize: s.ramSize,
      devices,
      trace: probe.vmmSide(),
      accel: { kind: 'kvm', host },
    });
    const kv = kvmView(host, machine);
    probe.hostView = kv.view;
    source = kv.sources;
    opts.onHost?.(host, kv.view);
  }
  const guest: GuestPort = (opts.guest ?? bootGuest)(machine, probe);
  probe.queueRead = (endIdx) => guest.queueRead(endIdx >>> 3, endIdx & 7);

  const irqs: readonly GuestIrq[] = guest.irqs();
  const deviceIrqs = irqs.filter((q) => q.kind !== 'ipi');
  const byLisn = new Map<number, GuestIrq>();
  for (const q of irqs) byLisn.set(q.lisn, q);
  // INTx lines are shared between devices (PHB swizzle): the LISN's asserted pins.
  const lsiPins = new Map<number, { device: number; pin: number }[]>();
  machine.devices.forEach((d, di) => {
    d.lsis.forEach((lisn, pin) => {
      const l = lsiPins.get(lisn) ?? [];
      l.push({ device: di, pin });
      lsiPins.set(lisn, l);
    });
  });
  const pinAsserted = machine.devices.map((d) => new Uint8Array(d.lsis.length));

  const lastDelivery = new Float64Array(0x2000).fill(-1);
  /** Per LISN: when an enable left an asserted LSI pending with no event (see `enable`). */
  const levelLost = new Float64Array(0x2000).fill(-1);
  const guestOnDeliver = guest.onDeliver;
  guest.onDeliver = (lisn: number, cpu: number) => {
    guestOnDeliver(lisn, cpu); // a recording guest's own (bootGuestOnSlots)
    lastDelivery[lisn] = probe.nextSeq();
    // The driver's handler clears the device's interrupt status: its INTx pins drop.
    const pins = lsiPins.get(lisn);
    if (pins) {
      for (const p of pins) {
        if (pinAsserted[p.device]![p.pin]) {
          pinAsserted[p.device]![p.pin] = 0;
          machine.devices[p.device]!.setLsi(p.pin, 0);
        }
      }
    }
  };

  const events = {
    deviceTriggers: 0,
    ipisSent: 0,
    disables: 0,
    enables: 0,
    retargets: 0,
    offlines: 0,
    onlines: 0,
    lsiLevelsLost: 0,
    quiescePoints: 0,
  };
  const w = s.workload;
  const maxTriggers = w.triggers ?? Number.POSITIVE_INFINITY;
  const endTime = w.duration ?? Number.POSITIVE_INFINITY;
  let stopped = false;
  const shouldStop = (): boolean => {
    if (!stopped && (events.deviceTriggers >= maxTriggers || clock.nanos >= endTime)) stopped = true;
    return stopped;
  };

  // --- device trigger streams -----------------------------------------------------------------
  const specs: StreamSpec[] =
    w.streams ??
    s.devices.flatMap((d) => {
      const out: StreamSpec[] = [];
      if (d.msis > 0)
        out.push({ device: d.name, kind: 'msi', rate: DEFAULT_RATE, pattern: 'uniform', burst: 8 });
      if (d.lsis > 0)
        out.push({ device: d.name, kind: 'lsi', rate: DEFAULT_RATE / 10, pattern: 'uniform', burst: 8 });
      return out;
    });
  const streams: LiveStream[] = specs.map((spec) => {
    const deviceIndex = s.devices.findIndex((d) => d.name === spec.device);
    const d = machine.devices[deviceIndex]!;
    const n = spec.kind === 'msi' ? d.msis.length : d.lsis.length;
    const vectors = spec.vectors ?? Array.from({ length: n }, (_, i) => i);
    const perEvent = spec.pattern === 'bursts' ? spec.burst : 1;
    return { spec, deviceIndex, vectors, mean: (1e9 / spec.rate) * perEvent, rr: 0 };
  });

  const trigger = (st: LiveStream, v: number): void => {
    if (shouldStop()) return;
    events.deviceTriggers++;
    const d = machine.devices[st.deviceIndex]!;
    if (st.spec.kind === 'msi') {
      d.raiseMsi(v);
    } else {
      const lisn = d.lsis[v]!;
      // A level interrupt: re-asserting an asserted pin changes nothing on the line.
      if (!pinAsserted[st.deviceIndex]![v]) {
        // Only an assertion the guest can take counts as a trigger of an enabled source: an
        // LSI asserted while the guest has it (lazily) disabled is masked when it fires, and
        // QEMU 7.2's SET_PQ_00 on enable_irq does not re-fire a still-asserted line (Linux
        // leaves level resends to the hardware), so it stays pending until the line drops.
        // A pin joining a shared INTx line that is already high makes no edge either.
        const lineHigh = lsiPins.get(lisn)!.some((p) => pinAsserted[p.device]![p.pin]);
        if (!lineHigh && source.pq(lisn) !== 1 && guest.isEnabled(byLisn.get(lisn)!.girq)) {
          probe.noteLiveTrigger(lisn);
        }
        pinAsserted[st.deviceIndex]![v] = 1;
        d.setLsi(v, 1);
      }
    }
  };

  const fireStream = (st: LiveStream): void => {
    if (shouldStop()) return;
    switch (st.spec.pattern) {
      case 'uniform':
        trigger(st, rng.pick(st.vectors));
        clock.schedule(jitter(rng, st.mean), () => fireStream(st));
        break;
      case 'round-robin':
        trigger(st, st.vectors[st.rr]!);
        st.rr = (st.rr + 1) % st.vectors.length;
        clock.schedule(Math.max(1, Math.round(st.mean)), () => fireStream(st));
        break;
      case 'bursts': {
        const v = rng.pick(st.vectors);
        for (let i = 0; i < st.spec.burst; i++) trigger(st, v);
        clock.schedule(jitter(rng, st.mean), () => fireStream(st));
        break;
      }
    }
  };
  for (const st of streams) {
    // Round-robin keeps a fixed phase; the random patterns start at a random point.
    const first = st.spec.pattern === 'round-robin' ? Math.max(1, Math.round(st.mean)) : jitter(rng, st.mean);
    clock.schedule(first, () => fireStream(st));
  }

  // --- guest operations ---------------------------------------------------------------------------
  const onlineCpus = (): number[] => machine.cpus.map((c) => c.id).filter((id) => guest.isOnline(id));
  const held = new Set<number>(); // girqs the workload disabled and will enable again

  if (w.ipis) {
    const mean = 1e9 / w.ipis.rate;
    const fire = (): void => {
      if (shouldStop()) return;
      const on = onlineCpus();
      const from = rng.pick(on);
      const others = on.length > 1 ? on.filter((c) => c !== from) : on;
      guest.sendIpi(from, rng.pick(others));
      events.ipisSent++;
      clock.schedule(jitter(rng, mean), fire);
    };
    clock.schedule(jitter(rng, mean), fire);
  }

  const enable = (q: GuestIrq): void => {
    if (!held.delete(q.girq)) return;
    guest.enableIrq(q.girq);
    events.enables++;
    // Linux unmasks a level interrupt with SET_PQ_00 and leaves the resend to the hardware;
    // QEMU 7.2 re-fires an asserted LSI only on an EOI, so a line still asserted here stays
    // pending without an event. Record that moment: it accounts for the last trigger.
    if (
      q.kind === 'lsi' &&
      source.pq(q.lisn) === 0 &&
      lsiPins.get(q.lisn)?.some((p) => pinAsserted[p.device]![p.pin])
    ) {
      levelLost[q.lisn] = probe.nextSeq();
      events.lsiLevelsLost++;
    }
  };
  if (w.masks && deviceIrqs.length > 0) {
    const mean = 1e9 / w.masks.rate;
    const hold = w.masks.hold;
    const fire = (): void => {
      if (shouldStop()) return;
      const q = rng.pick(deviceIrqs);
      if (!held.has(q.girq)) {
        held.add(q.girq);
        guest.disableIrq(q.girq);
        events.disables++;
        clock.schedule(jitter(rng, hold), () => enable(q));
      }
      clock.schedule(jitter(rng, mean), fire);
    };
    clock.schedule(jitter(rng, mean), fire);
  }

  if (w.retargets && deviceIrqs.length > 0) {
    const mean = 1e9 / w.retargets.rate;
    const fire = (): void => {
      if (shouldStop()) return;
      const q = rng.pick(deviceIrqs);
      guest.setAffinity(q.girq, rng.pick(onlineCpus()));
      events.retargets++;
      clock.schedule(jitter(rng, mean), fire);
    };
    clock.schedule(jitter(rng, mean), fire);
  }

  if (w.hotplug && s.vcpus > 1) {
    const mean = 1e9 / w.hotplug.rate;
    const minOnline = w.hotplug.minOnline;
    const fire = (): void => {
      if (shouldStop()) return;
      const on = onlineCpus();
      const off = machine.cpus.map((c) => c.id).filter((id) => !guest.isOnline(id));
      const goOnline = off.length > 0 && (on.length <= minOnline || rng.chance(0.5));
      if (goOnline) {
        if (guest.cpuUp(rng.pick(off)) === 0) events.onlines++;
      } else if (on.length > minOnline) {
        if (guest.cpuDown(rng.pick(on)) === 0) events.offlines++;
      }
      clock.schedule(jitter(rng, mean), fire);
    };
    clock.schedule(jitter(rng, mean), fire);
  }

  // --- vCPUs taking interrupts ----------------------------------------------------------------
  const maxSteps = s.options.maxSteps;
  const violations: Violation[] = [];
  const takeInterrupts = (cpu: number): number => {
    let n = 0;
    const c = machine.cpus[cpu]!;
    while (c.externalInterrupt && guest.isOnline(cpu)) {
      guest.handleInterrupt(cpu);
      if (++n > maxSteps) {
        throw new Error(
          `seed ${seed}: vCPU ${cpu} still interrupted after ${maxSteps} handler runs (livelock)`,
        );
      }
    }
    return n;
  };
  /** Run every vCPU with its line high until none is (latency 0). */
  const quiesce = (): void => {
    let rounds = 0;
    for (;;) {
      let any = 0;
      for (const c of machine.cpus)
        if (c.externalInterrupt && guest.isOnline(c.id)) any += takeInterrupts(c.id);
      if (any === 0) break;
      if (++rounds > maxSteps) throw new Error(`seed ${seed}: no quiescence after ${maxSteps} rounds`);
    }
  };
  const scheduled = new Uint8Array(s.vcpus);
  /** With a latency: each vCPU takes its interrupt `latency` ns after its line rose. */
  const scheduleTakes = (): void => {
    for (const c of machine.cpus) {
      if (!c.externalInterrupt || scheduled[c.id] || !guest.isOnline(c.id)) continue;
      scheduled[c.id] = 1;
      clock.schedule(w.latency, () => {
        scheduled[c.id] = 0;
        takeInterrupts(c.id);
      });
    }
  };

  const counters = (): { irqs: IrqCounters[]; queues: QueueCounters[] } => ({
    irqs: irqs.map((q) => ({
      lisn: q.lisn,
      girq: q.girq,
      kind: q.kind,
      triggered: source.counter(q.lisn, XIVE_STAT_TRIGGER),
      triggerForwarded: probe.triggerForwarded[q.lisn]!,
      coalesced: source.counter(q.lisn, XIVE_STAT_COALESCED),
      dropped: source.counter(q.lisn, XIVE_STAT_OFF),
      forwarded: source.counter(q.lisn, XIVE_STAT_FORWARD),
      easMasked: probe.easMasked[q.lisn]!,
      enqueued: probe.enqueued[q.lisn]!,
      consumed: guest.consumed(q.lisn),
      delivered: guest.delivered(q.lisn),
      deferred: guest.deferred(q.lisn),
      enabled: guest.isEnabled(q.girq),
      lastLiveTrigger: probe.lastLiveTrigger[q.lisn]!,
      lastDelivery: lastDelivery[q.lisn]!,
      levelLost: levelLost[q.lisn]!,
      // Under KVM an LSI is an edge IPI fed by trigger stores (asserts, deasserts and the EOI's
      // re-trigger), so the identity holds for it too.
      triggerIdentity: q.kind !== 'lsi' || host !== null,
    })),
    queues: Array.from(probe.endMaxOccupancy, (occ, endIdx) => ({
      cpu: endIdx >>> 3,
      priority: endIdx & 7,
      capacity: guest.queueCapacity(endIdx >>> 3, endIdx & 7),
      maxOccupancy: occ,
    })).filter((q) => q.maxOccupancy > 0),
  });
  const unknownEisns = (): Map<number, number> => {
    const m = new Map<number, number>(probe.strayEnqueued);
    for (const [e, n] of guest.unknownEisns()) m.set(e, (m.get(e) ?? 0) + n);
    return m;
  };
  const check = (final: boolean): Violation[] =>
    checkInvariants({ seed, ...counters(), unknownEisns: unknownEisns() }, final);

  const checkQuiescent = opts.checkQuiescent ?? true;
  const afterStep = (): void => {
    if (w.latency === 0) quiesce();
    else scheduleTakes();
    if (w.latency === 0 || !scheduled.some((x) => x === 1)) {
      events.quiescePoints++;
      if (events.quiescePoints % PROGRESS_EVERY === 0) {
        opts.onProgress?.({
          virtualTimeNs: clock.nanos,
          deviceTriggers: events.deviceTriggers,
          ipisSent: events.ipisSent,
          quiescePoints: events.quiescePoints,
        });
        if (opts.signal?.aborted === true) stopped = true;
      }
      if (checkQuiescent && events.quiescePoints % CHECK_EVERY === 0 && violations.length === 0) {
        violations.push(...check(false));
      }
    }
  };

  // --- run: the workload, then drain, restore and settle ------------------------------------------
  quiesce();
  engine.run(afterStep, shouldStop);
  stopped = true;
  // Pending alarms: stream / operation alarms see `stopped` and do nothing; enables and
  // interrupt takes still run.
  engine.run(afterStep, () => false);
  for (const q of deviceIrqs) if (held.has(q.girq)) enable(q);
  for (const c of machine.cpus) {
    if (!guest.isOnline(c.id) && guest.cpuUp(c.id) === 0) events.onlines++;
  }
  quiesce();
  const virtualTimeNs = clock.nanos;
  const final = check(true);
  const seen = new Set(violations.map((v) => v.message));
  for (const v of final) if (!seen.has(v.message)) violations.push(v);

  // --- result -------------------------------------------------------------------------------------
  const c = counters();
  const irqResults: IrqResult[] = irqs.map((q, i) => {
    const k = c.irqs[i]!;
    return {
      girq: q.girq,
      lisn: q.lisn,
      kind: q.kind,
      device: q.device,
      vector: q.vector,
      target: guest.target(q.girq),
      enabled: k.enabled,
      triggered: k.triggered,
      delivered: k.delivered,
      coalesced: k.coalesced,
      dropped: k.dropped,
      forwarded: k.forwarded,
      enqueued: k.enqueued,
      easMasked: k.easMasked,
    };
  });
  const cpus: CpuResult[] = machine.cpus.map((cpu) => ({
    id: cpu.id,
    online: guest.isOnline(cpu.id),
    delivered: guest.cpuDelivered(cpu.id),
    ipis: guest.cpuIpis(cpu.id),
    extIrqs: cpu.raises,
    acks: probe.acks[cpu.id]!,
    eqEntries: guest.cpuEqEntries(cpu.id),
    offlines: guest.cpuOfflines(cpu.id),
  }));
  const sum = (f: (r: IrqResult) => number): number => irqResults.reduce((a, r) => a + f(r), 0);
  // Under KVM: the host chip's router (the guest's events and the host's escalations).
  const rs = host === null ? machine.xive.router.stats : host.chip.router.stats;
  const hcalls: Record<string, number> = {};
  for (const [op, n] of [...probe.hcalls].sort((a, b) => a[0] - b[0])) {
    hcalls[HCALL_NAMES[op] ?? `0x${op.toString(16)}`] = n;
  }
  return {
    scenario: s.name,
    seed,
    accel: host === null ? 'emulated' : 'kvm',
    virtualTimeNs,
    events,
    router: {
      enqueued: rs.enqueued,
      presented: rs.presented,
      easMasked: rs.easMasked,
      notDispatched: rs.notDispatched,
      endCoalesced: rs.endCoalesced,
    },
    hcalls,
    cpus,
    irqs: irqResults,
    totals: {
      triggered: sum((r) => r.triggered),
      delivered: sum((r) => r.delivered),
      coalesced: sum((r) => r.coalesced),
      dropped: sum((r) => r.dropped),
      enqueued: sum((r) => r.enqueued),
    },
    violations,
  };
}
