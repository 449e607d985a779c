/**
 * One passthrough scenario under one design (issue 5): the Linux-like guest boots on an sPAPR
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
import { createHost, type Host } from '../host/host.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../host/mm/constants.ts';
import type { HostProcess } from '../host/syscalls.ts';
import { Word64 } from '../hw/mmio.ts';
import { PciDevice } from '../hw/phb.ts';
import type { TraceSink } from '../hw/trace-sink.ts';
import { NULL_TRACE } from '../hw/trace-sink.ts';
import { Rng } from '../sim/rng.ts';
import { migrate } from '../vmm/migration.ts';
import { SPAPR_XIVE_NR_IRQS } from '../vmm/spapr-irq.ts';
import { type SpaprDeviceConfig, SpaprMachine } from '../vmm/spapr-machine.ts';
import { spaprEoiPageGpa } from '../vmm/spapr-xive.ts';
import { VmmVfioPci } from '../vmm/vfio-pci.ts';
import { COST_TABLE_NS, type CostCounts, SERIES, type Series } from './cell.ts';
import { GuestVcpuSlot, moveGuest } from './guest-port.ts';
import type { Scenario } from './schema.ts';

/** Host page size (64 KiB). */
const P = 0x1_0000;
/** RLIMIT_NOFILE of the VMM: the usual hard limit, which QEMU's start-up raises the soft one to. */
const QEMU_NOFILE = 524_288;
/** PHB slots per PHB on the host (PHB_MAX_SLOTS). */
const SLOTS_PER_PHB = 16;
const RW = PROT_READ | PROT_WRITE;

/** The invariants a passthrough run checks on the host/VMM state as it goes. */
export type StateInvariant = 'I1' | 'I2' | 'I3' | 'I7';

/** One violation found during a run. */
export interface StepViolation {
  readonly message: string;
  /** The cycle it appeared in (0-based). */
  readonly cycle: number;
}

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
}

/** A function assigned to the guest, through its cycles. */
interface Fn {
  readonly name: string;
  /** The machine device the function is now (option 4: a new one, with new numbers, per plug). */
  deviceIndex: number;
  /** Its machine device for each cycle. */
  readonly instances: number[];
  readonly phb: number;
  readonly slot: number;
  readonly vectors: number;
  lisns: readonly number[];
  pdev: PciDevice | null;
  vfio: VmmVfioPci | null;
}

/**
 * Run scenario `s` under `design` with `seed`, for at most `maxCycles` cycles (bisection of a
 * violation uses fewer).
 */
