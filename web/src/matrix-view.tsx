/** The compare matrix (design × scenario, coloured by the kind of failure) and the hypotheses' verdicts. */

import { evaluateHypotheses } from '../../src/report/hypotheses.ts';
import { KIND_STYLE, matrixCell } from '../../src/report/summary.ts';
import type { Results } from '../../src/scenario/cell.ts';
import type { RaceRow } from '../../src/scenario/race-row.ts';
import { formatRoute } from './route.ts';

type Kind = keyof typeof KIND_STYLE;

/** The races compare explored: each counterexample opens in the race view. */
function Races({ rows }: { rows: readonly RaceRow[] }) {
  const found = rows.filter((r) => r.counterexample !== null);
  return (
    <>
      <h2>Races</h2>
      <p>
        {found.length} of {rows.length} race scenario × design pairs have a counterexample. Click one to step
        through its schedule.
      </p>
      <ul class="races" data-testid="races">
        {found.map((r) => (
          <li key={`${r.scenario}/${r.design}`}>
            <a
              href={formatRoute({ cell: null, race: r.counterexample!.trace, step: null })}
              data-race={`${r.scenario}/${r.design}`}
            >
              {r.scenario} × {r.design}
            </a>{' '}
            {r.counterexample!.kind}: {r.counterexample!.message}
          </li>
        ))}
      </ul>
    </>
  );
}

export function MatrixView({ results }: { results: Results }) {
  const byKey = new Map(results.cells.map((c) => [`${c.scenario}\0${c.design}`, c]));
  const hyps = evaluateHypotheses(results.cells);
  const failing = results.cells.filter((c) => matrixCell(c).failing.length > 0).length;
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
                const { kind, text } = matrixCell(c);
                return (
                  <td key={d} class={`cell kind-${kind}`} title={KIND_STYLE[kind].label}>
                    <a
                      href={formatRoute({ cell: { scenario: s, design: d }, race: null, step: null })}
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
        {(Object.keys(KIND_STYLE) as Kind[]).map((k) => (
          <li key={k}>
            <span class={`swatch kind-${k}`} /> {KIND_STYLE[k].label}
          </li>
        ))}
      </ul>
      {results.races !== undefined ? <Races rows={results.races} /> : null}
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
