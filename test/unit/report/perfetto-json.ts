/**
 * What Perfetto's JSON importer makes of a Chrome trace-event document, checked offline: the
 * rules of its tokenizer, sorter, parser, slice and flow trackers (google/perfetto,
 * src/trace_processor/importers/json/ and importers/common/), applied to every event, and the
 * slices and flow arrows the import would end up with. A problem is reported with the upstream
 * function that would drop, misplace or misbind the event.
 *
 * Modeled: JsonTraceTokenizer::Parse / HandleTraceEvent (document shape, `ts` required except
 * for metadata), ExtractValueForJsonKey (no array at an event's top level), json::CoerceToTs
 * (µs, exact to the ns), json::CoerceToUint32 (pid, tid), TraceSorter's SlowOperatorLess
 * (order: ts, then 'E', then 'X' longest first, then the rest, then file order),
 * JsonTraceParserImpl::ParseJsonPacket (phases, 'X' needs `dur`, instant scopes, metadata),
 * SliceTracker::StartSlice / MaybeCloseStack (nesting per thread track), FlowTracker::Begin /
 * Step / End with GetFlowIdForV1Event and SliceTracker::GetTopmostSliceOnTrack (flow v1
 * binding), and ProcessTracker (pid / tid 0 are the idle process and thread; thread names are
 * looked up by tid).
 */

/** Phases ParseJsonPacket handles. */
const PHASES = new Set(['B', 'E', 'X', 'b', 'e', 'n', 'C', 'R', 'I', 'i', 's', 't', 'f', 'M']);
/** Metadata names: the two the importer reads, and the Trace Event Format's sort indexes (ignored). */
const METADATA = new Set(['process_name', 'thread_name', 'process_sort_index', 'thread_sort_index']);
const UINT32_MAX = 0xffff_ffff;

/** A slice as the import makes it (an 'X', or a thread-scoped instant with dur 0). */
export interface ImportedSlice {
  /** Index of the event in `traceEvents`. */
  readonly index: number;
  readonly track: string;
  readonly name: string;
  /** ns. */
  readonly ts: number;
  readonly end: number;
  readonly depth: number;
  readonly args: Readonly<Record<string, unknown>>;
}

/** What the import yields. */
export interface PerfettoImport {
  /** One line per problem: `#<index> <ph> <name>: <what> (<upstream function>)`. */
  readonly issues: string[];
  readonly slices: ImportedSlice[];
  /** Flow arrows between slices (FlowTracker::InsertFlow), by flow id. */
  readonly flows: Map<number, [ImportedSlice, ImportedSlice][]>;
  /** Process and thread names (`pid` → name, `pid:tid` → name). */
  readonly processes: Map<number, string>;
  readonly threads: Map<string, string>;
  /** Instants on the global track. */
  readonly globalInstants: string[];
}

type Json = Record<string, unknown>;

/** json::CoerceToTs: a number in µs → ns, exact only with at most 3 decimals. */
function coerceToTsNs(v: unknown): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  const text = JSON.stringify(v);
  if (!/^-?\d+(\.\d{1,3})?$/.test(text)) return Number.NaN;
  return Math.round(v * 1000);
}

/** json::CoerceToUint32. */
const isUint32 = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= UINT32_MAX;

