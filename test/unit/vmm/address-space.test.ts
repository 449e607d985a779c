import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AccessSize, type MmioDevice, NO_CPU, Word64 } from '../../../src/hw/mmio.ts';
import { Trace } from '../../../src/sim/trace.ts';
import {
  AddressSpace,
  type MemoryListener,
  type MemoryRegionSection,
} from '../../../src/vmm/address-space.ts';
import { MemoryRegion } from '../../../src/vmm/memory-region.ts';

/** An MMIO device that records accesses and answers `0xA000_0000 | offset` (hi = cpu). */
class Recorder implements MmioDevice {
  readonly log: string[] = [];
  load(offset: number, size: AccessSize, cpu: number, out: Word64): void {
    this.log.push(`L ${offset.toString(16)} ${size} ${cpu}`);
    out.hi = size === 8 ? cpu >>> 0 : 0;
    out.lo = (0xa000_0000 | offset) >>> 0;
  }
  store(offset: number, size: AccessSize, hi: number, lo: number, cpu: number): void {
    this.log.push(`S ${offset.toString(16)} ${size} ${hi.toString(16)}:${lo.toString(16)} ${cpu}`);
  }
}

const views = (as: AddressSpace) =>
  as.flatView
    .sections()
    .map(
      (s) =>
        `${s.offsetWithinAddressSpace.toString(16)}+${s.size.toString(16)}:${s.mr.name}@${s.offsetWithinRegion.toString(16)}`,
    );

/** A listener recording events as strings. */
function eventLog(): { l: MemoryListener; events: string[] } {
  const events: string[] = [];
  const fmt = (s: MemoryRegionSection) =>
    `${s.mr.name}@${s.offsetWithinAddressSpace.toString(16)}+${s.size.toString(16)}`;
  return {
    events,
    l: {
      begin: () => events.push('begin'),
      regionDel: (s) => events.push(`del ${fmt(s)}`),
      regionAdd: (s) => events.push(`add ${fmt(s)}`),
      regionNop: (s) => events.push(`nop ${fmt(s)}`),
      commit: () => events.push('commit'),
    },
  };
}

