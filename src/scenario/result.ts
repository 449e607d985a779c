/**
 * The result of a scenario run (what `xivelab run --json` prints). The zod schema is the
 * documentation: `schema/result.json` is emitted from it, and the tests parse real results with
 * it.
 */

import { z } from 'zod';

const count = z.int().min(0);

export const CpuResult = z.strictObject({
  id: z.int().min(0).describe('vCPU id (= XIVE server, hardware CPU id)'),
  online: z.boolean().describe('online at the end of the run'),
  delivered: count.describe('handler invocations on this vCPU'),
  ipis: count.describe('IPIs handled on this vCPU'),
  extIrqs: count.describe(
    "rising edges of the external-interrupt line (0 under KVM: the line is the host thread's OS ring, QEMU sees no edge)",
  ),
  acks: count.describe('OS-ring acknowledges (ACK_OS_REG) that took an interrupt (NSR EO set)'),
  eqEntries: count.describe("EQ entries the guest read from this vCPU's queues"),
  offlines: count.describe('times this vCPU went offline'),
});

export const IrqResult = z.strictObject({
  girq: z.int().describe("the guest's irq number (Linux virq)"),
  lisn: z.int().min(0).describe('hardware interrupt number (LISN), also the EISN'),
  kind: z.enum(['ipi', 'msi', 'lsi']),
  device: z.string().describe('device name, or "ipi"'),
  vector: z.int().min(0).describe('MSI vector, INTx pin or CPU of the IPI'),
  target: z.int().describe('vCPU the irq targets at the end (−1: none)'),
  enabled: z.boolean().describe('enabled in the guest at the end'),
  triggered: count.describe('trigger operations at the source (XIVE_STAT_TRIGGER)'),
  delivered: count.describe('handler invocations'),
  coalesced: count.describe('triggers that found P set (XIVE_STAT_COALESCED)'),
  dropped: count.describe('triggers that found the source off, PQ=01 (XIVE_STAT_OFF)'),
  forwarded: count.describe('events forwarded to the router (XIVE_STAT_FORWARD, trigger or EOI)'),
  enqueued: count.describe('EQ entries written with this EISN'),
  easMasked: count.describe('forwarded events dropped at a masked EAS'),
});

export const ViolationResult = z.strictObject({
  invariant: z.string(),
  lisn: z.int().optional(),
  cpu: z.int().optional(),
  message: z.string().describe('one line, naming the seed that replays the run'),
});

export const Result = z
  .strictObject({
    scenario: z.string(),
    seed: z.int().describe('the seed of this run: --seed replays it'),
    accel: z
      .enum(['emulated', 'kvm'])
      .describe('emulated XIVE (kernel_irqchip=off) or KVM with the in-kernel XIVE (kernel_irqchip=on)'),
    virtualTimeNs: z.number().min(0),
    events: z
      .strictObject({
        deviceTriggers: count,
        ipisSent: count,
        disables: count,
        enables: count,
        retargets: count,
        offlines: count,
        onlines: count,
        lsiLevelsLost: count.describe(
          'enables that left an asserted LSI idle (PQ 00, no event): Linux resends no level irq and QEMU 7.2 re-fires only on EOI',
        ),
        quiescePoints: count,
      })
      .describe('workload operations the runner performed'),
    router: z
      .strictObject({
        enqueued: count,
        presented: count,
        easMasked: count,
        notDispatched: count,
        endCoalesced: count,
      })
      .describe("XIVE router counters (under KVM the host chip's router, the host's escalations included)"),
    hcalls: z.record(z.string(), count).describe('hypercalls by name'),
    cpus: z.array(CpuResult),
    irqs: z.array(IrqResult),
    totals: z.strictObject({
      triggered: count,
      delivered: count,
      coalesced: count,
      dropped: count,
      enqueued: count,
    }),
    violations: z.array(ViolationResult),
  })
  .describe('xivelab run result');

export type Result = z.output<typeof Result>;
export type CpuResult = z.output<typeof CpuResult>;
export type IrqResult = z.output<typeof IrqResult>;

/** The JSON Schema of a run result. */
export function resultJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(Result), title: 'xivelab run result' };
}
