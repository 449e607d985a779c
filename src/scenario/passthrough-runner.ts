/**
 * One passthrough scenario under one design: the Linux-like guest boots on an sPAPR
 * machine — in KVM mode on a host model for the option-1–4 designs, emulated for the reference —
 * and its passthrough functions are hot-plugged and unplugged `cycles` times with seeded MSI
 * traffic in between, while userspace maps the KVM device's ESB range as the scenario says.
 * After every step the design invariants are checked on the real state (page tables,
 * partition-scoped entries, memslots, VMAs, the design's own counters); the guest-visible view
 * and delivery trace are kept for the comparison with the emulated reference (I6), and every
 * cost is a count of the model's paths running.
 *
 * The emulated reference runs the same MSIs, at the same points, from the same functions, passed
 * through with vfio-pci on a host of its own but with no KVM (kernel_irqchip=off): the VMM's main
 * loop reads each vector's eventfd and pulses the emulated source. */

import {
  isolationViolations,
  type PassthroughIrq,
  PqModel,
  routingViolations,
} from '../check/passthrough.ts';
import { DEDICATED_LISN_BASE } from '../designs/dedicated-irqs.ts';
import { type Design, DesignStats } from '../designs/design.ts';
import { GuestKernel } from '../guest/kernel.ts';
import { ENOSPC } from '../host/errno.ts';
import type { Host } from '../host/host.ts';
import type { KvmVm } from '../host/kvm/kvm.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../host/mm/constants.ts';
import type { HostProcess } from '../host/syscalls.ts';
import { Word64 } from '../hw/mmio.ts';
import { PciDevice } from '../hw/phb.ts';
import { Rng } from '../sim/rng.ts';
import type { Trace } from '../sim/trace.ts';
import type { TraceSink } from '../sim/trace-sink.ts';
import { NULL_TRACE } from '../sim/trace-sink.ts';
import { migrate } from '../vmm/migration.ts';
import type { SpaprMachine } from '../vmm/spapr-machine.ts';
import { spaprEoiPageGpa } from '../vmm/spapr-xive.ts';
import { VmmVfioPci } from '../vmm/vfio-pci.ts';
import { COST_TABLE_NS, type CostCounts, SERIES, type Series } from './cell.ts';
import { GuestVcpuSlot, moveGuest } from './guest-port.ts';
import { PassthroughPlan, type PtFunction } from './passthrough-machine.ts';
import type { PassthroughSpec, Scenario } from './schema.ts';

/** Host page size (64 KiB). */
const P = 0x1_0000;
const RW = PROT_READ | PROT_WRITE;

/** The invariants a passthrough run checks on the host/VMM state as it goes. */
export type StateInvariant = 'I1' | 'I2' | 'I3' | 'I7';

/** One violation found during a run. */
export interface StepViolation {
  readonly message: string;
  /** The cycle it appeared in (0-based). */
  readonly cycle: number;
}

/** Where a run stood at the end of one of its cycles (what a run stopped there reports). */
export interface CycleEnd {
  readonly handled: Map<string, number>;
  readonly expected: Map<string, number>;
  /** Length of `deliveries` then. */
  readonly deliveries: number;
  /** Events the run's trace had recorded then (0 untraced). */
  readonly traced: number;
}

/** What the invariants read of a run: a whole run or, by {@link runPrefix}, a prefix of it. */
export type RunFindingsInput = Pick<
  PassthroughRun,
  'view' | 'handled' | 'expected' | 'deliveries' | 'violations'
>;

/** What one run produced. */
export interface PassthroughRun {
  /** The guest's view of its interrupts: numbers, ESB addresses, flags (I6). */
  readonly view: string[];
  /** Handled interrupts per `device:vector`. */
  readonly handled: Map<string, number>;
  /** Expected deliveries per `device:vector` from the PQ model of the same events (I4/I5). */
  readonly expected: Map<string, number>;
  /** Every handled device interrupt in order: `cpu device:vector` (I6). */
  readonly deliveries: string[];
  readonly violations: Record<StateInvariant, StepViolation[]>;
  readonly costs: CostCounts;
  readonly series: Series[];
  readonly notes: string[];
  /** Cycles run. */
  readonly cycles: number;
  /** Per cycle run, where the run stood at its end. */
  readonly ends: readonly CycleEnd[];
}

