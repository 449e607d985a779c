import { expect } from 'vitest';
import { ScenarioError } from '../../../src/scenario/parse.ts';

/** The message `run` fails with; it must fail, and with a ScenarioError. */
export function scenarioErrorOf(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).message;
  }
  throw new Error('expected a ScenarioError');
}
