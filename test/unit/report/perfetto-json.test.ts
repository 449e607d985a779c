/**
 * The traces xivelab writes, imported the way Perfetto's JSON importer would (offline: see
 * perfetto-json.ts for the upstream functions modeled): `compare`'s violation traces and race
 * counterexamples, `run --trace` in virtual time, and the rules themselves on a broken document.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { explore } from '../../../src/check/explore/explore.ts';
import { kernelRaceProgram, raceDesigns } from '../../../src/check/explore/kernel/race-program.ts';
import { writeReport } from '../../../src/cli/compare.ts';
import { findDesign } from '../../../src/designs/index.ts';
import { toChromeTrace } from '../../../src/report/chrome-trace.ts';
import { runDesignCell, traceDesignRun } from '../../../src/scenario/cell-dispatch.ts';
import { resultsDocument } from '../../../src/scenario/compare.ts';
import { loadScenario } from '../../../src/scenario/load.ts';
import { loadRaceScenario } from '../../../src/scenario/race-load.ts';
import { counterexampleTrace } from '../../../src/scenario/race-table.ts';
import { importChromeJson } from './perfetto-json.ts';

const ref = (name: string) => {
  const file = `scenarios/${name}.yaml`;
  return { name, file, scenario: loadScenario(file) };
};

/** Flow arrows of an import as `from → to` chains of slice names, counted. */
function flowShapes(flows: ReturnType<typeof importChromeJson>['flows']): Map<string, number> {
  const out = new Map<string, number>();
  for (const arrows of flows.values()) {
    const shape = [arrows[0]![0].name, ...arrows.map(([, to]) => to.name)].join(' → ');
    out.set(shape, (out.get(shape) ?? 0) + 1);
  }
  return out;
}

describe('the importer rules catch what Perfetto would drop or misbind', () => {
  test('one broken event per rule', () => {
    const doc = {
      displayTimeUnit: 'us',
      traceEvents: [
        { name: 'process_name', ph: 'M', pid: 0, tid: 0, args: { name: 'title' } },
        { name: 'thread_name', ph: 'M', pid: 1, tid: 7, args: { name: 'a' } },
        { name: 'a', ph: 'X', pid: 1, tid: 7, ts: 1, dur: 3 },
        { name: 'b', ph: 'X', pid: 1, tid: 7, ts: 2, dur: 5 },
        { name: 'c', ph: 'X', pid: 1, tid: 7, ts: 0.0001, dur: 1 },
        { name: 'd', ph: 'X', pid: 1, tid: 7, ts: 9 },
        { name: 'e', ph: 'i', pid: 2, tid: 7, ts: 9, s: 'x' },
        { name: 'f', ph: 'i', pid: 2, tid: 0, ts: 9 },
        { name: 'g', ph: 'i', pid: -1, tid: 8, ts: 9, args: { a: [1] }, stack: [1] },
        { name: 'h', ph: 'i', pid: 1, tid: 7 },
        { name: 'flow', cat: 'flow', ph: 's', id: 1, pid: 1, tid: 9, ts: 20 },
        { name: 'flow', cat: 'flow', ph: 's', id: 2, pid: 1, tid: 7, ts: 2.5 },
        { name: 'flow', cat: 'flow', ph: 't', id: 2, pid: 1, tid: 7, ts: 8, bp: 'e' },
        { name: 'flow', cat: 'flow', ph: 'f', id: 'x', pid: 1, tid: 7, ts: 6 },
        { name: 'z', ph: 'Z', pid: 1, tid: 7, ts: 1 },
      ],
    };
    expect(importChromeJson(doc).issues).toEqual([
      'displayTimeUnit "us" is neither "ms" nor "ns" (Trace Event Format)',
      '#0 M process_name: names pid 0, the idle process (ProcessTracker (pid 0 is upid 0))',
      '#4 X c: ts 0.0001 is not a number of µs exact to the ns (json::CoerceToTs)',
      '#5 X d: dur undefined is not a duration in µs exact to the ns (json::CoerceToTs)',
      '#6 i e: instant scope "x" (JsonTraceParserImpl::ParseJsonPacket)',
      '#6 i e: tid 7 also belongs to pid 1: threads are named by tid (ProcessTracker::UpdateThreadName)',
      '#7 i f: on tid 0, the idle thread (ProcessTracker (tid 0 is utid 0))',
      '#8 i g: top-level key "stack" holds an array (ExtractValueForJsonKey)',
      '#8 i g: pid -1 is not an integer in [0, 2^32) (json::CoerceToUint32)',
      '#9 i h: no ts: dropped (JsonTraceTokenizer::HandleTraceEvent)',
      '#13 f flow: flow id "x" is not a non-negative integer (MaybeExtractFlowIdentifier)',
      '#13 f flow: a flow end without bp "e" binds to the next slice that begins on its track (FlowTracker::End)',
      '#14 Z z: unknown phase (JsonTraceParserImpl::ParseJsonPacket)',
      // In the sorter's order: by ts.
      '#3 X b: overlaps a (#2) partially (SliceTracker::MaybeCloseStack)',
      '#13 f flow: flow x has no start (FlowTracker::End: flow_end_without_start)',
      '#12 t flow: binds to b (#3), which ended before it (FlowTracker::Step)',
      '#10 s flow: no slice on 1:9 to bind to (FlowTracker::Begin: flow_no_enclosing_slice)',
      'thread 2:7 has no thread_name',
      'thread 2:0 has no thread_name',
      'thread -1:8 has no thread_name',
    ]);
  });
});