/** Another mapping of the KVM device's ESB range (a second mmap, a forked helper, a peer). */
interface ExtraMapping {
  readonly p: HostProcess;
  readonly base: number;
  readonly len: number;
  readonly pgoff: number;
}

/** Faults and zapped PTEs over every process of `hosts`. */
function mmTotals(hosts: readonly Host[]): { faults: number; zapped: number } {
  let faults = 0;
  let zapped = 0;
  for (const p of hosts.flatMap((h) => h.mm.processes)) {
    faults += p.mm.stats.fileFaults;
    zapped += p.mm.stats.ptesZapped;
  }
  return { faults, zapped };
}

/** The guest of a passthrough run: booted with the emulated devices probed, recording deliveries. */
class PassthroughGuest {
  readonly slots: GuestVcpuSlot[];
  readonly kernel: GuestKernel;
  /** Handled interrupts per `device:vector`. */
  readonly handled = new Map<string, number>();
  /** Every handled device interrupt in order: `cpu device:vector`. */
  readonly deliveries: string[] = [];

  constructor(machine: SpaprMachine, baseName: ReadonlyMap<number, string>, trace: TraceSink) {
    // Boot with the emulated devices probed; the passthrough functions appear at their first plug.
    this.slots = machine.cpus.map((c) => new GuestVcpuSlot(c));
    const guest = new GuestKernel(this.slots, machine.deviceTree(), trace);
    this.kernel = guest;
    const booted = guest.boot();
    if (booted !== 0) throw new Error(`guest boot failed: ${booted}`);
    guest.drivers.forEach((drv, i) => {
      if (baseName.has(i)) return;
      const rc = guest.probe(drv);
      if (rc !== 0) throw new Error(`guest probe of ${drv.name} failed: ${rc}`);
    });
    guest.drivers.forEach((drv) => {
      const name = baseName.get(guest.drivers.indexOf(drv)) ?? drv.name;
      drv.onInterrupt = (kind, v, cpu) => {
        const key = `${name}:${kind === 'msi' ? v : `lsi${v}`}`;
        this.handled.set(key, (this.handled.get(key) ?? 0) + 1);
        this.deliveries.push(`${cpu} ${key}`);
      };
    });
  }

  /** The guest's view of its interrupts: numbers, ESB addresses, flags (I6). */
  view(): string[] {
    const guest = this.kernel;
    return guest.irqs().map((q) => {
      const xd = q.kind === 'ipi' ? guest.xive.xcs[q.vector]!.ipiData : guest.core.descs[q.girq]!.xd!;
      return `${q.kind} ${q.device}:${q.vector} virq ${q.girq} LISN 0x${q.lisn.toString(16)} eoi 0x${xd.eoiPage.toString(16)} trig 0x${xd.trigPage.toString(16)} flags 0x${xd.flags.toString(16)}`;
    });
  }

  /** Every vCPU takes what is pending. */
  takeAll(): void {
    for (let c = 0; c < this.slots.length; c++) this.kernel.takePendingInterrupts(c);
  }
}

/** The costs and plot series a passthrough run measures as it goes. */
class PassthroughMeter {
  vmasPeak: number;
  bound = 0;
  bypassFailed = 0;
  /** The irqs of the functions whose binds were refused at the memslot limit this cycle. */
  readonly refusedLisns: number[] = [];
  readonly boundSeries: [number, number][] = [];
  /** Per bind refused at the memslot limit: [vectors asked for, memslots the VM would need]. */
  readonly wantedSeries: [number, number][] = [];
  readonly bindCostMappings: [number, number][] = [];
  readonly bindCostVmas: [number, number][] = [];
  /** [memslot updates, partition faults, VMM exits] of the machines migrated away from. */
  readonly retired: number[][] = [];

  constructor(vmas: number) {
    this.vmasPeak = vmas;
  }
}

/** One passthrough run: the hosts, machine and guest, the cycles, the checks after each step. */
class PassthroughDriver {
  private readonly pt: PassthroughSpec;
  private readonly design: Design;
  private readonly seed: number;
  private readonly plan: PassthroughPlan;
  private readonly dstats = new DesignStats();
  private readonly notes: string[] = [];
  private readonly violations: Record<StateInvariant, StepViolation[]> = { I1: [], I2: [], I3: [], I7: [] };
  private cycle = 0;
  private host: Host;
  /** Every host the run used (a migration adds the destination's): costs add up over them. */
  private readonly hosts: Host[];
  private machine: SpaprMachine;
  private readonly guest: PassthroughGuest;
  private vm: KvmVm | null;
  private proc: HostProcess;
  private readonly extra: ExtraMapping[] = [];
  private readonly meter: PassthroughMeter;
  private readonly model = new PqModel();
  private readonly w = new Word64();
  private uafSeen = 0;
  /** The trace the run records into, if any (its count marks each cycle's end). */
  private readonly traced: Trace | null;

