/**
 * Every design on every built-in passthrough scenario, asserting the invariant outcome the model
 * produces — the failing invariants exactly — with the reason in the
 * test name. Seed 1 (the scenarios' default); a failure message names the seed.
 */

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinScenarioFiles, exportTrace } from '../../src/cli/compare.ts';
import { DESIGN_NAMES, DESIGNS, designNamed } from '../../src/designs/index.ts';
import { type CellResult, INVARIANTS } from '../../src/scenario/cell.ts';
import { registryRunner } from '../../src/scenario/cell-dispatch.ts';
import { loadScenario } from '../../src/scenario/load.ts';
import { Reference } from '../../src/scenario/reference.ts';
import type { Scenario } from '../../src/scenario/schema.ts';

const SEED = 1;

const REPLUG_EISN =
  'mainline re-plug: QEMU does not pass the guest’s prio-0xff mask to KVM, KVM keeps the unchanged re-config as a no-op, set_mapped programs EISN = LISN (book3s_xive.c:kvmppc_xive_set_mapped()): the Linux guest loses the function’s interrupts from the second plug on';
const POINTER =
  'the VMA pointer follows the last ESB mmap: the VMM’s own mapping keeps the IPI page while bound (I1) and the device page after unplug (I2)';
const DEDICATED = 'dedicated numbers: the guest sees other irq numbers than with the emulated reference (I6)';
const DEDICATED_LEAK =
  'dedicated numbers are never switched, so nothing zaps: another mapping of the KVM device that touched them before the bind keeps their IPI pages while bound (I1), and one that touched them while bound keeps the device page after unplug (I1, I2)';
const NO_KERNEL_ZAP =
  'the kernel no longer zaps: a mapping of the KVM device made while bound keeps the device page after unplug (I1, I2)';
const UNDER_OVERLAY =
  'the kernel no longer zaps and the overlay covers the guest’s view only: the VMM’s own KVM ESB mapping keeps the IPI page under it while the device backs the irq, so PQs read through it (QEMU’s migration code) are the IPI’s (I1)';
const OTHER_MAPPINGS_KEEP_IPI =
  'the kernel no longer zaps and the VMM remaps its own ESB mapping only: another mapping of the KVM device keeps the IPI page while the device backs the irq (I1)';
const SPLIT_FAULT =
  'mainline’s ESB fault takes the page offset relative to the VMA (vm_pgoff), so the split tail maps each irq’s neighbour’s page (I1)';
const UNTRACKED =
  'without the VMM tracking bind/unbind nothing re-points the pages: the guest keeps the page it first faulted in, and after unplug it still reaches the gone function (I1, I2)';
const PIRQ =
  'KVMPPC_PIRQ_MAPPED: only 1024 vectors per VM are mapped by irq bypass, the rest are injected (I7)';

type Expect = [fails: string[], reason: string];
const HOLDS: Expect = [[], 'holds'];

