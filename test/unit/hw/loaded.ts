import { Word64 } from '../../../src/hw/mmio.ts';

/** The value a load leaves in a fresh {@link Word64}, as one 64-bit number: `load(out)` performs it. */
export function loaded(load: (out: Word64) => void): bigint {
  const w = new Word64();
  load(w);
  return w.toBigInt();
}
