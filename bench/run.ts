/**
 * `npm run bench`: the interrupt path through vCPU 0's own access path (SpaprCpu loads/stores
 * into the machine's address space), measured with tinybench:
 *
 *   (a) ESB GET loads per second                       (bench_stub.S mode 0)
 *   (b) interrupt cycles per second: 8-byte trigger store, 16-bit ACK_OS_REG load, 8-byte
 *       SET_PQ_00 load (EOI), byte store 0xff to CPPR  (bench_stub.S mode 1)
 *   (c) end-to-end guest interrupts per second: device MSI → EQ → ACK → handler → EOI
 *   (d) the same in KVM mode (`-accel kvm`): the guest's ESB, TIMA and EQ accesses through the
 *       partition-scoped tree of a modelled host, hcalls exiting to the VMM
 *
 * Where `qemu-system-ppc64` is installed, the same two loops (a) and (b) run in QEMU 7.2 TCG,
 * timed by the guest stub itself (mailbox kind 10), and the xivelab/QEMU ratios are printed.
 */

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { casOptionVectors } from '../src/guest/kernel.ts';
import { createHost } from '../src/host/host.ts';
import { Word64 } from '../src/hw/mmio.ts';
import { NULL_TRACE } from '../src/hw/trace-sink.ts';
import { bootGuest } from '../src/scenario/guest-port.ts';
import { KVMPPC_H_CAS } from '../src/vmm/spapr-cas.ts';
import { SpaprMachine } from '../src/vmm/spapr-machine.ts';
import {
  H_INT_SET_QUEUE_CONFIG,
  H_INT_SET_SOURCE_CONFIG,
  SPAPR_XIVE_END_ALWAYS_NOTIFY,
  SPAPR_XIVE_SRC_SET_EISN,
} from '../src/vmm/spapr-xive-hcalls.ts';
import { benchExplore } from './explore.ts';
import { esbMgmt, esbTrig, QemuBench, qemuBinary, TIMA_OS } from './qemu.ts';

/** The source both sides exercise: EPOW (0x1000), an MSI claimed by the machine at init. */
const LISN = 0x1000;
const PRIO = 6;
const QPAGE = 0x20_0000;
const QSIZE = 16;
const EISN = 0xabc;
const ACK = TIMA_OS + 0x810;
const CPPR = TIMA_OS + 0x11;
const XIVE_ESB_GET = 0x800;
const XIVE_ESB_SET_PQ_00 = 0xc00;
/** Operations per tinybench iteration (amortises the harness's per-call overhead). */
const INNER = 1000;
const BENCH_MS = Number(process.env.XIVELAB_BENCH_MS ?? 1500);

// Runs from the tsc build (dist/bench/run.js; see `npm run bench`) or from source under tsx.
const repoRoot = fileURLToPath(
  new URL(import.meta.url.includes('/dist-bench/') ? '../../' : '../', import.meta.url),
);
const STUB = `${repoRoot}../shared/qemu-oracle/bench_stub.bin`;

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : `${(n / 1e3).toFixed(1)} k/s`;
}

/** A 1-vCPU machine after CAS, with one queue and LISN 0x1000 routed to vCPU 0 and unmasked. */
function xivelabMachine(): SpaprMachine {
  const m = new SpaprMachine({ smp: 1, ramSize: 0x400_0000, devices: [], trace: NULL_TRACE });
  const cpu = m.cpus[0]!;
  const out: bigint[] = new Array<bigint>(9).fill(0n);
  m.writeMemory(0x1_0000, casOptionVectors());
  const check = (what: string, rc: number): void => {
    if (rc !== 0) throw new Error(`xivelab setup: ${what} returned ${rc}`);
  };
  check('CAS', cpu.hcall(KVMPPC_H_CAS, [0x1_0000n, 0x10_0000n, 0x10_0000n], out));
  check(
    'H_INT_SET_QUEUE_CONFIG',
    cpu.hcall(
      H_INT_SET_QUEUE_CONFIG,
      [SPAPR_XIVE_END_ALWAYS_NOTIFY, 0n, BigInt(PRIO), BigInt(QPAGE), BigInt(QSIZE)],
      out,
    ),
  );
  check(
    'H_INT_SET_SOURCE_CONFIG',
    cpu.hcall(
      H_INT_SET_SOURCE_CONFIG,
      [SPAPR_XIVE_SRC_SET_EISN, BigInt(LISN), 0n, BigInt(PRIO), BigInt(EISN)],
      out,
    ),
  );
  const w = new Word64();
  cpu.load(esbMgmt(LISN) + XIVE_ESB_SET_PQ_00, 8, w);
  cpu.store(CPPR, 1, 0, 0xff);
  return m;
}

