/**
 * Live migration of the sPAPR machine's interrupt state and RAM between two machines, emulated
 * or KVM, in any direction (QEMU hw/intc/spapr_xive_kvm.c: kvmppc_xive_pre_save /
 * kvmppc_xive_post_load and the VM change-state handler; Linux
 * Documentation/virt/kvm/devices/xive.rst, "Migration").
 *
 * Save (source): stop the VM — under KVM the change-state handler sets every valid source not
 * OFF to PENDING (a trigger while stopped lands in Q) with its previous PQ saved in QEMU's
 * source, and EQ_SYNC flushes in-flight events into the EQ pages — then `pre_save` pulls each
 * valid END's toggle/index from KVM and each vCPU's OS ring from `KVM_REG_PPC_VP_STATE`; then
 * the stream: RAM (EQ pages included), the EAT, the ENDT, the source status bytes (PQ, level,
 * LSI), the thread contexts, the CAS outcome.
 *
 * Load (destination, stopped): RAM, tables, sources, thread contexts; then `post_load` — under
 * KVM: valid ENDs first (EQ_CONFIG with the saved toggle/index), each valid source declared and
 * configured, every vCPU's VP_STATE; emulated: the thread contexts' presentation recomputed
 * from their IPB. The source PQs reach KVM when the VM runs again (the change-state handler
 * writes each saved PQ with a SET_PQ load and triggers a source that was RESET but came back
 * QUEUED).
 *
 * Consequence (QEMU 7.2 behaviour, pinned in the tests): under KVM a trigger that arrives while
 * the VM is stopped is caught in the source hardware's Q and replayed only if that same VM
 * resumes; the stream carries the PQ saved before the stop, so a migration from KVM loses it.
 * An emulated source routes it at once (EQ entry, OS ring), and the stream carries it.
 */

import { TM_QW1_OS } from '../hw/xive/regs.ts';
import type { XiveSourceSnapshot } from '../hw/xive/source.ts';
import type { SpaprMachine } from './spapr-machine.ts';

/** Page granule of the RAM section (the ppc64 host page). */
export const MIGRATION_PAGE_SIZE = 0x1_0000;

/** The migration stream (version 1). Plain data: it can be kept, compared or serialised. */
export interface SpaprMigrationStream {
  v: 1;
  smp: number;
  nrIrqs: number;
  ramSize: number;
  /** `spapr->ov5_cas` has XIVE exploitation / CAS done. */
  cas: { done: boolean; exploitation: boolean };
  /** Non-zero RAM pages only (QEMU sends zero pages as a flag): page index → bytes. */
  ram: { index: number; bytes: Uint8Array }[];
  /** EAT words, [hi, lo] per LISN (`vmstate_spapr_xive`). */
  eat: number[];
  /** ENDT words, 8 per END, with the toggle/index KVM reported. */
  endt: number[];
  /** `vmstate_xive_source`: status bytes (PQ + ASSERTED) and the LSI map. */
  source: XiveSourceSnapshot;
  /** `vmstate_xive_tctx`: the 64 register bytes of each vCPU's thread context. */
  tctx: number[][];
  /** INTx pin levels of each device (`PCIDevice.irq_state`). */
  intx: number[][];
}

/** Counters of what a save or load did (counts of the paths running). */
export interface MigrationStats {
  ramPages: number;
  validEnds: number;
  validSources: number;
}

/** A failed migration step: the step and the kernel's or QEMU's code. */
export class MigrationError extends Error {
  readonly code: number;
  constructor(step: string, code: number) {
    super(`migration: ${step} failed (${code})`);
    this.code = code;
  }
}