export function runPassthrough(
  s: Scenario,
  design: Design,
  seed: number,
  opts: { trace?: TraceSink; maxCycles?: number } = {},
): PassthroughRun {
  const pt = s.passthrough;
  if (pt === undefined) throw new Error(`scenario ${s.name} has no passthrough section`);
  const trace = opts.trace ?? NULL_TRACE;
  const d = design.accel === 'kvm' ? design : null;
  const dstats = new DesignStats();
  const notes: string[] = [];
  const violations: Record<StateInvariant, StepViolation[]> = { I1: [], I2: [], I3: [], I7: [] };
  let cycle = 0;
  const violate = (inv: StateInvariant, message: string): void => {
    violations[inv].push({ message: `${message} (cycle ${cycle}, seed ${seed})`, cycle });
  };

  // --- the host (KVM designs) and the machine -----------------------------------------------
  const fns: Fn[] = pt.devices.map((name, i) => {
    const deviceIndex = s.devices.findIndex((x) => x.name === name);
    return {
      name,
      deviceIndex,
      instances: [],
      phb: Math.floor(i / SLOTS_PER_PHB),
      slot: i % SLOTS_PER_PHB,
      vectors: s.devices[deviceIndex]!.msis,
      lisns: [],
      pdev: null,
      vfio: null,
    };
  });
  const nPhbs = Math.max(1, Math.ceil(fns.length / SLOTS_PER_PHB));
  const maxVectors = Math.max(64, ...fns.map((f) => f.vectors));
  const seam = d !== null ? d.kernelSeam(dstats) : null;
  /** The host the functions live on: KVM's for the designs, VFIO's alone for the reference. */
  const newHost = (): Host =>
    createHost({
      // A vCPU per host thread under KVM; the reference's host only runs VFIO.
      nrCpus: d !== null ? Math.max(16, s.vcpus) : 16,
      ...(d !== null ? { xiveFlags: d.xiveFlags } : {}),
      ...(seam !== null ? { xiveRecordMapping: seam } : {}),
      phbs: Array.from({ length: nPhbs }, () => ({ slots: SLOTS_PER_PHB, maxVectors })),
      maxMemslots: pt.maxMemslots,
      maxMapCount: pt.maxMapCount,
      // QEMU raises RLIMIT_NOFILE to the hard limit at start-up (an eventfd per vector).
      nrOpen: QEMU_NOFILE,
      trace,
    });
  let host = newHost();
  /** Every host the run used (a migration adds the destination's): costs add up over them. */
  const hosts: Host[] = [host];
  /** Plug cycles, and one more on the destination after a migration. */
  const totalCycles = pt.cycles + (pt.migrate ? 1 : 0);
  // Option 4 numbers every plug of a function anew from its own range and never reuses a
  // number: each cycle's plug is a new guest device with the next dedicated LISNs.
  const dedicated = d !== null && d.lisnRange === 'dedicated';
  let nextDedicated = DEDICATED_LISN_BASE;
  const dedicatedLisns = (n: number, what: string): number[] => {
    const lisns = Array.from({ length: n }, (_, v) => nextDedicated + v);
    nextDedicated += n;
    if (nextDedicated > SPAPR_XIVE_NR_IRQS)
      throw new Error(`dedicated irq range exhausted at ${what} (${nextDedicated} > ${SPAPR_XIVE_NR_IRQS})`);
    return lisns;
  };
  const devices: SpaprDeviceConfig[] = s.devices.map((dev, i) => {
    const f = fns.find((x) => x.deviceIndex === i);
    if (f !== undefined && dedicated)
      return { name: dev.name, msis: dev.msis, lsis: dev.lsis, lisns: dedicatedLisns(dev.msis, dev.name) };
    return { name: dev.name, msis: dev.msis, lsis: dev.lsis };
  });
  for (const f of fns) {
    f.instances.push(f.deviceIndex);
    for (let c = 1; c < totalCycles; c++) {
      if (dedicated) {
        f.instances.push(devices.length);
        devices.push({
          name: `${f.name}.${c}`,
          msis: f.vectors,
          lsis: 0,
          lisns: dedicatedLisns(f.vectors, f.name),
        });
      } else f.instances.push(f.deviceIndex);
    }
  }
  const baseName = new Map<number, string>();
  for (const f of fns) for (const i of f.instances) baseName.set(i, f.name);
  // The designs drive the in-kernel XIVE; the reference emulates it and relays the functions'
  // MSIs through the VMM (vfio-pci eventfds, kernel_irqchip=off).
  const newMachine = (h: Host, startStopped: boolean): SpaprMachine =>
    new SpaprMachine({
      smp: s.vcpus,
      ramSize: s.ramSize,
      devices,
      trace,
      ...(startStopped ? { startStopped } : {}),
      ...(d !== null ? { accel: { kind: 'kvm' as const, host: h } } : { vfioHost: h }),
    });
  let machine = newMachine(host, false);
  for (const f of fns) f.lisns = machine.devices[f.deviceIndex]!.msis;
  if (dedicated && fns.some((f) => f.lisns[0]! < DEDICATED_LISN_BASE))
    throw new Error('the machine did not claim the dedicated irq numbers');

  // --- the guest ------------------------------------------------------------------------------
  // Boot with the emulated devices probed; the passthrough functions appear at their first plug.
  const slots = machine.cpus.map((c) => new GuestVcpuSlot(c));
  const guest = new GuestKernel(slots, machine.deviceTree(), trace);
  const booted = guest.boot();
  if (booted !== 0) throw new Error(`guest boot failed: ${booted}`);
  guest.drivers.forEach((drv, i) => {
    if (baseName.has(i)) return;
    const rc = guest.probe(drv);
    if (rc !== 0) throw new Error(`guest probe of ${drv.name} failed: ${rc}`);
  });
  const handled = new Map<string, number>();
  const deliveries: string[] = [];
  guest.drivers.forEach((drv) => {
    const name = baseName.get(guest.drivers.indexOf(drv)) ?? drv.name;
    drv.onInterrupt = (kind, v, cpu) => {
      const key = `${name}:${kind === 'msi' ? v : `lsi${v}`}`;
      handled.set(key, (handled.get(key) ?? 0) + 1);
      deliveries.push(`${cpu} ${key}`);
    };
  });
  let view: string[] = [];
  const guestView = (): string[] =>
    guest.irqs().map((q) => {
      const xd = q.kind === 'ipi' ? guest.xive.xcs[q.vector]!.ipiData : guest.core.descs[q.girq]!.xd!;
      return `${q.kind} ${q.device}:${q.vector} virq ${q.girq} LISN 0x${q.lisn.toString(16)} eoi 0x${xd.eoiPage.toString(16)} trig 0x${xd.trigPage.toString(16)} flags 0x${xd.flags.toString(16)}`;
    });
  const takeAll = (): void => {
    for (let c = 0; c < s.vcpus; c++) guest.takePendingInterrupts(c);
  };

  // --- userspace mappings of the ESB range (KVM designs) -------------------------------------
  let vm = host.kvm.vms[0] ?? null;
  let proc: HostProcess = machine.vmm!.proc;
  const extra: { p: HostProcess; base: number; len: number; pgoff: number }[] = [];
  const esbLen = machine.xive.nrIrqs * 2 * P;
  const touchExtra = (): void => {
    for (const m of extra)
      for (const f of fns)
        for (const lisn of f.lisns) {
          const off = (2 * lisn + 1 - (m.pgoff - 4)) * P;
          if (off >= 0 && off < m.len) m.p.load(m.base + off + 0x800, 8, new Word64());
        }
  };
  const mapExtra = (): void => {
    if (machine.xiveKvm === null) return;
    const devFd = machine.xiveKvm.fd;
    const m = pt.mappings;
    if (m.second) {
      const base = proc.mmap(0, esbLen, RW, MAP_SHARED, devFd, 4 * P);
      if (base < 0) violate('I7', `second ESB mmap failed: ${base}`);
      else if (m.drop) {
        for (const f of fns)
          for (const lisn of f.lisns) proc.load(base + (2 * lisn + 1) * P + 0x800, 8, new Word64());
        proc.munmap(base, esbLen);
      } else if (m.split && proc.munmap(base, 2 * P) === 0)
        extra.push({ p: proc, base: base + 2 * P, len: esbLen - 2 * P, pgoff: 6 });
      else extra.push({ p: proc, base, len: esbLen, pgoff: 4 });
    }
    if (m.fork) {
      const child = proc.fork();
      if (typeof child === 'number') violate('I7', `fork of the VMM failed: ${child}`);
      else extra.push({ p: child, base: machine.xiveKvm.esbMmap, len: esbLen, pgoff: 4 });
    }
    if (m.scmRights) {
      const peer = host.spawn();
      const pfd = proc.sendFd(peer, devFd);
      const base = peer.mmap(0, esbLen, RW, MAP_SHARED, pfd, 4 * P);
      if (base < 0) violate('I7', `SCM_RIGHTS peer ESB mmap failed: ${base}`);
      else extra.push({ p: peer, base, len: esbLen, pgoff: 4 });
    }
    touchExtra();
  };
  if (!pt.mappings.late) mapExtra();

  // --- checks ---------------------------------------------------------------------------------
  const w = new Word64();
  let vmasPeak = proc.proc.mm.vmas.count;
  const seeVmas = (): void => {
    const n = proc.proc.mm.vmas.count;
    if (n > vmasPeak) vmasPeak = n;
    if (n > pt.maxMapCount) violate('I7', `${n} VMAs in the VMM exceed vm.max_map_count ${pt.maxMapCount}`);
  };
  /** I1 over every passthrough irq of the current plug. */
  const checkRouting = (): void => {
    if (vm === null) return;
    const irqs: PassthroughIrq[] = fns.flatMap((f) =>
      f.lisns.map((lisn, v) => ({
        label: `${f.name} vector ${v}`,
        lisn,
        mgmtGpa: spaprEoiPageGpa(lisn),
        retired: dedicated && f.pdev === null,
      })),
    );
    const probe = (gpa: number): void => machine.cpus[0]!.load(gpa, 8, w);
    for (const m of routingViolations(host, vm, irqs, probe)) violate('I1', m);
  };
  /** I2 once function `f` has left. */
  const checkIsolation = (f: Fn): void => {
    const phb = host.phbs[f.phb]!;
    for (const m of isolationViolations(host, vm, (pfn) => phb.pfnInSlot(f.slot, pfn), f.name))
      violate('I2', m);
  };
  /** I3: the design touched a freed kernel object. */
  let uafSeen = 0;
  const checkUaf = (): void => {
    if (dstats.useAfterFree > uafSeen) {
      violate('I3', `re-point through a VMA freed by munmap (${dstats.useAfterFree - uafSeen} time(s))`);
      uafSeen = dstats.useAfterFree;
    }
  };

  /** [memslot updates, partition faults, VMM exits] of the current machine. */
  const kvmTotals = (): number[] =>
    vm === null
      ? [0, 0, 0]
      : [
          machine.kvm?.listener?.ioctls ?? 0,
          vm.stats.partitionFaults,
          vm.stats.mmioExits + vm.stats.hcallExits,
        ];
  /** Those of the machines migrated away from. */
  const retire: number[][] = [];

  // --- the cycles -----------------------------------------------------------------------------
  const rng = new Rng(seed);
  const model = new PqModel();
  let bypassFailed = 0;
  const boundSeries: [number, number][] = [];
  const bindCostMappings: [number, number][] = [];
  const bindCostVmas: [number, number][] = [];
  let bound = 0;
  const cycles = Math.min(totalCycles, opts.maxCycles ?? totalCycles);
  const mmTotals = (): { faults: number; zapped: number } => {
    let faults = 0;
    let zapped = 0;
    for (const p of hosts.flatMap((h) => h.mm.processes)) {
      faults += p.mm.stats.fileFaults;
      zapped += p.mm.stats.ptesZapped;
    }
    return { faults, zapped };
  };
  for (cycle = 0; cycle < cycles; cycle++) {
    if (cycle === pt.cycles) {
      // Migration with every function unplugged: a fresh host (same design), the destination
      // waiting for the stream, the guest moved over. Helpers stay behind on the old host.
      const h = newHost();
      const dst = newMachine(h, true);
      const ms = migrate(machine, dst);
      notes.push(`migrated after cycle ${cycle - 1}: ${ms.ramPages} RAM pages, ${ms.validSources} sources`);
      moveGuest({ kernel: guest, slots }, dst);
      retire.push(kvmTotals());
      host = h;
      hosts.push(h);
      machine = dst;
      vm = host.kvm.vms[0] ?? null;
      proc = machine.vmm!.proc;
      extra.length = 0;
    }
    for (const f of fns) {
      f.deviceIndex = f.instances[cycle]!;
      f.lisns = machine.devices[f.deviceIndex]!.msis;
    }
    // Plug: QEMU's vfio-pci, with the design's VMM seam.
    for (const f of fns) {
      const before = mmTotals();
      const visited = dstats.vmasVisited;
      const vmas = proc.proc.mm.vmas.count;
      const pdev = new PciDevice({ name: f.name, msix: f.vectors });
      if (!host.phbs[f.phb]!.plug(f.slot, pdev)) throw new Error(`slot ${f.phb}:${f.slot} busy`);
      const dev = VmmVfioPci.plug(
        machine,
        { phb: f.phb, slot: f.slot, pdev },
        f.lisns,
        d?.vmmSeam?.() ?? null,
      );
      if (typeof dev === 'number') {
        violate('I7', `${f.name}: passthrough set-up failed: ${dev}`);
        host.phbs[f.phb]!.unplug(f.slot);
        continue;
      }
      f.pdev = pdev;
      f.vfio = dev;
      for (let v = 0; v < f.vectors; v++) pdev.setVectorMask(v, false);
      bound += f.vectors;
      if (vm !== null) boundSeries.push([bound, vm.stats.memslotsUsed]);
      const after = mmTotals();
      const cost =
        (after.zapped - before.zapped) * COST_TABLE_NS.pteZapped +
        (dstats.vmasVisited - visited) * COST_TABLE_NS.vmaVisited +
        (after.faults - before.faults) * COST_TABLE_NS.hostFault;
      bindCostMappings.push([1 + extra.length, cost]);
      bindCostVmas.push([vmas, cost]);
    }
    if (cycle === 0 && pt.mappings.late) mapExtra();
    // Whoever else maps the ESB range keeps using it (a monitor reading PQs, say).
    else touchExtra();
    // The guest sees the new function and its driver probes: request_irq of every vector
    // (startup: H_INT_SET_SOURCE_CONFIG with EISN = virq, then the unmask on its ESB page).
    for (const f of fns) {
      const rc = guest.probe(guest.drivers[f.deviceIndex]!);
      if (rc !== 0) throw new Error(`guest probe of ${f.name} failed: ${rc}`);
    }
    if (cycle === 0) view = guestView();
    const failed = (vm?.irqfds.stats.setPassthruFailed ?? 0) - bypassFailed;
    if (failed > 0) {
      violate(
        'I7',
        `${failed} vector(s) not mapped by irq bypass (KVMPPC_PIRQ_MAPPED = 1024 per VM): they are injected through their IPI instead`,
      );
      bypassFailed += failed;
    }
    checkRouting();
    checkUaf();
    seeVmas();
    // Traffic.
    for (let i = 0; i < pt.msisPerCycle; i++) {
      const f = fns[rng.index(fns.length)]!;
      const v = rng.index(f.vectors);
      const key = `${f.name}:${v}`;
      f.pdev?.raiseMsi(v);
      model.raise(key);
      if (rng.chance(pt.takeEvery)) {
        takeAll();
        model.take();
      }
    }
    takeAll();
    model.take();
    if (pt.unbindPending && fns.length > 0) {
      const f = fns[0]!;
      f.pdev?.raiseMsi(0);
      model.raise(`${f.name}:0`);
    }
    // Unplug: the host side first (QEMU's vfio-pci exit: clr_mapped re-points the pages), then
    // the guest takes what is pending and its driver goes (free_irq).
    for (const f of fns) {
      if (f.vfio === null) continue;
      for (let v = 0; v < f.vectors; v++) f.pdev!.setVectorMask(v, true);
      const rc = f.vfio.unplug();
      if (rc !== 0) notes.push(`cycle ${cycle}: ${f.name} unplug returned ${rc}`);
      bound -= f.vectors;
      f.vfio = null;
      f.pdev = null;
      checkIsolation(f);
    }
    takeAll();
    checkRouting();
    for (const f of fns) guest.remove(guest.drivers[f.deviceIndex]!);
    checkUaf();
    seeVmas();
  }

  // --- costs ----------------------------------------------------------------------------------
  const mm = mmTotals();
  let hcalls = 0;
  for (const n of guest.hcallCounts().values()) hcalls += n;
  const kvmNow = kvmTotals();
  const sum = (i: number): number => retire.reduce((n, t) => n + (t[i] ?? 0), 0) + (kvmNow[i] ?? 0);
  const costs: CostCounts = {
    memslotsPeak: Math.max(0, ...hosts.flatMap((h) => h.kvm.vms.map((v) => v.stats.memslotsPeak))),
    memslotUpdates: sum(0),
    vmasPeak,
    hostFaults: mm.faults,
    partitionFaults: sum(1),
    ptesZapped: mm.zapped,
    vmasVisited: dstats.vmasVisited,
    vmmExits: d !== null ? sum(2) : hcalls,
    hcalls,
  };
  const series: Series[] =
    d === null
      ? []
      : [
          {
            name: SERIES.memslotsVsVectors,
            x: 'passthrough vectors bound',
            y: 'KVM memslots',
            points: boundSeries,
          },
          {
            name: SERIES.bindCostVsMappings,
            x: 'mappings of the ESB range',
            y: 'bind cost (ns)',
            points: bindCostMappings,
          },
          { name: SERIES.bindCostVsVmas, x: 'VMAs in the VMM', y: 'bind cost (ns)', points: bindCostVmas },
        ];
  if (d === null)
    notes.push('emulated reference: the functions are emulated devices of the VMM (kernel_irqchip=off)');
  else
    notes.push(
      `I1 is checked with a PQ GET probe of every passthrough irq's EOI page after each plug and unplug`,
    );
  return { view, handled, expected: model.expected, deliveries, violations, costs, series, notes, cycles };
}
