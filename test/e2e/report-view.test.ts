/**
 * The report as a reviewer sees it: a real compare run, report.html and every plot opened in
 * headless Chromium (Debian's `chromium`), screenshots written to `.ci-out/screenshots/` to be
 * looked at. Skips, saying why, where Chromium is not installed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS } from './chromium.ts';
import { cli } from './cli-env.ts';

/** Width and height from a PNG's IHDR. */
function pngSize(file: string): [number, number] {
  const b = readFileSync(file);
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

/** Screenshot `url` at `width`×`height` into `file` with headless Chromium. */
function screenshot(url: string, file: string, width: number, height: number): void {
  const profile = mkdtempSync(join(tmpdir(), 'xivelab-chromium-'));
  const r = spawnSync(
    CHROMIUM!,
    [
      ...CHROMIUM_ARGS,
      '--hide-scrollbars',
      `--user-data-dir=${profile}`,
      `--window-size=${width},${height}`,
      `--screenshot=${file}`,
      url,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (!existsSync(file)) throw new Error(`chromium wrote no screenshot (exit ${r.status}): ${r.stderr}`);
}

describe.skipIf(CHROMIUM === undefined)('report.html and the plots in Chromium', () => {
  const out = mkdtempSync(join(tmpdir(), 'xivelab-report-view-'));

  test('a compare run renders; each page and plot screenshots at its size with content on it', async () => {
    const r = await cli(
      'compare',
      '--designs',
      'emulated,vma-pointer,rmap,overlap-regions',
      '--scenarios',
      'pt-second-mapping,pt-nic-hotplug',
      '--jobs',
      '1',
      '--out',
      out,
    );
    expect([0, 1]).toContain(r.code);
    mkdirSync(SHOTS, { recursive: true });
    const pages: [string, number, number][] = [
      ['report.html', 1400, 1800],
      ...readdirSync(out)
        .filter((f) => f.endsWith('.svg'))
        .map((f): [string, number, number] => [f, 1100, 800]),
    ];
    expect(pages.length).toBe(5);
    for (const [page, w, h] of pages) {
      const file = join(SHOTS, `${page.replace(/\.\w+$/, '')}.png`);
      screenshot(`file://${join(out, page)}`, file, w, h);
      expect(pngSize(file), page).toEqual([w, h]);
      // A blank white page compresses to about 4 KiB at these sizes; text, tables and plots do not.
      expect(statSync(file).size, page).toBeGreaterThan(10_000);
    }
  });
});