/** The failing invariants of every (scenario, design), and why. */
const EXPECTED: Record<string, Record<string, Expect>> = {
  'pt-nic-hotplug': {
    'qemu-remap-untracked': [['I1', 'I2'], UNTRACKED],
    rmap: [['I4', 'I6'], REPLUG_EISN],
    'overlap-regions': [['I1'], UNDER_OVERLAY],
    'dedicated-irqs': [['I6'], DEDICATED],
  },
  'pt-second-mapping': {
    'qemu-remap-untracked': [['I1', 'I2'], UNTRACKED],
    rmap: [['I4', 'I6'], REPLUG_EISN],
    'vma-pointer': [['I1', 'I2'], POINTER],
    'overlap-regions': [['I1'], UNDER_OVERLAY],
    'qemu-remap': [['I1'], OTHER_MAPPINGS_KEEP_IPI],
    'dedicated-irqs': [['I1', 'I2', 'I6'], `${DEDICATED}; ${DEDICATED_LEAK}`],
  },
  'pt-forked-helper': {
    'qemu-remap-untracked': [['I1', 'I2'], UNTRACKED],
    rmap: [['I4', 'I6'], REPLUG_EISN],
    'vma-pointer': [['I1', 'I2'], `${POINTER} (the last mmap is the SCM_RIGHTS peer’s)`],
    'vma-walk': [
      ['I1'],
      'the walk visits the VMM’s VMAs only: the helper forked before the bind keeps the IPI page while the device backs the irq (I1)',
    ],
    'overlap-regions': [['I1'], UNDER_OVERLAY],
    'qemu-remap': [['I1'], OTHER_MAPPINGS_KEEP_IPI],
    'dedicated-irqs': [['I1', 'I2', 'I6'], `${DEDICATED}; ${DEDICATED_LEAK}`],
  },
  'pt-split-vma': {
    'qemu-remap-untracked': [['I1', 'I2'], UNTRACKED],
    rmap: [['I1', 'I4', 'I6'], `${REPLUG_EISN}; ${SPLIT_FAULT}`],
    'vma-pointer': [['I1', 'I2'], POINTER],
    'overlap-regions': [['I1'], UNDER_OVERLAY],
    'qemu-remap': [['I1'], OTHER_MAPPINGS_KEEP_IPI],
    'dedicated-irqs': [['I1', 'I2', 'I6'], `${DEDICATED}; ${DEDICATED_LEAK}`],
  },
  'pt-late-mapping': {
    'qemu-remap-untracked': [['I1', 'I2'], UNTRACKED],
    rmap: [['I4', 'I6'], REPLUG_EISN],
    'vma-pointer': [['I1', 'I2'], POINTER],
    'vma-walk': [
      ['I1', 'I2'],
      'a helper forked after the bind keeps device PTEs the walk over the VMM’s VMAs never sees, after unplug too (I1, I2)',
    ],
    'overlap-regions': [['I1', 'I2'], `${NO_KERNEL_ZAP}; ${UNDER_OVERLAY}`],
    'qemu-remap': [['I1', 'I2'], NO_KERNEL_ZAP],
    'dedicated-irqs': [['I1', 'I2', 'I6'], `${DEDICATED}; ${DEDICATED_LEAK}`],
  },
  'pt-unbind-pending': {
    'qemu-remap-untracked': [['I1', 'I2'], UNTRACKED],
    rmap: [['I4', 'I6'], REPLUG_EISN],
    'overlap-regions': [['I1'], UNDER_OVERLAY],
    'dedicated-irqs': [['I6'], DEDICATED],
  },
  'pt-dropped-mapping': {
    'qemu-remap-untracked': [['I1', 'I2'], UNTRACKED],
    rmap: [['I4', 'I6'], REPLUG_EISN],
    'vma-pointer': [['I1', 'I2', 'I3'], `${POINTER}; the pointed-to VMA was freed by munmap (I3)`],
    'overlap-regions': [['I1'], UNDER_OVERLAY],
    'dedicated-irqs': [['I6'], DEDICATED],
  },
  'pt-migrate-unplugged': {
    rmap: [['I4', 'I6'], REPLUG_EISN],
    'qemu-remap-untracked': [
      ['I1', 'I2', 'I4', 'I6'],
      `${UNTRACKED}; on the destination the resume faults in the IPI pages first and the function's interrupts are lost (I4, so the delivery trace differs: I6)`,
    ],
    'overlap-regions': [['I1'], UNDER_OVERLAY],
    'dedicated-irqs': [
      ['I1', 'I4', 'I6'],
      `${DEDICATED}; on the destination QEMU's resume writes every valid source's PQ through the KVM ESB mapping, so the next plug's dedicated numbers sit on their IPI pages before any bind and nothing re-points them (I1, I4)`,
    ],
  },
  'pt-many-vectors': {
    'qemu-remap-untracked': [['I1', 'I2', 'I7'], `${UNTRACKED}; ${PIRQ}`],
    rmap: [['I7'], PIRQ],
    'rmap-fixed': [['I7'], PIRQ],
    'vma-pointer': [['I7'], PIRQ],
    'vma-walk': [['I7'], PIRQ],
    'overlap-regions': [
      ['I4', 'I6', 'I7'],
      'two memslots per bound irq: KVM_SET_USER_MEMORY_REGION fails at the 512-slot limit, the vectors set up after it lose their interrupts',
    ],
    'qemu-remap': [
      ['I1', 'I4', 'I6', 'I7'],
      `${PIRQ}; the VMM maps the device pages over them anyway, so the guest EOIs the device while its events come through the IPI`,
    ],
    'dedicated-irqs': [['I6', 'I7'], `${DEDICATED}; ${PIRQ}`],
  },
};

const failing = (c: CellResult): string[] => INVARIANTS.filter((i) => c.invariants[i].status === 'fail');

/**
 * The emulated reference of the scenario the last cell ran (a row's cells share it, as in
 * `xivelab compare`): a cell run alone makes its own.
 */
