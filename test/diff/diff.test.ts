/**
 * Differential suite: the same operations against QEMU 7.2 (qemu-system-ppc64 + the oracle
 * stub) and against xivelab (the qtest server in process), compared after every step.
 *
 * - Targeted sequences (sequences.ts) and seeded random batches (random.ts), ≥10k operations.
 * - `XIVELAB_DIFF_SEED=<n>` replays one random batch; `XIVELAB_DIFF_OPS` sets the total
 *   number of random operations (default 10 000); `XIVELAB_DIFF_BATCH` the batch size.
 * - A mismatch prints the seed, the shortest failing prefix (bisected on fresh instances) and
 *   both transcripts. QEMU's known defects are handled in normalise.ts only.
 * - Without qemu-system-ppc64 (or $QEMU) the QEMU part is skipped with a one-line message.
 * - KVM mode: the same targeted sequences (all of them) and seeded random batches with xivelab
 *   running `-accel kvm` (the in-kernel XIVE on a host of its own) against the same QEMU 7.2
 *   (TCG: there is no KVM here; the oracle is the architectural behaviour). The faithful
 *   differences between QEMU's emulated XIVE and the in-kernel one are handled in normalise.ts
 *   (KvmRules, kvmOp, normaliseQemu*Kvm), each with its reason. `XIVELAB_DIFF_KVM_OPS` sets the
 *   number of random operations (default 3000, seeds from 5001).
 */

import { afterAll, describe, expect, test } from 'vitest';
import { describeOp, type Op, Runner, type Step } from './ops.ts';
import { findQemu, inProcessXivelab, spawnQemu, spawnXivelabQemu, Target } from './qemu-driver.ts';
import { randomSequence } from './random.ts';
import { SEQUENCES } from './sequences.ts';

const QEMU = findQemu();
const TOTAL_OPS = Number(process.env.XIVELAB_DIFF_OPS ?? 10_000);
const KVM_OPS = Number(process.env.XIVELAB_DIFF_KVM_OPS ?? 3000);
const BATCH = Number(process.env.XIVELAB_DIFF_BATCH ?? 700);
const REPLAY = process.env.XIVELAB_DIFF_SEED;
/** QEMU instances run at once (each is its own process; xivelab runs in this one). */
const PARALLEL = 2;

interface PairResult {
  compared: number;
  /** Steps excluded by the KVM-mode rules of normalise.ts (not run on either side). */
  excluded: number;
  /** Index of the first mismatching step, or -1. */
  bad: number;
  qemu: Step[];
  xivelab: Step[];
}

/**
 * Run `ops` on a fresh QEMU and a fresh xivelab, comparing after every step; `kvm`: xivelab in
 * KVM mode, both runners applying normalise.ts's KVM rules.
 */
async function runPair(bin: string, ops: readonly Op[], kvm = false): Promise<PairResult> {
  const q = new Runner(new Target('qemu', await spawnQemu(bin)), true, kvm);
  const x = new Runner(new Target('xivelab', inProcessXivelab(1, kvm ? 'kvm' : 'tcg')), false, kvm);
  const excluded = (): number => x.transcript.filter((st) => st.obs[0]?.startsWith('excluded: KVM: ')).length;
  try {
    await Promise.all([q.boot(), x.boot()]);
    for (let i = 0; i < ops.length; i++) {
      const [a, b] = await Promise.all([q.step(ops[i]!), x.step(ops[i]!)]);
      if (a.join('\n') !== b.join('\n'))
        return { compared: i + 1, excluded: excluded(), bad: i, qemu: q.transcript, xivelab: x.transcript };
    }
    return { compared: ops.length, excluded: excluded(), bad: -1, qemu: q.transcript, xivelab: x.transcript };
  } finally {
    await Promise.all([q.t.close(), x.t.close()]);
  }
}

/** Smallest prefix length that still mismatches, by bisection on fresh instances. */
async function shrink(
  bin: string,
  ops: readonly Op[],
  firstBad: number,
  kvm: boolean,
): Promise<PairResult & { len: number }> {
  let lo = 1;
  let hi = firstBad + 1;
  let best = await runPair(bin, ops.slice(0, hi), kvm);
  if (best.bad < 0) return { ...best, len: -1 }; // did not reproduce on fresh instances
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const r = await runPair(bin, ops.slice(0, mid), kvm);
    if (r.bad >= 0) {
      hi = mid;
      best = r;
    } else {
      lo = mid + 1;
    }
  }
  return { ...best, len: hi };
}

function transcript(steps: readonly Step[], from: number): string {
  return steps
    .slice(from)
    .map((s, i) => `  #${from + i} ${s.op}\n${s.obs.map((o) => `      ${o}`).join('\n')}`)
    .join('\n');
}

