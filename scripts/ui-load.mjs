#!/usr/bin/env node
// How fast `xivelab ui` makes a big run interactive, in Debian's Chromium (playwright-core):
// the demo scenario with its trigger count scaled to about 100,000 and about 1,000,000 trace
// events, run and traced by the UI server as `xivelab ui demo.yaml` does; then, per size, the
// time from navigation to the run view being interactive (the first timeline rows drawn and an
// ArrowRight handled: the step shown moves to 1), the page's own marks (its script ran, what the
// server was given came, the run's columns came, the run view drew) and the JS heap. Prints one line per size and the load average.
//
// Usage: npm run build:web && node --import tsx scripts/ui-load.mjs [events…]
//   (default sizes: 100000 1000000). Skips, saying why, without /usr/bin/chromium.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (CHROMIUM === undefined) {
  console.log('ui-load: skipped: no Chromium at /usr/bin/chromium');
  process.exit(0);
}
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
/** Trace events per demo trigger (the demo's 20,000 triggers give about 207,600 events). */
const EVENTS_PER_TRIGGER = 10.38;

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Start `xivelab ui file` (its own process, as a user runs it); resolves when it prints its URL. */
function startUi(file) {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'ui', file], { cwd: ROOT });
  return new Promise((ok, fail) => {
    let out = '';
    let err = '';
    proc.stdout.on('data', (b) => {
      out += b.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) ok({ url: m[1], proc });
    });
    proc.stderr.on('data', (b) => {
      err += b.toString();
    });
    proc.on('exit', (code) => fail(new Error(`xivelab ui exited ${code}: ${err}`)));
  });
}

const sizes = process.argv.slice(2).map(Number);
const demo = readFileSync(new URL('../scenarios/demo.yaml', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'xivelab-ui-load-'));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
try {
  for (const target of sizes.length > 0 ? sizes : [100_000, 1_000_000]) {
    const triggers = Math.round(target / EVENTS_PER_TRIGGER);
    const file = join(dir, `demo-${target}.yaml`);
    writeFileSync(file, demo.replace(/triggers: \d+/, `triggers: ${triggers}`));
    const t0 = performance.now();
    const { url, proc } = await startUi(file);
    const runMs = performance.now() - t0;
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    // The page's own clock: when the first timeline rows are in the DOM; how long a key takes to
    // show its step (keydown to the step line changed).
    await page.addInitScript(() => {
      let key = 0;
      addEventListener('keydown', () => {
        key = performance.now();
      }, true);
      new MutationObserver(() => {
        if (performance.getEntriesByName('rows').length === 0 && document.querySelector('.timeline .ev'))
          performance.mark('rows');
        const at = document.querySelector('[data-testid=at]')?.textContent ?? '';
        if (key > 0 && /^step 1 \//.test(at) && performance.getEntriesByName('key').length === 0)
          performance.measure('key', { start: key, end: performance.now() });
      }).observe(document, { childList: true, subtree: true, characterData: true });
    });
    const start = performance.now();
    await page.goto(url);
    await page.locator('.timeline .ev').first().waitFor({ timeout: 120_000 });
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(
      () => /^step 1 \//.test(document.querySelector('[data-testid=at]')?.textContent ?? ''),
      null,
      { timeout: 120_000 },
    );
    const interactive = performance.now() - start;
    // The far end on first visit: the replay runs through every event once, making its snapshots.
    const endStart = performance.now();
    await page.keyboard.press('End');
    await page.waitForFunction(
      () => /^step (\d+) \/ \1 /.test(document.querySelector('[data-testid=at]')?.textContent ?? ''),
      null,
      { timeout: 120_000 },
    );
    const end = performance.now() - endStart;
    const { marks, key } = await page.evaluate(() => ({
      marks: Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)])),
      key: Math.round(performance.getEntriesByName('key')[0]?.duration ?? -1),
    }));
    const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0);
    const n = /\/ (\d+)/.exec((await page.locator('[data-testid=at]').textContent()) ?? '')?.[1];
    console.log(
      `ui-load: ${Number(n) + 1} events (${triggers} triggers): in the page, rows drawn at ${marks.rows} ms ` +
        `from navigation and a key shown in ${key} ms; driver's wall clock to interactive ${Math.round(interactive)} ms; ` +
        `End (replay of every event) ${Math.round(end)} ms (page marks: ${Object.entries(marks)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} ms; JS heap ${Math.round(heap / 2 ** 20)} MiB; server start-up (runs the scenario) ${Math.round(runMs)} ms)`,
    );
    await page.close();
    proc.kill('SIGTERM');
  }
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`ui-load: load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (${process.arch}, 2 cores shared)`);
