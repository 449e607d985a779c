/** The compare matrix (design × scenario, coloured by the kind of failure) and the hypotheses' verdicts. */

import { evaluateHypotheses } from '../../src/report/hypotheses.ts';
import { INVARIANTS, type InvariantId, type Results } from '../../src/scenario/cell.ts';
import { formatRoute } from './route.ts';

type Kind = 'routing' | 'delivery' | 'abi' | 'resources' | 'pass' | 'na';

const KIND_OF: Readonly<Record<InvariantId, Kind>> = {
  I1: 'routing',
  I2: 'routing',
  I3: 'routing',
  I4: 'delivery',
  I5: 'delivery',
  I6: 'abi',
  I7: 'resources',
};

const KIND_LABEL: Readonly<Record<Kind, string>> = {
  routing: 'routing / isolation / lifetime (I1–I3)',
  delivery: 'lost or spurious interrupts (I4–I5)',
  abi: 'guest ABI (I6)',
  resources: 'resource limits (I7)',
  pass: 'every checked invariant holds',
  na: 'nothing to check',
};

function cellKind(c: Results['cells'][number]): { kind: Kind; text: string } {
  const failing = INVARIANTS.filter((i) => c.invariants[i].status === 'fail');
  if (failing.length > 0) return { kind: KIND_OF[failing[0]!], text: failing.join(' ') };
  return INVARIANTS.some((i) => c.invariants[i].status !== 'n/a')
    ? { kind: 'pass', text: 'pass' }
    : { kind: 'na', text: 'n/a' };
}

export function MatrixView({ results }: { results: Results }) {
  const byKey = new Map(results.cells.map((c) => [`${c.scenario}\0${c.design}`, c]));
  const hyps = evaluateHypotheses(results.cells);
  const failing = results.cells.filter((c) =>
    INVARIANTS.some((i) => c.invariants[i].status === 'fail'),
  ).length;
  return (
    <main class="matrix-view">
      <h1>xivelab compare</h1>
      <p class="lede">
        {failing} of {results.cells.length} cells fail. Click a cell to step through its run.
      </p>
      <table class="matrix" data-testid="matrix">
        <thead>
          <tr>
            <th>scenario \ design</th>
            {results.designs.map((d) => (
              <th key={d}>{d}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {results.scenarios.map((s) => (
            <tr key={s}>
              <th>{s}</th>
              {results.designs.map((d) => {
                const c = byKey.get(`${s}\0${d}`);
                if (c === undefined) return <td key={d} />;
                const { kind, text } = cellKind(c);
                return (
                  <td key={d} class={`cell kind-${kind}`} title={KIND_LABEL[kind]}>
                    <a
                      href={formatRoute({ cell: { scenario: s, design: d }, step: null })}
                      data-cell={`${s}/${d}`}
                    >
                      {text}
                    </a>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <ul class="legend">
        {(Object.keys(KIND_LABEL) as Kind[]).map((k) => (
          <li key={k}>
            <span class={`swatch kind-${k}`} /> {KIND_LABEL[k]}
          </li>
        ))}
      </ul>
      <h2>Hypotheses</h2>
      <ol class="hypotheses">
        {hyps.map((h) => (
          <li key={h.id}>
            <b>{h.id}</b> <span class={`verdict verdict-${h.verdict.replace(' ', '-')}`}>{h.verdict}</span>{' '}
            {h.claim}
            <ul>
              {h.measured.map((m) => (
                <li key={m}>{m}</li>
              ))}
            </ul>
          </li>
        ))}
      </ol>
    </main>
  );
}