async function report(
  bin: string,
  label: string,
  ops: readonly Op[],
  r: PairResult,
  kvm = false,
): Promise<string> {
  const s = await shrink(bin, ops, r.bad, kvm);
  const use = s.len > 0 ? s : r;
  const i = use.bad;
  const from = Math.max(0, i - 25);
  return [
    `MISMATCH in ${label}${kvm ? ' (xivelab in KVM mode)' : ''} at step #${i}: ${describeOp(ops[i]!)}`,
    s.len > 0
      ? `shortest failing prefix: ${s.len} operations (replayed on fresh instances)`
      : 'did not reproduce on fresh instances (QEMU nondeterminism?)',
    `QEMU 7.2:\n${transcript(use.qemu, from)}`,
    `xivelab:\n${transcript(use.xivelab, from)}`,
  ].join('\n');
}

let compared = 0;
let mismatches = 0;

if (QEMU === null) {
  console.log(
    'QEMU differential suite skipped: qemu-system-ppc64 not found (install qemu-system-ppc or set $QEMU)',
  );
}

describe.skipIf(QEMU === null)('QEMU 7.2 vs xivelab', () => {
  const bin = QEMU ?? '';

  afterAll(() => {
    console.log(`QEMU differential: compared ${compared} operations, ${mismatches} mismatches`);
  });

  for (const [name, make] of Object.entries(SEQUENCES)) {
    test.skipIf(REPLAY !== undefined)(`targeted: ${name}`, async () => {
      const ops = make();
      const r = await runPair(bin, ops);
      compared += r.compared;
      if (r.bad >= 0) {
        mismatches++;
        expect.fail(await report(bin, `targeted sequence "${name}"`, ops, r));
      }
    });
  }

  const seeds: number[] =
    REPLAY !== undefined
      ? [Number(REPLAY)]
      : Array.from({ length: Math.ceil(TOTAL_OPS / BATCH) }, (_, i) => 1001 + i);
  test(`random: ${seeds.length} batch(es) of ${BATCH} operations, seeds ${seeds[0]}…${seeds.at(-1)}`, async () => {
    const failures: string[] = [];
    const queue = [...seeds];
    const worker = async (): Promise<void> => {
      for (let seed = queue.shift(); seed !== undefined; seed = queue.shift()) {
        const ops = randomSequence(seed, BATCH);
        const r = await runPair(bin, ops);
        compared += r.compared;
        if (r.bad >= 0) {
          mismatches++;
          failures.push(
            `${await report(bin, `random batch seed ${seed}`, ops, r)}\nreplay: XIVELAB_DIFF_SEED=${seed} npx vitest run test/diff`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    if (failures.length > 0) expect.fail(failures.join('\n\n'));
  }, 600_000);
});

/**
 * Hostile qtest lines QEMU 7.2 answers without ending the process, each group on a fresh pair
 * (an `irq_intercept_*` that succeeds claims the session): replies compared line by line.
 */
const WIRE_CASES: Record<string, readonly string[]> = {
  'write: size 0, short data, bad nibbles, missing data': [
    'write 0x9000 0 0x',
    'write 0x9000 0 0x1',
    'write 0x9000 0 12',
    'write 0x9000 4 xx',
    'write 0x9000 4 xxx',
    'readl 0x9000',
    'write 0x9000 4 0xZZ11zz22',
    'readl 0x9000',
    'write 0x9000 4 0xZ1z2',
    'readl 0x9000',
    'write 0x9000 4 0x1Z2z33',
    'readl 0x9000',
    'write 0x9000 4 ab112233',
    'readl 0x9000',
    'write 0x9000 4 0x11223',
    'readl 0x9000',
    'write 0x9000 2 0x112233445566',
    'readl 0x9000',
    'write 0x9000 0x100000000 0x',
  ],
  'irq_intercept: unknown paths, then the spapr-xive claims the session': [
    'irq_intercept_in /machine/unattached/device[01]/thread[0]',
    'irq_intercept_in /machine/unattached/device[9]',
    'irq_intercept_in  /machine/unattached/device[0]',
    'irq_intercept_in /machine/unattached/device[1]/thread[0]/type',
    'irq_intercept_in /machine/unattached/device[1]/thread[0]/..',
    'irq_intercept_in /machine/rtc/parent_bus',
    'irq_intercept_in /machine/unattached/device[1]/parent_bus',
    'irq_intercept_in child[0]',
    'irq_intercept_in parent_bus',
    'irq_intercept_in /machine/unattached/device[0]',
    'irq_intercept_in /machine/unattached/device[1]/thread[0]',
    'irq_intercept_out /machine/unattached/device[0]',
    'irq_intercept_in /machine/unattached/device[0]',
  ],
  'irq_intercept_out of the CPU core, twice': [
    'irq_intercept_out /machine/unattached/device[1]',
    'irq_intercept_out /machine/unattached/device[1]',
  ],
  'irq_intercept_in of the NVRAM': ['irq_intercept_in /machine/unattached/device[3]'],
  'irq_intercept_in of the VIO bridge, empty components': [
    'irq_intercept_in /machine/unattached/device[2]',
    'irq_intercept_in //machine//unattached/device[2]/',
  ],
  'irq_intercept_in of the PHB through a sysbus link': [
    'irq_intercept_in /machine/unattached/sysbus/child[2]',
    'irq_intercept_in /machine/unattached/device[4]',
  ],
  'irq_intercept_in of the vCPU by a partial path': [
    'irq_intercept_in thread[0]',
    'irq_intercept_in /machine/unattached/device[1]/thread[0]/',
  ],
  'irq_intercept_in of the vCPU through links': [
    'irq_intercept_in /machine/dr-connector[268435456]/device/thread[0]',
    'irq_intercept_in /machine/unattached/device[1]/thread[0]/xive-tctx/cpu/xive-tctx/cpu',
    'irq_intercept_in cpu',
  ],
  'irq_intercept_in of the xive-tctx': ['irq_intercept_in xive-tctx'],
  'irq_intercept_in of a PCI connector by a partial path': ['irq_intercept_in dr-connector[1073741824]'],
  'irq_intercept_in of the wdt1': ['irq_intercept_in wdt1', 'irq_intercept_in /machine/wdt2'],
};

describe.skipIf(QEMU === null)('QEMU 7.2 vs xivelab: hostile qtest lines', () => {
  const bin = QEMU ?? '';
  for (const [name, lines] of Object.entries(WIRE_CASES)) {
    test(name, async () => {
      const q = new Target('qemu', await spawnQemu(bin));
      const x = new Target('xivelab', inProcessXivelab());
      try {
        const [a, b] = await Promise.all([q.link.send(lines), x.link.send(lines)]);
        const pair = (r: readonly string[]): string[] => lines.map((l, i) => `${l} → ${r[i]}`);
        expect(pair(b)).toEqual(pair(a));
      } finally {
        await Promise.all([q.close(), x.close()]);
      }
    });
  }
});

let kvmCompared = 0;
let kvmExcluded = 0;
let kvmMismatches = 0;

describe.skipIf(QEMU === null)('QEMU 7.2 vs xivelab in KVM mode (-accel kvm)', () => {
  const bin = QEMU ?? '';

  afterAll(() => {
    console.log(
      `QEMU differential, KVM mode: compared ${kvmCompared} operations (${kvmExcluded} of them excluded by the KVM rules), ${kvmMismatches} mismatches`,
    );
  });

  for (const [name, make] of Object.entries(SEQUENCES)) {
    test.skipIf(REPLAY !== undefined)(
      `targeted (KVM): ${name}`,
      async () => {
        const ops = make();
        const r = await runPair(bin, ops, true);
        kvmCompared += r.compared;
        kvmExcluded += r.excluded;
        if (r.bad >= 0) {
          kvmMismatches++;
          expect.fail(await report(bin, `targeted sequence "${name}"`, ops, r, true));
        }
      },
      120_000,
    );
  }

  const seeds: number[] =
    REPLAY !== undefined
      ? [Number(REPLAY)]
      : Array.from({ length: Math.ceil(KVM_OPS / BATCH) }, (_, i) => 5001 + i);
  test(`random (KVM): ${seeds.length} batch(es) of ${BATCH} operations, seeds ${seeds[0]}…${seeds.at(-1)}`, async () => {
    const failures: string[] = [];
    const queue = [...seeds];
    const worker = async (): Promise<void> => {
      for (let seed = queue.shift(); seed !== undefined; seed = queue.shift()) {
        const ops = randomSequence(seed, BATCH);
        const r = await runPair(bin, ops, true);
        kvmCompared += r.compared;
        kvmExcluded += r.excluded;
        if (r.bad >= 0) {
          kvmMismatches++;
          failures.push(
            `${await report(bin, `random batch seed ${seed}`, ops, r, true)}\nreplay: XIVELAB_DIFF_SEED=${seed} npx vitest run test/diff -t "KVM mode"`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    if (failures.length > 0) expect.fail(failures.join('\n\n'));
  }, 600_000);
});

/** Boots both, steps both through `ops`, closes both: the transcripts are equal. */
async function expectSameTranscript(ops: readonly Op[], p: Runner, x: Runner): Promise<void> {
  try {
    await Promise.all([p.boot(), x.boot()]);
    for (const op of ops) await Promise.all([p.step(op), x.step(op)]);
  } finally {
    await Promise.all([p.t.close(), x.t.close()]);
  }
  expect(p.transcript).toEqual(x.transcript);
}

describe('xivelab-qemu process', () => {
  test('serves the same transcript as the in-process server (full-path sequence)', async () => {
    const p = new Runner(new Target('xivelab-qemu', await spawnXivelabQemu()), false);
    const x = new Runner(new Target('xivelab', inProcessXivelab()), false);
    await expectSameTranscript(SEQUENCES['full-path']!(), p, x);
    expect(p.transcript.find((s) => s.op.startsWith('vld2'))?.obs[0]).toBe('= 0x8003');
  });

  test('-accel kvm: the same transcript as the in-process KVM-mode server (masks-retargets, HMP info pic)', async () => {
    const p = new Runner(new Target('xivelab-qemu', await spawnXivelabQemu(1, 'kvm')), false, true);
    const x = new Runner(new Target('xivelab', inProcessXivelab(1, 'kvm')), false, true);
    await expectSameTranscript(SEQUENCES['masks-retargets']!(), p, x);
    expect(p.transcript.at(-1)?.obs.at(-1)).toBe('irqchip: in-kernel');
  });
});