describe('FlatView rendering', () => {
  it('overlays a higher-priority region and falls back when it is removed (KVM ESB overlay)', () => {
    const root = MemoryRegion.container('system', 2 ** 64);
    const esb = MemoryRegion.container('xive.esb', 0x40000);
    const emu = MemoryRegion.io('xive.esb-emulated', 0x40000, new Recorder());
    const kvm = MemoryRegion.ramDevice('xive.esb-kvm', 0x40000, 0x7fff_0000_0000, new Recorder());
    root.addSubregion(0x6_0100_0000_0000, esb);
    esb.addSubregionOverlap(0, emu, 0);
    const as = new AddressSpace(root, 'memory');
    expect(views(as)).toEqual(['6010000000000+40000:xive.esb-emulated@0']);
    const { l, events } = eventLog();
    as.addListener(l);
    expect(events.splice(0)).toEqual(['begin', 'add xive.esb-emulated@6010000000000+40000', 'commit']);
    esb.addSubregionOverlap(0, kvm, 1);
    expect(views(as)).toEqual(['6010000000000+40000:xive.esb-kvm@0']);
    expect(events.splice(0)).toEqual([
      'begin',
      'del xive.esb-emulated@6010000000000+40000',
      'add xive.esb-kvm@6010000000000+40000',
      'commit',
    ]);
    esb.delSubregion(kvm);
    expect(views(as)).toEqual(['6010000000000+40000:xive.esb-emulated@0']);
    expect(events.splice(0)).toEqual([
      'begin',
      'del xive.esb-kvm@6010000000000+40000',
      'add xive.esb-emulated@6010000000000+40000',
      'commit',
    ]);
  });

  it('lets a lower priority show through the gaps of a smaller higher-priority region', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const big = MemoryRegion.ram('big', 0x1000);
    const small = MemoryRegion.ram('small', 0x100);
    root.addSubregion(0, big);
    root.addSubregionOverlap(0x400, small, 1);
    const as = new AddressSpace(root, 'as');
    expect(views(as)).toEqual(['0+400:big@0', '400+100:small@0', '500+b00:big@500']);
  });

  it('among equal priorities the later-added subregion wins', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const a = MemoryRegion.ram('a', 0x200);
    const b = MemoryRegion.ram('b', 0x200);
    root.addSubregion(0, a);
    root.addSubregion(0x100, b);
    const as = new AddressSpace(root, 'as');
    expect(views(as)).toEqual(['0+100:a@0', '100+200:b@0']);
  });

  it('clips subregions to their container', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const c = MemoryRegion.container('c', 0x100);
    const r = MemoryRegion.ram('r', 0x1000);
    c.addSubregion(0x80, r);
    root.addSubregion(0x1000, c);
    const as = new AddressSpace(root, 'as');
    expect(views(as)).toEqual(['1080+80:r@0']);
  });

  it('disable removes a region and re-enable brings it back (listener del/add)', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const end = MemoryRegion.io('xive.end', 0x1000, new Recorder());
    const ram = MemoryRegion.ram('ram', 0x1000);
    root.addSubregion(0, ram);
    root.addSubregion(0x2000, end);
    const as = new AddressSpace(root, 'as');
    const { l, events } = eventLog();
    as.addListener(l);
    events.length = 0;
    end.setEnabled(false);
    expect(views(as)).toEqual(['0+1000:ram@0']);
    expect(events.splice(0)).toEqual(['begin', 'del xive.end@2000+1000', 'nop ram@0+1000', 'commit']);
    end.setEnabled(false);
    expect(events).toEqual([]);
    end.setEnabled(true);
    expect(events.splice(0)).toEqual(['begin', 'nop ram@0+1000', 'add xive.end@2000+1000', 'commit']);
    as.removeListener(l);
    expect(events.splice(0)).toEqual(['begin', 'del ram@0+1000', 'del xive.end@2000+1000', 'commit']);
    ram.setEnabled(false);
    expect(events).toEqual([]);
  });

  it('renders an alias window of another region, following later changes of the target', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const ram = MemoryRegion.ram('ram', 0x1000);
    const alias = MemoryRegion.alias('ram-hi', ram, 0x800, 0x400);
    root.addSubregion(0, ram);
    root.addSubregion(0x4000, alias);
    const as = new AddressSpace(root, 'as');
    expect(views(as)).toEqual(['0+1000:ram@0', '4000+400:ram@800']);
    const w = new Word64();
    as.store(0x4010, 4, 0, 0x12345678, NO_CPU);
    as.load(0x810, 4, NO_CPU, w);
    expect(w.lo).toBe(0x12345678);
    alias.setAliasOffset(0xe00);
    expect(views(as)).toEqual(['0+1000:ram@0', '4000+200:ram@e00']);
    ram.setEnabled(false);
    expect(views(as)).toEqual([]);
  });

  it('alias of a container sees the container’s subregions; changes inside propagate', () => {
    const root = MemoryRegion.container('root', 0x100000);
    const detached = MemoryRegion.container('pool', 0x1000);
    const io = MemoryRegion.io('io', 0x100, new Recorder());
    detached.addSubregion(0x100, io);
    const alias = MemoryRegion.alias('win', detached, 0, 0x1000);
    root.addSubregion(0x8000, alias);
    const as = new AddressSpace(root, 'as');
    expect(views(as)).toEqual(['8100+100:io@0']);
    io.setAddress(0x300);
    expect(views(as)).toEqual(['8300+100:io@0']);
  });

  it('rebuilds once per transaction', () => {
    const root = MemoryRegion.container('root', 0x100000);
    const as = new AddressSpace(root, 'as');
    const { l, events } = eventLog();
    as.addListener(l);
    events.length = 0;
    const before = as.rebuilds;
    as.begin();
    for (let i = 0; i < 8; i++) root.addSubregion(i * 0x1000, MemoryRegion.ram(`r${i}`, 0x1000));
    expect(as.rebuilds).toBe(before);
    expect(views(as)).toEqual([]);
    as.commit();
    expect(as.rebuilds).toBe(before + 1);
    expect(events.filter((e) => e === 'begin').length).toBe(1);
    expect(events.filter((e) => e.startsWith('add')).length).toBe(8);
    expect(views(as).length).toBe(8);
  });

  it('merges adjacent ranges that continue the same region (flatview_simplify)', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const ram = MemoryRegion.ram('ram', 0x3000);
    const hole = MemoryRegion.container('hole', 0x1000); // empty container: no effect
    root.addSubregion(0, ram);
    root.addSubregionOverlap(0x1000, hole, 1);
    const as = new AddressSpace(root, 'as');
    expect(views(as)).toEqual(['0+3000:ram@0']);
  });
});

