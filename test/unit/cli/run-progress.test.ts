import { describe, expect, it } from 'vitest';
import { ProgressLine, progressLine, virtualTime } from '../../../src/cli/run-progress.ts';
import { checkScenario } from '../../../src/scenario/parse.ts';

const byTriggers = checkScenario({
  vcpus: 1,
  devices: [{ name: 'd', msis: 1 }],
  workload: { triggers: 1000 },
});
const byDuration = checkScenario({
  vcpus: 1,
  devices: [{ name: 'd', msis: 1 }],
  workload: { duration: 2_000_000_000 },
});
const at = (virtualTimeNs: number, deviceTriggers: number, ipisSent = 0) => ({
  virtualTimeNs,
  deviceTriggers,
  ipisSent,
  quiescePoints: deviceTriggers,
});

describe('the run progress line', () => {
  it('ETA from the trigger count: a quarter done in 10 s leaves 30 s', () => {
    expect(progressLine(byTriggers, at(1500, 250, 50), 10_000)).toBe(
      'run: virtual 1.500 µs, 300 events, 30 events/s, ETA 0:30',
    );
  });
  it('ETA from the duration, in hours past one hour', () => {
    expect(progressLine(byDuration, at(200_000_000, 5_000_000), 400_000)).toBe(
      'run: virtual 200.000 ms, 5.0M events, 12.5k events/s, ETA 1:00:00',
    );
  });
  it('nothing done yet: no ETA', () => {
    expect(progressLine(byTriggers, at(0, 0), 0)).toBe('run: virtual 0 ns, 0 events, ? events/s, ETA ?');
  });
  it('virtual time units', () => {
    expect([virtualTime(999), virtualTime(1_000), virtualTime(2_500_000), virtualTime(3e9)]).toEqual([
      '999 ns',
      '1.000 µs',
      '2.500 ms',
      '3.000 s',
    ]);
  });
  it('redraws in place at most every 250 ms and erases itself', () => {
    let out = '';
    let t = 0;
    const line = new ProgressLine(
      byTriggers,
      (s) => (out += s),
      () => t,
    );
    t = 100;
    line.update(at(10, 10));
    expect(out).toBe('');
    t = 250;
    line.update(at(20, 20));
    t = 400;
    line.update(at(30, 30));
    line.clear();
    line.clear();
    expect(out).toBe('\r\x1b[Krun: virtual 20 ns, 20 events, 80 events/s, ETA 0:12\r\x1b[K');
  });
});
