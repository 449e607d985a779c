/**
 * An interleaving explorer counterexample: one lane per thread, the schedule's steps in order
 * (←/→, Home/End step through them), what each step did, and the command line that replays it.
 * The counterexample file carries the steps, not the machine's trace events, so there is no
 * replayed state here.
 */

import { useEffect } from 'preact/hooks';
import type { Race } from './load.ts';

export function RaceView(props: { race: Race; step: number; onStep: (k: number) => void }) {
  const { race, step } = props;
  const n = race.steps.length;
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      let k = step;
      if (e.key === 'ArrowRight') k = step + 1;
      else if (e.key === 'ArrowLeft') k = step - 1;
      else if (e.key === 'Home') k = 0;
      else if (e.key === 'End') k = n - 1;
      else return;
      e.preventDefault();
      props.onStep(Math.max(0, Math.min(n - 1, k)));
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [race, step, n]);
  const cur = race.steps[step];
  return (
    <main class="race-view">
      <header>
        <h1>{race.title}</h1>
        <span class="note">interleaving explorer counterexample</span>
      </header>
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
    </main>
  );
}
