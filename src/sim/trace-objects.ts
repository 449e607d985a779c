/**
 * Which trace events touch the objects a violation message names — a pid, a vCPU, a LISN or
 * EISN, a pfn, a page by its address — read through the arguments' names in the trace contract.
 * The cell runners keep a violation's causal history with it; the report tells its story with it.
 */

import type { TraceEvent } from './trace.ts';
import { TRACE_EVENTS } from './trace-events.ts';

/** The names of `kind`'s arguments (`a0`..`a3` for a kind the contract does not declare). */
export function argNamesOf(kind: string): readonly string[] {
  const d = (TRACE_EVENTS as Readonly<Record<string, { args: readonly string[] }>>)[kind];
  return d === undefined ? ['a0', 'a1', 'a2', 'a3'] : d.args;
}

/** The objects a violation message names. */
export interface NamedObjects {
  readonly pids: ReadonlySet<number>;
  readonly cpus: ReadonlySet<number>;
  /** Hex numbers: LISNs, EISNs, pfns, addresses. */
  readonly numbers: ReadonlySet<number>;
  /** The 64 KiB pages of the hex numbers that can be addresses (those not written as a pfn). */
  readonly pages: ReadonlySet<number>;
}

const PAGE = 65536;

/** The objects `message` names: `pid N`, `cpu N` / `vCPU N`, and its hex numbers. */
export function objectsNamedIn(message: string): NamedObjects {
  const pids = new Set<number>();
  const cpus = new Set<number>();
  const numbers = new Set<number>();
  const pages = new Set<number>();
  for (const m of message.matchAll(/\bpid (\d+)/g)) pids.add(Number(m[1]));
  for (const m of message.matchAll(/\b(?:v?cpu|vCPU) (\d+)/g)) cpus.add(Number(m[1]));
  for (const m of message.matchAll(/(\bpfn )?\b0x([0-9a-f]+)\b/gi)) {
    const n = Number.parseInt(m[2]!, 16);
    numbers.add(n);
    if (m[1] === undefined && n >= PAGE) pages.add(Math.floor(n / PAGE));
  }
  return { pids, cpus, numbers, pages };
}

/** Arguments that hold state bits or register values, never an object's identity. */
const NOT_IDENTITY: ReadonlySet<string> = new Set([
  'oldPq',
  'newPq',
  'pq',
  'ipb',
  'pipr',
  'oldCppr',
  'cppr',
  'nsrCppr',
  'value',
  'offset',
  'flags',
  'op',
  'ov5Byte23',
  'endBlk',
]);

/** Arguments that are addresses: they touch a named address's page. */
const ADDRESS = /^(?:address|start|end|oldStart|oldEnd|newStart|hva|gpa|qaddr)$/;

/** Kinds whose process arguments name the process they act on, not just the context. */
const PROCESS_EVENTS = /^(?:mm\.(?:fork|exit|scm_rights)|kvm\.vm\.create)$/;

/** Does `e` touch one of `o`? */
export function touches(e: TraceEvent, o: NamedObjects): boolean {
  const names = argNamesOf(e.kind);
  let start: number | undefined;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const v = e.args[i]!;
    if (name === 'cpu' || name === 'vcpu') {
      if (o.cpus.has(v)) return true;
      continue;
    }
    if (name === 'pid' || name === 'child' || name === 'to') {
      if (PROCESS_EVENTS.test(e.kind) && o.pids.has(v)) return true;
      continue;
    }
    if (NOT_IDENTITY.has(name)) continue;
    if (o.numbers.has(v) || (name === 'qdata' && o.numbers.has(v % 2 ** 31))) return true;
    if (!ADDRESS.test(name)) continue;
    if (o.pages.has(Math.floor(v / PAGE))) return true;
    // A range [start, end) covering a named page.
    if (/start$/i.test(name)) start = v;
    else if (/end$/i.test(name) && start !== undefined) {
      for (const p of o.pages) if (p * PAGE >= start && p * PAGE < v) return true;
    }
  }
  return false;
}