describe('AddressSpace dispatch', () => {
  const setup = () => {
    const trace = new Trace();
    const root = MemoryRegion.container('system', 2 ** 64);
    const ram = MemoryRegion.ram('ram', 0x10000);
    const dev = new Recorder();
    const esb = MemoryRegion.io('esb', 0x40000, dev, { min: 8, max: 8, unaligned: false });
    const tima = MemoryRegion.io('tima', 0x40000, dev);
    root.addSubregion(0, ram);
    root.addSubregion(0x6_0100_0000_0000, esb);
    root.addSubregion(0x6_0302_0318_0000, tima);
    return { trace, root, ram, dev, esb, as: new AddressSpace(root, 'memory', trace) };
  };

  it('passes region-relative offsets, size and cpu to devices', () => {
    const { as, dev } = setup();
    const w = new Word64();
    as.load(0x6_0100_0001_0800, 8, 3, w);
    expect(dev.log).toEqual(['L 10800 8 3']);
    expect([w.hi, w.lo]).toEqual([3, 0xa001_0800]);
    as.store(0x6_0302_031a_0010, 1, 0, 0xff, 0);
    expect(dev.log[1]).toBe('S 20010 1 0:ff 0');
  });

  it('rejects sizes outside valid.min/max and unaligned accesses like memory_region_access_valid', () => {
    const { as, dev, trace } = setup();
    const w = new Word64().set(7, 7);
    as.load(0x6_0100_0001_0800, 4, NO_CPU, w);
    expect([w.hi, w.lo]).toEqual([0, 0]);
    as.store(0x6_0100_0001_0c00, 2, 0, 1, NO_CPU);
    as.load(0x6_0302_0318_0002, 4, 0, w);
    expect(dev.log).toEqual([]);
    expect(trace.guestErrors).toEqual([
      "Invalid access at addr 0x10800, size 4, region 'esb', reason: invalid size (min:8 max:8)",
      "Invalid access at addr 0x10C00, size 2, region 'esb', reason: invalid size (min:8 max:8)",
      "Invalid access at addr 0x2, size 4, region 'tima', reason: unaligned",
    ]);
    expect(as.invalidAccesses).toBe(3);
  });

  it('unassigned reads 0 and drops writes, with a guest error', () => {
    const { as, trace } = setup();
    const w = new Word64().set(1, 1);
    as.load(0x6_0100_4000_0000, 8, NO_CPU, w);
    expect([w.hi, w.lo]).toEqual([0, 0]);
    as.store(0x20000, 4, 0, 0xdead, 0);
    expect(trace.guestErrors).toEqual([
      'Unassigned mem read 0006010040000000',
      'Unassigned mem write 0000000000020000 = 0xdead',
    ]);
    expect(as.unassignedAccesses).toBe(2);
  });

  it('splits an access straddling RAM and unassigned space', () => {
    const { as, ram } = setup();
    ram.ramStore(0xfffc, 4, 0, 0x01020304);
    const w = new Word64();
    as.load(0xfffc, 8, NO_CPU, w);
    expect([w.hi, w.lo]).toEqual([0x01020304, 0]);
    as.store(0xfffe, 4, 0, 0xaabbccdd, NO_CPU);
    as.load(0xfffc, 4, NO_CPU, w);
    expect(w.lo).toBe(0x0102aabb);
  });

  it('implements DmaSpace: ldl/stl_be and isRam', () => {
    const { as } = setup();
    expect(as.storeBe32(0x200, 0xfeedf00d)).toBe(true);
    expect(as.loadBe32(0x200)).toBe(0xfeedf00d);
    expect(as.storeBe32(0x10000, 1)).toBe(false); // unassigned
    expect(as.storeBe32(0x6_0100_0000_0000, 1)).toBe(false); // ESB rejects 4-byte
    expect(as.storeBe32(0x6_0302_0318_0000, 1)).toBe(true); // dispatched
    expect(as.isRam(0, 0x10000)).toBe(true);
    expect(as.isRam(0xfff0, 0x20)).toBe(false);
    expect(as.isRam(0x6_0100_0000_0000, 8)).toBe(false);
  });

  it('keeps dispatching correctly after a rebuild invalidates the last-hit cache', () => {
    const { as, root } = setup();
    const w = new Word64();
    as.store(0x100, 4, 0, 0x11111111, NO_CPU);
    const other = MemoryRegion.ram('other', 0x1000);
    root.addSubregionOverlap(0, other, 1);
    as.load(0x100, 4, NO_CPU, w);
    expect(w.lo).toBe(0);
    root.delSubregion(other);
    as.load(0x100, 4, NO_CPU, w);
    expect(w.lo).toBe(0x11111111);
  });

  it('translate names the answering region and formats like info mtree -f', () => {
    const { as } = setup();
    expect(as.translate(0x6_0100_0002_0000)?.mr.name).toBe('esb');
    expect(as.translate(0x6_0100_0002_0000)?.offsetWithinAddressSpace).toBe(0x6_0100_0000_0000);
    expect(as.translate(0x10000)).toBeNull();
    expect(as.formatFlatView().split('\n').slice(3)).toEqual([
      '  0000000000000000-000000000000ffff (prio 0, ram): ram',
      '  0006010000000000-000601000003ffff (prio 0, i/o): esb',
      '  0006030203180000-00060302031bffff (prio 0, i/o): tima',
    ]);
  });
});

