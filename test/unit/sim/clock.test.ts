import { describe, expect, it } from 'vitest';
import { SimClock } from '../../../src/sim/clock.ts';

describe('SimClock', () => {
  it('fires alarms in time order, ties in scheduling order, including re-entrant ones', () => {
    const c = new SimClock();
    const log: string[] = [];
    c.schedule(20, () => log.push('b'));
    c.schedule(10, () => {
      log.push('a');
      c.schedule(5, () => log.push('a2'));
    });
    c.schedule(20, () => log.push('c'));
    c.advanceTo(100);
    expect(log).toEqual(['a', 'a2', 'b', 'c']);
    expect(c.nanos).toBe(100);
  });
  it('refuses to go back in time', () => {
    const c = new SimClock();
    c.advance(5);
    expect(() => c.advanceTo(4)).toThrow('Unable to travel back in time');
  });
});