let reference: Reference | null = null;
function referenceOf(scenario: Scenario): Reference {
  if (reference?.scenario !== scenario || reference.seed !== SEED) reference = new Reference(scenario, SEED);
  return reference;
}

const scenarios = builtinScenarioFiles()
  .map((file) => ({ file, scenario: loadScenario(file) }))
  .filter((s) => s.scenario.passthrough !== undefined);

describe('every design × every built-in passthrough scenario (seed 1)', () => {
  it('the table covers exactly the built-in passthrough scenarios and the registered designs', () => {
    expect(scenarios.map((s) => s.scenario.name).sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(DESIGN_NAMES).toHaveLength(9);
  });

  for (const { file, scenario } of scenarios) {
    for (const design of DESIGN_NAMES) {
      const [fails, reason] = EXPECTED[scenario.name]?.[design] ?? HOLDS;
      const what = fails.length === 0 ? 'holds' : `breaks ${fails.join(', ')}`;
      it(`${scenario.name} × ${design}: ${what}${fails.length ? ` — ${reason}` : ''}`, () => {
        const c = registryRunner(
          { name: scenario.name, file, scenario },
          design,
          SEED,
          referenceOf(scenario),
        );
        expect(failing(c), `${scenario.name} × ${design} (seed ${SEED})`).toEqual(fails);
        if (designNamed(design).accel === 'emulated') {
          // The reference: deliveries and isolation (its VMM relays through VFIO); the KVM
          // invariants are not its, and I6 compares with it.
          expect(INVARIANTS.map((i) => c.invariants[i].status)).toEqual([
            'n/a',
            'pass',
            'n/a',
            'pass',
            'pass',
            'n/a',
            'n/a',
          ]);
        }
        for (const i of fails) expect(c.invariants[i as 'I1'].first!.trace.length).toBeGreaterThan(0);
      }, 120_000);
    }
  }

  const workloads = builtinScenarioFiles()
    .map((file) => ({ file, scenario: loadScenario(file) }))
    .filter((s) => s.scenario.passthrough === undefined);
  for (const { file, scenario } of workloads) {
    for (const design of DESIGNS.filter((d) => d.accel === 'kvm').map((d) => d.name)) {
      it(`${scenario.name} × ${design}: holds — no passthrough function: the workload runs under KVM with the design's seams and the guest sees exactly what it sees emulated (I6)`, () => {
        const c = registryRunner(
          { name: scenario.name, file, scenario },
          design,
          SEED,
          referenceOf(scenario),
        );
        expect(
          INVARIANTS.map((i) => c.invariants[i].status),
          `${scenario.name} × ${design} (seed ${SEED})`,
        ).toEqual(Array(7).fill('pass'));
        // Under KVM: only hcalls exit (ESB and TIMA pages are mapped), and the VMM's three
        // memslots (RAM, the ESB and TIMA overlays) are all there is.
        expect(c.costs.vmmExits).toBe(c.costs.hcalls);
        expect(c.costs.hcalls).toBeGreaterThan(0);
        expect(c.costs.memslotsPeak).toBe(3);
        expect(c.costs.ptesZapped).toBe(0);
      }, 120_000);
    }
  }

  it('run --design D --trace: a passthrough run exports its host/KVM events as Chrome trace JSON', () => {
    const { file, scenario } = scenarios.find((s) => s.scenario.name === 'pt-second-mapping')!;
    const out = join(mkdtempSync(join(tmpdir(), 'xivelab-trace-')), 't.json');
    const n = exportTrace({ name: scenario.name, file, scenario }, 'vma-pointer', SEED, out);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: { name: string }[] };
    const names = new Set(doc.traceEvents.map((e) => e.name));
    expect(n).toBeGreaterThan(1000);
    // Each bind re-points through the design's seam (kvm.xive.zap), and the VMM plugs the function.
    for (const k of ['kvm.xive.zap', 'vfio.plug', 'vfio.unplug', 'mm.zap'])
      expect(names.has(k), k).toBe(true);
  });

  it('a cell is deterministic for a seed', () => {
    const { file, scenario } = scenarios.find((s) => s.scenario.name === 'pt-second-mapping')!;
    const ref = { name: scenario.name, file, scenario };
    expect(registryRunner(ref, 'vma-pointer', 7)).toEqual(registryRunner(ref, 'vma-pointer', 7));
  });
});
