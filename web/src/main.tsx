/** `xivelab ui`: the matrix of a compare report, and a step-through view of one run. */

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Results } from '../../src/scenario/cell.ts';
import {
  type Input,
  loadCellRun,
  loadInput,
  loadResults,
  loadScenarioRun,
  loadTraceFile,
  type Race,
  type Run,
} from './load.ts';
import type { MatrixView } from './matrix-view.tsx';
import { RaceView } from './race-view.tsx';
import { formatRoute, parseRoute, type Route } from './route.ts';
import { RunView } from './run-view.tsx';
import './style.css';

// Marks `scripts/ui-load.mjs` reads: the app's script ran, what it was given came, a run view drew.
performance.mark('app');

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = (): void => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Steps of a run or a race. */
const length = (r: Run | Race): number => ('threads' in r ? r.steps.length : r.events.length);

function App() {
  const route = useRoute();
  const [input, setInput] = useState<Input | null>(null);
  const [results, setResults] = useState<Results | null>(null);
  const [run, setRun] = useState<{ key: string; run: Run | Race } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [step, setStep] = useState(0);
  const fail = (e: unknown): void => setError(e instanceof Error ? e.message : String(e));

  useEffect(() => {
    loadInput()
      .then(async (i) => {
        performance.mark('input');
        setInput(i);
        if (i.kind === 'report') setResults(await loadResults(i.results));
      })
      .catch(fail);
  }, []);

  // The run the route names.
  const key =
    input?.kind === 'report'
      ? route.cell
        ? `${route.cell.scenario}/${route.cell.design}`
        : route.race !== null
          ? `race ${route.race}`
          : null
      : input
        ? input.kind
        : null;
  useEffect(() => {
    if (key === null || run?.key === key || input === null) return;
    let p: Promise<Run | Race> | null = null;
    if (input.kind === 'trace') p = loadTraceFile(input.file);
    else if (input.kind === 'report' && route.race !== null) p = loadTraceFile(`traces/${route.race}`);
    else if (input.kind === 'scenario') p = loadScenarioRun(input.name, input.seed);
    else if (input.kind === 'report' && results && route.cell) {
      const { scenario, design } = route.cell;
      const cell = results.cells.find((c) => c.scenario === scenario && c.design === design);
      if (cell === undefined) {
        setError(`no cell ${scenario} × ${design} in this report`);
        return;
      }
      p = loadCellRun(cell);
    }
    if (p === null) return;
    setRun(null);
    p.then((r) => {
      setRun({ key, run: r });
      const n = length(r);
      setStep(Math.min(n - 1, Math.max(0, route.step ?? ('markers' in r ? r.markers[0]?.step : 0) ?? 0)));
    }).catch(fail);
  }, [key, input, results]);

  // A deep link's step, when the hash changes on an open run.
  useEffect(() => {
    if (run !== null && route.step !== null && route.step !== step)
      setStep(Math.min(length(run.run) - 1, route.step));
  }, [route.step]);

  // The matrix (and the report code and schemas it uses) loads only when shown.
  const [matrix, setMatrix] = useState<typeof MatrixView | null>(null);
  const showMatrix = input?.kind === 'report' && route.cell === null && route.race === null;
  useEffect(() => {
    if (showMatrix && matrix === null)
      import('./matrix-view.tsx').then((m) => setMatrix(() => m.MatrixView)).catch(fail);
  }, [showMatrix]);

  const go = (k: number): void => {
    setStep(k);
    history.replaceState(null, '', formatRoute({ cell: route.cell, race: route.race, step: k }));
  };

  if (error !== null) return <p class="error">xivelab ui: {error}</p>;
  if (input === null) return <p class="loading">loading…</p>;
  if (input.kind === 'none')
    return <p>Nothing to show: start it with a report directory, a trace or a scenario.</p>;
  if (showMatrix) {
    const Matrix = matrix;
    return results && Matrix ? <Matrix results={results} /> : <p class="loading">loading…</p>;
  }
  if (run === null || run.key !== key) return <p class="loading">running {key}…</p>;
  const back = input.kind === 'report' ? '#' : null;
  if ('threads' in run.run) return <RaceView race={run.run} step={step} onStep={go} back={back} />;
  return <RunView run={run.run} step={step} onStep={go} back={back} />;
}

render(<App />, document.getElementById('app')!);
