import { describe, expect, it } from 'vitest';
import { XIVE_ESB_FORWARD, xiveEsbEoi, xiveEsbTrigger } from '../../../../src/hw/xive/esb.ts';

describe('PQ primitives', () => {
  it('trigger: 00→10 fwd, 01→01, 10→11, 11→11', () => {
    expect([0, 1, 2, 3].map(xiveEsbTrigger)).toEqual([2 | XIVE_ESB_FORWARD, 1, 3, 3]);
  });
  it('EOI: 00→00, 01→01, 10→00, 11→10 fwd', () => {
    expect([0, 1, 2, 3].map(xiveEsbEoi)).toEqual([0, 1, 0, 2 | XIVE_ESB_FORWARD]);
  });
});