/** Import `doc` as Perfetto would; see the module comment for what is modeled. */
export function importChromeJson(doc: unknown): PerfettoImport {
  const issues: string[] = [];
  const slices: ImportedSlice[] = [];
  const flows = new Map<number, [ImportedSlice, ImportedSlice][]>();
  const processes = new Map<number, string>();
  const threads = new Map<string, string>();
  const globalInstants: string[] = [];
  const result = { issues, slices, flows, processes, threads, globalInstants };
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as Json).traceEvents)) {
    issues.push('the document is not {"traceEvents": [...]} (JsonTraceTokenizer::Parse)');
    return result;
  }
  const dtu = (doc as Json).displayTimeUnit;
  if (dtu !== undefined && dtu !== 'ms' && dtu !== 'ns')
    issues.push(`displayTimeUnit ${JSON.stringify(dtu)} is neither "ms" nor "ns" (Trace Event Format)`);
  const events = (doc as { traceEvents: unknown[] }).traceEvents;

  // Tokenize: what each event is, and its place in the sorter.
  interface Tok {
    index: number;
    e: Json;
    ph: string;
    ts: number;
    dur: number;
    key: number;
  }
  const toks: Tok[] = [];
  const tidOwner = new Map<number, number>();
  const reused = new Set<string>();
  events.forEach((raw, index) => {
    const e = raw as Json;
    const where = `#${index} ${String(e?.ph)} ${String(e?.name)}`;
    const bad = (what: string, fn: string): void => {
      issues.push(`${where}: ${what} (${fn})`);
    };
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      bad('not an object', 'JsonTraceTokenizer::HandleTraceEvent');
      return;
    }
    for (const [k, v] of Object.entries(e))
      if (Array.isArray(v)) bad(`top-level key "${k}" holds an array`, 'ExtractValueForJsonKey');
    const ph = e.ph;
    if (typeof ph !== 'string' || ph.length !== 1 || !PHASES.has(ph)) {
      bad('unknown phase', 'JsonTraceParserImpl::ParseJsonPacket');
      return;
    }
    if (typeof e.name !== 'string' || e.name === '') bad('no name', 'JsonTraceParserImpl::ParseJsonPacket');
    for (const k of ['pid', 'tid'] as const)
      if (!isUint32(e[k]))
        bad(`${k} ${JSON.stringify(e[k])} is not an integer in [0, 2^32)`, 'json::CoerceToUint32');
    let ts = 0;
    if (e.ts === undefined) {
      if (ph !== 'M') bad('no ts: dropped', 'JsonTraceTokenizer::HandleTraceEvent');
      if (ph !== 'M') return;
    } else {
      const t = coerceToTsNs(e.ts);
      if (t === null || Number.isNaN(t)) {
        bad(`ts ${JSON.stringify(e.ts)} is not a number of µs exact to the ns`, 'json::CoerceToTs');
        return;
      }
      ts = t;
    }
    let dur = 0;
    if (ph === 'X') {
      const d = coerceToTsNs(e.dur);
      if (d === null || Number.isNaN(d) || d < 0) {
        bad(`dur ${JSON.stringify(e.dur)} is not a duration in µs exact to the ns`, 'json::CoerceToTs');
        return;
      }
      dur = d;
    }
    if ((ph === 'i' || ph === 'I') && e.s !== undefined && e.s !== 't' && e.s !== 'p' && e.s !== 'g')
      bad(`instant scope ${JSON.stringify(e.s)}`, 'JsonTraceParserImpl::ParseJsonPacket');
    if (ph === 's' || ph === 't' || ph === 'f') {
      if (!Number.isInteger(e.id) || (e.id as number) < 0)
        bad(`flow id ${JSON.stringify(e.id)} is not a non-negative integer`, 'MaybeExtractFlowIdentifier');
      if (ph === 'f' && e.bp !== 'e')
        bad('a flow end without bp "e" binds to the next slice that begins on its track', 'FlowTracker::End');
    }
    if (ph === 'M') {
      if (typeof e.name !== 'string' || !METADATA.has(e.name))
        bad('unknown metadata', 'JsonTraceParserImpl::ParseJsonPacket');
      const args = (e.args ?? {}) as Json;
      if (
        (e.name === 'process_name' || e.name === 'thread_name') &&
        (typeof args.name !== 'string' || args.name === '')
      )
        bad('no args.name', 'JsonTraceParserImpl::ParseJsonPacket');
      if (e.name === 'process_name' && e.pid === 0)
        bad('names pid 0, the idle process', 'ProcessTracker (pid 0 is upid 0)');
      if (String(e.name).endsWith('_sort_index') && !Number.isInteger(args.sort_index))
        bad('sort_index is not an integer', 'Trace Event Format');
    }
    const global = (ph === 'i' || ph === 'I') && e.s === 'g';
    if (ph !== 'M' && !global && isUint32(e.tid)) {
      if (e.tid === 0 && !reused.has(`0:${e.pid}`)) {
        reused.add(`0:${e.pid}`);
        bad('on tid 0, the idle thread', 'ProcessTracker (tid 0 is utid 0)');
      }
      const owner = tidOwner.get(e.tid);
      if (owner === undefined) tidOwner.set(e.tid, e.pid as number);
      else if (owner !== e.pid && !reused.has(`${e.tid}:${e.pid}`)) {
        reused.add(`${e.tid}:${e.pid}`);
        bad(
          `tid ${e.tid} also belongs to pid ${owner}: threads are named by tid`,
          'ProcessTracker::UpdateThreadName',
        );
      }
    }
    // TraceSorter::TimestampedEvent::SlowOperatorLess::KeyForType.
    const key = ph === 'E' ? Number.NEGATIVE_INFINITY : ph === 'X' ? -dur : 0;
    toks.push({ index, e, ph, ts, dur, key });
  });
  for (const t of toks)
    if (
      t.ph === 'M' &&
      t.e.name === 'thread_name' &&
      tidOwner.has(t.e.tid as number) &&
      tidOwner.get(t.e.tid as number) !== t.e.pid
    )
      issues.push(
        `#${t.index} M thread_name: names tid ${t.e.tid} in pid ${t.e.pid}, whose events are in pid ${tidOwner.get(t.e.tid as number)} (ProcessTracker::UpdateThreadName)`,
      );
  toks.sort((a, b) => a.ts - b.ts || a.key - b.key || a.index - b.index);

  // Parse in sorted order.
  const stacks = new Map<string, ImportedSlice[]>();
  const started = new Map<string, ImportedSlice>();
  const openFlows = new Map<string, number>();
  for (const { index, e, ph, ts, dur } of toks) {
    const where = `#${index} ${ph} ${String(e.name)}`;
    const track = `${e.pid}:${e.tid}`;
    const stack = stacks.get(track) ?? [];
    stacks.set(track, stack);
    const startSlice = (end: number): void => {
      // SliceTracker::MaybeCloseStack: slices that ended by now leave the stack.
      while (stack.length > 0 && stack[stack.length - 1]!.end <= ts) stack.pop();
      const top = stack[stack.length - 1];
      if (top !== undefined && end > top.end)
        issues.push(
          `${where}: overlaps ${top.name} (#${top.index}) partially (SliceTracker::MaybeCloseStack)`,
        );
      const s: ImportedSlice = {
        index,
        track,
        name: String(e.name),
        ts,
        end,
        depth: stack.length,
        args: (e.args ?? {}) as Json,
      };
      stack.push(s);
      slices.push(s);
    };
    /** The slice a flow event binds to: the topmost on its track, which must enclose `ts`. */
    const enclosing = (fn: string): ImportedSlice | null => {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        issues.push(`${where}: no slice on ${track} to bind to (${fn}: flow_no_enclosing_slice)`);
        return null;
      }
      if (top.end < ts || (top.end === ts && top.ts < ts)) {
        issues.push(`${where}: binds to ${top.name} (#${top.index}), which ended before it (${fn})`);
        return null;
      }
      return top;
    };
    switch (ph) {
      case 'X':
        startSlice(ts + dur);
        break;
      case 'i':
      case 'I':
        if (e.s === 'g') globalInstants.push(String(e.name));
        else if (e.s !== 'p') startSlice(ts);
        break;
      case 's':
      case 't':
      case 'f': {
        // FlowTracker::GetFlowIdForV1Event: a v1 flow is (id, cat, name).
        const flowKey = `${e.id}|${String(e.cat)}|${String(e.name)}`;
        const fn = ph === 's' ? 'FlowTracker::Begin' : ph === 't' ? 'FlowTracker::Step' : 'FlowTracker::End';
        const slice = enclosing(fn);
        if (slice === null) break;
        if (ph === 's') {
          if (started.has(flowKey))
            issues.push(`${where}: flow ${e.id} started twice (${fn}: flow_duplicate_id)`);
          started.set(flowKey, slice);
          openFlows.set(flowKey, e.id as number);
          break;
        }
        const from = started.get(flowKey);
        if (from === undefined) {
          issues.push(
            `${where}: flow ${e.id} has no start (${fn}: flow_${ph === 't' ? 'step' : 'end'}_without_start)`,
          );
          break;
        }
        const id = e.id as number;
        flows.set(id, [...(flows.get(id) ?? []), [from, slice]]);
        if (ph === 't') started.set(flowKey, slice);
        break;
      }
      case 'M':
        if (e.name === 'process_name') processes.set(e.pid as number, String((e.args as Json).name));
        if (e.name === 'thread_name') threads.set(track, String((e.args as Json).name));
        break;
    }
  }
  for (const track of stacks.keys())
    if (!threads.has(track) && slices.some((s) => s.track === track))
      issues.push(`thread ${track} has no thread_name`);
  return result;
}
