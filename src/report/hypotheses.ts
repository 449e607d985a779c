/**
 * The claims of the 2019 debate (the review of "KVM: PPC: Book3S HV: add XIVE native
 * exploitation mode", kvm-ppc, January–April 2019) as hypotheses, each evaluated from the cells
 * that ran: supported, refuted, mixed (a compound claim whose parts disagree) or not tested (the
 * design, or a reference it is compared with, did not run). Every verdict has a headline — the
 * one measurement that decides it, in a sentence that reads on its own — and lists everything
 * measured, so a reader can check it against the matrix. Pure.
 */

import { type CellResult, INVARIANTS, type InvariantId } from '../scenario/cell.ts';

/** A hypothesis' verdict. */
export type Verdict = 'supported' | 'refuted' | 'mixed' | 'not tested';

/** One evaluated claim. */
export interface Hypothesis {
  /** Stable id (H1…H6). */
  readonly id: string;
  /** The claim, as the debate made it. */
  readonly claim: string;
  /** Who made it, and where. */
  readonly source: string;
  /** The designs whose cells decide it. */
  readonly designs: readonly string[];
  readonly verdict: Verdict;
  /** The measurement that decides the verdict, as one sentence (the report's summary line). */
  readonly headline: string;
  /** One line per measurement the verdict rests on. */
  readonly measured: readonly string[];
}

function of(cells: readonly CellResult[], design: string): CellResult[] {
  return cells.filter((c) => c.design === design);
}

/** `scenario: I3 ×2, I2 ×1` for each cell of `cells` that failed one of `invs`. */
function failures(cells: readonly CellResult[], invs: readonly InvariantId[]): string[] {
  const out: string[] = [];
  for (const c of cells) {
    const bad = invs.filter((i) => c.invariants[i].status === 'fail');
    if (bad.length > 0)
      out.push(`${c.scenario}: ${bad.map((i) => `${i} ×${c.invariants[i].violations}`).join(', ')}`);
  }
  return out;
}

/** Whether any of `invs` was checked (pass or fail) in cell `c`. */
function checked(c: CellResult, invs: readonly InvariantId[]): boolean {
  return invs.some((i) => c.invariants[i].status !== 'n/a');
}

/** `n scenario(s)`. */
const scen = (n: number): string => `${n} scenario${n === 1 ? '' : 's'}`;

const names = (cells: readonly CellResult[]): string => cells.map((c) => c.scenario).join(', ');

function notRun(design: string): { verdict: Verdict; headline: string; measured: string[] } {
  const why = `design "${design}" did not run`;
  return { verdict: 'not tested', headline: why, measured: [why] };
}

/** H1: a VMA pointer cannot follow userspace's mappings. */
function h1(cells: readonly CellResult[]): Hypothesis {
  const base = {
    id: 'H1',
    claim: "A VMA pointer cannot follow userspace's mappings",
    source:
      'v1 "[PATCH 18/19] KVM: PPC: Book3S HV: add passthrough support" TODOs ("get rid of the VMA pointer", https://lore.kernel.org/r/20190107191006.10648-2-clg@kaod.org); David Gibson, option 1 of the v1 review',
    designs: ['vma-pointer'],
  };
  const vp = of(cells, 'vma-pointer');
  if (vp.length === 0) return { ...base, ...notRun('vma-pointer') };
  const bad = failures(vp, ['I1', 'I2', 'I3']);
  if (bad.length > 0) {
    return {
      ...base,
      verdict: 'supported',
      headline: `vma-pointer broke routing, isolation or lifetime (I1–I3) in ${bad.length} of ${scen(vp.length)}`,
      measured: [
        `vma-pointer broke routing/isolation/lifetime (I1–I3) in ${bad.length} of ${scen(vp.length)}`,
        ...bad,
      ],
    };
  }
  return {
    ...base,
    verdict: 'refuted',
    headline: `vma-pointer kept I1–I3 in all ${scen(vp.length)}`,
    measured: [`vma-pointer kept I1, I2 and I3 in every scenario run (${vp.length}: ${names(vp)})`],
  };
}