interface Rates {
  esbGet: number;
  cycles: number;
}

async function benchXivelab(): Promise<
  Rates & { guest: number | null; guestKvm: number | null; guestNote: string }
> {
  const m = xivelabMachine();
  const cpu = m.cpus[0]!;
  const w = new Word64();
  const get = esbMgmt(LISN) + XIVE_ESB_GET;
  const trig = esbTrig(LISN);
  const eoi = esbMgmt(LISN) + XIVE_ESB_SET_PQ_00;

  const bench = new Bench({ time: BENCH_MS, warmupTime: 200 });
  bench.add('(a) ESB GET load', () => {
    for (let i = 0; i < INNER; i++) cpu.load(get, 8, w);
  });
  bench.add('(b) interrupt cycle', () => {
    for (let i = 0; i < INNER; i++) {
      cpu.store(trig, 8, 0, 0);
      cpu.load(ACK, 2, w);
      cpu.load(eoi, 8, w);
      cpu.store(CPPR, 1, 0, 0xff);
    }
  });

  // (c) and (d): through the Linux-like guest, emulated and in KVM mode.
  const notes: string[] = [];
  const guestTask = (label: string, kvm: boolean): boolean => {
    try {
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
      guest.onDeliver = () => {
        handled++;
      };
      const one = (): void => {
        dev.raiseMsi(0);
        while (c0.externalInterrupt) guest.handleInterrupt(0);
      };
      one();
      if (handled !== 1) throw new Error(`one MSI gave ${handled} deliveries`);
      bench.add(label, () => {
        for (let i = 0; i < INNER; i++) one();
      });
      return true;
    } catch (e) {
      notes.push(`${label} skipped: ${(e as Error).message}`);
      return false;
    }
  };
  const guestOk = guestTask('(c) guest interrupt end to end', false);
  const kvmOk = guestTask('(d) guest interrupt end to end, KVM mode', true);
  const guestNote = notes.join('; ');

  await bench.run();
  // The cycle loop really took interrupts: the queue holds our EISN and the router presented.
  const eq0 = m.sysmem.loadBe32(QPAGE) & 0x7fff_ffff;
  if (eq0 !== EISN || m.xive.router.stats.presented === 0) {
    throw new Error(`xivelab EQ[0] = 0x${eq0.toString(16)}, presented ${m.xive.router.stats.presented}`);
  }
  const rate = (name: string): number => {
    const r = bench.getTask(name)?.result;
    if (!r || !('throughput' in r)) throw new Error(`${name}: ${r?.state ?? 'no result'}`);
    return r.throughput.mean * INNER;
  };
  return {
    esbGet: rate('(a) ESB GET load'),
    cycles: rate('(b) interrupt cycle'),
    guest: guestOk ? rate('(c) guest interrupt end to end') : null,
    guestKvm: kvmOk ? rate('(d) guest interrupt end to end, KVM mode') : null,
    guestNote,
  };
}

