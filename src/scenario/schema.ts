/**
 * The scenario format: a machine (vCPUs, RAM, devices with MSI/LSI counts), a workload (device
 * trigger streams with rates and patterns, IPIs, random masks/unmasks, retargets, CPU
 * offline/online, a stop condition) and options (seed). Strict zod 4 schema; the JSON Schema in
 * `schema/scenario.json` is emitted from it (`xivelab schema`).
 *
 * Times are virtual nanoseconds (a number) or a string with a unit (`"250us"`, `"10ms"`, `"1s"`);
 * rates are events per second of virtual time; sizes are bytes or a string with a binary unit
 * (`"64MiB"`). Every rate, time and count has a range that keeps a run finite: a scenario file is
 * untrusted input, and a value outside its range is an error at its position, never a run that
 * hangs or overflows.
 */

import { z } from 'zod';
import { PCI_NUM_PINS, SPAPR_NR_MSIS, SpaprMsiBitmap } from '../vmm/spapr-irq.ts';

/** Trigger patterns of a device stream. */
export const PATTERNS = ['uniform', 'round-robin', 'bursts'] as const;
export type Pattern = (typeof PATTERNS)[number];

/** Largest vCPU count a scenario may ask for (each vCPU gets a thread context and a queue). */
export const MAX_VCPUS = 256;
/** Guest RAM the firmware area and the guest kernel need besides the per-CPU queues. */
const RAM_BASE_NEED = 2 * 0x10_0000;
/** One 64 KiB event queue per vCPU (Linux `xive_alloc_order` with 64 KiB pages). */
const QUEUE_BYTES = 0x1_0000;

/**
 * Slowest rate: one event per second of virtual time. A slower rate only makes jitter ranges and
 * virtual times huge without adding events.
 */
export const MIN_RATE = 1;
/** Fastest rate: one event per virtual nanosecond, the clock's resolution. */
export const MAX_RATE = 1e9;
/** Longest time a scenario may name (a duration, a mask hold, the latency): one virtual hour. */
export const MAX_DURATION_NS = 3600e9;
/**
 * Most events one run may be expected to process: device triggers plus IPIs, masks, retargets and
 * hotplug events until the stop condition, and passthrough MSIs (cycles × msisPerCycle). Each is a
 * pass through the model's interrupt paths (about 5 to 50 µs of wall time on a small machine), so
 * this bounds a run to minutes.
 */
export const MAX_EVENTS = 1e7;
/** Most CPU offline/online events in one run: each is a whole hot-unplug or plug (~0.3 ms). */
export const MAX_HOTPLUG_EVENTS = 1e6;
/** Largest guest RAM (1 TiB). */
export const MAX_RAM_SIZE = 2 ** 40;
/** Device slots on a PCI bus (QEMU `PCI_SLOT_MAX`): devices of the default PHB take one each. */
export const PCI_SLOT_MAX = 32;
/** Default rate of the implicit MSI stream of a device; its LSI stream runs at a tenth. */
export const DEFAULT_STREAM_RATE = 1e6;

/**
 * A quantity written as a number or as a string `<number><unit>`. `number` is the plain form
 * with its range; `pattern` captures a string's number and unit (none: `units['']`); `convert`
 * gives the string's value, or why it is refused (`is too long: …`), since a string can overflow
 * the range (`"1e400s"` is Infinity).
 */
function withUnits(q: {
  number: z.ZodNumber;
  pattern: RegExp;
  units: Record<string, number>;
  expected: string;
  describe: string;
  convert: (n: number) => number | string;
}) {
  return z
    .union([q.number, z.string().regex(q.pattern, `expected ${q.expected}`).describe(q.describe)], {
      error: `expected a number or ${q.expected}`,
    })
    .transform((v, ctx) => {
      if (typeof v === 'number') return v;
      const m = q.pattern.exec(v)!;
      const r = q.convert(Number(m[1]) * q.units[m[2] ?? '']!);
      if (typeof r === 'number') return r;
      ctx.addIssue({ code: 'custom', input: v, message: `"${v.trim()}" ${r}` });
      return z.NEVER;
    });
}