/** H2: walking VMAs costs, and misses other processes. */
function h2(cells: readonly CellResult[]): Hypothesis {
  const base = {
    id: 'H2',
    claim: 'Walking VMAs costs, and misses other processes',
    source: 'David Gibson, option 1 fallback ("for_all_vmas"), v1 review (Feb 2019)',
    designs: ['vma-walk', 'rmap'],
  };
  const vw = of(cells, 'vma-walk');
  if (vw.length === 0) return { ...base, ...notRun('vma-walk') };
  const measured: string[] = [];
  const rm = new Map(of(cells, 'rmap').map((c) => [c.scenario, c]));
  // Part 1: cost — VMAs visited, against the merged rmap zap in the same scenario when it ran.
  let costlier = 0;
  let compared = 0;
  let walked = 0;
  let rmapWalked = 0;
  for (const c of vw) {
    const r = rm.get(c.scenario);
    const line = `${c.scenario}: vma-walk visited ${c.costs.vmasVisited} VMAs`;
    if (r) {
      compared++;
      walked += c.costs.vmasVisited;
      rmapWalked += r.costs.vmasVisited;
      if (c.costs.vmasVisited > r.costs.vmasVisited) costlier++;
      measured.push(`${line}, rmap ${r.costs.vmasVisited}`);
    } else measured.push(line);
  }
  const visited = vw.reduce((n, c) => n + c.costs.vmasVisited, 0);
  const costs = compared > 0 ? costlier > 0 : visited > 0;
  // Part 2: misses other processes — a stale page left reachable (I1/I2).
  const bad = failures(vw, ['I1', 'I2']);
  measured.push(
    bad.length > 0
      ? `vma-walk left a stale mapping (I1/I2) in ${scen(bad.length)}: ${bad.join('; ')}`
      : `vma-walk kept I1 and I2 in every scenario run (${names(vw)})`,
  );
  const misses = bad.length > 0;
  const verdict: Verdict = costs && misses ? 'supported' : !costs && !misses ? 'refuted' : 'mixed';
  const cost =
    compared > 0
      ? `vma-walk visited ${walked} VMAs where rmap visited ${rmapWalked}`
      : `vma-walk visited ${visited} VMAs`;
  const miss =
    bad.length > 0
      ? `left a stale mapping (I1/I2) in ${bad.length} of ${scen(vw.length)}`
      : `kept I1/I2 in all ${scen(vw.length)}`;
  return { ...base, verdict, headline: `${cost}, and ${miss}`, measured };
}

/** H3: overlapping regions run out of memslots. */
function h3(cells: readonly CellResult[]): Hypothesis {
  const base = {
    id: 'H3',
    claim: 'Overlapping memory regions run out of memslots',
    source: 'David Gibson, option 2, v1 review (Feb 2019)',
    designs: ['overlap-regions'],
  };
  const ov = of(cells, 'overlap-regions');
  if (ov.length === 0) return { ...base, ...notRun('overlap-regions') };
  const peak = Math.max(...ov.map((c) => c.costs.memslotsPeak));
  const bad = failures(ov, ['I7']);
  const measured = [
    `peak memslots ${peak} (${ov.map((c) => `${c.scenario} ${c.costs.memslotsPeak}`).join(', ')})`,
    ...(bad.length > 0
      ? [`memslot limit exceeded (I7): ${bad.join('; ')}`]
      : ['I7 held in every scenario run']),
  ];
  const headline =
    bad.length > 0
      ? `overlap-regions used up to ${peak} memslots and exceeded the limit (I7) in ${bad.length} of ${scen(ov.length)}`
      : `overlap-regions peaked at ${peak} memslots and stayed within the limit in all ${scen(ov.length)}`;
  return { ...base, verdict: bad.length > 0 ? 'supported' : 'refuted', headline, measured };
}

