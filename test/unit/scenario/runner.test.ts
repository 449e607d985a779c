import { describe, expect, test } from 'vitest';
import type { GuestBoot } from '../../../src/scenario/guest-port.ts';
import { checkScenario } from '../../../src/scenario/parse.ts';
import { Result } from '../../../src/scenario/result.ts';
import { buildMachine, type KvmConfig } from '../../../src/scenario/run-machine.ts';
import { runGuest, runScenario } from '../../../src/scenario/runner.ts';
import type { Scenario } from '../../../src/scenario/schema.ts';
import type { TraceSink } from '../../../src/sim/trace-sink.ts';
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

/** Run `s` on the guest `boot` boots: emulated, or under KVM with `kvm`. */
function run(s: Scenario, seed: number, boot: GuestBoot, kvm?: KvmConfig): Result {
  const setup = kvm === undefined ? buildMachine(s, seed) : buildMachine(s, seed, { kvm });
  return runGuest(setup, boot(setup.machine, setup.probe)).result;
}

describe('runScenario (with a minimal stand-in guest)', () => {
  test('drives every kind of event, keeps every invariant, result matches its schema', () => {
    const r = run(scenario, 9, stubGuest);
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
    const a = run(scenario, 1234, stubGuest);
    const b = run(scenario, 1234, stubGuest);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    const c = run(scenario, 1235, stubGuest);
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a));
  });

  test('a duration stops the run at that virtual time', () => {
    const s = checkScenario({
      vcpus: 1,
      devices: [{ name: 'd', msis: 2 }],
      workload: { duration: '100us', streams: [{ device: 'd', rate: 1e6, pattern: 'round-robin' }] },
    });
    const r = run(s, 1, stubGuest);
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
    const r = run(scenario, 77, lossy);
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
    const emu = run(scenario, 77, lossy);
    const kvm = run(scenario, 77, lossy, {});
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

  test('options.maxSteps reached is a result: a step-limit violation, the run stopped there', () => {
    const s = checkScenario({
      vcpus: 2,
      devices: [{ name: 'nic', msis: 4 }],
      workload: { triggers: 200, streams: [{ device: 'nic', rate: 1e6, pattern: 'bursts', burst: 8 }] },
      options: { maxSteps: 1 },
    });
    for (const r of [runScenario(s, 1).result, runScenario(s, 1, { kvm: {} }).result]) {
      expect(r.violations).toEqual([
        {
          invariant: 'step-limit',
          cpu: 0,
          message:
            'seed 1: vCPU 0 was still interrupted after 1 handler runs (options.maxSteps); the run stopped there',
        },
      ]);
      // The first burst of 8 on one vector (one more trigger than the burst: the stop point).
      expect([r.totals.triggered, r.totals.delivered, r.totals.coalesced]).toEqual([9, 2, 7]);
    }
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
    const r = run(s, 3, deaf);
    const kinds = new Set(r.violations.map((v) => v.invariant));
    expect(kinds).toEqual(
      new Set(['eq-read-once', 'eq-handled-once', 'trigger-delivered', 'queue-overflow']),
    );
    expect(r.violations.find((v) => v.invariant === 'queue-overflow')!.message).toBe(
      'seed 3: CPU 0 priority 6 queue held 20000 unread entries, capacity 16384',
    );
  });
});
