import { describe, expect, it } from 'vitest';
import { HeapSnapshot, isFrozenWrite } from '../../../../src/check/explore/heap-snapshot.ts';

class Node {
  value = 1;
  next: Node | null = null;
  readonly tags: string[] = ['a'];
  readonly table = new Uint32Array(4);
  readonly index = new Map<number, Node>();
  readonly seen = new Set<number>([1]);
}

describe('HeapSnapshot', () => {
  it('restores fields, arrays, typed arrays, Maps and Sets in place, keeping every identity', () => {
    const root = new Node();
    const child = new Node();
    root.next = child;
    root.index.set(7, child);
    const snap = new HeapSnapshot([root]);
    expect(snap.size).toBe(10); // 2 nodes × (the object, its array, typed array, Map and Set)
    const tags = root.tags;
    root.value = 9;
    child.value = 5;
    root.next = new Node();
    tags.push('b', 'c');
    root.table[2] = 0xdead;
    root.index.delete(7);
    root.index.set(8, root);
    root.seen.add(2);
    child.seen.clear();
    snap.restore();
    expect(root.value).toBe(1);
    expect(child.value).toBe(1);
    expect(root.next).toBe(child);
    expect(root.tags).toBe(tags);
    expect(tags).toEqual(['a']);
    expect([...root.table]).toEqual([0, 0, 0, 0]);
    expect([...root.index]).toEqual([[7, child]]);
    expect([...root.seen]).toEqual([1]);
    expect([...child.seen]).toEqual([1]);
  });

  it('does not enter frozen objects or skipped ones', () => {
    const frozen = Object.freeze({ k: 1 });
    const skipped = { k: 1 };
    const root = { frozen, skipped, n: 0 };
    const snap = new HeapSnapshot([root], (o) => o === skipped);
    skipped.k = 2;
    root.n = 3;
    snap.restore();
    expect([root.n, skipped.k, root.frozen]).toEqual([0, 2, frozen]);
  });

  it('dirty tracking: changed() names the written entries; freezeExcept traps writes to the others and restores the rest', () => {
    const root = new Node();
    const child = new Node();
    root.next = child;
    const snap = new HeapSnapshot([root]);
    expect(snap.entries).toBe(4); // 2 nodes, 2 tag arrays
    child.value = 7;
    expect(snap.changed()).toEqual([1]);
    snap.restore();
    expect(snap.changed()).toEqual([]);
    snap.freezeExcept(new Set([1]));
    child.value = 8;
    let thrown: unknown = null;
    try {
      root.value = 2;
    } catch (e) {
      thrown = e;
    }
    expect(isFrozenWrite(thrown)).toBe(true);
    expect(isFrozenWrite(new TypeError('x is not a function'))).toBe(false);
    snap.restore();
    expect([root.value, child.value]).toEqual([1, 1]);
    // A later snapshot still captures what this one froze.
    expect(new HeapSnapshot([root]).entries).toBe(4);
  });
});
