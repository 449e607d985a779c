/**
 * The race scenario format (`scenarios/races/*.yaml`): an initial kernel set-up (guest irqs with
 * a source, VFIO functions and their bindings, processes mapping the device's ESB range, pages
 * already faulted in, vCPUs), the threads that run concurrently from it, the designs to explore
 * and the preemption bound. Strict zod 4 schema; `xivelab schema --race` prints its JSON Schema.
 */

import { z } from 'zod';

/** Guest irqs a race scenario may use: the ESB mapping covers this many (2 pages each). */
export const RACE_NR_IRQS = 64;

/**
 * Designs whose kernel seam re-points ESB pages (the ones a kernel race can tell apart); each is
 * a design of the registry (`designs/index.ts`, checked by its unit test).
 */
export const RACE_DESIGNS = ['rmap', 'rmap-fixed', 'vma-pointer', 'vma-walk'] as const;

const Name = z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a lower-case name (a-z, 0-9, -)');
const Irq = z
  .number()
  .int()
  .min(0)
  .max(RACE_NR_IRQS - 1);
const Page = z.enum(['trig', 'eoi']).describe('the even (trigger) or odd (EOI/management) ESB page');

const VfioFunction = z.strictObject({
  name: Name,
  vectors: z.number().int().min(1).max(4).default(1),
});

const Binding = z.strictObject({
  irq: Irq,
  function: Name,
  vector: z.number().int().min(0).max(3).default(0),
});

const Process = z.strictObject({
  name: Name,
  /** Forked from this process at set-up (inherits its mappings and PTEs). */
  fork: Name.optional(),
});

const Faulted = z.strictObject({ process: Name, irq: Irq, page: Page });

const Setup = z.strictObject({
  irqs: z.array(Irq).min(1),
  functions: z.array(VfioFunction).default([]),
  bound: z.array(Binding).default([]),
  /** The first one is the VMM: it creates the VM and the device and maps the ESB range. */
  processes: z
    .array(Process)
    .min(1)
    .default([{ name: 'qemu' }]),
  faulted: z.array(Faulted).default([]),
  vcpus: z.number().int().min(0).max(2).default(1),
  /** The VMM maps the TIMA pages (device file pages 0–3) before the ESB range. */
  tima: z.boolean().default(false),
  /** Each vCPU is connected to the device with a priority-6 event queue (SOURCE_CONFIG targets). */
  queues: z.boolean().default(false),
});

/** A run of guest irqs' ESB pages inside a process's mapping (what mremap/mprotect act on). */
const Span = {
  process: Name,
  irq: Irq.describe('the first girq whose two ESB pages are in the span'),
  irqs: z.number().int().min(1).max(8).default(1).describe('how many girqs (2 pages each)'),
};

/** The operations a thread can run. */
const Thread = z.discriminatedUnion('op', [
  z.strictObject({
    name: Name,
    op: z.literal('esb-fault').describe('a user access faulting in an ESB page: xive_native_esb_fault'),
    process: Name,
    irq: Irq,
    page: Page,
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('partition-fault')
      .describe("vCPU 0 (KVM_RUN, vcpu->mutex) misses the partition-scoped tree on a girq's ESB page"),
    irq: Irq,
    page: Page,
  }),
  z.strictObject({
    name: Name,
    op: z.literal('set-mapped').describe('irq bypass binds a function vector: kvmppc_xive_set_mapped'),
    ...Binding.shape,
  }),
  z.strictObject({
    name: Name,
    op: z.literal('clr-mapped').describe('irq bypass unbinds: kvmppc_xive_clr_mapped'),
    ...Binding.shape,
    /** irq_set_vcpu_affinity(host_irq, NULL) fails (the error path that keeps the block lock). */
    affinityFails: z.boolean().default(false),
  }),
  z.strictObject({
    name: Name,
    op: z.literal('munmap').describe("munmap of a process's ESB mapping"),
    process: Name,
  }),
  z.strictObject({
    name: Name,
    op: z.literal('fork').describe('fork of a process mapping the ESB range (the child copies its PTEs)'),
    process: Name,
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('vcpu-access')
      .describe(
        "vCPU 0 (KVM_RUN, vcpu->mutex) loads a girq's ESB page through the partition-scoped tree, faulting it in when absent",
      ),
    irq: Irq,
    page: Page,
    accesses: z.number().int().min(1).max(3).default(1),
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('mremap')
      .describe(
        "mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of a span of a process's ESB mapping elsewhere: the VMA splits",
      ),
    ...Span,
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('mprotect')
      .describe("mprotect(PROT_READ) of a span of a process's ESB mapping: the VMA splits"),
    ...Span,
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('source-config')
      .describe('KVM_DEV_XIVE_GRP_SOURCE_CONFIG: target a girq at a server and priority'),
    irq: Irq,
    server: z.number().int().min(0).max(1).default(0),
    priority: z.number().int().min(0).max(6).default(6),
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('vfio-unplug')
      .describe(
        'hot-unplug of a VFIO function: each bound vector unbound through irq bypass del_producer (clr_mapped), then free_irq and removal',
      ),
    function: Name,
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('tima-fault')
      .describe('a user access faulting in the TIMA OS page: xive_native_tima_fault'),
    process: Name,
  }),
  z.strictObject({
    name: Name,
    op: z
      .literal('release')
      .describe('the last close of the device fd: kvmppc_xive_native_release (after every munmap)'),
  }),
]);

