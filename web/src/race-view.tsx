/**
 * An interleaving explorer counterexample: one lane per thread, the schedule's steps in order
 * (←/→, Home/End step through them), what each step did, the command line that replays it, and
 * beside the lanes the machine state after the selected step — replayed from the trace events the
 * server recorded while it ran the schedule again — with what the step changed highlighted and
 * the step's own events listed.
 */

import { useEffect, useMemo, useRef } from 'preact/hooks';
import { TraceReplay } from '../../src/report/trace-state.ts';
import type { TraceColumns } from '../../src/sim/trace-columns.ts';
import type { Race } from './load.ts';
import { argText } from './run-view.tsx';
import { StatePanel } from './state-panel.tsx';
import { ViewHeader } from './view-header.tsx';

/** The events of schedule step `k` (1-based; 0 the set-up): `[from, to)`, events sorted by step. */
function stepEvents(events: TraceColumns, k: number): [number, number] {
  const bound = (t: number): number => {
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (events.time[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return [bound(k), bound(k + 1)];
}

function RaceState(props: { events: TraceColumns; step: number }) {
  const { events, step } = props;
  const replay = useMemo(() => new TraceReplay(events), [events]);
  const [from, to] = stepEvents(events, step + 1);
  const { state, changed } = useMemo(() => replay.stateAt(to - 1, from), [replay, from, to]);
  const rows = [];
  for (let i = from; i < to; i++) {
    const e = events.event(i);
    rows.push(
      <li key={i}>
        <span class="k">{e.kind}</span> {argText(e)}
      </li>,
    );
  }
  return (
    <div class="race-state">
      <ul class="step-events" data-testid="step-events">
        {rows.length === 0 ? <li class="empty">this step emitted no trace event</li> : rows}
      </ul>
      <StatePanel state={state} changed={from < to ? changed : new Set()} />
    </div>
  );
}

export function RaceView(props: {
  race: Race;
  step: number;
  onStep: (k: number) => void;
  back: string | null;
}) {
  const { race, step } = props;
  const n = race.steps.length;
  // The step drawn last, through a ref (see RunView): the handler never steps from a stale one.
  const current = useRef({ step, onStep: props.onStep });
  current.current = { step, onStep: props.onStep };
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const { step, onStep } = current.current;
      let k = step;
      if (e.key === 'ArrowRight') k = step + 1;
      else if (e.key === 'ArrowLeft') k = step - 1;
      else if (e.key === 'Home') k = 0;
      else if (e.key === 'End') k = n - 1;
      else return;
      e.preventDefault();
      onStep(Math.max(0, Math.min(n - 1, k)));
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [race, n]);
  // Keep the selected step's row in view.
  useEffect(() => {
    document.querySelector('table.lanes tr.sel')?.scrollIntoView({ block: 'nearest' });
  }, [step]);
  const cur = race.steps[step];
  return (
    <main class="race-view">
      <ViewHeader title={race.title} note={race.note} back={props.back} />
      <p class="explain" data-testid="verdict">
        {race.verdict}
      </p>
      <p>
        Replay this schedule: <code data-testid="replay">{race.replay}</code>
      </p>
      <div class="at" data-testid="at">
        step {step + 1} / {n}
        {cur ? ` · ${race.threads[cur.thread]}: ${cur.label} — ${cur.effect}` : ''}
      </div>
      <div class="panes">
        <div class="lanes-pane">
          <table class="lanes" data-testid="lanes">
            <thead>
              <tr>
                <th>#</th>
                {race.threads.map((t) => (
                  <th key={t}>{t}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {race.steps.map((s, i) => (
                <tr key={`${i}:${s.label}`} class={i === step ? 'sel' : ''} onClick={() => props.onStep(i)}>
                  <td>{i + 1}</td>
                  {race.threads.map((t, lane) => (
                    <td key={t} title={lane === s.thread ? s.effect : ''}>
                      {lane === s.thread ? s.label : ''}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {race.events !== null ? <RaceState events={race.events} step={step} /> : null}
      </div>
    </main>
  );
}