  constructor(s: Scenario, design: Design, seed: number, trace: TraceSink, traced: Trace | null) {
    this.traced = traced;
    this.pt = s.passthrough!;
    this.design = design;
    this.seed = seed;
    const seam = design.accel === 'kvm' ? design.kernelSeam(this.dstats) : null;
    this.plan = new PassthroughPlan(s, design, seam, trace);
    this.host = this.plan.newHost();
    this.hosts = [this.host];
    this.machine = this.plan.newMachine(this.host, false);
    for (const f of this.plan.fns) f.lisns = this.machine.devices[f.deviceIndex]!.msis;
    if (this.plan.dedicated && this.plan.fns.some((f) => f.lisns[0]! < DEDICATED_LISN_BASE))
      throw new Error('the machine did not claim the dedicated irq numbers');
    this.guest = new PassthroughGuest(this.machine, this.plan.baseName, trace);
    this.vm = this.host.kvm.vms[0] ?? null;
    this.proc = this.machine.vmm!.proc;
    if (!this.pt.mappings.late) this.mapExtra();
    this.meter = new PassthroughMeter(this.proc.proc.mm.vmas.count);
  }

  /** Run at most `maxCycles` cycles. */
  run(maxCycles: number | undefined): PassthroughRun {
    const rng = new Rng(this.seed);
    const cycles = Math.min(this.plan.totalCycles, maxCycles ?? this.plan.totalCycles);
    let view: string[] = [];
    const ends: CycleEnd[] = [];
    for (this.cycle = 0; this.cycle < cycles; this.cycle++) {
      if (this.cycle === this.pt.cycles) this.migrate();
      for (const f of this.plan.fns) {
        f.deviceIndex = f.instances[this.cycle]!;
        f.lisns = this.machine.devices[f.deviceIndex]!.msis;
      }
      this.plugAll();
      if (this.cycle === 0) view = this.guest.view();
      this.checkAfterPlug();
      this.traffic(rng);
      this.unplugAll();
      const { handled, deliveries } = this.guest;
      ends.push({
        handled: new Map(handled),
        expected: new Map(this.model.expected),
        deliveries: deliveries.length,
        traced: this.traced?.total ?? 0,
      });
    }
    return {
      view,
      handled: this.guest.handled,
      expected: this.model.expected,
      deliveries: this.guest.deliveries,
      violations: this.violations,
      costs: this.costs(),
      series: this.series(),
      notes: this.finalNotes(),
      cycles,
      ends,
    };
  }

  private violate(inv: StateInvariant, message: string): void {
    this.violations[inv].push({
      message: `${message} (cycle ${this.cycle}, seed ${this.seed})`,
      cycle: this.cycle,
    });
  }

  // --- userspace mappings of the ESB range (KVM designs) -----------------------------------

  private get esbLen(): number {
    return this.machine.xive.nrIrqs * 2 * P;
  }

  /** Whoever else maps the ESB range keeps using it (a monitor reading PQs, say). */
  private touchExtra(): void {
    for (const m of this.extra)
      for (const f of this.plan.fns)
        for (const lisn of f.lisns) {
          const off = (2 * lisn + 1 - (m.pgoff - 4)) * P;
          if (off >= 0 && off < m.len) m.p.load(m.base + off + 0x800, 8, new Word64());
        }
  }