/** A design to explore: a name, or a design with some XIVE flags overridden under a new name. */
const DesignRef = z.union([
  z.enum(RACE_DESIGNS),
  z.strictObject({
    name: Name,
    design: z.enum(RACE_DESIGNS),
    /** XIVE latent-bug / fix flags overridden (XiveNativeFlags). */
    flags: z.record(z.string(), z.boolean()).default({}),
    /** KVM's partition-scoped fault checks mmu_notifier_retry (the kernel always does). */
    mmuNotifierRetry: z.boolean().default(true),
  }),
]);

export const RaceScenario = z
  .strictObject({
    name: Name,
    summary: z.string().min(1),
    setup: Setup,
    threads: z.array(Thread).min(1).max(6),
    designs: z.array(DesignRef).min(1).default(['rmap', 'rmap-fixed']),
    /** CHESS preemption bound; absent: exhaustive. */
    bound: z.number().int().min(0).nullable().default(null),
  })
  .superRefine((s, ctx) => {
    const procs = new Set<string>();
    s.setup.processes.forEach((p, i) => {
      if (procs.has(p.name))
        ctx.addIssue({
          code: 'custom',
          path: ['setup', 'processes', i, 'name'],
          message: `duplicate process "${p.name}"`,
        });
      if (p.fork !== undefined && !procs.has(p.fork))
        ctx.addIssue({
          code: 'custom',
          path: ['setup', 'processes', i, 'fork'],
          message: `fork of "${p.fork}", which is not an earlier process`,
        });
      procs.add(p.name);
    });
    s.threads.forEach((t, i) => {
      if ((t.op === 'partition-fault' || t.op === 'vcpu-access') && s.setup.vcpus < 1)
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'op'],
          message: `${t.op} needs a vCPU (setup.vcpus ≥ 1)`,
        });
      if (t.op === 'source-config' && (!s.setup.queues || t.server >= s.setup.vcpus))
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'server'],
          message: 'SOURCE_CONFIG targets a connected vCPU (setup.queues: true, server < setup.vcpus)',
        });
      if (t.op === 'tima-fault' && !s.setup.tima)
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'op'],
          message: 'a TIMA fault needs the TIMA mapped (setup.tima: true)',
        });
      if ((t.op === 'mremap' || t.op === 'mprotect') && t.irq + t.irqs > RACE_NR_IRQS)
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'irqs'],
          message: `the span ends past the ESB mapping (${RACE_NR_IRQS} girqs)`,
        });
    });
    if (s.setup.processes[0]?.fork !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['setup', 'processes', 0, 'fork'],
        message: 'the VMM (first process) is not forked',
      });
    const fns = new Map(s.setup.functions.map((f) => [f.name, f.vectors]));
    const irqs = new Set(s.setup.irqs);
    const checkBinding = (
      b: { irq: number; function: string; vector: number },
      path: (string | number)[],
    ): void => {
      const v = fns.get(b.function);
      if (v === undefined)
        ctx.addIssue({ code: 'custom', path: [...path, 'function'], message: `no function "${b.function}"` });
      else if (b.vector >= v)
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'vector'],
          message: `${b.function} has ${v} vector(s)`,
        });
    };
    s.setup.bound.forEach((b, i) => {
      checkBinding(b, ['setup', 'bound', i]);
    });
    s.setup.faulted.forEach((f, i) => {
      if (!procs.has(f.process))
        ctx.addIssue({
          code: 'custom',
          path: ['setup', 'faulted', i, 'process'],
          message: `no process "${f.process}"`,
        });
    });
    const names = new Set<string>();
    s.threads.forEach((t, i) => {
      if (names.has(t.name))
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'name'],
          message: `duplicate thread "${t.name}"`,
        });
      names.add(t.name);
      if ('process' in t && !procs.has(t.process))
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'process'],
          message: `no process "${t.process}"`,
        });
      if (t.op === 'set-mapped' || t.op === 'clr-mapped') checkBinding(t, ['threads', i]);
      if (t.op === 'vfio-unplug' && !fns.has(t.function))
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'function'],
          message: `no function "${t.function}"`,
        });
      if ('irq' in t && !irqs.has(t.irq) && t.op !== 'esb-fault' && t.op !== 'mremap' && t.op !== 'mprotect')
        ctx.addIssue({
          code: 'custom',
          path: ['threads', i, 'irq'],
          message: `girq ${t.irq} has no source in setup.irqs`,
        });
    });
    const dnames = new Set<string>();
    s.designs.forEach((d, i) => {
      const n = typeof d === 'string' ? d : d.name;
      if (dnames.has(n))
        ctx.addIssue({ code: 'custom', path: ['designs', i], message: `duplicate design "${n}"` });
      dnames.add(n);
    });
  });

export type RaceScenario = z.output<typeof RaceScenario>;
export type RaceThread = RaceScenario['threads'][number];
export type RaceSetup = RaceScenario['setup'];

/** The JSON Schema of a race scenario file (input form). */
export function raceScenarioJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(RaceScenario, { io: 'input', unrepresentable: 'any' }),
    title: 'xivelab race scenario',
  };
}
