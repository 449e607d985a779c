/**
 * Trace events as columns, the compact JSON form `xivelab ui` sends a run in: one array per
 * field and each kind named once, about a third of the size of an array of event objects and
 * much faster to parse.
 */

import type { TraceEvent } from './trace.ts';

/** Events as columns: event `i` is `seq[i]`, `time[i]`, `cat[i]`, `kinds[kind[i]]`, `args[4i…4i+3]`. */
export interface TraceColumns {
  readonly kinds: string[];
  readonly seq: number[];
  readonly time: number[];
  readonly cat: number[];
  readonly kind: number[];
  readonly args: number[];
}

export function toColumns(events: readonly TraceEvent[]): TraceColumns {
  const ids = new Map<string, number>();
  const c: TraceColumns = { kinds: [], seq: [], time: [], cat: [], kind: [], args: [] };
  for (const e of events) {
    let id = ids.get(e.kind);
    if (id === undefined) {
      id = c.kinds.length;
      ids.set(e.kind, id);
      c.kinds.push(e.kind);
    }
    c.seq.push(e.seq);
    c.time.push(e.time);
    c.cat.push(e.cat);
    c.kind.push(id);
    c.args.push(...e.args);
  }
  return c;
}

export function fromColumns(c: TraceColumns): TraceEvent[] {
  const out: TraceEvent[] = new Array(c.seq.length);
  for (let i = 0; i < c.seq.length; i++) {
    out[i] = {
      seq: c.seq[i]!,
      time: c.time[i]!,
      cat: c.cat[i]!,
      kind: c.kinds[c.kind[i]!]!,
      args: [c.args[4 * i]!, c.args[4 * i + 1]!, c.args[4 * i + 2]!, c.args[4 * i + 3]!],
    };
  }
  return out;
}
