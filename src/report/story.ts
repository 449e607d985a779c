/**
 * The story of a violation: the few events of its trace that touch the objects its message names
 * (a pid, a LISN, a page's address, a pfn, a vCPU), in order, as sentences — what a reader of
 * the report needs to understand the failure without opening the trace. Pure.
 */

import type { TraceEvent } from '../sim/trace.ts';
import { argNamesOf, namedArgs } from './chrome-trace.ts';

/** At most this many events tell a story; fewer touching events are padded to the minimum. */
export const STORY_MAX = 15;
export const STORY_MIN = 5;

/** One line of a story. */
export interface StoryLine {
  seq: number;
  kind: string;
  text: string;
}

/** The objects a violation message names. */
interface Objects {
  pids: Set<number>;
  cpus: Set<number>;
  /** Hex numbers: LISNs, EISNs, pfns, addresses. */
  numbers: Set<number>;
  /** The 64 KiB pages of the hex numbers that can be addresses (not written as a pfn). */
  pages: Set<number>;
}

const PAGE = 65536;

function objectsOf(message: string): Objects {
  const o: Objects = { pids: new Set(), cpus: new Set(), numbers: new Set(), pages: new Set() };
  for (const m of message.matchAll(/\bpid (\d+)/g)) o.pids.add(Number(m[1]));
  for (const m of message.matchAll(/\b(?:v?cpu|vCPU) (\d+)/g)) o.cpus.add(Number(m[1]));
  for (const m of message.matchAll(/(\bpfn )?\b0x([0-9a-f]+)\b/gi)) {
    const n = Number.parseInt(m[2]!, 16);
    o.numbers.add(n);
    if (m[1] === undefined && n >= PAGE) o.pages.add(Math.floor(n / PAGE));
  }
  return o;
}

/** Arguments that hold state bits or register values, never an object's identity. */
const NOT_IDENTITY: ReadonlySet<string> = new Set([
  'oldPq',
  'newPq',
  'pq',
  'ipb',
  'pipr',
  'oldCppr',
  'cppr',
  'nsrCppr',
  'value',
  'offset',
  'flags',
  'op',
  'ov5Byte23',
  'endBlk',
]);

/** Arguments that are addresses: they touch a named address's page. */
const ADDRESS = /^(?:address|addr|start|end|oldStart|oldEnd|newStart|newEnd|gpa|qaddr)$/;

/** Kinds whose `pid`-like arguments name the process they act on, not just the context. */
const PROCESS_EVENTS = /^(?:mm\.(?:fork|exit|scm_rights|mmap|munmap|mremap)|kvm\.vm\.create)$/;

/** Does `e` touch one of `o`? */
function touches(e: TraceEvent, o: Objects): boolean {
  const names = argNamesOf(e.kind);
  let start: number | undefined;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const v = e.args[i]!;
    if (name === 'cpu' || name === 'vcpu') {
      if (o.cpus.has(v)) return true;
      continue;
    }
    if (/pid$|^child$|^to$/i.test(name)) {
      if (PROCESS_EVENTS.test(e.kind) && o.pids.has(v)) return true;
      continue;
    }
    if (NOT_IDENTITY.has(name)) continue;
    if (o.numbers.has(v) || (name === 'qdata' && o.numbers.has(v % 2 ** 31))) return true;
    if (!ADDRESS.test(name)) continue;
    if (o.pages.has(Math.floor(v / PAGE))) return true;
    // A range [start, end) covering a named page.
    if (/start$/i.test(name)) start = v;
    else if (/end$/i.test(name) && start !== undefined) {
      for (const p of o.pages) if (p * PAGE >= start && p * PAGE < v) return true;
    }
  }
  return false;
}

/** What an event kind says happened. */
const PHRASES: Readonly<Record<string, string>> = {
  'esb.trigger': 'ESB trigger',
  'esb.eoi': 'ESB EOI',
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
  const o = objectsOf(message);
  const hit = trace.filter((e) => touches(e, o));
  let kept: TraceEvent[];
  if (hit.length <= STORY_MAX) kept = hit;
  else {
    const firsts = new Map<string, TraceEvent>();
    for (const e of hit) if (!firsts.has(e.kind)) firsts.set(e.kind, e);
    const pick = new Set([...firsts.values()].slice(0, STORY_MAX - 1));
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
