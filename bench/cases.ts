/**
 * The in-process bench cases, each run in a fresh process by `bench/run.ts` (one case per
 * isolate: the JIT state of one case never shapes another's call sites):
 *
 *   a  ESB GET loads through vCPU 0's access path (the stub's kind-10 mode 0 loop)
 *   b  interrupt cycles: 8-byte trigger store, 16-bit ACK_OS_REG load, 8-byte SET_PQ_00 load
 *      (EOI), byte store 0xff to CPPR (kind-10 mode 1)
 *   c  end-to-end guest interrupts: device MSI → EQ → ACK → handler → EOI, Linux-like guest
 *   d  the same in KVM mode (`-accel kvm`): the guest's ESB, TIMA and EQ accesses through the
 *      partition-scoped tree of a modelled host, hcalls exiting to the VMM
 */

import { casOptionVectors } from '../src/guest/kernel.ts';
import {
  TM_CPPR,
  TM_QW1_OS,
  TM_SPC_ACK_OS_REG,
  XIVE_ESB_GET,
  XIVE_ESB_SET_PQ_00,
} from '../src/guest/xive-regs.ts';
import { createHost } from '../src/host/host.ts';
import { Word64 } from '../src/hw/mmio.ts';
import { bootGuest } from '../src/scenario/guest-port.ts';
import { NULL_TRACE } from '../src/sim/trace-sink.ts';
import { KVMPPC_H_CAS } from '../src/vmm/spapr-cas.ts';
import { SpaprMachine } from '../src/vmm/spapr-machine.ts';
import {
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  SPAPR_XIVE_END_ALWAYS_NOTIFY,
  SPAPR_XIVE_SRC_SET_EISN,
} from '../src/vmm/spapr-xive-hcalls.ts';
import { esbMgmt, esbTrig, TIMA_OS } from '../test/diff/qemu-driver.ts';

/** The source both sides exercise: EPOW (0x1000), an MSI claimed by the machine at init. */
export const LISN = 0x1000;
export const PRIO = 6;
export const QPAGE = 0x20_0000;
export const QSIZE = 16;
export const EISN = 0xabc;
export const ACK = TIMA_OS + TM_SPC_ACK_OS_REG;
export const CPPR = TIMA_OS + TM_QW1_OS + TM_CPPR;

/** One bench case: `run(n)` performs n operations; `check()` throws if they did not happen. */
export interface BenchCase {
  readonly name: string;
  run(n: number): void;
  check(): void;
}

function must(what: string, rc: number): void {
  if (rc !== 0) throw new Error(`bench setup: ${what} returned ${rc}`);
}

/**
 * An emulated 1-vCPU machine after CAS with vCPU 0's priority-{@link PRIO} queue at
 * {@link QPAGE}; `configSource(lisn, eisn)` routes a source there (H_INT_SET_SOURCE_CONFIG).
 */
export function queuedMachine(): { m: SpaprMachine; configSource(lisn: number, eisn: number): void } {
  const m = new SpaprMachine({ smp: 1, ramSize: 0x400_0000, devices: [], trace: NULL_TRACE });
  const cpu = m.cpus[0]!;
  const out: bigint[] = new Array<bigint>(9).fill(0n);
  m.writeMemory(0x1_0000, casOptionVectors());
  must('CAS', cpu.hcall(KVMPPC_H_CAS, [0x1_0000n, 0x10_0000n, 0x10_0000n], out));
  must(
    'H_INT_SET_QUEUE_CONFIG',
    cpu.hcall(
      H_INT_SET_QUEUE_CONFIG,
      [SPAPR_XIVE_END_ALWAYS_NOTIFY, 0n, BigInt(PRIO), BigInt(QPAGE), BigInt(QSIZE)],
      out,
    ),
  );
  return {
    m,
    configSource(lisn, eisn) {
      must(
        `H_INT_SET_SOURCE_CONFIG ${lisn}`,
        cpu.hcall(
          H_INT_SET_SOURCE_CONFIG,
          [SPAPR_XIVE_SRC_SET_EISN, BigInt(lisn), 0n, BigInt(PRIO), BigInt(eisn)],
          out,
        ),
      );
    },
  };
}