const DURATION_LIMIT = `at most 1 hour of virtual time (${MAX_DURATION_NS} ns, "3600s")`;

/** A duration: nanoseconds, or a string with a unit; at most {@link MAX_DURATION_NS}. */
export const Duration = withUnits({
  number: z.number().min(0).max(MAX_DURATION_NS, DURATION_LIMIT).describe('virtual nanoseconds'),
  pattern: /^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(ns|us|µs|ms|s)\s*$/,
  units: { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 },
  expected: 'a duration like "250us", "10ms" or "1s"',
  describe: 'a time with a unit (ns, us, ms, s), at most "3600s"',
  convert: (ns) => (ns <= MAX_DURATION_NS ? Math.round(ns) : `is too long: ${DURATION_LIMIT}`),
});

/** Events per second of virtual time, {@link MIN_RATE} to {@link MAX_RATE}. */
const Rate = z
  .number()
  .min(MIN_RATE, `a rate is at least ${MIN_RATE} event per second of virtual time`)
  .max(MAX_RATE, `a rate is at most ${MAX_RATE} per second (one event per virtual ns)`)
  .describe('events per second of virtual time');

const RAM_LIMIT = 'at most 1 TiB of guest RAM';

/** Guest RAM in bytes: a multiple of 64 KiB up to {@link MAX_RAM_SIZE}. */
const RamBytes = z
  .int()
  .min(RAM_BASE_NEED)
  .max(MAX_RAM_SIZE, RAM_LIMIT)
  .multipleOf(0x1_0000, 'guest RAM is a multiple of 64 KiB');

/** A RAM size: bytes, or a string with a binary unit (`"64MiB"`, `"1GiB"`, `"67108864"`). */
const RamSize = withUnits({
  number: RamBytes,
  pattern: /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*$/,
  units: { '': 1, B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 },
  expected: 'a size like "64MiB", "1GiB" or a byte count',
  describe: 'a size with a binary unit (B, KiB, MiB, GiB, TiB)',
  convert: (bytes) =>
    !(bytes <= MAX_RAM_SIZE)
      ? `is too large: ${RAM_LIMIT}`
      : Number.isInteger(bytes)
        ? bytes
        : 'is not a whole number of bytes',
}).pipe(RamBytes);

export const Device = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'expected a name of letters, digits, "_", "." or "-"'),
    msis: z.int().min(0).max(SPAPR_NR_MSIS).default(0).describe('MSI vectors'),
    lsis: z
      .int()
      .min(0)
      .max(PCI_NUM_PINS, `a PHB device has at most ${PCI_NUM_PINS} LSIs (INTx pins)`)
      .default(0)
      .describe('LSIs (PCI INTx pins, shared through the PHB swizzle)'),
  })
  .describe('A PCI-like device on the default PHB');

export const Stream = z
  .strictObject({
    device: z.string().describe('device name'),
    kind: z.enum(['msi', 'lsi']).default('msi'),
    vectors: z
      .array(z.int().min(0))
      .min(1)
      .max(SPAPR_NR_MSIS)
      .optional()
      .describe('MSI vector / INTx pin indexes of the device (default: all of that kind)'),
    rate: Rate,
    pattern: z.enum(PATTERNS).default('uniform'),
    burst: z.int().min(1).max(4096).default(8).describe('triggers per burst (pattern "bursts")'),
  })
  .describe('A device trigger stream');

const Periodic = z.strictObject({ rate: Rate });