/** H4: MAP_FIXED remapping works only with a VMM that tracks bind/unbind, and costs VMAs. */
function h4(cells: readonly CellResult[]): Hypothesis {
  const base = {
    id: 'H4',
    claim: 'MAP_FIXED remapping works only with a VMM that tracks bind/unbind, and costs VMAs',
    source: 'David Gibson, option 3, v1 review (Feb 2019)',
    designs: ['qemu-remap', 'qemu-remap-untracked', 'rmap'],
  };
  const qr = of(cells, 'qemu-remap');
  if (qr.length === 0) return { ...base, ...notRun('qemu-remap') };
  const measured: string[] = [];
  const works: InvariantId[] = ['I1', 'I2', 'I3', 'I4', 'I5'];
  const bad = failures(qr, works);
  measured.push(
    bad.length > 0
      ? `with the VMM tracking bind/unbind, invariants broke in ${scen(bad.length)}: ${bad.join('; ')}`
      : `with the VMM tracking bind/unbind, I1–I5 held in every scenario run (${names(qr)})`,
  );
  const rm = new Map(of(cells, 'rmap').map((c) => [c.scenario, c]));
  let more = 0;
  let compared = 0;
  let peak = 0;
  let rmapPeak = 0;
  for (const c of qr) {
    const r = rm.get(c.scenario);
    peak = Math.max(peak, c.costs.vmasPeak);
    if (r) {
      compared++;
      rmapPeak = Math.max(rmapPeak, r.costs.vmasPeak);
      if (c.costs.vmasPeak > r.costs.vmasPeak) more++;
      measured.push(`${c.scenario}: peak VMAs ${c.costs.vmasPeak}, rmap ${r.costs.vmasPeak}`);
    } else measured.push(`${c.scenario}: peak VMAs ${c.costs.vmasPeak}`);
  }
  const i7 = failures(qr, ['I7']);
  const i7vmas = qr.filter((c) => /max_map_count|ENOMEM/.test(c.invariants.I7.first?.message ?? ''));
  if (i7.length > 0)
    measured.push(
      `resource limit reached (I7): ${qr
        .filter((c) => c.invariants.I7.status === 'fail')
        .map((c) => `${c.scenario}: ${c.invariants.I7.first?.message ?? `I7 ×${c.invariants.I7.violations}`}`)
        .join('; ')}`,
    );
  // The "only with a VMM that tracks" half: the same kernel side with a VMM that does not.
  const un = of(cells, 'qemu-remap-untracked');
  let onlyWithTracking: boolean | null = null;
  let untracked = 'no untracked variant ran';
  if (un.length === 0) {
    measured.push(
      'the "only with a VMM that tracks" half needs a VMM that does not track: no such variant ran',
    );
  } else {
    const ub = failures(un, ['I1', 'I4']);
    onlyWithTracking = ub.length > 0;
    untracked =
      ub.length > 0
        ? `without tracking, routing or delivery broke in ${ub.length} of ${scen(un.length)}`
        : `without tracking, I1 and I4 still held in all ${scen(un.length)}`;
    measured.push(
      ub.length > 0
        ? `without the VMM tracking bind/unbind (qemu-remap-untracked), routing or delivery broke in ${scen(ub.length)}: ${ub.join('; ')}`
        : `without the VMM tracking bind/unbind (qemu-remap-untracked), I1 and I4 still held (${names(un)})`,
    );
  }
  const costsVmas = compared > 0 ? more > 0 : i7vmas.length > 0;
  const verdict: Verdict =
    bad.length === 0 && costsVmas && onlyWithTracking !== false
      ? 'supported'
      : bad.length > 0 && !costsVmas && onlyWithTracking !== true
        ? 'refuted'
        : 'mixed';
  const tracked =
    bad.length > 0
      ? `with tracking, I1–I5 broke in ${bad.length} of ${scen(qr.length)}`
      : `with tracking, I1–I5 held in all ${scen(qr.length)}`;
  const vmas = compared > 0 ? `up to ${peak} VMAs against rmap's ${rmapPeak}` : `up to ${peak} VMAs`;
  return { ...base, verdict, headline: `${tracked} at a cost of ${vmas}; ${untracked}`, measured };
}

/** H5: dedicated irq numbers change the guest ABI. */
function h5(cells: readonly CellResult[]): Hypothesis {
  const base = {
    id: 'H5',
    claim: 'Dedicated irq numbers for passthrough change the guest ABI',
    source: 'David Gibson, option 4; "never ok" (qemu-devel, June 2019, on the sPAPR "dual" interrupt mode)',
    designs: ['dedicated-irqs'],
  };
  const di = of(cells, 'dedicated-irqs');
  if (di.length === 0) return { ...base, ...notRun('dedicated-irqs') };
  const tested = di.filter((c) => checked(c, ['I6']));
  if (tested.length === 0) {
    const why = `I6 was n/a in every scenario run (${names(di)})`;
    return { ...base, verdict: 'not tested', headline: why, measured: [why] };
  }
  const bad = failures(tested, ['I6']);
  return bad.length > 0
    ? {
        ...base,
        verdict: 'supported',
        headline: `dedicated-irqs changed the guest ABI (I6) in ${bad.length} of ${scen(tested.length)} checked`,
        measured: [`I6 broken: ${bad.join('; ')}`],
      }
    : {
        ...base,
        verdict: 'refuted',
        headline: `the guest ABI equalled the emulated reference in all ${scen(tested.length)} checked`,
        measured: [
          `the guest ABI equalled the emulated reference in every scenario checked (${names(tested)})`,
        ],
      };
}

/**
 * H6: the merged zap (unmap_mapping_range on the device file) holds in all of them. What a zap
 * is responsible for is routing, isolation and lifetime (I1–I3): those decide the verdict; any
 * other invariant rmap breaks is listed beside it as a finding that is not the zap's, and the
 * headline says so in the same sentence — with `rmap-fixed` (the same zap, latent bugs fixed)
 * as the evidence that those failures come from the latent bugs.
 */
