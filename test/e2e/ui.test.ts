/**
 * `xivelab ui` in a real browser: Debian's Chromium driven by playwright-core (nothing
 * downloaded). A small compare report is made here; the UI is started through the real entry
 * point on it; the test clicks a failing cell, steps to the violation and checks the state panel
 * shows the PTE the checker named, steps with the keyboard and follows a deep link. Screenshots
 * go to `.ci-out/screenshots/ui-*.png`. Skips, saying why, where Chromium is not installed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Results } from '../../src/scenario/cell.ts';
import { fromColumns, type TraceColumns } from '../../src/sim/trace-columns.ts';
import { cli, root } from './cli-env.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (CHROMIUM === undefined) console.warn('test/e2e/ui.test.ts: skipped: no Chromium at /usr/bin/chromium');
const ROOT = new URL('.', root).pathname;
const SHOTS = join(ROOT, '.ci-out', 'screenshots');
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Start `xivelab ui argv…` through the real entry point; resolves to the URL it prints. */
function startUi(...argv: string[]): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'ui', ...argv], { cwd: ROOT });
  return new Promise((ok, fail) => {
    let out = '';
    let err = '';
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) ok({ url: m[1]!, proc });
    });
    proc.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    proc.on('exit', (code) => fail(new Error(`xivelab ui exited ${code}: ${err}`)));
  });
}

const at = async (page: Page): Promise<string> =>
  (await page.locator('[data-testid=at]').textContent()) ?? '';