  /** The scenario's other mappings of the KVM device's ESB range. */
  private mapExtra(): void {
    if (this.machine.xiveKvm === null) return;
    const devFd = this.machine.xiveKvm.fd;
    const m = this.pt.mappings;
    const proc = this.proc;
    const esbLen = this.esbLen;
    if (m.second) {
      const base = proc.mmap(0, esbLen, RW, MAP_SHARED, devFd, 4 * P);
      if (base < 0) this.violate('I7', `second ESB mmap failed: ${base}`);
      else if (m.drop) {
        for (const f of this.plan.fns)
          for (const lisn of f.lisns) proc.load(base + (2 * lisn + 1) * P + 0x800, 8, new Word64());
        proc.munmap(base, esbLen);
      } else if (m.split && proc.munmap(base, 2 * P) === 0)
        this.extra.push({ p: proc, base: base + 2 * P, len: esbLen - 2 * P, pgoff: 6 });
      else this.extra.push({ p: proc, base, len: esbLen, pgoff: 4 });
    }
    if (m.fork) {
      const child = proc.fork();
      if (typeof child === 'number') this.violate('I7', `fork of the VMM failed: ${child}`);
      else this.extra.push({ p: child, base: this.machine.xiveKvm.esbMmap, len: esbLen, pgoff: 4 });
    }
    if (m.scmRights) {
      const peer = this.host.spawn();
      const pfd = proc.sendFd(peer, devFd);
      const base = peer.mmap(0, esbLen, RW, MAP_SHARED, pfd, 4 * P);
      if (base < 0) this.violate('I7', `SCM_RIGHTS peer ESB mmap failed: ${base}`);
      else this.extra.push({ p: peer, base, len: esbLen, pgoff: 4 });
    }
    this.touchExtra();
  }

  // --- checks --------------------------------------------------------------------------------

  private seeVmas(): void {
    const n = this.proc.proc.mm.vmas.count;
    if (n > this.meter.vmasPeak) this.meter.vmasPeak = n;
    if (n > this.pt.maxMapCount)
      this.violate('I7', `${n} VMAs in the VMM exceed vm.max_map_count ${this.pt.maxMapCount}`);
  }

  /** I1 over every passthrough irq of the current plug. */
  private checkRouting(): void {
    if (this.vm === null) return;
    const irqs: PassthroughIrq[] = this.plan.fns.flatMap((f) =>
      f.lisns.map((lisn, v) => ({
        label: `${f.name} vector ${v}`,
        lisn,
        mgmtGpa: spaprEoiPageGpa(lisn),
        retired: this.plan.dedicated && f.pdev === null,
      })),
    );
    const cpu = this.machine.cpus[0]!;
    const probe = (gpa: number): void => cpu.load(gpa, 8, this.w);
    for (const m of routingViolations(this.host, this.vm, irqs, probe)) this.violate('I1', m);
  }

  /** I2 once function `f` has left. */
  private checkIsolation(f: PtFunction): void {
    const phb = this.host.phbs[f.phb]!;
    for (const m of isolationViolations(this.host, this.vm, (pfn) => phb.pfnInSlot(f.slot, pfn), f.name))
      this.violate('I2', m);
  }

  /** I3: the design touched a freed kernel object. */
  private checkUaf(): void {
    const uaf = this.dstats.useAfterFree;
    if (uaf > this.uafSeen) {
      this.violate('I3', `re-point through a VMA freed by munmap (${uaf - this.uafSeen} time(s))`);
      this.uafSeen = uaf;
    }
  }

  /** After the plug: vectors irq bypass could not map (I7), then I1, I3 and the VMAs. */
  private checkAfterPlug(): void {
    const failed = (this.vm?.irqfds.stats.setPassthruFailed ?? 0) - this.meter.bypassFailed;
    if (failed > 0) {
      this.violate(
        'I7',
        `${failed} vector(s) not mapped by irq bypass (KVMPPC_PIRQ_MAPPED = 1024 per VM): they are injected through their IPI instead`,
      );
      this.meter.bypassFailed += failed;
    }
    this.checkRouting();
    this.checkUaf();
    this.seeVmas();
  }

  // --- the cycle -----------------------------------------------------------------------------

  /**
   * Migration with every function unplugged: a fresh host (same design), the destination
   * waiting for the stream, the guest moved over. Helpers stay behind on the old host.
   */
  private migrate(): void {
    const h = this.plan.newHost();
    const dst = this.plan.newMachine(h, true);
    const ms = migrate(this.machine, dst);
    this.notes.push(
      `migrated after cycle ${this.cycle - 1}: ${ms.ramPages} RAM pages, ${ms.validSources} sources`,
    );
    moveGuest({ kernel: this.guest.kernel, slots: this.guest.slots }, dst);
    this.meter.retired.push(this.kvmTotals());
    this.host = h;
    this.hosts.push(h);
    this.machine = dst;
    this.vm = h.kvm.vms[0] ?? null;
    this.proc = dst.vmm!.proc;
    this.extra.length = 0;
  }