describe('what compare writes imports cleanly', () => {
  const out = mkdtempSync(join(tmpdir(), 'xivelab-perfetto-'));
  // Violations in the sequence timeline (passthrough runs), and a race counterexample.
  const cells = [
    runDesignCell(ref('pt-late-mapping'), findDesign('vma-walk')!, 1),
    runDesignCell(ref('pt-forked-helper'), findDesign('rmap')!, 1),
  ];
  const race = loadRaceScenario('s12-fault-vs-bind').scenario;
  const rmap = raceDesigns(race).find((d) => d.name === 'rmap')!;
  const shortest = explore(kernelRaceProgram(race, rmap), { bound: race.bound }).shortest!;
  const races = new Map([
    ['race--s12-fault-vs-bind--rmap.trace.json', counterexampleTrace(race, 'rmap', shortest)],
  ]);
  let files: string[] = [];
  let imported = new Map<string, ReturnType<typeof importChromeJson>>();
  beforeAll(async () => {
    await writeReport(
      out,
      resultsDocument(cells, ['vma-walk', 'rmap'], ['pt-late-mapping', 'pt-forked-helper'], 1),
      races,
    );
    files = readdirSync(join(out, 'traces')).sort();
    imported = new Map(
      files.map((f) => [f, importChromeJson(JSON.parse(readFileSync(join(out, 'traces', f), 'utf8')))]),
    );
  });

  test('every trace file: no event dropped, misplaced or misbound; every track named', () => {
    expect(files).toEqual([
      'pt-forked-helper--rmap--I4.trace.json',
      'pt-forked-helper--rmap--I6.trace.json',
      'pt-late-mapping--vma-walk--I1.trace.json',
      'pt-late-mapping--vma-walk--I2.trace.json',
      'race--s12-fault-vs-bind--rmap.trace.json',
    ]);
    for (const [f, r] of imported) expect(r.issues, f).toEqual([]);
  });

  test('a violation trace: the tracks and the violation on the global track', () => {
    const r = imported.get('pt-late-mapping--vma-walk--I2.trace.json')!;
    expect([...r.processes.values()]).toEqual([
      'guest vCPUs',
      'host processes',
      'host kernel threads',
      'XIVE hardware',
      'host hardware threads (XIVE thread contexts)',
    ]);
    expect([...r.threads.values()].filter((n) => n.startsWith('pid'))).toEqual(['pid 1 (VMM)', 'pid 2']);
    expect(r.globalInstants).toEqual(['violation I2']);
    expect(
      r.slices.filter((s) => s.name === 'mm.insert_pfn' && s.args.pid === 2).map((s) => s.args.pfn),
    ).toEqual(['0x605000001']);
  });

  test('the race counterexample: one named track per thread, one slice per step', () => {
    const r = imported.get('race--s12-fault-vs-bind--rmap.trace.json')!;
    expect([...r.processes.values()]).toEqual(['race s12-fault-vs-bind × rmap']);
    expect([...r.threads.values()]).toEqual(['fault', 'bind']);
    expect(r.slices.length).toBe(shortest.steps.length);
  });
});

test('run --trace in virtual time: every flow binds to the events of its notification', () => {
  const demo = ref('demo');
  const s = {
    ...demo,
    scenario: { ...demo.scenario, workload: { ...demo.scenario.workload, triggers: 40 } },
  };
  const { events } = traceDesignRun(s, findDesign('emulated')!, 1);
  const r = importChromeJson(
    JSON.parse(JSON.stringify(toChromeTrace(events, { scenario: 'demo', design: 'emulated', seed: 1 }))),
  );
  expect(r.issues).toEqual([]);
  // The same shapes as the model's notifications (trigger → enqueue → ACK → EOI).
  expect(flowShapes(r.flows)).toEqual(
    new Map([
      ['esb.trigger → router.enqueue → tctx.accept → esb.set_pq', 20],
      ['esb.trigger → router.enqueue → esb.set_pq', 7],
      ['esb.lsi → router.enqueue → tctx.accept → esb.eoi', 3],
    ]),
  );
});