export const Workload = z
  .strictObject({
    triggers: z.int().min(1).max(MAX_EVENTS).optional().describe('stop after this many device triggers'),
    duration: Duration.optional().describe('stop after this much virtual time'),
    streams: z
      .array(Stream)
      .max(256)
      .optional()
      .describe('device trigger streams (default: one uniform stream per device and kind, 1e6/s)'),
    ipis: Periodic.optional().describe('IPIs between random online vCPUs'),
    masks: z
      .strictObject({
        rate: Rate,
        hold: Duration.prefault(20_000).describe('how long an irq stays disabled (mean)'),
      })
      .optional()
      .describe('disable_irq / enable_irq of random device irqs'),
    retargets: Periodic.optional().describe('irq_set_affinity of random device irqs to random online vCPUs'),
    hotplug: z
      .strictObject({ rate: Rate, minOnline: z.int().min(1).max(MAX_VCPUS).default(1) })
      .optional()
      .describe('CPU offline / online events (alternating per CPU)'),
    latency: Duration.prefault(0).describe(
      'delay between an external-interrupt line rising and the vCPU taking it',
    ),
  })
  .refine((w) => w.triggers !== undefined || w.duration !== undefined, {
    message: 'a workload needs "triggers" or "duration"',
  })
  .describe(
    `What runs and when it stops: at most ${MAX_EVENTS} events (triggers, IPIs, masks, retargets, hotplug) expected before the stop condition`,
  );

/**
 * The passthrough part of a scenario: which devices are host PCI functions assigned to
 * the guest through VFIO, how often they are hot-plugged and unplugged, the MSI traffic of each
 * plugged window, and how userspace maps the KVM device's ESB range besides the VMM's own
 * mapping. The passthrough-page designs are compared on these; the emulated reference runs the
 * same traffic with the functions as emulated devices.
 */
export const Passthrough = z
  .strictObject({
    devices: z
      .array(z.string())
      .min(1)
      .describe('names of MSI devices that are passthrough functions (one PHB slot each)'),
    cycles: z.int().min(1).max(1000).default(4).describe('plug → traffic → unplug cycles'),
    msisPerCycle: z.int().min(0).max(1_000_000).default(200).describe('MSIs while plugged, per cycle'),
    takeEvery: z
      .number()
      .min(0)
      .max(1)
      .default(0.3)
      .describe('probability that the guest takes its pending interrupts after an MSI'),
    unbindPending: z
      .boolean()
      .default(false)
      .describe('unplug with an MSI still pending (routed, not yet taken by the guest)'),
    mappings: z
      .strictObject({
        second: z.boolean().default(false).describe('the VMM maps the ESB range a second time (S5)'),
        fork: z.boolean().default(false).describe('a forked helper keeps the VMM’s mappings (S7)'),
        scmRights: z
          .boolean()
          .default(false)
          .describe('a second process gets the device fd by SCM_RIGHTS and maps the ESB range (S7)'),
        split: z
          .boolean()
          .default(false)
          .describe('the VMM unmaps the first 2 pages of its second mapping, splitting the VMA (S10)'),
        drop: z
          .boolean()
          .default(false)
          .describe('the VMM unmaps its second mapping again before the first bind (S9)'),
        late: z
          .boolean()
          .default(false)
          .describe('the extra mappings are made after the first bind instead of before (S8)'),
      })
      .default({ second: false, fork: false, scmRights: false, split: false, drop: false, late: false }),
    migrate: z
      .boolean()
      .default(false)
      .describe(
        'after the last cycle (functions unplugged) the VM migrates to a fresh host; one more cycle runs there',
      ),
    maxMemslots: z.int().min(3).max(32_768).default(512).describe('KVM_USER_MEM_SLOTS of the host'),
    maxMapCount: z.int().min(16).max(0x7fff_ffff).default(65_530).describe('vm.max_map_count of the host'),
  })
  .describe('Passthrough functions and how userspace maps the ESB pages');

/** The scenario's fields, each checked on its own; `Scenario` adds the checks across fields. */
const ScenarioFields = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().default('scenario'),
  description: z.string().optional(),
  vcpus: z.int().min(1).max(MAX_VCPUS).describe('vCPUs (XIVE servers)'),
  ramSize: RamSize.prefault(0x400_0000).describe(
    'guest RAM: bytes (a multiple of 64 KiB, at most 1 TiB) or a size like "64MiB"',
  ),
  devices: z.array(Device).max(PCI_SLOT_MAX, `a PHB bus has ${PCI_SLOT_MAX} device slots`).default([]),
  passthrough: Passthrough.optional(),
  workload: Workload,
  options: z
    .strictObject({
      seed: z.int().min(0).max(0x7fff_ffff).default(1).describe('default seed (--seed overrides)'),
      maxSteps: z
        .int()
        .min(1)
        .max(10_000_000)
        .default(1_000_000)
        .describe('interrupt-handling steps allowed per quiescence (livelock guard)'),
    })
    .default({ seed: 1, maxSteps: 1_000_000 }),
});

