import type { ChromeEvent } from '../../../src/report/chrome-trace.ts';

/**
 * Do the complete slices (`ph: "X"`, in file order) nest on every track — none ends after the
 * slice it started inside? Times are compared in whole ns, as Perfetto imports them.
 */
export function slicesNest(xs: readonly ChromeEvent[]): boolean {
  const ns = (v: number): number => Math.round(v * 1000);
  const stacks = new Map<string, [number, number][]>();
  for (const x of xs) {
    const k = `${x.pid}:${x.tid}`;
    const st = stacks.get(k) ?? [];
    stacks.set(k, st);
    const [b, e] = [ns(x.ts!), ns(x.ts! + x.dur!)];
    while (st.length > 0 && st[st.length - 1]![1] <= b && st[st.length - 1]![0] < b) st.pop();
    const top = st[st.length - 1];
    if (top !== undefined && e > top[1]) return false;
    st.push([b, e]);
  }
  return true;
}
