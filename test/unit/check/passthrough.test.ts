/** The passthrough invariants' pure parts: the PQ model, I4/I5 findings, I6's first difference. */
import { describe, expect, it } from 'vitest';
import { deliveryFindings, firstDifference, PqModel } from '../../../src/check/passthrough.ts';

describe('PqModel', () => {
  it('the first MSI delivers, further ones coalesce in Q, a take re-delivers once for Q', () => {
    const m = new PqModel();
    m.raise('nic:0'); // P: delivery 1
    m.raise('nic:0'); // Q
    m.raise('nic:0'); // still Q
    m.raise('nic:1'); // P: delivery 1
    m.take(); // nic:0 EOI finds Q: re-trigger, delivery 2; nic:1 just EOI'd
    m.raise('nic:1'); // P again: delivery 2
    m.take();
    expect([...m.expected]).toEqual([
      ['nic:0', 2],
      ['nic:1', 2],
    ]);
  });
});

describe('deliveryFindings', () => {
  it('fewer deliveries are lost (I4), more are spurious (I5), sorted by key', () => {
    const handled = new Map([
      ['b:1', 3],
      ['a:0', 1],
      ['c:2', 2],
    ]);
    const expected = new Map([
      ['a:0', 4],
      ['b:1', 3],
      ['d:3', 1],
    ]);
    expect(deliveryFindings(handled, expected)).toEqual({
      lost: ['a:0: 3 of 4 expected deliveries lost', 'd:3: 1 of 1 expected deliveries lost'],
      spurious: ['c:2: 2 spurious deliveries beyond the 0 expected'],
    });
  });
});

describe('firstDifference', () => {
  it('names the first differing entry, a missing one as (none), and null when equal', () => {
    expect(firstDifference('delivery', ['0 a', '1 b'], ['0 a', '1 b'])).toBe(null);
    expect(firstDifference('delivery', ['0 a', '1 c'], ['0 a', '1 b'])).toBe(
      'delivery #1: "1 c" where the emulated reference has "1 b"',
    );
    expect(firstDifference('guest view', ['x'], ['x', 'y'])).toBe(
      'guest view #1: "(none)" where the emulated reference has "y"',
    );
  });
});
