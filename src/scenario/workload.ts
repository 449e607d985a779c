/**
 * The workload driver of a run: the scenario's device trigger streams (MSIs and INTx levels) and
 * the guest operations it asks for — IPIs, disable/enable (masks), affinity changes (retargets),
 * CPU hotplug — scheduled on the run's {@link SimClock} from its seeded {@link Rng}, until the
 * workload's trigger count or duration is reached. After the run it restores the guest: every
 * irq it disabled enabled again, every vCPU it took down back online.
 */

import type { Rng } from '../sim/rng.ts';
import { SPAPR_XIVE_NR_IRQS } from '../vmm/spapr-irq.ts';
import type { GuestIrq, GuestPort } from './guest-port.ts';
import type { RunSetup } from './run-machine.ts';
import type { StreamSpec, WorkloadSpec } from './schema.ts';

/** Rate used for devices when a scenario lists no streams. */
const DEFAULT_RATE = 1e6;

/** A device trigger stream, resolved to the device and its vectors. */
interface LiveStream {
  readonly spec: StreamSpec;
  readonly deviceIndex: number;
  readonly vectors: readonly number[];
  /** Mean interval in virtual ns. */
  readonly mean: number;
  rr: number;
}

/** What the driver did, for the result. */
export interface WorkloadEvents {
  deviceTriggers: number;
  ipisSent: number;
  disables: number;
  enables: number;
  retargets: number;
  offlines: number;
  onlines: number;
  lsiLevelsLost: number;
  quiescePoints: number;
}

/** Uniform jitter with the given mean (≥ 1 ns). */
function jitter(rng: Rng, mean: number): number {
  const m = Math.max(1, Math.round(mean));
  return m === 1 ? 1 : rng.int(1, 2 * m - 1);
}

/** One stream per device kind at the default rate, when the scenario lists none. */
function defaultStreams(setup: RunSetup): StreamSpec[] {
  return setup.scenario.devices.flatMap((d) => {
    const out: StreamSpec[] = [];
    if (d.msis > 0)
      out.push({ device: d.name, kind: 'msi', rate: DEFAULT_RATE, pattern: 'uniform', burst: 8 });
    if (d.lsis > 0)
      out.push({ device: d.name, kind: 'lsi', rate: DEFAULT_RATE / 10, pattern: 'uniform', burst: 8 });
    return out;
  });
}

