/** Hand-made CellResults for the report tests (exact values, no model run). */

import {
  type CellResult,
  type Costs,
  INVARIANTS,
  type InvariantId,
  type InvariantOutcome,
  NO_COSTS,
  type Series,
} from '../../../src/scenario/cell.ts';

const ZERO: Costs = { ...NO_COSTS, modeledTimeNs: 0 };

export interface CellSpec {
  /** Invariant → status; missing ones pass. A fail gets `violations` (default 1) and a trace. */
  inv?: Partial<Record<InvariantId, 'pass' | 'fail' | 'n/a' | number>>;
  costs?: Partial<Costs>;
  series?: Series[];
  notes?: string[];
  seed?: number;
}

/** A cell of `design` × `scenario`. `inv: { I3: 2 }` means I3 failed twice. */
export function cell(design: string, scenario: string, spec: CellSpec = {}): CellResult {
  const invariants = {} as Record<InvariantId, InvariantOutcome>;
  for (const id of INVARIANTS) {
    const s = spec.inv?.[id] ?? 'pass';
    if (s === 'pass' || s === 'n/a') invariants[id] = { status: s, violations: 0, first: null };
    else {
      const n = s === 'fail' ? 1 : s;
      invariants[id] = {
        status: 'fail',
        violations: n,
        first: {
          message: `seed ${spec.seed ?? 1}: ${design} broke ${id} in ${scenario}`,
          trace: [
            { seq: 10, time: 1000, cat: 0x20, kind: 'mm.fault', args: [1, 2, 3, 4] },
            { seq: 11, time: 1000, cat: 0x40, kind: 'kvm.zap', args: [5, 0, 0, 0] },
            { seq: 12, time: 2500, cat: 0x2, kind: 'esb.trigger', args: [4864, 0, 2, 1] },
          ],
        },
      };
    }
  }
  return {
    scenario,
    design,
    seed: spec.seed ?? 1,
    invariants,
    costs: { ...ZERO, ...spec.costs },
    series: spec.series ?? [],
    notes: spec.notes ?? [],
  };
}
