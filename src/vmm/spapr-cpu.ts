/**
 * A sPAPR vCPU as the guest drives it: real-mode loads/stores through the machine's system
 * address space (tagged with the vCPU index, QEMU's `current_cpu`, which is how the TIMA finds
 * the thread context), `sc 1` hypercalls, and the external-interrupt input driven by the
 * thread context's OS ring output.
 *
 * @remarks Models the parts of target/ppc (PowerPCCPU) and hw/ppc/spapr_cpu_core.c the
 * interrupt path touches; the TCTX `os_output` → `PPC_INTERRUPT_EXT` wiring of
 * hw/intc/xive.c:xive_tctx_realize() / spapr_xive_cpu_intc_create().
 */

import type { GuestVcpu, LoadResult } from '../guest/platform.ts';
import type { AccessSize } from '../hw/mmio.ts';
import * as mmio from '../hw/mmio.ts';
import type { XiveTctx } from '../hw/xive/tctx.ts';
import { traceEvent } from '../sim/trace-events.ts';
import type { TraceSink } from '../sim/trace-sink.ts';
import * as traceSink from '../sim/trace-sink.ts';
import type { AddressSpace } from './address-space.ts';

// Module-local copies of the imported constants and helpers the hot paths use: V8 reads an
// imported binding through its module cell (a load and a hole check) at every use, while a
// module-local const folds to an immediate in optimised code.
const { TRACE_VMM } = traceSink;
const { Word64 } = mmio;

/** What a vCPU needs from its machine (kept narrow so the CPU does not import the machine). */
export interface SpaprCpuHost {
  hcall(cpu: number, opcode: number, args: readonly bigint[], out: bigint[]): number;
}

export class SpaprCpu implements GuestVcpu {
  // `declare`d fields: the constructor's first store sets each field's representation (a
  // class-field definition stores `undefined` first and leaves them generic, slower to read).
  /** vCPU id = hardware CPU id = XIVE server number = TIMA cpu index. */
  declare readonly id: number;
  declare readonly tctx: XiveTctx;
  /** Number of rising edges of the external-interrupt input. */
  declare raises: number;
  /** Number of falling edges. */
  declare lowers: number;
  /** Called on every edge (the qtest front end reports `IRQ raise` / `IRQ lower`). */
  declare onExternalInterrupt: ((level: boolean) => void) | null;
  declare private readonly sysmem: AddressSpace;
  declare private readonly host: SpaprCpuHost;
  declare private readonly trace: TraceSink;
  declare private readonly word: mmio.Word64;
  declare private level: boolean;

  constructor(id: number, sysmem: AddressSpace, tctx: XiveTctx, host: SpaprCpuHost, trace: TraceSink) {
    this.id = id;
    this.tctx = tctx;
    this.raises = 0;
    this.lowers = 0;
    this.onExternalInterrupt = null;
    this.sysmem = sysmem;
    this.host = host;
    this.trace = trace;
    this.word = new Word64();
    this.level = tctx.osLine;
    tctx.onOsLine = (level: boolean) => this.setExternalInterrupt(level);
  }

  /** Level of the external-interrupt input (the OS ring's output line). */
  get externalInterrupt(): boolean {
    return this.level;
  }

  /** Big-endian load at a guest real address. */
  load(addr: number, size: AccessSize, out: LoadResult): void {
    // A Word64 is filled in place; any other result object through the CPU's own word, so the
    // devices' stores into `out` only ever see one shape.
    if (out instanceof Word64) {
      this.sysmem.load(addr, size, this.id, out);
      return;
    }
    const w = this.word;
    this.sysmem.load(addr, size, this.id, w);
    out.hi = w.hi;
    out.lo = w.lo;
  }

  /** Big-endian store at a guest real address. */
  store(addr: number, size: AccessSize, hi: number, lo: number): void {
    this.sysmem.store(addr, size, hi >>> 0, lo >>> 0, this.id);
  }

  /** `sc 1`: R3 = opcode, R4.. = args. */
  hcall(opcode: number, args: readonly bigint[], out: bigint[]): number {
    return this.host.hcall(this.id, opcode, args, out);
  }

  /** Out of {@link setExternalInterrupt}'s line (it stays small enough to inline). */
  private traceExtIrq(level: boolean): void {
    traceEvent(this.trace, 'cpu.ext_irq', { cpu: this.id, level: +level });
  }

  /** @remarks Models target/ppc/cpu_init.c:ppc_set_irq() for PPC_INTERRUPT_EXT (edges only). */
  private setExternalInterrupt(level: boolean): void {
    if (level === this.level) return;
    this.level = level;
    if (level) this.raises++;
    else this.lowers++;
    if (this.trace.mask & TRACE_VMM) this.traceExtIrq(level);
    this.onExternalInterrupt?.(level);
  }
}
