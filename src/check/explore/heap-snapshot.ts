/**
 * Snapshot and restore of a live object graph in place: every object reachable from the roots
 * (class instances, arrays, Maps, Sets, typed arrays) gets its own fields saved, and a restore
 * writes them back, so every reference anyone holds stays valid and objects created since become
 * unreachable. This is how each explored execution starts from the same model state without
 * rebuilding the model (which costs milliseconds: the chip's tables, the VMM's set-up syscalls).
 *
 * Frozen objects and functions are taken as immutable and not walked (a closure's captured
 * variables are out of reach: the model keeps mutable state in objects, not in closures).
 * Objects are restored by a small function generated per shape (class + keys), so the property
 * writes stay monomorphic: a generic `o[k] = v` loop over thousands of model objects costs ten
 * times more.
 */

/** Restores one object's fields from its saved values. */
type FieldRestorer = (o: object, values: readonly unknown[]) => void;

const restorers = new Map<string, FieldRestorer>();

function restorerFor(o: object, keys: readonly string[]): FieldRestorer {
  const sig = `${o.constructor?.name ?? ''}:${keys.join(',')}`;
  let f = restorers.get(sig);
  if (f === undefined) {
    const body = keys
      .map((k, j) => {
        const key = JSON.stringify(k);
        return `if (o[${key}] !== v[${j}]) o[${key}] = v[${j}];`;
      })
      .join('\n');
    f = new Function('o', 'v', body) as FieldRestorer;
    restorers.set(sig, f);
  }
  return f;
}

const Kind = { Object: 0, Array: 1, Map: 2, Set: 3, Typed: 4 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

type Typed = { slice(): Typed; set(src: Typed): void };

export class HeapSnapshot {
  private readonly objs: object[] = [];
  private readonly kinds: Kind[] = [];
  private readonly saved: unknown[] = [];
  /** The field restorer of each plain/class object. */
  private readonly fields: (FieldRestorer | null)[] = [];

  /** Capture everything reachable from `roots`, not entering objects for which `skip` is true. */
  constructor(roots: readonly object[], skip: (o: object) => boolean = () => false) {
    const seen = new Set<object>();
    const queue: object[] = [];
    const visit = (v: unknown): void => {
      if (v === null || typeof v !== 'object' || seen.has(v) || Object.isFrozen(v) || skip(v)) return;
      // A DataView is a window on a buffer some typed array owns; the bytes are captured there.
      if (v instanceof DataView) return;
      seen.add(v);
      queue.push(v);
    };
    for (const r of roots) visit(r);
    for (let i = 0; i < queue.length; i++) {
      const o = queue[i]!;
      this.objs.push(o);
      if (ArrayBuffer.isView(o)) {
        this.kinds.push(Kind.Typed);
        this.saved.push((o as unknown as Typed).slice());
        this.fields.push(null);
      } else if (Array.isArray(o)) {
        this.kinds.push(Kind.Array);
        this.saved.push(o.slice());
        this.fields.push(null);
        for (const v of o) visit(v);
      } else if (o instanceof Map) {
        this.kinds.push(Kind.Map);
        const entries = [...o.entries()];
        this.saved.push(entries);
        this.fields.push(null);
        for (const [k, v] of entries) {
          visit(k);
          visit(v);
        }
      } else if (o instanceof Set) {
        this.kinds.push(Kind.Set);
        const items = [...o];
        this.saved.push(items);
        this.fields.push(null);
        for (const v of items) visit(v);
      } else {
        this.kinds.push(Kind.Object);
        const ks = Object.keys(o);
        const rec = o as Record<string, unknown>;
        const vals = ks.map((k) => rec[k]);
        this.fields.push(restorerFor(o, ks));
        this.saved.push(vals);
        for (const v of vals) visit(v);
      }
    }
  }

  /** Objects captured (a size figure for reports). */
  get size(): number {
    return this.objs.length;
  }

  /** Put every captured object back as it was at capture time. */
  restore(): void {
    const { objs, kinds, saved, fields } = this;
    for (let i = 0; i < objs.length; i++) {
      const o = objs[i]!;
      switch (kinds[i]) {
        case Kind.Typed:
          (o as unknown as Typed).set(saved[i] as Typed);
          break;
        case Kind.Array: {
          const a = o as unknown[];
          const s = saved[i] as unknown[];
          if (a.length !== s.length) a.length = s.length;
          for (let j = 0; j < s.length; j++) if (a[j] !== s[j]) a[j] = s[j];
          break;
        }
        case Kind.Map: {
          const m = o as Map<unknown, unknown>;
          m.clear();
          for (const [k, v] of saved[i] as [unknown, unknown][]) m.set(k, v);
          break;
        }
        case Kind.Set: {
          const s = o as Set<unknown>;
          s.clear();
          for (const v of saved[i] as unknown[]) s.add(v);
          break;
        }
        default:
          fields[i]!(o, saved[i] as unknown[]);
      }
    }
  }
}
