/**
 * The trace contract: every event kind the model emits, with its category and its named
 * arguments, declared once. Emitters build an event by name ({@link traceEvent}); counters read
 * an argument by name ({@link traceArgs}), so renaming an event or an argument fails to compile
 * on both sides, and the position an argument takes in the ring (and in exported traces) is the
 * declaration's order, whatever order a call site writes them in.
 */

import {
  TRACE_ESB,
  TRACE_GUEST,
  TRACE_HCALL,
  TRACE_KVM,
  TRACE_MM,
  TRACE_ROUTER,
  TRACE_TIMA,
  TRACE_VMM,
  type TraceSink,
} from './trace-sink.ts';

/** One event kind: its category bit and the names of its (at most four) numeric arguments. */
interface TraceEventDecl {
  readonly cat: number;
  readonly args: readonly [] | readonly [string, string?, string?, string?];
}

/** Every event kind, by its short stable name. */
export const TRACE_EVENTS = {
  // hw/xive: sources, router, thread contexts, TIMA, the POWER9 chip's OPAL calls
  'esb.trigger': { cat: TRACE_ESB, args: ['srcno', 'oldPq', 'newPq', 'forward'] },
  'esb.eoi': { cat: TRACE_ESB, args: ['srcno', 'oldPq', 'newPq', 'forward'] },
  'esb.lsi': { cat: TRACE_ESB, args: ['srcno', 'oldPq', 'newPq', 'forward'] },
  'esb.forward': { cat: TRACE_ESB, args: ['srcno'] },
  /** A management-page `SET_PQ_xx` load or a direct PQ write (migration, reset). */
  'esb.set_pq': { cat: TRACE_ESB, args: ['srcno', 'oldPq', 'newPq'] },
  end_esb: { cat: TRACE_ESB, args: ['endIdx', 'ese', 'op', 'oldPq'] },
  'router.masked': { cat: TRACE_ROUTER, args: ['hwIrq'] },
  'router.enqueue': { cat: TRACE_ROUTER, args: ['endBlk', 'endIdx', 'qindex', 'qdata'] },
  'router.escalate': { cat: TRACE_ROUTER, args: ['endBlk', 'endIdx', 'escBlk', 'escIdx'] },
  'router.present': { cat: TRACE_ROUTER, args: ['cpu', 'ring', 'priority'] },
  'opal.irq_config': { cat: TRACE_ROUTER, args: ['hwIrq', 'vp', 'prio', 'lirq'] },
  'opal.sync': { cat: TRACE_ROUTER, args: ['type', 'hwIrq'] },
  'tima.load': { cat: TRACE_TIMA, args: ['cpu', 'offset', 'size', 'value'] },
  'tima.store': { cat: TRACE_TIMA, args: ['cpu', 'offset', 'size', 'value'] },
  'tctx.os_line': { cat: TRACE_TIMA, args: ['cpu', 'level'] },
  'tctx.hv_line': { cat: TRACE_TIMA, args: ['cpu', 'level'] },
  'tctx.ipb': { cat: TRACE_TIMA, args: ['cpu', 'ring', 'ipb', 'pipr'] },
  'tctx.cppr': { cat: TRACE_TIMA, args: ['cpu', 'ring', 'oldCppr', 'cppr'] },
  /** `nsrCppr`: the NSR before the acknowledge << 8 | the new CPPR. */
  'tctx.accept': { cat: TRACE_TIMA, args: ['cpu', 'ring', 'nsrCppr'] },
  // hw: PHBs
  'phb.plug': { cat: TRACE_ESB, args: ['phb', 'slot', 'msiHwBase'] },
  'phb.unplug': { cat: TRACE_ESB, args: ['phb', 'slot'] },
  // host: mm
  'mm.zap': { cat: TRACE_MM, args: ['pid', 'start', 'end', 'ptes'] },
  'mm.insert_pfn': { cat: TRACE_MM, args: ['pid', 'address', 'pfn', 'vma'] },
  'mm.fault': { cat: TRACE_MM, args: ['pid', 'address', 'flags', 'vma'] },
  'mm.notify.start': { cat: TRACE_MM, args: ['pid', 'start', 'end', 'event'] },
  /** A VMA now maps `[start, end)` from file page `pgoff`: mmap, or mremap's moved or grown VMA. */
  'mm.mmap': { cat: TRACE_MM, args: ['pid', 'start', 'end', 'pgoff'] },
  /** `[start, end)` unmapped, `ptes` PTEs cleared. */
  'mm.munmap': { cat: TRACE_MM, args: ['pid', 'start', 'end', 'ptes'] },
  /** The PTEs of `[oldStart, oldEnd)` moved to `newStart` (the old range is then unmapped). */
  'mm.mremap': { cat: TRACE_MM, args: ['pid', 'oldStart', 'oldEnd', 'newStart'] },
  /** `child` gets a copy of `pid`'s VMAs and fds (its copied PTEs follow as `mm.copy_pte`). */
  'mm.fork': { cat: TRACE_MM, args: ['pid', 'child'] },
  /** fork copied a PTE into `pid` (the child). */
  'mm.copy_pte': { cat: TRACE_MM, args: ['pid', 'address', 'pfn', 'vma'] },
  /** A fault installed a PTE (anonymous page, or the page a `vm_ops.fault` returned). */
  'mm.set_pte': { cat: TRACE_MM, args: ['pid', 'address', 'pfn', 'vma'] },
  /** `pid`'s fd `fd` passed to process `to` as its fd `newFd` (SCM_RIGHTS). */
  'mm.scm_rights': { cat: TRACE_MM, args: ['pid', 'to', 'fd', 'newFd'] },
  /** `pid` exits: its address space goes, `ptes` PTEs cleared. */
  'mm.exit': { cat: TRACE_MM, args: ['pid', 'ptes'] },
  // host: KVM, its XIVE native device, irqfd and irq bypass, VFIO, the host's XIVE driver
  'kvm.vm.create': { cat: TRACE_KVM, args: ['lpid', 'pid'] },
  'kvm.vm.destroy': { cat: TRACE_KVM, args: ['lpid'] },
  'kvm.pt.fault_error': { cat: TRACE_KVM, args: ['lpid', 'gfn', 'errno'] },
  'kvm.memslot': { cat: TRACE_KVM, args: ['lpid', 'slot', 'change', 'used'] },
  /** The range of the slot a `kvm.memslot` changed: after create/move/flags, before delete. */
  'kvm.memslot.range': { cat: TRACE_KVM, args: ['slot', 'baseGfn', 'npages', 'hva'] },
  /** A partition-scoped entry installed: guest frame `gfn` → host `pfn`. */
  'kvm.pt.insert': { cat: TRACE_KVM, args: ['lpid', 'gfn', 'pfn', 'writable'] },
  /** Partition-scoped entries of gfns `[startGfn, endGfn)` removed, `entries` of them present. */
  'kvm.pt.invalidate': { cat: TRACE_KVM, args: ['lpid', 'startGfn', 'endGfn', 'entries'] },
  'kvm.run.fail': { cat: TRACE_KVM, args: ['vcpu', 'errno', 'gpa'] },
  'kvm.exit.mmio': { cat: TRACE_KVM, args: ['vcpu', 'gpa', 'size', 'write'] },
  'kvm.exit.hcall': { cat: TRACE_KVM, args: ['vcpu', 'opcode'] },
  'kvm.xive.source': { cat: TRACE_KVM, args: ['irq', 'ipiNumber', 'pq'] },
  'kvm.xive.source_config': { cat: TRACE_KVM, args: ['irq', 'target', 'priority', 'eisn'] },
  'kvm.xive.eq_config': { cat: TRACE_KVM, args: ['server', 'priority', 'qaddr', 'qshift'] },
  'kvm.xive.reset': { cat: TRACE_KVM, args: [] },
  'kvm.xive.escalation': { cat: TRACE_KVM, args: ['server', 'ceded'] },
  'kvm.xive.connect': { cat: TRACE_KVM, args: ['server', 'vpId', 'cam'] },
  'kvm.xive.release': { cat: TRACE_KVM, args: [] },
  'kvm.xive.esb_fault': { cat: TRACE_KVM, args: ['irq', 'odd', 'pfn'] },
  'kvm.xive.zap': { cat: TRACE_KVM, args: ['irq', 'pgoff', 'npages'] },
  'kvm.xive.set_mapped': { cat: TRACE_KVM, args: ['guestIrq', 'hostHwIrq', 'prio'] },
  'kvm.xive.clr_mapped': { cat: TRACE_KVM, args: ['guestIrq', 'hostHwIrq', 'prio'] },
  'kvm.irqfd.assign': { cat: TRACE_KVM, args: ['gsi', 'ret'] },
  'kvm.irqfd.shutdown': { cat: TRACE_KVM, args: ['gsi'] },
  'kvm.irqfd.inject': { cat: TRACE_KVM, args: ['gsi', 'rc'] },
  'kvm.passthru.set': { cat: TRACE_KVM, args: ['guestGsi', 'hostIrq', 'hwIrq', 'rc'] },
  'kvm.passthru.clr': { cat: TRACE_KVM, args: ['guestGsi', 'hostIrq', 'hwIrq', 'rc'] },
  'vfio.msi_enable': { cat: TRACE_KVM, args: ['slot', 'nvec', 'msix'] },
  'vfio.msi_disable': { cat: TRACE_KVM, args: ['slot', 'nvec', 'msix'] },
  'vfio.vector_set': { cat: TRACE_KVM, args: ['vector', 'irq', 'rc'] },
  'host.irq': { cat: TRACE_KVM, args: ['virq', 'hwIrq'] },
  'xive.set_vcpu_affinity': { cat: TRACE_KVM, args: ['virq', 'hwIrq', 'forward'] },
  // vmm: the sPAPR machine, its XIVE backends, hcalls, vfio-pci, the flat view
  hcall: { cat: TRACE_HCALL, args: ['cpu', 'opcode'] },
  'hcall.unimplemented': { cat: TRACE_HCALL, args: ['cpu', 'opcode'] },
  'hcall.xive': { cat: TRACE_HCALL, args: ['cpu', 'opcode', 'rc', 'arg1'] },
  'cpu.ext_irq': { cat: TRACE_VMM, args: ['cpu', 'level'] },
  'cas.fail': { cat: TRACE_VMM, args: ['rc'] },
  'cas.done': { cat: TRACE_VMM, args: ['xiveExploitation', 'ov5Byte23'] },
  'kvm.run_failed': { cat: TRACE_VMM, args: ['vcpu', 'errno'] },
  'xive.claim': { cat: TRACE_VMM, args: ['lisn', 'lsi'] },
  'xive.free': { cat: TRACE_VMM, args: ['lisn'] },
  'xive.reset': { cat: TRACE_VMM, args: [] },
  'xive.h_int_reset': { cat: TRACE_VMM, args: [] },
  'xive.kvm.connect': { cat: TRACE_VMM, args: ['fd', 'nrServers'] },
  'xive.kvm.disconnect': { cat: TRACE_VMM, args: [] },
  'xive.kvm.run': { cat: TRACE_VMM, args: [] },
  'xive.kvm.stop': { cat: TRACE_VMM, args: [] },
  'vfio.plug': { cat: TRACE_VMM, args: ['phb', 'slot', 'firstLisn', 'nvec'] },
  'vfio.unplug': { cat: TRACE_VMM, args: ['phb', 'slot', 'firstLisn'] },
  'as.rebuild': { cat: TRACE_VMM, args: ['ranges', 'oldRanges'] },
  // guest
  'guest.boot': { cat: TRACE_GUEST, args: ['cpus', 'prio'] },
  'guest.irq': { cat: TRACE_GUEST, args: ['cpu', 'virq', 'lisn'] },
  'guest.spurious': { cat: TRACE_GUEST, args: ['cpu'] },
  'guest.cpu_down': { cat: TRACE_GUEST, args: ['cpu'] },
  'guest.cpu_up': { cat: TRACE_GUEST, args: ['cpu'] },
} as const satisfies Record<string, TraceEventDecl>;

