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
 *
 * Dirty tracking: an execution touches a few dozen of the thousands of captured objects, so a
 * restore that visits them all spends its time on objects nothing changed. {@link
 * HeapSnapshot.freezeExcept} freezes every class instance and array outside a set of entries
 * known to change (the write barrier: a write to a frozen object throws a TypeError in
 * strict-mode code, {@link isFrozenWrite}), and {@link HeapSnapshot.restore} then visits only
 * those entries (plus the plain objects, which may be shared constants, and the Maps, Sets and
 * typed arrays, which cannot be frozen). The owner learns a missed entry by running the execution again on a fresh,
 * unfrozen copy and asking {@link HeapSnapshot.changed} (see `KernelWorld`). Entries are
 * numbered in capture order, which a deterministic build reproduces.
 */

/** Restores one object's fields from its saved values. */
type FieldRestorer = (o: object, values: readonly unknown[]) => void;

/**
 * The restorer of `o`'s shape, generated once per shape (class + keys) of one capture: `restorers`
 * belongs to the snapshot being taken.
 */
function restorerFor(
  restorers: Map<string, FieldRestorer>,
  o: object,
  keys: readonly string[],
): FieldRestorer {
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

type Typed = { slice(): Typed; set(src: Typed): void };

/**
 * Objects frozen by {@link HeapSnapshot.freezeExcept}, still captured by a later snapshot (a
 * frozen object not in here is a constant, not walked). Module-wide on purpose: it marks objects,
 * not a snapshot — what a frozen object cannot carry as a field of its own — and a snapshot
 * taken after a rebuild may reach objects an earlier one froze (arrays shared by both worlds).
 * Weakly held, so it keeps nothing alive.
 */
const frozenHere = new WeakSet<object>();

/** Whether `e` is strict-mode code writing to an object {@link HeapSnapshot.freezeExcept} froze. */
export function isFrozenWrite(e: unknown): boolean {
  return (
    e instanceof TypeError &&
    /read only property|not extensible|Cannot delete property|sealed array|frozen/.test(e.message)
  );
}

/** A class instance (not a plain object literal, which may be a shared constant). */
function isInstance(o: object): boolean {
  const proto = Object.getPrototypeOf(o);
  return proto !== null && proto !== Object.prototype;
}

export class HeapSnapshot {
  // One list per kind, so that each restore loop stays monomorphic.
  private readonly objects: object[] = [];
  private readonly objectValues: unknown[][] = [];
  private readonly objectFields: FieldRestorer[] = [];
  private readonly arrays: unknown[][] = [];
  private readonly arrayValues: unknown[][] = [];
  private readonly maps: Map<unknown, unknown>[] = [];
  private readonly mapEntries: [unknown, unknown][][] = [];
  private readonly sets: Set<unknown>[] = [];
  private readonly setItems: unknown[][] = [];
  private readonly typed: Typed[] = [];
  private readonly typedValues: Typed[] = [];
  /** Entries {@link restore} visits: every one until {@link freezeExcept}, then the unfrozen ones. */
  private restoreObjects: number[];
  private restoreArrays: number[];

  /** Capture everything reachable from `roots`, not entering objects for which `skip` is true. */
  constructor(roots: readonly object[], skip: (o: object) => boolean = () => false) {
    const seen = new Set<object>();
    const queue: object[] = [];
    const restorers = new Map<string, FieldRestorer>();
    const visit = (v: unknown): void => {
      if (v === null || typeof v !== 'object' || seen.has(v) || skip(v)) return;
      if (Object.isFrozen(v) && !frozenHere.has(v)) return;
      // A DataView is a window on a buffer some typed array owns; the bytes are captured there.
      if (v instanceof DataView) return;
      seen.add(v);
      queue.push(v);
    };
    for (const r of roots) visit(r);
    for (let i = 0; i < queue.length; i++) {
      const o = queue[i]!;
      if (ArrayBuffer.isView(o)) {
        this.typed.push(o as unknown as Typed);
        this.typedValues.push((o as unknown as Typed).slice());
      } else if (Array.isArray(o)) {
        this.arrays.push(o);
        this.arrayValues.push(o.slice());
        for (const v of o) visit(v);
      } else if (o instanceof Map) {
        const entries = [...o.entries()];
        this.maps.push(o);
        this.mapEntries.push(entries);
        for (const [k, v] of entries) {
          visit(k);
          visit(v);
        }
      } else if (o instanceof Set) {
        const items = [...o];
        this.sets.push(o);
        this.setItems.push(items);
        for (const v of items) visit(v);
      } else {
        const ks = Object.keys(o);
        const rec = o as Record<string, unknown>;
        const vals = ks.map((k) => rec[k]);
        this.objects.push(o);
        this.objectValues.push(vals);
        this.objectFields.push(restorerFor(restorers, o, ks));
        for (const v of vals) visit(v);
      }
    }
    this.restoreObjects = this.objects.map((_, i) => i);
    this.restoreArrays = this.arrays.map((_, i) => i);
  }

  /** Object and array entries (numbered objects first, then arrays, in capture order). */
  get entries(): number {
    return this.objects.length + this.arrays.length;
  }

  /** The object and array entries that differ from the capture now. */
  changed(): number[] {
    const out: number[] = [];
    this.objects.forEach((o, i) => {
      const rec = o as Record<string, unknown>;
      const ks = Object.keys(o);
      const vals = this.objectValues[i]!;
      if (ks.length !== vals.length || ks.some((k, j) => rec[k] !== vals[j])) out.push(i);
    });
    const n = this.objects.length;
    this.arrays.forEach((a, i) => {
      const s = this.arrayValues[i]!;
      if (a.length !== s.length || s.some((v, j) => a[j] !== v)) out.push(n + i);
    });
    return out;
  }

  /**
   * Freeze every class instance and array except the `writable` entries, and restore only
   * what is not frozen from now on. Call it right after the capture (a frozen object that had
   * changed could not be put back).
   */
  freezeExcept(writable: ReadonlySet<number>): void {
    const n = this.objects.length;
    this.restoreObjects = [];
    this.restoreArrays = [];
    this.objects.forEach((o, i) => {
      if (writable.has(i) || !isInstance(o)) this.restoreObjects.push(i);
      else freeze(o);
    });
    this.arrays.forEach((a, i) => {
      if (writable.has(n + i)) this.restoreArrays.push(i);
      else freeze(a);
    });
  }

  /** Objects captured (a size figure for reports). */
  get size(): number {
    return this.objects.length + this.arrays.length + this.maps.length + this.sets.length + this.typed.length;
  }

  /** Put every captured object back as it was at capture time (frozen ones cannot have changed). */
  restore(): void {
    const { objects, objectValues, objectFields, restoreObjects } = this;
    for (let k = 0; k < restoreObjects.length; k++) {
      const i = restoreObjects[k]!;
      objectFields[i]!(objects[i]!, objectValues[i]!);
    }
    const { arrays, arrayValues, restoreArrays } = this;
    for (let k = 0; k < restoreArrays.length; k++) {
      const i = restoreArrays[k]!;
      restoreArray(arrays[i]!, arrayValues[i]!);
    }
    const { typed, typedValues } = this;
    for (let i = 0; i < typed.length; i++) typed[i]!.set(typedValues[i]!);
    for (let i = 0; i < this.maps.length; i++) {
      const m = this.maps[i]!;
      m.clear();
      for (const [k, v] of this.mapEntries[i]!) m.set(k, v);
    }
    for (let i = 0; i < this.sets.length; i++) {
      const s = this.sets[i]!;
      s.clear();
      for (const v of this.setItems[i]!) s.add(v);
    }
  }
}

function freeze(o: object): void {
  Object.freeze(o);
  frozenHere.add(o);
}

function restoreArray(a: unknown[], s: readonly unknown[]): void {
  if (a.length !== s.length) a.length = s.length;
  for (let j = 0; j < s.length; j++) if (a[j] !== s[j]) a[j] = s[j];
}