/** A scenario whose fields each passed their own checks. */
type Fields = z.output<typeof ScenarioFields>;
/** Where a cross-field check reports. */
type Ctx = z.RefinementCtx<Fields>;

/** RAM enough for the fixed layout and one event queue per vCPU. */
function checkRam(s: Fields, ctx: Ctx): void {
  const need = RAM_BASE_NEED + s.vcpus * QUEUE_BYTES;
  if (s.ramSize < need) {
    ctx.addIssue({
      code: 'custom',
      path: ['ramSize'],
      message: `${s.vcpus} vCPU${s.vcpus === 1 ? '' : 's'} need${s.vcpus === 1 ? 's' : ''} at least ${need} bytes of RAM`,
    });
  }
}

/** Device names are unique and their MSIs fit the MSI range; returns name → index. */
function checkDevices(s: Fields, ctx: Ctx): Map<string, number> {
  const names = new Map<string, number>();
  const msiMap = new SpaprMsiBitmap();
  s.devices.forEach((d, i) => {
    if (names.has(d.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['devices', i, 'name'],
        message: `duplicate device "${d.name}"`,
      });
    }
    names.set(d.name, i);
    // A count that already failed its own range check (1e308, 2.5) is not allocated: the
    // bitmap's alignment search never ends on one.
    const valid = Number.isInteger(d.msis) && d.msis <= SPAPR_NR_MSIS;
    if (valid && d.msis > 0 && msiMap.alloc(d.msis, true) < 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['devices', i, 'msis'],
        message: `no room for ${d.msis} more MSIs (the MSI range holds ${SPAPR_NR_MSIS}, power-of-two aligned)`,
      });
    }
  });
  return names;
}

/** Each stream names a device that has interrupts of its kind, and vectors it has. */
function checkStreams(s: Fields, names: ReadonlyMap<string, number>, ctx: Ctx): void {
  const streams = s.workload.streams ?? [];
  streams.forEach((st, i) => {
    const di = names.get(st.device);
    if (di === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['workload', 'streams', i, 'device'],
        message: `no device "${st.device}"`,
      });
      return;
    }
    const d = s.devices[di]!;
    const n = st.kind === 'msi' ? d.msis : d.lsis;
    if (n === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['workload', 'streams', i, 'kind'],
        message: `device "${d.name}" has no ${st.kind.toUpperCase()}s`,
      });
      return;
    }
    st.vectors?.forEach((v, j) => {
      if (v >= n) {
        ctx.addIssue({
          code: 'custom',
          path: ['workload', 'streams', i, 'vectors', j],
          message: `${st.kind.toUpperCase()} index ${v} out of range: device "${d.name}" has ${n}`,
        });
      }
    });
  });
}

/** The workload triggers something: device interrupts or IPIs. */
function checkSomethingToTrigger(s: Fields, ctx: Ctx): void {
  if (s.workload.streams === undefined && s.devices.every((d) => d.msis + d.lsis === 0)) {
    if (s.workload.ipis === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['workload'],
        message: 'nothing to trigger: no device interrupts and no IPIs',
      });
    }
  }
}

/** Passthrough functions are MSI-only devices of the scenario, at most two PHBs' worth. */
function checkPassthroughDevices(s: Fields, ctx: Ctx): void {
  s.passthrough?.devices.forEach((name, i) => {
    const d = s.devices.find((x) => x.name === name);
    if (d === undefined || d.msis === 0 || d.lsis > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['passthrough', 'devices', i],
        message:
          d === undefined
            ? `no device "${name}"`
            : `device "${name}" must have MSIs and no LSIs to be passed through (MSI-X only)`,
      });
    }
  });
  if (s.passthrough !== undefined && s.passthrough.devices.length > 32) {
    ctx.addIssue({
      code: 'custom',
      path: ['passthrough', 'devices'],
      message: 'at most 32 passthrough functions (2 PHBs of 16 slots)',
    });
  }
}

