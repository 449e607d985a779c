/**
 * The story of a violation: the few events of its trace that touch the objects its message names
 * (a pid, a LISN, a page's address, a pfn, a vCPU), in order, as sentences — what a reader of
 * the report needs to understand the failure without opening the trace. Pure.
 */

import type { TraceEvent } from '../sim/trace.ts';
import { argNamesOf, objectsNamedIn, touches } from '../sim/trace-objects.ts';
import { namedArgs } from './chrome-trace.ts';

/** At most this many events tell a story; fewer touching events are padded to the minimum. */
export const STORY_MAX = 15;
export const STORY_MIN = 5;

/** One line of a story. */
export interface StoryLine {
  seq: number;
  kind: string;
  text: string;
}

/** Is `e` something one of `pids` did (its `pid` argument)? */
function inNamedProcess(e: TraceEvent, pids: ReadonlySet<number>): boolean {
  const at = argNamesOf(e.kind).indexOf('pid');
  return at >= 0 && pids.has(e.args[at]!);
}

/** What an event kind says happened. */
const PHRASES: Readonly<Record<string, string>> = {
  'esb.trigger': 'ESB trigger',
  'esb.eoi': 'ESB EOI',
  'esb.set_pq': 'ESB PQ set',
  'esb.forward': 'source forwards to the router',
  'router.enqueue': 'router enqueues the EQ entry',
  'router.present': 'presenter signals the thread',
  'router.masked': 'router drops it: EAS masked',
  'tctx.accept': 'ACK',
  'guest.irq': 'guest handler runs',
  'mm.fault': 'page fault',
  'mm.insert_pfn': 'PTE installed (vmf_insert_pfn)',
  'mm.zap': 'PTEs zapped',
  'mm.mmap': 'mmap',
  'mm.munmap': 'munmap',
  'mm.mremap': 'mremap moves the mapping',
  'mm.fork': 'fork: the child copies the VMAs',
  'mm.copy_pte': 'fork copies a PTE',
  'mm.set_pte': 'PTE installed by the fault',
  'mm.scm_rights': 'fd passed by SCM_RIGHTS',
  'mm.exit': 'process exits',
  'kvm.pt.insert': 'KVM installs a partition-scoped entry',
  'kvm.pt.invalidate': 'KVM invalidates partition-scoped entries',
  'kvm.memslot.range': "KVM memslot's range",
  'mm.notify.start': 'mmu notifier: invalidate range',
  'kvm.xive.esb_fault': 'KVM XIVE device: ESB page fault',
  'kvm.xive.zap': "KVM XIVE device: zap the irq's ESB pages",
  'kvm.xive.set_mapped': 'KVM XIVE: irq passed through (set_mapped)',
  'kvm.xive.clr_mapped': 'KVM XIVE: passthrough cleared (clr_mapped)',
  'kvm.passthru.set': 'KVM irq bypass: set',
  'kvm.passthru.clr': 'KVM irq bypass: clear',
  'vfio.plug': 'VMM plugs a VFIO function',
  'vfio.unplug': 'VMM unplugs a VFIO function',
  'kvm.memslot': 'KVM memslot change',
  'xive.claim': 'VMM claims a LISN',
  'xive.free': 'VMM frees a LISN',
};

/** A sentence for `e`: what happened, then its named arguments. */
function describe(e: TraceEvent): string {
  const parts = Object.entries(namedArgs(e)).map(([k, v]) => `${k} ${v}`);
  const what = PHRASES[e.kind] === undefined ? e.kind : `${PHRASES[e.kind]} (${e.kind})`;
  return parts.length === 0 ? what : `${what}: ${parts.join(', ')}`;
}

/**
 * The events of `trace` that tell the story of the violation `message`: those touching the
 * objects it names, the first of each kind (where each object was made) and the latest ones,
 * at most {@link STORY_MAX}; padded with the trace's last events to {@link STORY_MIN}. In order.
 */
export function violationStory(trace: readonly TraceEvent[], message: string): StoryLine[] {
  const o = objectsNamedIn(message);
  const hit = trace.filter((e) => touches(e, o));
  let kept: TraceEvent[];
  if (hit.length <= STORY_MAX) kept = hit;
  else {
    // What the named process did first, then where each kind of event started, then the latest.
    const pick = new Set(hit.filter((e) => inNamedProcess(e, o.pids)).slice(0, STORY_MAX - 2));
    for (const e of hit) {
      if (pick.size >= STORY_MAX - 1) break;
      if (![...pick].some((p) => p.kind === e.kind)) pick.add(e);
    }
    for (let i = hit.length - 1; i >= 0 && pick.size < STORY_MAX; i--) pick.add(hit[i]!);
    kept = hit.filter((e) => pick.has(e));
  }
  if (kept.length < STORY_MIN) {
    const have = new Set(kept);
    for (let i = trace.length - 1; i >= 0 && have.size < STORY_MIN; i--) have.add(trace[i]!);
    kept = trace.filter((e) => have.has(e));
  }
  return kept.map((e) => ({ seq: e.seq, kind: e.kind, text: `#${e.seq} ${describe(e)}` }));
}
