import { describe, expect, test } from 'vitest';
import type { TraceSink } from '../../../src/hw/trace-sink.ts';
import { checkScenario } from '../../../src/scenario/parse.ts';
import { Result } from '../../../src/scenario/result.ts';
import { runScenario } from '../../../src/scenario/runner.ts';
import type { SpaprMachine } from '../../../src/vmm/spapr-machine.ts';
import { StubGuest, stubGuest } from './stub-guest.ts';

const scenario = checkScenario({
  name: 'unit',
  vcpus: 3,
  devices: [
    { name: 'nic0', msis: 8, lsis: 2 },
    { name: 'disk0', msis: 4 },
  ],
  workload: {
    triggers: 3000,
    streams: [
      { device: 'nic0', rate: 2e6, pattern: 'bursts', burst: 4 },
      { device: 'nic0', kind: 'lsi', rate: 2e5 },
      { device: 'disk0', rate: 1e6, pattern: 'round-robin' },
    ],
    ipis: { rate: 2e5 },
    masks: { rate: 1e5, hold: '5us' },
    retargets: { rate: 1e5 },
    hotplug: { rate: 2e4 },
    latency: '100ns',
  },
});

describe('runScenario (with a minimal stand-in guest)', () => {
  test('drives every kind of event, keeps every invariant, result matches its schema', () => {
    const r = runScenario(scenario, 9, { guest: stubGuest });
    expect(Result.parse(r)).toEqual(r);
    expect(r.violations).toEqual([]);
    expect(r.seed).toBe(9);
    expect(r.events.deviceTriggers).toBe(3000);
    for (const k of ['ipisSent', 'disables', 'enables', 'retargets', 'offlines', 'onlines'] as const) {
      expect(r.events[k], k).toBeGreaterThan(0);
    }
    expect(r.events.enables).toBe(r.events.disables);
    expect(r.events.onlines).toBe(r.events.offlines);
    // 3 IPIs, 12 MSIs, LSIs 0x1200/0x1201 (nic0 pins 0, 1).
    expect(r.irqs.map((q) => q.kind).join('')).toBe(
      `${'ipi'.repeat(3)}${'msi'.repeat(8)}lsilsi${'msi'.repeat(4)}`,
    );
    expect(r.irqs.filter((q) => q.kind === 'lsi').map((q) => q.lisn)).toEqual([0x1200, 0x1201]);
    // Counters are the model's: the sum over irqs equals the router's own count.
    expect(r.totals.enqueued).toBe(r.router.enqueued);
    expect(r.totals.coalesced).toBeGreaterThan(0);
    expect(r.cpus.reduce((a, c) => a + c.acks, 0)).toBe(r.cpus.reduce((a, c) => a + c.extIrqs, 0));
    expect(r.hcalls.KVMPPC_H_CAS).toBe(1);
    expect(r.hcalls.H_INT_SET_QUEUE_CONFIG).toBe(3);
  });

  test('deterministic: same seed → identical result; another seed differs', () => {
    const a = runScenario(scenario, 1234, { guest: stubGuest });
    const b = runScenario(scenario, 1234, { guest: stubGuest });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    const c = runScenario(scenario, 1235, { guest: stubGuest });
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a));
  });

  test('a duration stops the run at that virtual time', () => {
    const s = checkScenario({
      vcpus: 1,
      devices: [{ name: 'd', msis: 2 }],
      workload: { duration: '100us', streams: [{ device: 'd', rate: 1e6, pattern: 'round-robin' }] },
    });
    const r = runScenario(s, 1, { guest: stubGuest });
    // Round-robin fires at 1, 2, … 99 µs: the run covers [0, 100 µs).
    expect(r.events.deviceTriggers).toBe(99);
    expect(r.virtualTimeNs).toBe(100_000);
    expect(r.irqs.filter((q) => q.kind === 'msi').map((q) => q.delivered)).toEqual([50, 49]);
    expect(r.violations).toEqual([]);
  });

  test('a guest that loses EQ entries is caught, with the seed in every message', () => {
    const lossy = (m: SpaprMachine, _t: TraceSink): StubGuest => {
      const g = new StubGuest(m);
      g.dropEvery = 500; // read an entry, neither handle nor EOI it: the source stays P=1
      return g;
    };
    const r = runScenario(scenario, 77, { guest: lossy });
    const kinds = new Set(r.violations.map((v) => v.invariant));
    expect(kinds).toEqual(new Set(['eq-read-once', 'eq-handled-once', 'trigger-delivered']));
    expect(r.violations.every((v) => v.message.startsWith('seed 77: '))).toBe(true);
  });

  test('under KVM the same lossy guest is caught the same way, counted on the host chip', () => {
    const lossy = (m: SpaprMachine, _t: TraceSink): StubGuest => {
      const g = new StubGuest(m);
      g.dropEvery = 500;
      return g;
    };
    const emu = runScenario(scenario, 77, { guest: lossy });
    const kvm = runScenario(scenario, 77, { guest: lossy, kvm: {} });
    expect(kvm.accel).toBe('kvm');
    expect(kvm.violations).toEqual(emu.violations);
    expect(kvm.violations.length).toBeGreaterThan(0);
  });

  test('KVM mode needs a host thread per vCPU: more than 128 is refused', () => {
    const s = checkScenario({
      vcpus: 129,
      ramSize: 64 * 1024 * 1024,
      devices: [{ name: 'd', msis: 1 }],
      workload: { triggers: 1 },
    });
    expect(() => runScenario(s, 1, { kvm: {} })).toThrow(
      'KVM mode runs at most 128 vCPUs (one host thread each), not 129',
    );
  });

  test('a guest that EOIs without reading its queue is caught: overflow, unread entries', () => {
    class Deaf extends StubGuest {
      override handleInterrupt(cpu: number): void {
        // ACK and EOI the source blindly, never scan the queue.
        this.ackOnly(cpu);
        this.esbLoad(0x1300, 0xc00, cpu);
      }
    }
    const deaf = (m: SpaprMachine, _t: TraceSink): Deaf => new Deaf(m);
    const s = checkScenario({
      vcpus: 1,
      devices: [{ name: 'd', msis: 1 }],
      workload: { triggers: 20_000, streams: [{ device: 'd', rate: 1e6 }] },
    });
    const r = runScenario(s, 3, { guest: deaf });
    const kinds = new Set(r.violations.map((v) => v.invariant));
    expect(kinds).toEqual(
      new Set(['eq-read-once', 'eq-handled-once', 'trigger-delivered', 'queue-overflow']),
    );
    expect(r.violations.find((v) => v.invariant === 'queue-overflow')!.message).toBe(
      'seed 3: CPU 0 priority 6 queue held 20000 unread entries, capacity 16384',
    );
  });
});
