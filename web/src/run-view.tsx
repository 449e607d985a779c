/**
 * One run: the timeline of its events (virtual time) with a scrubber and keyboard stepping, the
 * state at the selected step beside it, violations marked on the scrubber and explained.
 *
 * Keys: ←/→ one event; shift+←/→ one operation (to the next event at another virtual time);
 * Home/End the first/last event.
 */

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { hex, namedArgs } from '../../src/report/chrome-trace.ts';
import { TraceReplay } from '../../src/report/trace-state.ts';
import type { TraceEvent } from '../../src/sim/trace.ts';
import type { TraceColumns } from '../../src/sim/trace-columns.ts';
import type { Run } from './load.ts';
import { StatePanel } from './state-panel.tsx';
import { operationStep } from './stepping.ts';
import { ViewHeader } from './view-header.tsx';

const ROW = 20;

const us = (ns: number): string => `${(ns / 1000).toFixed(3)} µs`;

/** `e`'s arguments by the names the trace contract gives them (`srcno=0x21 oldPq=0x0 …`). */
export const argText = (e: TraceEvent): string =>
  Object.entries(namedArgs(e))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

function Timeline(props: {
  timed: boolean;
  events: TraceColumns;
  step: number;
  marks: ReadonlySet<number>;
  onPick: (k: number) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    setHeight(el.clientHeight);
    // Keep the selected row in view.
    const y = props.step * ROW;
    if (y < el.scrollTop || y + ROW > el.scrollTop + el.clientHeight)
      el.scrollTop = Math.max(0, y - el.clientHeight / 2);
  }, [props.step]);
  const first = Math.max(0, Math.floor(top / ROW) - 5);
  const last = Math.min(props.events.length, Math.ceil((top + height) / ROW) + 5);
  const rows = [];
  for (let i = first; i < last; i++) {
    const e = props.events.event(i);
    const args = argText(e);
    rows.push(
      <button
        type="button"
        key={i}
        class={`ev ${i === props.step ? 'sel' : ''} ${props.marks.has(i) ? 'violation' : ''}`}
        style={{ top: `${i * ROW}px` }}
        data-step={i}
        onClick={() => props.onPick(i)}
      >
        <span class="n">{i}</span>
        <span class="t">{props.timed ? us(e.time) : '—'}</span>
        <span class="k">{e.kind}</span>
        <span class="a" title={args}>
          {args}
        </span>
      </button>,
    );
  }
  return (
    <div
      class="timeline"
      ref={box}
      onScroll={(ev) => setTop((ev.currentTarget as HTMLDivElement).scrollTop)}
      data-testid="timeline"
    >
      <div style={{ height: `${props.events.length * ROW}px`, position: 'relative' }}>{rows}</div>
    </div>
  );
}

export function RunView(props: { run: Run; step: number; onStep: (k: number) => void; back: string | null }) {
  const { run, step } = props;
  const n = run.events.length;
  const replay = useMemo(() => new TraceReplay(run.events), [run]);
  const { state, changed } = useMemo(() => replay.stateAt(step), [replay, step]);
  const marks = useMemo(() => new Set(run.markers.map((m) => m.step)), [run]);
  const timed = useMemo(() => run.events.time.some((t) => t !== run.events.time[0]), [run]);
  useEffect(() => {
    performance.mark('run view');
  }, []);
  // The key handler reads the step drawn last through a ref: registered once per run, it never
  // sees the step of an earlier render (a key pressed between a render and the effects after it
  // would step from the stale one).
  const current = useRef({ step, onStep: props.onStep });
  current.current = { step, onStep: props.onStep };
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (e.target instanceof HTMLInputElement && e.target.type !== 'range') return;
      const { step, onStep } = current.current;
      let k = step;
      if (e.key === 'ArrowRight') k = e.shiftKey ? operationStep(run.events, step, 1, timed) : step + 1;
      else if (e.key === 'ArrowLeft') k = e.shiftKey ? operationStep(run.events, step, -1, timed) : step - 1;
      else if (e.key === 'Home') k = 0;
      else if (e.key === 'End') k = n - 1;
      else return;
      e.preventDefault();
      onStep(Math.max(0, Math.min(n - 1, k)));
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [run, n, timed]);
  const e = step < n ? run.events.event(step) : undefined;
  const stale = [...state.procs]
    .map(([pid, p]) => [pid, [...p.ptes].filter(([, t]) => t.stale)] as const)
    .filter(([, ptes]) => ptes.length > 0);
  const here = run.markers.filter((m) => m.step === step);
  return (
    <main class="run-view">
      <ViewHeader title={run.title} note={run.note} back={props.back} />
      {run.markers.length > 0 ? (
        <ul class="markers" data-testid="markers">
          {run.markers.map((m) => (
            <li key={m.invariant}>
              <button type="button" onClick={() => props.onStep(m.step)} data-invariant={m.invariant}>
                {m.invariant} at step {m.step}
              </button>{' '}
              {m.message}
            </li>
          ))}
        </ul>
      ) : null}
      <div class="scrub">
        <div class="ticks">
          {run.markers.map((m) => (
            <span
              key={m.invariant}
              class="tick"
              style={{ left: `${(100 * m.step) / Math.max(1, n - 1)}%` }}
              title={m.invariant}
            />
          ))}
        </div>
        <input
          type="range"
          min={0}
          max={Math.max(0, n - 1)}
          value={step}
          aria-label="step"
          data-testid="scrubber"
          onInput={(ev) => props.onStep(Number((ev.currentTarget as HTMLInputElement).value))}
        />
        <div class="at" data-testid="at">
          step {step} / {n - 1}
          {e ? ` · ${timed ? `t = ${us(e.time)}` : 'no clock'} · #${e.seq} ${e.kind} ${argText(e)}` : ''}
        </div>
      </div>
      {here.length > 0 ? (
        <div class="explain" data-testid="explain">
          {here.map((m) => (
            <p key={m.invariant}>
              <b>{m.invariant} is broken here</b> ({m.where}): {m.message}
            </p>
          ))}
          {stale.map(([pid, ptes]) => (
            <p key={pid} class="stale-line">
              pid {pid} still maps {ptes.length === 1 ? 'the ESB page' : `${ptes.length} ESB pages`} of
              re-pointed irqs, e.g. irq {hex(ptes[0]![1].irq)} at {hex(ptes[0]![0])} → pfn{' '}
              {hex(ptes[0]![1].pfn)}: the irq was re-pointed after the PTE was installed, and no zap removed
              it.
            </p>
          ))}
        </div>
      ) : null}
      <div class="panes">
        <Timeline timed={timed} events={run.events} step={step} marks={marks} onPick={props.onStep} />
        <StatePanel state={state} changed={changed} />
      </div>
    </main>
  );
}
