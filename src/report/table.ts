/**
 * Readable tables of a run: one row per vCPU, one row per interrupt, totals and violations.
 * Plain text, right-aligned numbers, no colours (the output is also read in CI logs).
 */

import type { Result } from '../scenario/result.ts';

type Cell = string | number | boolean;

/** Render rows under a header, numbers right-aligned, two spaces between columns. */
export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((r) => r.map((c) => (typeof c === 'boolean' ? (c ? 'yes' : 'no') : String(c))));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const width = header.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]?.length ?? 0)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(width.map((w) => '-'.repeat(w))), ...text.map(line)].join('\n');
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** The per-CPU table. */
export function cpuTable(r: Result): string {
  return formatTable(
    ['CPU', 'online', 'delivered', 'IPIs', 'ext-irqs', 'acks', 'EQ-entries', 'offlines'],
    r.cpus.map((c) => [c.id, c.online, c.delivered, c.ipis, c.extIrqs, c.acks, c.eqEntries, c.offlines]),
  );
}

/** The per-irq table. */
export function irqTable(r: Result): string {
  return formatTable(
    [
      'girq',
      'LISN',
      'kind',
      'device',
      'vec',
      'target',
      'enabled',
      'triggered',
      'delivered',
      'coalesced',
      'dropped',
      'enqueued',
      'eas-masked',
    ],
    r.irqs.map((q) => [
      q.girq,
      hex(q.lisn),
      q.kind,
      q.device,
      q.vector,
      q.target,
      q.enabled,
      q.triggered,
      q.delivered,
      q.coalesced,
      q.dropped,
      q.enqueued,
      q.easMasked,
    ]),
  );
}

/** The whole report: summary line, CPU table, irq table, totals, violations. */
export function formatReport(r: Result): string {
  const e = r.events;
  const t = r.totals;
  const us = (r.virtualTimeNs / 1000).toFixed(1);
  const out = [
    `scenario ${r.scenario}, seed ${r.seed}, ${r.accel === 'kvm' ? 'KVM (kernel_irqchip=on)' : 'emulated XIVE'}: ${e.deviceTriggers} device triggers, ${e.ipisSent} IPIs, ` +
      `${e.disables} disables / ${e.enables} enables, ${e.retargets} retargets, ` +
      `${e.offlines} offlines / ${e.onlines} onlines in ${us} µs of virtual time`,
    '',
    cpuTable(r),
    '',
    irqTable(r),
    '',
    `totals: ${t.triggered} triggered, ${t.delivered} delivered, ${t.coalesced} coalesced, ` +
      `${t.dropped} dropped, ${t.enqueued} EQ entries; router: ${r.router.presented} presented, ` +
      `${r.router.easMasked} masked at the EAS, ${r.router.notDispatched} not dispatched`,
  ];
  const hc = Object.entries(r.hcalls);
  if (hc.length > 0) out.push(`hcalls: ${hc.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (r.violations.length === 0) {
    out.push('invariants: all hold');
  } else {
    out.push(`invariants: ${r.violations.length} violation${r.violations.length === 1 ? '' : 's'}`);
    const shown = r.violations.slice(0, 20);
    for (const v of shown) out.push(`  [${v.invariant}] ${v.message}`);
    if (r.violations.length > shown.length)
      out.push(`  … ${r.violations.length - shown.length} more (see --json)`);
  }
  return out.join('\n');
}