  /** Plug every function (QEMU's vfio-pci, with the design's VMM seam); the guest probes them. */
  private plugAll(): void {
    for (const f of this.plan.fns) this.plug(f);
    if (this.cycle === 0 && this.pt.mappings.late) this.mapExtra();
    else this.touchExtra();
    // The guest sees the new function and its driver probes: request_irq of every vector
    // (startup: H_INT_SET_SOURCE_CONFIG with EISN = virq, then the unmask on its ESB page).
    const guest = this.guest.kernel;
    for (const f of this.plan.fns) {
      const rc = guest.probe(guest.drivers[f.deviceIndex]!);
      if (rc !== 0) throw new Error(`guest probe of ${f.name} failed: ${rc}`);
    }
  }

  private plug(f: PtFunction): void {
    const m = this.meter;
    const before = mmTotals(this.hosts);
    const visited = this.dstats.vmasVisited;
    const vmas = this.proc.proc.mm.vmas.count;
    const pdev = new PciDevice({ name: f.name, msix: f.vectors });
    if (!this.host.phbs[f.phb]!.plug(f.slot, pdev)) throw new Error(`slot ${f.phb}:${f.slot} busy`);
    const seam = this.design.accel === 'kvm' ? (this.design.vmmSeam?.() ?? null) : null;
    const dev = VmmVfioPci.plug(this.machine, { phb: f.phb, slot: f.slot, pdev }, f.lisns, seam);
    if (typeof dev === 'number') {
      this.host.phbs[f.phb]!.unplug(f.slot);
      if (dev === -ENOSPC && seam?.memslotsWanted !== undefined) {
        // Refused at the memslot limit: what the VM would need for everything asked for so far.
        m.refusedLisns.push(...f.lisns);
        const wanted = seam.memslotsWanted(this.machine, m.refusedLisns);
        m.wantedSeries.push([m.bound + m.refusedLisns.length, wanted]);
        this.violate(
          'I7',
          `${f.name}: passthrough set-up failed: ${dev} (the VM would need ${wanted} memslots, KVM has ${this.host.kvm.maxMemslots})`,
        );
        return;
      }
      this.violate('I7', `${f.name}: passthrough set-up failed: ${dev}`);
      return;
    }
    f.pdev = pdev;
    f.vfio = dev;
    for (let v = 0; v < f.vectors; v++) pdev.setVectorMask(v, false);
    m.bound += f.vectors;
    if (this.vm !== null) m.boundSeries.push([m.bound, this.vm.stats.memslotsUsed]);
    const after = mmTotals(this.hosts);
    const cost =
      (after.zapped - before.zapped) * COST_TABLE_NS.pteZapped +
      (this.dstats.vmasVisited - visited) * COST_TABLE_NS.vmaVisited +
      (after.faults - before.faults) * COST_TABLE_NS.hostFault;
    m.bindCostMappings.push([1 + this.extra.length, cost]);
    m.bindCostVmas.push([vmas, cost]);
  }

  /** Seeded MSIs from the functions, the guest taking them now and then; the PQ model follows. */
  private traffic(rng: Rng): void {
    const fns = this.plan.fns;
    for (let i = 0; i < this.pt.msisPerCycle; i++) {
      const f = fns[rng.index(fns.length)]!;
      const v = rng.index(f.vectors);
      f.pdev?.raiseMsi(v);
      this.model.raise(`${f.name}:${v}`);
      if (rng.chance(this.pt.takeEvery)) {
        this.guest.takeAll();
        this.model.take();
      }
    }
    this.guest.takeAll();
    this.model.take();
    if (this.pt.unbindPending && fns.length > 0) {
      const f = fns[0]!;
      f.pdev?.raiseMsi(0);
      this.model.raise(`${f.name}:0`);
    }
  }

  /**
   * Unplug: the host side first (QEMU's vfio-pci exit: clr_mapped re-points the pages), then
   * the guest takes what is pending and its driver goes (free_irq).
   */
  private unplugAll(): void {
    for (const f of this.plan.fns) {
      if (f.vfio === null) continue;
      for (let v = 0; v < f.vectors; v++) f.pdev!.setVectorMask(v, true);
      const rc = f.vfio.unplug();
      if (rc !== 0) this.notes.push(`cycle ${this.cycle}: ${f.name} unplug returned ${rc}`);
      this.meter.bound -= f.vectors;
      f.vfio = null;
      f.pdev = null;
      this.checkIsolation(f);
    }
    this.meter.refusedLisns.length = 0;
    this.guest.takeAll();
    this.checkRouting();
    const guest = this.guest.kernel;
    for (const f of this.plan.fns) guest.remove(guest.drivers[f.deviceIndex]!);
    this.checkUaf();
    this.seeVmas();
  }