// ---- property test: flat view vs a naive per-address resolution -----------------------------

interface Resolved {
  mr: MemoryRegion;
  offset: number;
}

/** When each region was (last) added to its container, kept by the test itself. */
const addSeq = new Map<MemoryRegion, number>();
let seqCounter = 0;
const noteAdd = (mr: MemoryRegion) => addSeq.set(mr, seqCounter++);

/**
 * Per-address reference: walk the tree exactly as the rules say, no rendering; precedence
 * among siblings recomputed from priorities and the test's own add order (higher priority,
 * then later-added, wins).
 */
function resolve(mr: MemoryRegion, x: number): Resolved | null {
  if (!mr.enabled || x < 0 || x >= mr.size) return null;
  if (mr.alias !== null) return resolve(mr.alias, x + mr.aliasOffset);
  const subs = [...mr.subregions].sort((a, b) => b.priority - a.priority || addSeq.get(b)! - addSeq.get(a)!);
  for (const sub of subs) {
    const r = resolve(sub, x - sub.addr);
    if (r !== null) return r;
  }
  return mr.terminates ? { mr, offset: x } : null;
}

const SPACE = 96;

interface Op {
  kind: number; // 0 container, 1 ram, 2 io, 3 alias
  parent: number;
  addr: number;
  size: number;
  prio: number;
  target: number;
  aliasOff: number;
}

const opArb = fc.record({
  kind: fc.integer({ min: 0, max: 3 }),
  parent: fc.nat(),
  addr: fc.integer({ min: 0, max: 64 }),
  size: fc.integer({ min: 1, max: 48 }),
  prio: fc.integer({ min: -1, max: 2 }),
  target: fc.nat(),
  aliasOff: fc.integer({ min: -8, max: 40 }),
});

const mutArb = fc.record({
  which: fc.nat(),
  action: fc.integer({ min: 0, max: 3 }),
  v: fc.integer({ min: 0, max: 64 }),
});