/** Hotplug keeps no more CPUs online than there are. */
function checkHotplug(s: Fields, ctx: Ctx): void {
  const hp = s.workload.hotplug;
  if (hp && hp.minOnline > s.vcpus) {
    ctx.addIssue({
      code: 'custom',
      path: ['workload', 'hotplug', 'minOnline'],
      message: `minOnline ${hp.minOnline} exceeds vcpus ${s.vcpus}`,
    });
  }
}

export const Scenario = ScenarioFields.superRefine((s, ctx) => {
  checkRam(s, ctx);
  checkStreams(s, checkDevices(s, ctx), ctx);
  checkSomethingToTrigger(s, ctx);
  checkPassthroughDevices(s, ctx);
  checkHotplug(s, ctx);
})
  // The size of the run, once every value is in its range.
  .superRefine(
    (s, ctx) => {
      const w = s.workload;
      const triggerRate = w.streams
        ? w.streams.reduce((sum, st) => sum + st.rate, 0)
        : s.devices.reduce(
            (sum, d) =>
              sum + (d.msis > 0 ? DEFAULT_STREAM_RATE : 0) + (d.lsis > 0 ? DEFAULT_STREAM_RATE / 10 : 0),
            0,
          );
      if (w.duration === undefined && triggerRate === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['workload', 'triggers'],
          message: `no device trigger stream, so the run would never reach ${w.triggers} trigger${w.triggers === 1 ? '' : 's'}: add "duration"`,
        });
        return;
      }
      const byTriggers = w.triggers === undefined ? Number.POSITIVE_INFINITY : w.triggers / triggerRate;
      const byDuration = w.duration === undefined ? Number.POSITIVE_INFINITY : w.duration / 1e9;
      const otherRate =
        (w.ipis?.rate ?? 0) + (w.masks?.rate ?? 0) + (w.retargets?.rate ?? 0) + (w.hotplug?.rate ?? 0);
      const seconds = Math.min(byTriggers, byDuration);
      const events = seconds * (triggerRate + otherRate);
      if (events > MAX_EVENTS) {
        ctx.addIssue({
          code: 'custom',
          path: ['workload', byTriggers <= byDuration ? 'triggers' : 'duration'],
          message: `the workload would run about ${approx(events)} events, more than ${approx(MAX_EVENTS)}: lower its rates or its stop condition`,
        });
      }
      const hotplugs = seconds * (w.hotplug?.rate ?? 0);
      if (hotplugs > MAX_HOTPLUG_EVENTS) {
        ctx.addIssue({
          code: 'custom',
          path: ['workload', 'hotplug', 'rate'],
          message: `the workload would take about ${approx(hotplugs)} CPUs offline or online, more than ${approx(MAX_HOTPLUG_EVENTS)}: lower the rate or the stop condition`,
        });
      }
      const pt = s.passthrough;
      if (pt !== undefined && pt.cycles * pt.msisPerCycle > MAX_EVENTS) {
        ctx.addIssue({
          code: 'custom',
          path: ['passthrough', 'msisPerCycle'],
          message: `${pt.cycles} cycles × ${pt.msisPerCycle} MSIs is more than ${approx(MAX_EVENTS)} MSIs`,
        });
      }
    },
    { when: (payload) => payload.issues.length === 0 },
  );

/** `n` to two significant digits, as `3.6e12`. */
function approx(n: number): string {
  return Number(n.toPrecision(2)).toExponential().replace('e+', 'e');
}

/** A validated scenario (defaults applied, durations in ns). */
export type Scenario = z.output<typeof Scenario>;
/** A scenario as written. */
export type ScenarioInput = z.input<typeof Scenario>;
export type DeviceSpec = z.output<typeof Device>;
export type StreamSpec = z.output<typeof Stream>;
export type WorkloadSpec = z.output<typeof Workload>;
export type PassthroughSpec = z.output<typeof Passthrough>;

/** The JSON Schema of a scenario file (input form). */
export function scenarioJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(Scenario, { io: 'input', unrepresentable: 'any' }),
    title: 'xivelab scenario',
  };
}
