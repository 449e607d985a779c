import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseDocument } from 'yaml';
import { resultJsonSchema } from '../../../src/scenario/result.ts';
import { Duration, Scenario, scenarioJsonSchema } from '../../../src/scenario/schema.ts';

const root = new URL('../../../', import.meta.url);

describe('emitted JSON Schemas', () => {
  test('schema/scenario.json is up to date (regenerate: xivelab schema > schema/scenario.json)', () => {
    const onDisk = JSON.parse(readFileSync(new URL('schema/scenario.json', root), 'utf8'));
    expect(onDisk).toEqual(scenarioJsonSchema());
  });

  test('schema/result.json is up to date (regenerate: xivelab schema --result > schema/result.json)', () => {
    const onDisk = JSON.parse(readFileSync(new URL('schema/result.json', root), 'utf8'));
    expect(onDisk).toEqual(resultJsonSchema());
  });

  test('the scenario schema is strict and names the limits', () => {
    const js = scenarioJsonSchema() as {
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { minimum?: number; maximum?: number }>;
    };
    expect(js.additionalProperties).toBe(false);
    expect(js.required).toEqual(['vcpus', 'workload']);
    expect(js.properties.vcpus).toMatchObject({ minimum: 1, maximum: 256 });
  });

  test('every rate, time and count has its range in the JSON Schema', () => {
    type Js = {
      properties: Record<string, Js>;
      anyOf: Js[];
      items: Js;
      minimum?: number;
      maximum?: number;
      maxItems?: number;
    };
    const js = scenarioJsonSchema() as unknown as Js;
    const w = js.properties.workload!.properties;
    const rate = { type: 'number', minimum: 1, maximum: 1e9 };
    for (const k of ['ipis', 'masks', 'retargets', 'hotplug'])
      expect(w[k]!.properties.rate).toMatchObject(rate);
    expect(w.streams!.items.properties.rate).toMatchObject(rate);
    expect(w.streams).toMatchObject({ maxItems: 256 });
    expect(w.streams!.items.properties.burst).toMatchObject({ minimum: 1, maximum: 4096 });
    expect(w.streams!.items.properties.vectors).toMatchObject({ maxItems: 3328 });
    expect(w.triggers).toMatchObject({ minimum: 1, maximum: 1e7 });
    for (const time of [w.duration!, w.latency!, w.masks!.properties.hold!])
      expect(time.anyOf[0]).toMatchObject({ type: 'number', minimum: 0, maximum: 3600e9 });
    expect(w.hotplug!.properties.minOnline).toMatchObject({ minimum: 1, maximum: 256 });
    expect(js.properties.ramSize!.anyOf[0]).toMatchObject({
      type: 'integer',
      minimum: 0x20_0000,
      maximum: 2 ** 40,
      multipleOf: 0x1_0000,
    });
    expect(js.properties.ramSize!.anyOf[1]).toMatchObject({ type: 'string' });
    expect(js.properties.devices).toMatchObject({ maxItems: 32 });
    expect(js.properties.options!.properties.maxSteps).toMatchObject({ minimum: 1, maximum: 1e7 });
    const pt = js.properties.passthrough!.properties;
    expect(pt.cycles).toMatchObject({ minimum: 1, maximum: 1000 });
    expect(pt.msisPerCycle).toMatchObject({ minimum: 0, maximum: 1e6 });
    expect(pt.maxMapCount).toMatchObject({ minimum: 16, maximum: 0x7fff_ffff });
  });
});

describe('Duration', () => {
  test.each([
    [250, 250],
    ['250ns', 250],
    ['1.5us', 1500],
    ['2µs', 2000],
    ['10ms', 10_000_000],
    ['1s', 1_000_000_000],
    ['1e3 ns', 1000],
  ])('%s → %d ns', (input, ns) => {
    expect(Duration.parse(input)).toBe(ns);
  });

  test.each(['10', '5 min', '-1ms', '', '1e400s', '2e308ms', '1e309ns', '3600.5s', 3600e9 + 1, Number.NaN])(
    'rejects %j',
    (input) => {
      expect(Duration.safeParse(input).success).toBe(false);
    },
  );

  test('one hour is the longest', () => {
    expect(Duration.parse('3600s')).toBe(3600e9);
    expect(Duration.parse('60e3 ms')).toBe(60e9);
  });
});

describe('built-in scenarios validate', () => {
  test.each(['demo', 'foundation'])('scenarios/%s.yaml', (name) => {
    const doc = parseDocument(readFileSync(new URL(`scenarios/${name}.yaml`, root), 'utf8'));
    const r = Scenario.safeParse(doc.toJS());
    expect(r.success, r.error?.message).toBe(true);
  });
});