/** A 1-vCPU machine after CAS, with one queue and {@link LISN} routed to vCPU 0, unmasked. */
export function routedMachine(): SpaprMachine {
  const { m, configSource } = queuedMachine();
  const cpu = m.cpus[0]!;
  configSource(LISN, EISN);
  cpu.load(esbMgmt(LISN) + XIVE_ESB_SET_PQ_00, 8, new Word64());
  cpu.store(CPPR, 1, 0, 0xff);
  return m;
}

function esbGetCase(): BenchCase {
  const m = routedMachine();
  const cpu = m.cpus[0]!;
  const w = new Word64();
  const get = esbMgmt(LISN) + XIVE_ESB_GET;
  return {
    name: '(a) ESB GET loads',
    run(n) {
      for (let i = 0; i < n; i++) cpu.load(get, 8, w);
    },
    check() {
      // PQ 00 after the unmask: GET reads 0.
      if (w.hi !== 0 || w.lo !== 0) throw new Error(`ESB GET read ${w.hi}:${w.lo}`);
    },
  };
}

function cycleCase(): BenchCase {
  const m = routedMachine();
  const cpu = m.cpus[0]!;
  const w = new Word64();
  const trig = esbTrig(LISN);
  const eoi = esbMgmt(LISN) + XIVE_ESB_SET_PQ_00;
  return {
    name: '(b) interrupt cycles',
    run(n) {
      for (let i = 0; i < n; i++) {
        cpu.store(trig, 8, 0, 0xff);
        cpu.load(ACK, 2, w);
        cpu.load(eoi, 8, w);
        cpu.store(CPPR, 1, 0, 0xff);
      }
    },
    check() {
      // The loop really took interrupts: the queue holds our EISN and the router presented.
      const eq0 = m.sysmem.loadBe32(QPAGE) & 0x7fff_ffff;
      if (eq0 !== EISN || m.xive.router.stats.presented === 0) {
        throw new Error(`EQ[0] = 0x${eq0.toString(16)}, presented ${m.xive.router.stats.presented}`);
      }
    },
  };
}

function guestCase(kvm: boolean): BenchCase {
  const gm = new SpaprMachine({
    smp: 1,
    ramSize: 0x400_0000,
    devices: [{ name: 'bench0', msis: 1, lsis: 0 }],
    trace: NULL_TRACE,
    ...(kvm ? { accel: { kind: 'kvm' as const, host: createHost() } } : {}),
  });
  const guest = bootGuest(gm, NULL_TRACE);
  const dev = gm.devices[0]!;
  const c0 = gm.cpus[0]!;
  let handled = 0;
  let raised = 0;
  guest.onDeliver = () => {
    handled++;
  };
  return {
    name: kvm ? '(d) guest interrupts, KVM mode' : '(c) guest interrupts',
    run(n) {
      for (let i = 0; i < n; i++) {
        dev.raiseMsi(0);
        raised++;
        while (c0.externalInterrupt) guest.handleInterrupt(0);
      }
    },
    check() {
      if (handled !== raised) throw new Error(`${raised} MSIs gave ${handled} deliveries`);
    },
  };
}

export const CASES: Record<string, () => BenchCase> = {
  a: esbGetCase,
  b: cycleCase,
  c: () => guestCase(false),
  d: () => guestCase(true),
};

/**
 * Operations per second of a case over about `ms` of wall-clock time (after a warm-up), the
 * way the QEMU figures are taken: wall clock, whatever else the machine does.
 */
export function measure(c: BenchCase, ms: number): number {
  let batch = 1000;
  // The KVM-mode case needs ~10^5 operations before its steady state.
  const warmEnd = performance.now() + Math.min(1000, ms / 2);
  while (performance.now() < warmEnd) c.run(batch);
  let ops = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    c.run(batch);
    ops += batch;
    t = performance.now();
    if (t - t0 < 10) batch *= 2;
  }
  c.check();
  return (ops / (t - t0)) * 1000;
}
