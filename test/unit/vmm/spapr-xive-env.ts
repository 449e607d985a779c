/** Stand-ins the sPAPR XIVE controller's unit tests give it: guest RAM and a trace sink. */
import type { DmaSpace } from '../../../src/hw/mmio.ts';
import type { TraceSink } from '../../../src/sim/trace-sink.ts';

/** Guest RAM `[0, size)` as a Uint8Array, big-endian words. */
export class FakeDma implements DmaSpace {
  readonly mem: Uint8Array;
  private readonly view: DataView;
  constructor(size: number) {
    this.mem = new Uint8Array(size);
    this.view = new DataView(this.mem.buffer);
  }
  isRam(addr: number, len: number): boolean {
    return addr >= 0 && addr + len <= this.mem.length;
  }
  loadBe32(addr: number): number {
    return this.isRam(addr, 4) ? this.view.getUint32(addr) : 0xffff_ffff;
  }
  storeBe32(addr: number, value: number): boolean {
    if (!this.isRam(addr, 4)) return false;
    this.view.setUint32(addr, value);
    return true;
  }
}

/** A trace sink that keeps the guest errors and drops the events. */
export class RecTrace implements TraceSink {
  mask = 0;
  readonly errors: string[] = [];
  emit(): void {}
  guestError(msg: string): void {
    this.errors.push(msg);
  }
}
