/**
 * `xivelab ui` in a real browser: Debian's Chromium driven by playwright-core (nothing
 * downloaded). A small compare report is made here; the UI is started through the real entry
 * point on it; the test clicks a failing cell, steps to the violation and checks the state panel
 * shows the PTE the checker named, steps with the keyboard and follows a deep link. Screenshots
 * go to `.ci-out/screenshots/ui-*.png`. Skips, saying why, where Chromium is not installed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Results } from '../../src/scenario/cell.ts';
import { TraceColumns } from '../../src/sim/trace-columns.ts';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS } from './chromium.ts';
import { cli, root } from './cli-env.ts';

if (CHROMIUM === undefined) console.warn('test/e2e/ui.test.ts: skipped: no Chromium at /usr/bin/chromium');
const ROOT = new URL('.', root).pathname;

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
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: [...CHROMIUM_ARGS] });
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
    // The races compare explored: a counterexample opens in the race view, its state replayed.
    const races = results.races!.filter((r) => r.counterexample !== null);
    expect(await page.locator('[data-testid=races] li').count()).toBe(races.length);
    const s12 = races.find((r) => r.scenario === 's12-fault-vs-bind' && r.design === 'rmap')!;
    await page.locator('a[data-race="s12-fault-vs-bind/rmap"]').click();
    await page.locator('[data-testid=step-events]').waitFor({ timeout: 60_000 });
    expect(new URL(page.url()).hash).toBe('#race=race--s12-fault-vs-bind--rmap.trace.json');
    expect(await page.locator('[data-testid=verdict]').textContent()).toBe(
      `${s12.counterexample!.kind}: ${s12.counterexample!.message}`,
    );
    expect(await page.locator('[data-testid=lanes] tbody tr').count()).toBe(s12.counterexample!.steps);
    await page.keyboard.press('End');
    expect(await page.locator('[data-testid=ptes] tr.stale td').allInnerTexts()).toEqual([
      '0x7ffff77b0000',
      '0x601000021',
      '0x5',
      'IPI',
      'stale',
    ]);
    await page.locator('a.back').click();
    await page.locator('[data-testid=matrix]').waitFor();
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
    // Installed for the irq's IPI page, which the irq no longer routes to.
    expect(await row.locator('td').allInnerTexts()).toEqual([
      `0x${addr}`,
      `0x${pfn}`,
      `0x${lisn}`,
      'IPI',
      'stale',
    ]);
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
    const { columns } = TraceColumns.decode(await (await fetch(`${ui.url}api/run?${q}`)).arrayBuffer());
    const events = Array.from({ length: columns.length }, (_, i) => columns.event(i));
    const step = events.findIndex((e, i) => i >= 800 && e.kind === 'router.enqueue');
    expect(step).toBeGreaterThanOrEqual(800);
    const [blk, idx, qindex, qdata] = events[step]!.args;
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${ui.url}#cell=pt-forked-helper/vma-walk&step=${step}`);
    await page.locator('[data-testid=markers]').waitFor({ timeout: 60_000 });
    expect(await at(page)).toMatch(new RegExp(`^step ${step} / \\d+ · no clock · #\\d+ router\\.enqueue `));
    expect(await page.locator('.ev.sel .k').textContent()).toBe('router.enqueue');
    // Its arguments by the trace contract's names, hardware numbers in hex, the queue index in decimal.
    expect(await page.locator('.ev.sel .a').textContent()).toBe(
      `endBlk=0x${blk!.toString(16)} endIdx=0x${idx!.toString(16)} qindex=${qindex} qdata=0x${qdata!.toString(16)}`,
    );
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
      // The state panel: the race world's set-up replayed (the ESB VMA, its memslot) and step 1's events.
      expect(await page.locator('[data-testid=memslots] tr[data-key="slot:1"] td').allInnerTexts()).toEqual([
        '1',
        '1',
        '0x601000000',
        '128',
        '0x7ffff7700000',
        'create',
      ]);
      expect(await page.locator('[data-testid=step-events] li').allInnerTexts()).toEqual([
        'mm.fault pid=1 address=0x7ffff77b0800 flags=0x0 vma=2',
      ]);
      // The PTE the violation names: pid and pfn from the explorer's message, installed at the
      // fault's last step, after the bind re-pointed the irq — stale from the start.
      const [, pid, girq, pfn] = /^I1: pid (\d+) maps the EOI page of girq (\d+) to pfn 0x([0-9a-f]+)/.exec(
        doc.metadata.message!,
      )!;
      const pte = page.locator(`tr[data-key="pte:${pid}:${0x7fff_f77b_0000}"]`);
      await page.keyboard.press('End');
      expect(await at(page)).toMatch(new RegExp(`^step ${steps} / ${steps} · `));
      expect(await pte.locator('td').allInnerTexts()).toEqual([
        '0x7ffff77b0000',
        `0x${pfn}`,
        `0x${Number(girq).toString(16)}`,
        'IPI',
        'stale',
      ]);
      await page.keyboard.press('ArrowLeft');
      expect(await at(page)).toMatch(new RegExp(`^step ${steps - 1} / ${steps} · fault: vmf_insert_pfn`));
      expect(await pte.getAttribute('class')).toBe('changed stale');
      expect(await page.locator('[data-testid=step-events] li').allInnerTexts()).toEqual([
        `mm.insert_pfn pid=${pid} address=0x7ffff77b0000 pfn=0x${pfn} vma=2`,
      ]);
      await pte.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SHOTS, 'ui-race.png') });
      await page.keyboard.press('ArrowLeft');
      expect(await pte.count()).toBe(0);
      await page.close();
    } finally {
      race.proc.kill('SIGTERM');
    }
  });

  test('a run of a million events loads and steps with the keyboard', async () => {
    // The demo scaled to about 1,006,000 trace events (the trace ring holds 1,048,576).
    const file = join(out, 'demo-1m.yaml');
    writeFileSync(
      file,
      readFileSync(join(ROOT, 'scenarios', 'demo.yaml'), 'utf8').replace(/triggers: \d+/, 'triggers: 97000'),
    );
    const big = await startUi(file);
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(big.url);
      await page.locator('.timeline .ev').first().waitFor({ timeout: 120_000 });
      const n = Number(/^step 0 \/ (\d+) · t = /.exec(await at(page))?.[1]) + 1;
      expect(n).toBeGreaterThan(1_000_000);
      expect(await page.locator('.note').textContent()).toBe('the scenario, run by xivelab ui');
      await page.keyboard.press('ArrowRight');
      expect(await at(page)).toMatch(/^step 1 \//);
      await page.keyboard.press('End');
      expect(await at(page)).toMatch(new RegExp(`^step ${n - 1} / ${n - 1} · `));
      expect(await page.locator('.ev.sel .n').textContent()).toBe(String(n - 1));
      await page.keyboard.press('Shift+ArrowLeft');
      const back = Number(/^step (\d+) \//.exec(await at(page))?.[1]);
      expect(back).toBeLessThan(n - 1);
      await page.keyboard.press('Home');
      expect(await at(page)).toMatch(/^step 0 \//);
      await page.close();
    } finally {
      big.proc.kill('SIGTERM');
    }
  }, 300_000);

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