/** An event kind. */
export type TraceKind = keyof typeof TRACE_EVENTS;

/** The event kinds of category `C` (what a layer's own emit helper accepts). */
export type TraceKindIn<C extends number> = {
  [K in TraceKind]: (typeof TRACE_EVENTS)[K]['cat'] extends C ? K : never;
}[TraceKind];

/** The names of `K`'s arguments. */
type ArgName<K extends TraceKind> = Exclude<(typeof TRACE_EVENTS)[K]['args'][number], undefined>;

/** `K`'s arguments by name, as an emitter passes them. */
export type TraceArgs<K extends TraceKind> = { readonly [N in ArgName<K>]: number };

/** Where each of `K`'s arguments sits among an event's four (what a counter reads by). */
export type TraceArgIndex<K extends TraceKind> = { readonly [N in ArgName<K>]: 0 | 1 | 2 | 3 };

/**
 * Emit event `kind` into `sink` with its arguments by name, in the declared order (an argument
 * slot the kind does not use is 0). Emitters check `sink.mask` for the category first, so a
 * disabled category costs nothing here.
 */
export function traceEvent<K extends TraceKind>(sink: TraceSink, kind: K, args: TraceArgs<K>): void {
  const d: TraceEventDecl = TRACE_EVENTS[kind];
  const a = args as Readonly<Record<string, number>>;
  const n = d.args;
  sink.emit(
    d.cat,
    kind,
    n[0] === undefined ? 0 : a[n[0]]!,
    n[1] === undefined ? 0 : a[n[1]]!,
    n[2] === undefined ? 0 : a[n[2]]!,
    n[3] === undefined ? 0 : a[n[3]]!,
  );
}

/** The positions of `kind`'s arguments, by name (a counter reads `args[i.name]`). */
export function traceArgs<K extends TraceKind>(kind: K): TraceArgIndex<K> {
  const out: Record<string, number> = {};
  TRACE_EVENTS[kind].args.forEach((name: string, i: number) => {
    out[name] = i;
  });
  return out as TraceArgIndex<K>;
}