describe.skipIf(CHROMIUM === undefined)('xivelab ui in Chromium', () => {
  const out = mkdtempSync(join(tmpdir(), 'xivelab-ui-e2e-'));
  let browser: Browser;
  let ui: { url: string; proc: ChildProcess };
  let results: Results;

  beforeAll(async () => {
    const b = spawnSync('npm', ['run', 'build:web'], { cwd: ROOT, encoding: 'utf8' });
    expect(b.status, b.stderr).toBe(0);
    const r = await cli(
      'compare',
      '--designs',
      'vma-walk,rmap',
      '--scenarios',
      'pt-forked-helper',
      '--jobs',
      '1',
      '--out',
      out,
    );
    expect(r.code, r.err).toBe(0);
    results = Results.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    mkdirSync(SHOTS, { recursive: true });
    ui = await startUi(out);
    // playwright gives the browser a fresh profile directory of its own.
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    ui?.proc.kill('SIGTERM');
  });

  test('the matrix: one cell per design × scenario, coloured by the kind of failure; the hypotheses', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
    await page.goto(ui.url);
    const cell = page.locator('a[data-cell="pt-forked-helper/vma-walk"]');
    await expect.poll(() => cell.textContent()).toBe('I1');
    expect(await page.locator('a[data-cell="pt-forked-helper/rmap"]').textContent()).toBe('I4 I6');
    expect(await cell.locator('..').getAttribute('class')).toBe('cell kind-routing');
    expect(
      await page.locator('a[data-cell="pt-forked-helper/rmap"]').locator('..').getAttribute('class'),
    ).toBe('cell kind-delivery');
    expect(await page.locator('.lede').textContent()).toBe(
      '2 of 2 cells fail. Click a cell to step through its run.',
    );
    expect(await page.locator('.hypotheses > li').count()).toBe(6);
    await page.screenshot({ path: join(SHOTS, 'ui-matrix.png') });
    await page.close();
  });

  test('a failing cell opens at its violation; the state panel shows the stale PTE the checker named', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(ui.url);
    await page.locator('a[data-cell="pt-forked-helper/vma-walk"]').click();
    const marker = page.locator('[data-testid=markers] button[data-invariant=I1]');
    await marker.waitFor({ timeout: 60_000 });
    const msg = results.cells.find((c) => c.design === 'vma-walk')!.invariants.I1.first!.message;
    // "pid 2 maps LISN 0x1300's EOI page (hw irq 0x1000000) at 0x7fffd9f10000 to p9.ipi-esb pfn 0x601000033, …"
    const m =
      /^pid (\d+) maps LISN 0x([0-9a-f]+)'s EOI page \(hw irq 0x\w+\) at 0x([0-9a-f]+) to p9\.ipi-esb pfn 0x([0-9a-f]+)/.exec(
        msg,
      );
    expect(m, msg).not.toBeNull();
    const [, pid, lisn, addr, pfn] = m!;
    const step = Number((await marker.textContent())?.replace('I1 at step ', ''));
    expect(await at(page)).toMatch(new RegExp(`^step ${step} / \\d+ · no clock · #\\d+ `));
    expect(await page.locator('[data-testid=explain] b').textContent()).toBe('I1 is broken here');
    const row = page.locator(`tr[data-key="pte:${pid}:${Number.parseInt(addr!, 16)}"]`);
    expect(await row.getAttribute('class')).toContain('stale');
    expect(await row.locator('td').allInnerTexts()).toEqual([`0x${addr}`, `0x${pfn}`, `0x${lisn}`, 'stale']);
    expect(await page.locator('[data-testid=explain] .stale-line').first().textContent()).toContain(
      `pid ${pid} still maps`,
    );
    await row.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'ui-run-violation.png') });

    // Keyboard: → one event, shift+→ one operation (10 events: this run has no clock), ←, Home, End.
    await page.keyboard.press('ArrowRight');
    expect(await at(page)).toMatch(new RegExp(`^step ${step + 1} /`));
    await page.keyboard.press('Shift+ArrowRight');
    expect(await at(page)).toMatch(new RegExp(`^step ${step + 11} /`));
    await page.keyboard.press('ArrowLeft');
    expect(await at(page)).toMatch(new RegExp(`^step ${step + 10} /`));
    expect(new URL(page.url()).hash).toBe(`#cell=pt-forked-helper/vma-walk&step=${step + 10}`);
    await page.keyboard.press('Home');
    expect(await at(page)).toMatch(/^step 0 \//);
    await page.keyboard.press('End');
    const last = /^step (\d+) \/ (\d+)/.exec(await at(page))!;
    expect(last[1]).toBe(last[2]);
    // The timeline shows the selected step's row.
    expect(await page.locator('.ev.sel .n').textContent()).toBe(last[1]);
    await page.close();
  });

  test('a deep link opens the run at its step, what that step changed highlighted', async () => {
    // The first END enqueue from step 800 on, found in the run the server sends.
    const q = new URLSearchParams({ scenario: 'pt-forked-helper', design: 'vma-walk', seed: '1' });
    const { columns } = (await (await fetch(`${ui.url}api/run?${q}`)).json()) as { columns: TraceColumns };
    const events = fromColumns(columns);
    const step = events.findIndex((e, i) => i >= 800 && e.kind === 'router.enqueue');
    expect(step).toBeGreaterThanOrEqual(800);
    const [blk, idx] = events[step]!.args;
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${ui.url}#cell=pt-forked-helper/vma-walk&step=${step}`);
    await page.locator('[data-testid=markers]').waitFor({ timeout: 60_000 });
    expect(await at(page)).toMatch(new RegExp(`^step ${step} / \\d+ · no clock · #\\d+ router\\.enqueue `));
    expect(await page.locator('.ev.sel .k').textContent()).toBe('router.enqueue');
    expect(await page.locator('tr.changed').getAttribute('data-key')).toBe(`end:${blk}/${idx}`);
    await page.screenshot({ path: join(SHOTS, 'ui-deep-link.png') });
    await page.close();
  });

  test('a race counterexample: one lane per thread, the schedule in order, the replay command', async () => {
    const file = join(out, 's12.race.json');
    const r = await cli('explore', 's12-fault-vs-bind', '--design', 'rmap', '--trace', file);
    expect(r.code, r.err).toBe(1);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { metadata: Record<string, string> };
    const race = await startUi(file);
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
      await page.goto(race.url);
      await page.locator('[data-testid=lanes]').waitFor();
      expect(await page.locator('[data-testid=lanes] th').allTextContents()).toEqual(['#', 'fault', 'bind']);
      const steps = await page.locator('[data-testid=lanes] tbody tr').count();
      expect(await page.locator('[data-testid=replay]').textContent()).toBe(
        `xivelab explore s12-fault-vs-bind --design rmap --replay ${doc.metadata.schedule}`,
      );
      expect(await page.locator('[data-testid=verdict]').textContent()).toBe(
        `${doc.metadata.kind}: ${doc.metadata.message}`,
      );
      expect(await at(page)).toMatch(/^step 1 \/ \d+ · fault: qemu: mmap_read_lock/);
      await page.keyboard.press('End');
      expect(await at(page)).toMatch(new RegExp(`^step ${steps} / ${steps} · `));
      await page.screenshot({ path: join(SHOTS, 'ui-race.png') });
      await page.close();
    } finally {
      race.proc.kill('SIGTERM');
    }
  });

  test("a violation trace from the report's traces/: its events, the violation marked at the last", async () => {
    const file = join(out, 'traces', 'pt-forked-helper--vma-walk--I1.trace.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      otherData: { events: number; violation: string };
    };
    const t = await startUi(file);
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
      await page.goto(t.url);
      const marker = page.locator('[data-testid=markers] button');
      await marker.waitFor();
      const last = doc.otherData.events - 1;
      expect(await marker.textContent()).toBe(`I1 at step ${last}`);
      expect(await at(page)).toMatch(new RegExp(`^step ${last} / ${last} · `));
      expect(await page.locator('[data-testid=explain] p').first().textContent()).toBe(
        `I1 is broken here (the end of the trace): ${doc.otherData.violation}`,
      );
      await page.close();
    } finally {
      t.proc.kill('SIGTERM');
    }
  });
});
