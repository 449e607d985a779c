/** The machine state at the selected step, what the step changed highlighted. */

import type { ComponentChildren } from 'preact';
import { hex } from '../../src/report/chrome-trace.ts';
import type { MachineState, PteState } from '../../src/report/trace-state.ts';

const pq = (v: number): string => `${(v >> 1) & 1}${v & 1}`;

/** An EAS key (`guest:<irq>` or `hw:<irq>`) with its irq in hex. */
const easName = (key: string): string => {
  const [space, irq] = key.split(':');
  return `${space} ${hex(Number(irq))}`;
};

/** Rows shown per table; changed rows are shown beyond it. */
const MAX_ROWS = 256;

function Section(props: { title: string; count: number; children: ComponentChildren; testid: string }) {
  return (
    <section data-testid={props.testid}>
      <h3>
        {props.title} <span class="count">{props.count}</span>
      </h3>
      {props.children}
    </section>
  );
}

/** `rows` by key, at most MAX_ROWS plus the changed ones. */
function visible<T>(rows: Iterable<[string, T]>, changed: ReadonlySet<string>): [string, T][] {
  const out: [string, T][] = [];
  for (const r of rows) if (out.length < MAX_ROWS || changed.has(r[0])) out.push(r);
  return out;
}

function Table(props: {
  head: string[];
  rows: [string, (string | number)[], string?][];
  changed: ReadonlySet<string>;
}) {
  if (props.rows.length === 0) return <p class="empty">none</p>;
  return (
    <table class="state">
      <thead>
        <tr>
          {props.head.map((h) => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map(([key, cells, extra]) => (
          <tr key={key} data-key={key} class={`${props.changed.has(key) ? 'changed' : ''} ${extra ?? ''}`}>
            {cells.map((c, i) => (
              <td key={i}>{c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function StatePanel({ state, changed }: { state: MachineState; changed: ReadonlySet<string> }) {
  const procs = [...state.procs].sort((a, b) => a[0] - b[0]);
  const removed = [...changed].filter((k) => {
    if (!k.startsWith('pte:')) return false;
    const [, pid, addr] = k.split(':');
    return !state.procs.get(Number(pid))?.ptes.has(Number(addr));
  });
  return (
    <div class="state-panel" data-testid="state">
      <Section title="Processes → VMAs → device PTEs" count={procs.length} testid="ptes">
        {procs.length === 0 && removed.length === 0 ? <p class="empty">no process in the trace yet</p> : null}
        {procs.map(([pid, p]) => {
          // Each PTE under the VMA the trace shows around it, else under the VMA id its install named.
          const vmas = [...p.vmas].sort((a, b) => a[0] - b[0]);
          const groups = new Map<string, { head: string; key: string; ptes: [number, PteState][] }>();
          for (const [start, v] of vmas)
            groups.set(`r${start}`, {
              head: `VMA ${hex(start)}–${hex(v.end)} pgoff ${hex(v.pgoff)}`,
              key: `vma:${pid}:${start}`,
              ptes: [],
            });
          for (const [addr, pte] of [...p.ptes].sort((a, b) => a[0] - b[0])) {
            const around = vmas.find(([start, v]) => addr >= start && addr < v.end);
            const g = around ? `r${around[0]}` : `id${pte.vma}`;
            if (!groups.has(g)) groups.set(g, { head: `VMA ${pte.vma}`, key: '', ptes: [] });
            groups.get(g)!.ptes.push([addr, pte]);
          }
          const gone = removed.filter((k) => k.startsWith(`pte:${pid}:`));
          return (
            <div key={pid} class="proc">
              <h4>pid {pid}</h4>
              {[...groups.values()].slice(0, MAX_ROWS).map((g) => (
                <div key={g.head} class="vma">
                  <h5 class={changed.has(g.key) ? 'changed' : ''} data-key={g.key}>
                    {g.head}{' '}
                    <span class="count">
                      {g.ptes.length === 0
                        ? ''
                        : `${g.ptes.length} device PTE${g.ptes.length === 1 ? '' : 's'}`}
                    </span>
                  </h5>
                  {g.ptes.length > 0 ? (
                    <Table
                      head={['address', 'pfn', 'irq', 'page', 'PTE']}
                      changed={changed}
                      rows={visible(
                        g.ptes.map(([a, t]): [string, PteState] => [`pte:${pid}:${a}`, t]),
                        changed,
                      ).map(([k, t]) => [
                        k,
                        [
                          hex(Number(k.split(':')[2])),
                          hex(t.pfn),
                          t.irq < 0 ? '—' : hex(t.irq),
                          t.irq < 0 ? '—' : t.backing < 0 ? 'IPI' : `hw ${hex(t.backing)}`,
                          t.stale ? 'stale' : 'present',
                        ],
                        t.stale ? 'stale' : '',
                      ])}
                    />
                  ) : null}
                </div>
              ))}
              {gone.length > 0 ? (
                <p class="changed zapped">
                  zapped here: {gone.map((k) => hex(Number(k.split(':')[2]))).join(', ')}
                </p>
              ) : null}
            </div>
          );
        })}
      </Section>
      <Section title="KVM memslots" count={state.memslotsUsed} testid="memslots">
        <Table
          head={['slot', 'lpid', 'base gfn', 'pages', 'hva', 'last change']}
          changed={changed}
          rows={visible(
            [...state.memslots].map(([n, m]): [string, typeof m] => [`slot:${n}`, m]),
            changed,
          ).map(([k, m]) => [
            k,
            [
              k.slice(5),
              m.lpid,
              m.baseGfn < 0 ? '—' : hex(m.baseGfn),
              m.npages,
              m.hva < 0 ? '—' : hex(m.hva),
              ['create', 'delete', 'move', 'flags'][m.change] ?? m.change,
            ],
          ])}
        />
      </Section>
      <Section title="Partition-scoped entries" count={state.partition.size} testid="partition">
        <Table
          head={['lpid', 'gfn', 'pfn', 'access']}
          changed={changed}
          rows={visible(
            [...state.partition].map(([k, e]): [string, typeof e] => [`pt:${k}`, e]),
            changed,
          ).map(([k, e]) => {
            const [, lpid, gfn] = k.split(':');
            return [k, [lpid!, hex(Number(gfn)), hex(e.pfn), e.writable ? 'rw' : 'ro']];
          })}
        />
      </Section>
      <Section title="ESB sources (PQ)" count={state.sources.size} testid="sources">
        <Table
          head={['source', 'PQ']}
          changed={changed}
          rows={visible(
            [...state.sources]
              .sort((a, b) => a[0] - b[0])
              .map(([n, s]): [string, typeof s] => [`src:${n}`, s]),
            changed,
          ).map(([k, s]) => [k, [hex(Number(k.slice(4))), pq(s.pq)]])}
        />
      </Section>
      <Section title="EAS (routing)" count={state.eas.size} testid="eas">
        <Table
          head={['irq', 'target', 'prio', 'EISN', 'masked', 'host hw irq']}
          changed={changed}
          rows={visible(
            [...state.eas].map(([n, e]): [string, typeof e] => [`eas:${n}`, e]),
            changed,
          ).map(([k, e]) => [
            k,
            [
              easName(k.slice(4)),
              // No target yet (−1), or OPAL's "none" (0xffffffff) while masked.
              e.target < 0 || e.target === 0xffff_ffff ? '—' : e.target,
              e.prio,
              hex(e.eisn),
              e.masked ? 'yes' : 'no',
              e.hwIrq < 0 ? '—' : hex(e.hwIrq),
            ],
          ])}
        />
      </Section>
      <Section title="ENDs / event queues" count={state.ends.size} testid="ends">
        <Table
          head={['END blk/idx', 'entries', 'index', 'toggle', 'last EISN']}
          changed={changed}
          rows={visible(
            [...state.ends].map(([n, e]): [string, typeof e] => [`end:${n}`, e]),
            changed,
          ).map(([k, e]) => [k, [k.slice(4), e.entries, e.index, e.toggle, hex(e.lastData)]])}
        />
      </Section>
      <Section title="TIMA OS ring per vCPU" count={state.osRings.size} testid="os-rings">
        <Table
          head={['vCPU', 'IPB', 'PIPR', 'CPPR', 'line']}
          changed={changed}
          rows={[...state.osRings]
            .sort((a, b) => a[0] - b[0])
            .map(([cpu, r]) => [`os:${cpu}`, [cpu, hex(r.ipb), r.pipr, r.cppr, r.line ? 'up' : 'down']])}
        />
      </Section>
    </div>
  );
}
