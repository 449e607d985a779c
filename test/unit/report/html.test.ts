import { describe, expect, test } from 'vitest';
import { esc, renderHtml } from '../../../src/report/html.ts';
import { reportPlots } from '../../../src/report/plots.ts';
import { resultsDocument } from '../../../src/scenario/compare.ts';
import { cell } from './fixtures.ts';

const cells = [
  cell('emulated', 'demo', { inv: { I2: 'n/a' }, notes: ['a <note> & more'] }),
  cell('vma-pointer', 'demo', { inv: { I3: 2 } }),
];
const results = resultsDocument(cells, ['emulated', 'vma-pointer'], ['demo'], 7);
const plots = reportPlots(cells);
const html = renderHtml(results, plots);

describe('report.html', () => {
  test('escapes text', () => {
    expect(esc(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    expect(html).toContain('<li>a &lt;note&gt; &amp; more</li>');
  });
  test('self-contained: inline CSS and SVG, no scripts, no external resources', () => {
    expect(html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|src=|url\(|@import/i);
    expect(html).not.toMatch(/href="https?:/);
    expect(html.match(/<svg xmlns=/g)!.length).toBe(4);
    expect(html.match(/<figure /g)!.length).toBe(4);
  });
  test('opens on the verdicts and a matrix coloured by the kind of failure', () => {
    expect(html.indexOf('<h2 id="verdicts">')).toBeLessThan(html.indexOf('<h2 id="matrix">'));
    expect(html.indexOf('<h2 id="matrix">')).toBeLessThan(html.indexOf('<h2 id="invariants">'));
    expect(html).toContain(
      '<p>2 cells: 1 scenario × 2 designs, seed 7. 1 of 2 cells fail at least one invariant.</p>',
    );
    expect(html).toContain(
      '<tr><th>demo</th><td class="k-pass" title="demo × emulated: every checked invariant holds">pass</td>' +
        '<td class="k-routing" title="demo × vma-pointer: routing / isolation / lifetime (I1–I3)">I3</td></tr>',
    );
    expect(html).toContain('.k-routing{background:#c62828}');
    expect(html).toContain('.k-abi{background:#6a1b9a}');
    expect(html).toContain('(<a href="#h1">evidence</a>)');
    expect(html).toContain(
      '<li><strong>vma-pointer</strong> fails in 1 of 1 scenario: I3 in 1 scenario</li>',
    );
  });
  test('status cells are classed; failures show their count; hypotheses carry verdicts', () => {
    expect(html).toContain('<td class="fail">FAIL ×2</td>');
    expect(html).toContain('<td class="na">n/a</td>');
    expect(html.match(/<td class="pass">pass<\/td>/g)!.length).toBe(12);
    expect(html).toContain(
      '<h3 id="h1">H1. A VMA pointer cannot follow userspace&#39;s mappings <span class="verdict v-supported">SUPPORTED</span></h3>',
    );
    expect(html).toContain('<span class="verdict v-not-tested">NOT TESTED</span>');
    expect(html).toContain(
      '<a href="traces/demo--vma-pointer--I3.trace.json">demo--vma-pointer--I3.trace.json</a> (3 events)' +
        '<ol class="story"><li><code>#10 page fault (mm.fault): pid 1, address 0x2, flags 0x3, vma 4</code></li>',
    );
  });
});
