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

  test.each(['10', '5 min', '-1ms', ''])('rejects %j', (input) => {
    expect(Duration.safeParse(input).success).toBe(false);
  });
});

describe('built-in scenarios validate', () => {
  test.each(['demo', 'foundation'])('scenarios/%s.yaml', (name) => {
    const doc = parseDocument(readFileSync(new URL(`scenarios/${name}.yaml`, root), 'utf8'));
    const r = Scenario.safeParse(doc.toJS());
    expect(r.success, r.error?.message).toBe(true);
  });
});