/** The same two loops in QEMU 7.2 TCG, timed by the stub; null with a reason when unavailable. */
async function benchQemu(): Promise<{ rates: Rates; version: string } | string> {
  const bin = qemuBinary();
  if (bin === null) return 'qemu-system-ppc64 not installed: QEMU comparison skipped';
  if (!existsSync(STUB)) return `bench stub not found at ${STUB}: QEMU comparison skipped`;
  const q = await QemuBench.start(bin, STUB);
  try {
    await q.write(0x1_0000, casOptionVectors());
    const must = async (what: string, p: Promise<bigint>): Promise<void> => {
      const rc = await p;
      if (rc !== 0n) throw new Error(`QEMU setup: ${what} returned ${rc}`);
    };
    await must('CAS', q.hcall(KVMPPC_H_CAS, 0x1_0000, 0x10_0000, 0x10_0000));
    await q.memset(QPAGE, 1 << QSIZE);
    await must(
      'H_INT_SET_QUEUE_CONFIG',
      q.hcall(H_INT_SET_QUEUE_CONFIG, SPAPR_XIVE_END_ALWAYS_NOTIFY, 0, PRIO, QPAGE, QSIZE),
    );
    await must(
      'H_INT_SET_SOURCE_CONFIG',
      q.hcall(H_INT_SET_SOURCE_CONFIG, SPAPR_XIVE_SRC_SET_EISN, LISN, 0, PRIO, EISN),
    );
    await q.readq(esbMgmt(LISN) + XIVE_ESB_SET_PQ_00);
    await q.stb(CPPR, 0xff);
    const get = esbMgmt(LISN) + XIVE_ESB_GET;
    const eoi = esbMgmt(LISN) + XIVE_ESB_SET_PQ_00;
    /** Calibrate to about BENCH_MS of guest time, then measure. */
    const measure = async (mode: 0 | 1): Promise<number> => {
      const a = mode === 0 ? get : esbTrig(LISN);
      let n = 2000;
      let t = await q.timeLoop(n, mode, a, ACK, eoi, CPPR);
      while (t < 0.05) {
        n *= 8;
        t = await q.timeLoop(n, mode, a, ACK, eoi, CPPR);
      }
      n = Math.max(n, Math.round((n / t) * (BENCH_MS / 1000)));
      t = await q.timeLoop(n, mode, a, ACK, eoi, CPPR);
      return n / t;
    };
    const esbGet = await measure(0);
    const cycles = await measure(1);
    // The cycle loop really took interrupts: the queue holds our EISN.
    const w0 = Number(BigInt((await q.cmd(`readl 0x${QPAGE.toString(16)}`)).slice(3)) & 0x7fff_ffffn);
    if (w0 !== EISN)
      throw new Error(`QEMU EQ[0] = 0x${w0.toString(16)}, expected EISN 0x${EISN.toString(16)}`);
    return { rates: { esbGet, cycles }, version: q.version };
  } finally {
    await q.close();
  }
}

async function main(): Promise<void> {
  console.log(`xivelab bench (node ${process.version}, ${BENCH_MS} ms per task)`);
  const x = await benchXivelab();
  console.log(`xivelab  (a) ESB GET loads        ${fmt(x.esbGet)}`);
  console.log(`xivelab  (b) interrupt cycles     ${fmt(x.cycles)}`);
  if (x.guest !== null) console.log(`xivelab  (c) guest interrupts     ${fmt(x.guest)}`);
  if (x.guestKvm !== null) console.log(`xivelab  (d) guest irqs, KVM mode ${fmt(x.guestKvm)}`);
  if (x.guestNote !== '') console.log(`xivelab  ${x.guestNote}`);
  for (const line of benchExplore(repoRoot)) console.log(line);
  let qemu: Awaited<ReturnType<typeof benchQemu>>;
  try {
    qemu = await benchQemu();
  } catch (e) {
    qemu = `QEMU comparison failed: ${(e as Error).message}`;
  }
  if (typeof qemu === 'string') {
    console.log(qemu);
    return;
  }
  console.log(`QEMU     ${qemu.version}, TCG, timed by the guest stub (mailbox kind 10)`);
  console.log(`QEMU     (a) ESB GET loads        ${fmt(qemu.rates.esbGet)}`);
  console.log(`QEMU     (b) interrupt cycles     ${fmt(qemu.rates.cycles)}`);
  console.log(`ratio xivelab/QEMU  (a) ${(x.esbGet / qemu.rates.esbGet).toFixed(2)}`);
  console.log(`ratio xivelab/QEMU  (b) ${(x.cycles / qemu.rates.cycles).toFixed(2)}`);
}

await main();