  // --- costs ---------------------------------------------------------------------------------

  /** [memslot updates, partition faults, VMM exits] of the current machine. */
  private kvmTotals(): number[] {
    const vm = this.vm;
    return vm === null
      ? [0, 0, 0]
      : [
          this.machine.kvm?.listener?.ioctls ?? 0,
          vm.stats.partitionFaults,
          vm.stats.mmioExits + vm.stats.hcallExits,
        ];
  }

  private costs(): CostCounts {
    const mm = mmTotals(this.hosts);
    let hcalls = 0;
    for (const n of this.guest.kernel.hcallCounts().values()) hcalls += n;
    const kvmNow = this.kvmTotals();
    const sum = (i: number): number =>
      this.meter.retired.reduce((n, t) => n + (t[i] ?? 0), 0) + (kvmNow[i] ?? 0);
    return {
      memslotsPeak: Math.max(0, ...this.hosts.flatMap((h) => h.kvm.vms.map((v) => v.stats.memslotsPeak))),
      memslotUpdates: sum(0),
      vmasPeak: this.meter.vmasPeak,
      hostFaults: mm.faults,
      partitionFaults: sum(1),
      ptesZapped: mm.zapped,
      vmasVisited: this.dstats.vmasVisited,
      vmmExits: this.design.accel === 'kvm' ? sum(2) : hcalls,
      hcalls,
    };
  }

  private series(): Series[] {
    if (this.design.accel !== 'kvm') return [];
    const m = this.meter;
    return [
      {
        name: SERIES.memslotsVsVectors,
        x: 'passthrough vectors bound',
        y: 'KVM memslots',
        points: m.boundSeries,
      },
      {
        name: SERIES.memslotsWantedVsVectors,
        x: 'passthrough vectors asked for',
        y: 'KVM memslots needed',
        points: m.wantedSeries,
      },
      {
        name: SERIES.bindCostVsMappings,
        x: 'mappings of the ESB range',
        y: 'bind cost (ns)',
        points: m.bindCostMappings,
      },
      { name: SERIES.bindCostVsVmas, x: 'VMAs in the VMM', y: 'bind cost (ns)', points: m.bindCostVmas },
    ];
  }

  private finalNotes(): string[] {
    if (this.design.accel !== 'kvm')
      this.notes.push(
        'emulated reference: the functions are emulated devices of the VMM (kernel_irqchip=off)',
      );
    else
      this.notes.push(
        `I1 is checked with a PQ GET probe of every passthrough irq's EOI page after each plug and unplug`,
      );
    return this.notes;
  }
}

/**
 * Run scenario `s` under `design` with `seed`, for at most `maxCycles` cycles (bisection of a
 * violation uses fewer).
 */
export function runPassthrough(
  s: Scenario,
  design: Design,
  seed: number,
  opts: { trace?: Trace; maxCycles?: number } = {},
): PassthroughRun {
  if (s.passthrough === undefined) throw new Error(`scenario ${s.name} has no passthrough section`);
  const trace = opts.trace ?? null;
  return new PassthroughDriver(s, design, seed, trace ?? NULL_TRACE, trace).run(opts.maxCycles);
}

/**
 * What the run with `maxCycles: cycles` (at most `run.cycles`) would give the invariants, read
 * off `run`: the first `cycles` cycles of a run are the same whatever it stops after (the same
 * seeded steps, and nothing after the last cycle changes what the invariants read), so its
 * violations are those of these cycles, its deliveries and counts those at the end of the last.
 */
export function runPrefix(run: PassthroughRun, cycles: number): RunFindingsInput {
  if (cycles === run.cycles) return run;
  const end = run.ends[cycles - 1];
  if (end === undefined) throw new Error(`runPrefix: ${cycles} cycles of a run of ${run.cycles}`);
  const v = run.violations;
  const upTo = (k: StateInvariant): StepViolation[] => v[k].filter((x) => x.cycle < cycles);
  return {
    view: run.view,
    handled: end.handled,
    expected: end.expected,
    deliveries: run.deliveries.slice(0, end.deliveries),
    violations: { I1: upTo('I1'), I2: upTo('I2'), I3: upTo('I3'), I7: upTo('I7') },
  };
}
