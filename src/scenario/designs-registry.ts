/**
 * The designs `xivelab compare` can run: name → {@link CellRunner}. A design registers here; the
 * compare machinery, its worker threads and the CLI find it by name. Registration is static (a
 * module-level table) so a worker thread that imports this module sees the same designs.
 */

import type { CellRunner } from './cell.ts';
import { runEmulatedCell } from './cell-emulated.ts';

/** Registered designs, in the order reports show them. */
const DESIGNS = new Map<string, CellRunner>([['emulated', runEmulatedCell]]);

/** Register (or replace) a design. */
export function registerDesign(name: string, runner: CellRunner): void {
  DESIGNS.set(name, runner);
}

/** The runner of `name`, or undefined. */
export function designRunner(name: string): CellRunner | undefined {
  return DESIGNS.get(name);
}

/** Names of the registered designs, in registration order. */
export function designNames(): string[] {
  return [...DESIGNS.keys()];
}

/** The cell runner that dispatches on the design name (what compare uses by default). */
export const registryRunner: CellRunner = (scenario, design, seed) => {
  const run = DESIGNS.get(design);
  if (run === undefined) throw new Error(`unknown design "${design}" (known: ${designNames().join(', ')})`);
  return run(scenario, design, seed);
};
