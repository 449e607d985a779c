import { describe, expect, it } from 'vitest';
import { Word64 } from '../../../../src/hw/mmio.ts';
import {
  configSource,
  createSource,
  eqGpa,
  makeVm,
  mgmtGpa,
  RecordingExits,
  run,
  TIMA_OS_GPA,
  trigGpa,
} from './host-env.ts';

describe('KVM_RUN: the guest on its vCPU', () => {
  it('an ESB trigger lands in the EQ the guest reads, and raises the OS line', () => {
    const e = makeVm();
    expect(createSource(e.vmm, e.devFd, 0x1300)).toBe(0);
    expect(configSource(e.vmm, e.devFd, 0x1300, 6, 0, 0x42)).toBe(0);
    const exits = new RecordingExits();
    const g = run(e, 0, exits);
    const w = new Word64();
    g.store(TIMA_OS_GPA + 0x11, 1, 0, 0xff); // CPPR 0xff
    g.load(mgmtGpa(0x1300) + 0xc00, 8, w); // SET_PQ_00: unmask
    expect(w.lo & 3).toBe(1);
    expect(g.externalInterrupt).toBe(false);
    g.store(trigGpa(0x1300), 8, 0, 0);
    g.load(eqGpa(0), 4, w);
    expect(w.lo >>> 0).toBe(0x8000_0042);
    expect(g.externalInterrupt).toBe(true);
    expect(exits.mmios).toEqual([]);
  });
});