function h6(cells: readonly CellResult[]): Hypothesis {
  const base = {
    id: 'H6',
    claim: 'The merged zap (unmap_mapping_range on the device file) holds in every scenario',
    source:
      'v2 changelog ("using the KVM device file address_space to clear the ESB pages"), merged in Linux 5.2',
    designs: ['rmap', 'rmap-fixed'],
  };
  const rm = of(cells, 'rmap');
  if (rm.length === 0) return { ...base, ...notRun('rmap') };
  const zap: InvariantId[] = ['I1', 'I2', 'I3'];
  const other = INVARIANTS.filter((i) => !zap.includes(i));
  const bad = failures(rm, zap);
  const measured =
    bad.length > 0
      ? [`rmap broke routing/isolation/lifetime (I1–I3) in ${bad.length} of ${scen(rm.length)}`, ...bad]
      : [`rmap kept I1–I3 in every scenario run (${rm.length}: ${names(rm)})`];
  const fixed = of(cells, 'rmap-fixed');
  // Where rmap-fixed (the same record and zap) keeps I1–I3, rmap's failure is a latent bug's.
  const fixedBy = new Map(fixed.map((c) => [c.scenario, c]));
  const latent = rm.filter((c) => {
    const f = fixedBy.get(c.scenario);
    return failures([c], zap).length > 0 && f !== undefined && failures([f], zap).length === 0;
  });
  if (latent.length > 0)
    measured.push(
      `rmap-fixed (the same record and zap, latent bugs fixed) kept I1–I3 in ${names(latent)}: there a latent bug of the merged code breaks them, not the zap's reach`,
    );
  const rest = failures(rm, other);
  if (rest.length > 0) measured.push(`not the zap's — rmap also broke: ${rest.join('; ')}`);
  const fixedBad = failures(fixed, [...INVARIANTS]);
  if (fixed.length > 0) {
    measured.push(
      fixedBad.length > 0
        ? `rmap-fixed (latent bugs fixed) still broke: ${fixedBad.join('; ')}`
        : `rmap-fixed (latent bugs fixed) kept every checked invariant in every scenario run (${fixed.length})`,
    );
  }
  const zapInvs = zap.filter((i) => rm.some((c) => c.invariants[i].status === 'fail'));
  let headline =
    bad.length > 0
      ? `rmap broke ${zapInvs.join('/')} in ${bad.length} of ${scen(rm.length)}` +
        (latent.length === bad.length
          ? ` (${names(latent)}), each a latent bug of the merged code: rmap-fixed, the same zap, holds there`
          : '')
      : `rmap kept I1–I3 in all ${scen(rm.length)}`;
  if (rest.length > 0) headline += `; ${notTheZaps(rm, fixed, other)}`;
  return { ...base, verdict: bad.length > 0 ? 'refuted' : 'supported', headline, measured };
}

/**
 * Why rmap's failures of invariants other than the zap's are not the zap's, in one clause: the
 * ones `rmap-fixed` (the same zap, latent bugs fixed) does not share are the latent bugs; the
 * ones it shares are a limit of both (KVM's own, say).
 */
function notTheZaps(
  rm: readonly CellResult[],
  fixed: readonly CellResult[],
  invs: readonly InvariantId[],
): string {
  const fixedFails = (scenario: string, i: InvariantId): boolean | null => {
    const f = fixed.find((c) => c.scenario === scenario);
    return f === undefined ? null : f.invariants[i].status === 'fail';
  };
  const latent = new Map<InvariantId, number>();
  const shared = new Map<InvariantId, number>();
  const unknown = new Map<InvariantId, number>();
  for (const c of rm) {
    for (const i of invs) {
      if (c.invariants[i].status !== 'fail') continue;
      const f = fixedFails(c.scenario, i);
      const m = f === null ? unknown : f ? shared : latent;
      m.set(i, (m.get(i) ?? 0) + 1);
    }
  }
  // `I4 and I6 in 8 scenarios, I7 in 1 scenario`: invariants with the same count together.
  const list = (m: Map<InvariantId, number>): string => {
    const byCount = new Map<number, InvariantId[]>();
    for (const [i, n] of m) byCount.set(n, [...(byCount.get(n) ?? []), i]);
    return [...byCount].map(([n, is]) => `${is.join(' and ')} in ${scen(n)}`).join(', ');
  };
  const parts: string[] = [];
  if (latent.size > 0)
    parts.push(`${list(latent)} are latent bugs (rmap-fixed, the same zap with them fixed, holds there)`);
  if (shared.size > 0) parts.push(`${list(shared)} a limit rmap-fixed hits too`);
  if (unknown.size > 0) parts.push(`${list(unknown)} not compared (rmap-fixed did not run there)`);
  return `its other failures are not the zap's: ${parts.join('; ')}`;
}

/** Evaluate every claim from `cells`. */
export function evaluateHypotheses(cells: readonly CellResult[]): Hypothesis[] {
  return [h1(cells), h2(cells), h3(cells), h4(cells), h5(cells), h6(cells)];
}
