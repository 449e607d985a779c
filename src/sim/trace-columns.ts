/**
 * Trace events as typed columns, the form `xivelab ui` keeps and sends a run in: one typed array
 * per field and each kind named once. A million events are about 50 MB of columns that the
 * browser takes as they come (views on the response's bytes, nothing parsed) instead of a
 * million objects parsed from JSON; an event object is made only when one is looked at
 * ({@link TraceColumns.event}).
 *
 * Wire form ({@link TraceColumns.encode}): a little-endian u32 header length, the UTF-8 JSON
 * header `{ kinds, length, dropped }`, zero padding to a multiple of 8, then `seq`, `time`,
 * `args` (Float64, `args[4i…4i+3]` for event i), `cat`, `kind` (Uint16) — the arrays in the
 * platform's byte order, little-endian on every machine this runs on.
 */

import type { TraceEvent } from './trace.ts';

export class TraceColumns {
  readonly kinds: readonly string[];
  readonly seq: Float64Array;
  readonly time: Float64Array;
  readonly args: Float64Array;
  readonly cat: Uint16Array;
  /** Index into {@link kinds}. */
  readonly kind: Uint16Array;

  constructor(
    kinds: readonly string[],
    seq: Float64Array,
    time: Float64Array,
    args: Float64Array,
    cat: Uint16Array,
    kind: Uint16Array,
  ) {
    this.kinds = kinds;
    this.seq = seq;
    this.time = time;
    this.args = args;
    this.cat = cat;
    this.kind = kind;
  }

  get length(): number {
    return this.seq.length;
  }

  static of(events: readonly TraceEvent[]): TraceColumns {
    const n = events.length;
    const ids = new Map<string, number>();
    const kinds: string[] = [];
    const c = new TraceColumns(
      kinds,
      new Float64Array(n),
      new Float64Array(n),
      new Float64Array(4 * n),
      new Uint16Array(n),
      new Uint16Array(n),
    );
    events.forEach((e, i) => {
      let id = ids.get(e.kind);
      if (id === undefined) {
        id = kinds.length;
        ids.set(e.kind, id);
        kinds.push(e.kind);
      }
      c.seq[i] = e.seq;
      c.time[i] = e.time;
      c.cat[i] = e.cat;
      c.kind[i] = id;
      c.args.set(e.args, 4 * i);
    });
    return c;
  }

  /** Event `i`'s kind. */
  kindOf(i: number): string {
    return this.kinds[this.kind[i]!]!;
  }

  /** Event `i` as an object. */
  event(i: number): TraceEvent {
    const a = this.args;
    return {
      seq: this.seq[i]!,
      time: this.time[i]!,
      cat: this.cat[i]!,
      kind: this.kindOf(i),
      args: [a[4 * i]!, a[4 * i + 1]!, a[4 * i + 2]!, a[4 * i + 3]!],
    };
  }

  /** The wire form, with how many older events the ring dropped. */
  encode(dropped: number): Uint8Array<ArrayBuffer> {
    const n = this.length;
    const header = new TextEncoder().encode(JSON.stringify({ kinds: this.kinds, length: n, dropped }));
    const body = align8(4 + header.length);
    const out = new Uint8Array(body + 8 * 6 * n + 2 * 2 * n);
    new DataView(out.buffer).setUint32(0, header.length, true);
    out.set(header, 4);
    let at = body;
    for (const col of [this.seq, this.time, this.args, this.cat, this.kind]) {
      out.set(new Uint8Array(col.buffer, col.byteOffset, col.byteLength), at);
      at += col.byteLength;
    }
    return out;
  }

  /** The columns of a wire form (views on `buf`, not copies) and its dropped count. */
  static decode(buf: ArrayBuffer): { columns: TraceColumns; dropped: number } {
    const len = new DataView(buf).getUint32(0, true);
    const h = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, len))) as {
      kinds: string[];
      length: number;
      dropped: number;
    };
    const n = h.length;
    let at = align8(4 + len);
    const f64 = (count: number): Float64Array => {
      const a = new Float64Array(buf, at, count);
      at += 8 * count;
      return a;
    };
    const u16 = (): Uint16Array => {
      const a = new Uint16Array(buf, at, n);
      at += 2 * n;
      return a;
    };
    const seq = f64(n);
    const time = f64(n);
    const args = f64(4 * n);
    const columns = new TraceColumns(h.kinds, seq, time, args, u16(), u16());
    return { columns, dropped: h.dropped };
  }
}

const align8 = (n: number): number => (n + 7) & ~7;