export class WorkloadDriver {
  readonly events: WorkloadEvents = {
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
  /** Per LISN: the run sequence of its last delivery, −1 none. */
  readonly lastDelivery: Float64Array;
  /** Per LISN: when an enable left an asserted LSI pending with no event (see `enable`). */
  readonly levelLost: Float64Array;
  /** The guest's device interrupts (what masks and retargets pick from). */
  readonly deviceIrqs: readonly GuestIrq[];
  private readonly setup: RunSetup;
  private readonly guest: GuestPort;
  private readonly rng: Rng;
  private readonly w: WorkloadSpec;
  private readonly byLisn = new Map<number, GuestIrq>();
  /** INTx lines are shared between devices (PHB swizzle): the LISN's asserted pins. */
  private readonly lsiPins = new Map<number, { device: number; pin: number }[]>();
  private readonly pinAsserted: Uint8Array[];
  /** girqs the workload disabled and will enable again. */
  private readonly held = new Set<number>();
  private readonly maxTriggers: number;
  private readonly endTime: number;
  private stopped = false;

  constructor(setup: RunSetup, guest: GuestPort, rng: Rng) {
    this.setup = setup;
    this.guest = guest;
    this.rng = rng;
    this.w = setup.scenario.workload;
    const irqs = guest.irqs();
    this.deviceIrqs = irqs.filter((q) => q.kind !== 'ipi');
    for (const q of irqs) this.byLisn.set(q.lisn, q);
    const devices = setup.machine.devices;
    devices.forEach((d, di) => {
      d.lsis.forEach((lisn, pin) => {
        const l = this.lsiPins.get(lisn) ?? [];
        l.push({ device: di, pin });
        this.lsiPins.set(lisn, l);
      });
    });
    this.pinAsserted = devices.map((d) => new Uint8Array(d.lsis.length));
    this.lastDelivery = new Float64Array(SPAPR_XIVE_NR_IRQS).fill(-1);
    this.levelLost = new Float64Array(SPAPR_XIVE_NR_IRQS).fill(-1);
    this.maxTriggers = this.w.triggers ?? Number.POSITIVE_INFINITY;
    this.endTime = this.w.duration ?? Number.POSITIVE_INFINITY;
    const guestOnDeliver = guest.onDeliver;
    guest.onDeliver = (lisn: number, cpu: number) => {
      guestOnDeliver(lisn, cpu); // a recording guest's own (bootGuestOnSlots)
      this.delivered(lisn);
    };
  }

  /** The workload reached its trigger count or duration (sticky once true). */
  readonly shouldStop = (): boolean => {
    if (
      !this.stopped &&
      (this.events.deviceTriggers >= this.maxTriggers || this.setup.clock.nanos >= this.endTime)
    )
      this.stopped = true;
    return this.stopped;
  };

  /** Stop scheduling: pending stream and operation alarms do nothing from now on. */
  stop(): void {
    this.stopped = true;
  }

  /** Schedule every stream and operation the scenario asks for (in a fixed order: the rng). */
  start(): void {
    this.startStreams();
    this.every(this.w.ipis?.rate, () => this.sendIpi());
    if (this.deviceIrqs.length > 0) {
      this.every(this.w.masks?.rate, () => this.mask());
      this.every(this.w.retargets?.rate, () => this.retarget());
    }
    if (this.setup.scenario.vcpus > 1) this.every(this.w.hotplug?.rate, () => this.hotplug());
  }

  /** After the run: enable what the workload still holds disabled, bring every vCPU online. */
  restore(): void {
    for (const q of this.deviceIrqs) if (this.held.has(q.girq)) this.enable(q);
    for (const c of this.setup.machine.cpus) {
      if (!this.guest.isOnline(c.id) && this.guest.cpuUp(c.id) === 0) this.events.onlines++;
    }
  }

  /** A handler ran for `lisn`: stamp the delivery; the driver's handler clears the device's
   * interrupt status, so its INTx pins drop. */
  private delivered(lisn: number): void {
    this.lastDelivery[lisn] = this.setup.probe.nextSeq();
    const pins = this.lsiPins.get(lisn);
    if (pins === undefined) return;
    for (const p of pins) {
      if (this.pinAsserted[p.device]![p.pin]) {
        this.pinAsserted[p.device]![p.pin] = 0;
        this.setup.machine.devices[p.device]!.setLsi(p.pin, 0);
      }
    }
  }

  /** Run `op` at jittered intervals of mean 1/`rate` s while the workload runs (no rate: never). */
  private every(rate: number | undefined, op: () => void): void {
    if (rate === undefined) return;
    const mean = 1e9 / rate;
    const clock = this.setup.clock;
    const fire = (): void => {
      if (this.shouldStop()) return;
      op();
      clock.schedule(jitter(this.rng, mean), fire);
    };
    clock.schedule(jitter(this.rng, mean), fire);
  }

  private startStreams(): void {
    const s = this.setup.scenario;
    const devices = this.setup.machine.devices;
    const specs = this.w.streams ?? defaultStreams(this.setup);
    for (const spec of specs) {
      const deviceIndex = s.devices.findIndex((d) => d.name === spec.device);
      const d = devices[deviceIndex]!;
      const n = spec.kind === 'msi' ? d.msis.length : d.lsis.length;
      const vectors = spec.vectors ?? Array.from({ length: n }, (_, i) => i);
      const perEvent = spec.pattern === 'bursts' ? spec.burst : 1;
      const st: LiveStream = { spec, deviceIndex, vectors, mean: (1e9 / spec.rate) * perEvent, rr: 0 };
      // Round-robin keeps a fixed phase; the random patterns start at a random point.
      const first =
        spec.pattern === 'round-robin' ? Math.max(1, Math.round(st.mean)) : jitter(this.rng, st.mean);
      this.setup.clock.schedule(first, () => this.fireStream(st));
    }
  }

  private fireStream(st: LiveStream): void {
    if (this.shouldStop()) return;
    const clock = this.setup.clock;
    switch (st.spec.pattern) {
      case 'uniform':
        this.trigger(st, this.rng.pick(st.vectors));
        clock.schedule(jitter(this.rng, st.mean), () => this.fireStream(st));
        break;
      case 'round-robin':
        this.trigger(st, st.vectors[st.rr]!);
        st.rr = (st.rr + 1) % st.vectors.length;
        clock.schedule(Math.max(1, Math.round(st.mean)), () => this.fireStream(st));
        break;
      case 'bursts': {
        const v = this.rng.pick(st.vectors);
        for (let i = 0; i < st.spec.burst; i++) this.trigger(st, v);
        clock.schedule(jitter(this.rng, st.mean), () => this.fireStream(st));
        break;
      }
    }
  }

  private trigger(st: LiveStream, v: number): void {
    if (this.shouldStop()) return;
    this.events.deviceTriggers++;
    const d = this.setup.machine.devices[st.deviceIndex]!;
    if (st.spec.kind === 'msi') {
      d.raiseMsi(v);
      return;
    }
    // A level interrupt: re-asserting an asserted pin changes nothing on the line.
    if (this.pinAsserted[st.deviceIndex]![v]) return;
    const lisn = d.lsis[v]!;
    // Only an assertion the guest can take counts as a trigger of an enabled source: an LSI
    // asserted while the guest has it (lazily) disabled is masked when it fires, and QEMU 7.2's
    // SET_PQ_00 on enable_irq does not re-fire a still-asserted line (Linux leaves level
    // resends to the hardware), so it stays pending until the line drops. A pin joining a
    // shared INTx line that is already high makes no edge either.
    if (
      !this.lineHigh(lisn) &&
      this.setup.source.pq(lisn) !== 1 &&
      this.guest.isEnabled(this.byLisn.get(lisn)!.girq)
    ) {
      this.setup.probe.noteLiveTrigger(lisn);
    }
    this.pinAsserted[st.deviceIndex]![v] = 1;
    d.setLsi(v, 1);
  }

  /** Some pin of the INTx line behind `lisn` is asserted. */
  private lineHigh(lisn: number): boolean {
    return this.lsiPins.get(lisn)?.some((p) => this.pinAsserted[p.device]![p.pin] === 1) ?? false;
  }

  private onlineCpus(): number[] {
    return this.setup.machine.cpus.map((c) => c.id).filter((id) => this.guest.isOnline(id));
  }

  private sendIpi(): void {
    const on = this.onlineCpus();
    const from = this.rng.pick(on);
    const others = on.length > 1 ? on.filter((c) => c !== from) : on;
    this.guest.sendIpi(from, this.rng.pick(others));
    this.events.ipisSent++;
  }

  private mask(): void {
    const q = this.rng.pick(this.deviceIrqs);
    if (this.held.has(q.girq)) return;
    this.held.add(q.girq);
    this.guest.disableIrq(q.girq);
    this.events.disables++;
    this.setup.clock.schedule(jitter(this.rng, this.w.masks!.hold), () => this.enable(q));
  }

  private enable(q: GuestIrq): void {
    if (!this.held.delete(q.girq)) return;
    this.guest.enableIrq(q.girq);
    this.events.enables++;
    // Linux unmasks a level interrupt with SET_PQ_00 and leaves the resend to the hardware;
    // QEMU 7.2 re-fires an asserted LSI only on an EOI, so a line still asserted here stays
    // pending without an event. Record that moment: it accounts for the last trigger.
    if (q.kind === 'lsi' && this.setup.source.pq(q.lisn) === 0 && this.lineHigh(q.lisn)) {
      this.levelLost[q.lisn] = this.setup.probe.nextSeq();
      this.events.lsiLevelsLost++;
    }
  }

  private retarget(): void {
    const q = this.rng.pick(this.deviceIrqs);
    this.guest.setAffinity(q.girq, this.rng.pick(this.onlineCpus()));
    this.events.retargets++;
  }

  private hotplug(): void {
    const on = this.onlineCpus();
    const off = this.setup.machine.cpus.map((c) => c.id).filter((id) => !this.guest.isOnline(id));
    const minOnline = this.w.hotplug!.minOnline;
    const goOnline = off.length > 0 && (on.length <= minOnline || this.rng.chance(0.5));
    if (goOnline) {
      if (this.guest.cpuUp(this.rng.pick(off)) === 0) this.events.onlines++;
    } else if (on.length > minOnline) {
      if (this.guest.cpuDown(this.rng.pick(on)) === 0) this.events.offlines++;
    }
  }
}