function build(ops: readonly Op[]) {
  const dev = new Recorder();
  const root = MemoryRegion.container('root', 80);
  // Alias targets live outside the tree (plus terminals inside it), so no alias can form a cycle.
  const poolRam = MemoryRegion.ram('poolRam', 32);
  const poolCt = MemoryRegion.container('poolCt', 40);
  const poolIo = MemoryRegion.io('poolIo', 8, dev);
  const poolRam2 = MemoryRegion.ram('poolRam2', 12);
  poolCt.addSubregion(4, poolIo);
  poolCt.addSubregionOverlap(8, poolRam2, 1);
  noteAdd(poolIo);
  noteAdd(poolRam2);
  const containers: MemoryRegion[] = [root];
  const targets: MemoryRegion[] = [poolRam, poolCt];
  const all: MemoryRegion[] = [];
  ops.forEach((op, n) => {
    const parent = containers[op.parent % containers.length]!;
    let mr: MemoryRegion;
    if (op.kind === 0) mr = MemoryRegion.container(`c${n}`, op.size);
    else if (op.kind === 1) mr = MemoryRegion.ram(`r${n}`, op.size);
    else if (op.kind === 2) mr = MemoryRegion.io(`i${n}`, op.size, dev);
    else mr = MemoryRegion.alias(`a${n}`, targets[op.target % targets.length]!, op.aliasOff, op.size);
    if (op.prio === 0 && op.target % 2 === 0) parent.addSubregion(op.addr, mr);
    else parent.addSubregionOverlap(op.addr, mr, op.prio);
    noteAdd(mr);
    if (op.kind === 0) containers.push(mr);
    if (op.kind === 1 || op.kind === 2) targets.push(mr);
    all.push(mr);
  });
  return { root, all, poolCt };
}

function checkView(as: AddressSpace, root: MemoryRegion): void {
  const v = as.flatView;
  for (let i = 0; i < v.count; i++) {
    expect(v.ends[i]!).toBeGreaterThan(v.starts[i]!);
    if (i > 0) {
      expect(v.starts[i]!).toBeGreaterThanOrEqual(v.ends[i - 1]!);
      const mergeable =
        v.regions[i] === v.regions[i - 1] &&
        v.starts[i] === v.ends[i - 1] &&
        v.offsets[i - 1]! + (v.ends[i - 1]! - v.starts[i - 1]!) === v.offsets[i];
      expect(mergeable).toBe(false);
    }
  }
  for (let a = 0; a < SPACE; a++) {
    const ref = resolve(root, a);
    const sec = as.translate(a);
    if (ref === null) expect(sec).toBeNull();
    else {
      expect(sec?.mr).toBe(ref.mr);
      expect(sec!.offsetWithinRegion + (a - sec!.offsetWithinAddressSpace)).toBe(ref.offset);
    }
  }
}

describe('FlatView property', () => {
  it('matches a naive per-address reference over random trees and mutations (seed 20261124)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 14 }), fc.array(mutArb, { maxLength: 6 }), (ops, muts) => {
        const { root, all, poolCt } = build(ops);
        const as = new AddressSpace(root, 'prop');
        // Listener mirror: applying add/del events must reproduce the view.
        const mirror = new Map<string, true>();
        const key = (s: MemoryRegionSection) =>
          `${s.offsetWithinAddressSpace}/${s.size}/${s.mr.name}/${s.offsetWithinRegion}`;
        as.addListener({
          regionDel: (s) => {
            expect(mirror.delete(key(s))).toBe(true);
          },
          regionAdd: (s) => {
            expect(mirror.has(key(s))).toBe(false);
            mirror.set(key(s), true);
          },
        });
        checkView(as, root);
        for (const m of muts) {
          const pool = [...all, poolCt.subregions[0]!];
          if (pool.length === 0) break;
          const mr = pool[m.which % pool.length]!;
          if (m.action === 0) mr.setEnabled(!mr.enabled);
          else if (m.action === 1 && mr.container !== null) {
            if (m.v !== mr.addr) noteAdd(mr); // QEMU re-adds a moved region
            mr.setAddress(m.v);
          } else if (m.action === 2 && mr.container !== null) mr.container.delSubregion(mr);
          else if (m.action === 3 && mr.alias !== null) mr.setAliasOffset(m.v - 8);
          checkView(as, root);
          expect([...mirror.keys()].sort()).toEqual(as.flatView.sections().map(key).sort());
        }
      }),
      { seed: 20261124, numRuns: 400 },
    );
  });
});