function isZero(b: Uint8Array): boolean {
  // Four bytes at a time where the view is aligned (a page read is a fresh buffer), then the rest.
  let i = 0;
  if (b.byteOffset % 4 === 0) {
    const words = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
    for (let w = 0; w < words.length; w++) if (words[w] !== 0) return false;
    i = words.length * 4;
  }
  for (; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Read page `i` of guest RAM as the VMM sees it. */
function readRamPage(m: SpaprMachine, i: number): Uint8Array {
  const base = i * MIGRATION_PAGE_SIZE;
  const kvm = m.kvm;
  if (kvm !== null) return kvm.proc.getBytes(m.ram.ramOffset + base, MIGRATION_PAGE_SIZE);
  const b = new Uint8Array(MIGRATION_PAGE_SIZE);
  m.ram.ramRead(base, b);
  return b;
}

function writeRamPage(m: SpaprMachine, i: number, bytes: Uint8Array): void {
  const base = i * MIGRATION_PAGE_SIZE;
  const kvm = m.kvm;
  if (kvm !== null) kvm.proc.putBytes(m.ram.ramOffset + base, bytes);
  else m.ram.ramWrite(base, bytes);
}

/**
 * Stop `m` and capture its state. The machine stays stopped (QEMU's `postmigrate`); call
 * `m.vmStart()` to resume it instead (a cancelled migration).
 *
 * @remarks Models migration/savevm.c:qemu_savevm_state_complete_precopy() for the devices that
 * matter here: do_vm_stop() → kvmppc_xive_change_state_handler(running = false), then the
 * `pre_save` hooks hw/intc/spapr_xive.c:vmstate_spapr_xive_pre_save() → kvmppc_xive_pre_save()
 * and hw/intc/xive.c:vmstate_xive_tctx_pre_save() → kvmppc_xive_cpu_get_state(), then RAM
 * (migration/ram.c, zero pages skipped).
 */
export function saveVm(m: SpaprMachine, stats?: MigrationStats): SpaprMigrationStream {
  let rc = m.vmStop();
  if (rc < 0) throw new MigrationError('vm stop (EQ_SYNC)', rc);
  const xk = m.xiveKvm;
  if (xk?.inKernel) {
    rc = xk.preSave();
    if (rc < 0) throw new MigrationError('spapr_xive pre_save', rc);
    for (let cpu = 0; cpu < m.smp; cpu++) {
      rc = xk.cpuGetState(cpu);
      if (rc < 0) throw new MigrationError(`xive_tctx pre_save (CPU ${cpu})`, rc);
    }
  }
  const ram: SpaprMigrationStream['ram'] = [];
  const pages = Math.ceil(m.ramSize / MIGRATION_PAGE_SIZE);
  for (let i = 0; i < pages; i++) {
    const b = readRamPage(m, i);
    if (!isZero(b)) ram.push({ index: i, bytes: b });
  }
  const x = m.xive;
  if (stats) {
    stats.ramPages = ram.length;
    stats.validEnds = 0;
    stats.validSources = 0;
    for (let i = 0; i < x.nrEnds; i++) if (x.endt[i * 8]! & 0x8000_0000) stats.validEnds++;
    for (let i = 0; i < x.nrIrqs; i++) if (x.eat[i * 2]! & 0x8000_0000) stats.validSources++;
  }
  return {
    v: 1,
    smp: m.smp,
    nrIrqs: x.nrIrqs,
    ramSize: m.ramSize,
    cas: { done: m.casDone, exploitation: x.exploitation },
    ram,
    eat: Array.from(x.eat),
    endt: Array.from(x.endt),
    source: x.source.snapshot(),
    tctx: x.tctxs.map((t) => Array.from(t.regs)),
    intx: m.devices.map((d) => d.lines.map((_, i) => d.intxLevel(i))),
  };
}

/**
 * Load `s` into `m` (a freshly created machine of the same geometry) and resume it.
 *
 * @remarks Models migration/savevm.c:qemu_loadvm_state() for these devices, then
 * hw/ppc/spapr_irq.c:spapr_irq_post_load() → hw/intc/spapr_xive.c:spapr_xive_post_load() →
 * kvmppc_xive_post_load() under KVM, then vm_start() → kvmppc_xive_change_state_handler(running
 * = true). Emulated: the thread contexts' exception state is recomputed from the IPB (an IPB a
 * KVM VP_STATE merged from the NVT backlog has no NSR yet).
 */
export function loadVm(m: SpaprMachine, s: SpaprMigrationStream, opts: { start?: boolean } = {}): void {
  if (s.v !== 1) throw new Error('migration: not a version 1 stream');
  if (s.smp !== m.smp || s.nrIrqs !== m.xive.nrIrqs || s.ramSize !== m.ramSize) {
    throw new Error(
      `migration: geometry mismatch (smp ${s.smp}/${m.smp}, irqs ${s.nrIrqs}/${m.xive.nrIrqs}, ram ${s.ramSize}/${m.ramSize})`,
    );
  }
  // The incoming VM does not run until the stream is loaded.
  let rc = m.vmStop();
  if (rc < 0) throw new MigrationError('destination vm stop', rc);
  for (const p of s.ram) writeRamPage(m, p.index, p.bytes);
  // Device pins first: their line changes reach sources that are still off (PQ 01) and whose
  // state the XIVE section then overwrites.
  if (s.intx.length !== m.devices.length) throw new Error('migration: device mismatch');
  s.intx.forEach((pins, d) => {
    pins.forEach((level, i) => {
      if (level) m.devices[d]!.setLsi(i, 1);
    });
  });
  const x = m.xive;
  x.eat.set(s.eat);
  x.endt.set(s.endt);
  x.source.restore(s.source);
  s.tctx.forEach((regs, cpu) => {
    const t = x.tctxs[cpu]!;
    t.regs.set(regs);
  });
  m.casDone = s.cas.done;
  x.exploitation = s.cas.exploitation;

  const xk = m.xiveKvm;
  if (xk?.inKernel) {
    rc = xk.postLoad();
    if (rc < 0) throw new MigrationError('kvmppc_xive_post_load', rc);
  } else {
    // The OS ring presents what its IPB holds (xive_tctx_ipb_update with nothing new).
    for (const t of x.tctxs) {
      t.lowerOsLine();
      t.ipbMerge(TM_QW1_OS, 0);
    }
  }
  if (opts.start ?? true) {
    rc = m.vmStart();
    if (rc < 0) throw new MigrationError('vm start', rc);
  }
}

/** Save `from`, load into `to`: the whole migration. Returns what was moved. */
export function migrate(from: SpaprMachine, to: SpaprMachine): MigrationStats {
  const stats: MigrationStats = { ramPages: 0, validEnds: 0, validSources: 0 };
  const s = saveVm(from, stats);
  loadVm(to, s);
  return stats;
}
