import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { confinedPath, resolveUiInput, UiServer } from '../../../src/cli/ui.ts';
import { TraceColumns } from '../../../src/sim/trace-columns.ts';

const tmp = mkdtempSync(join(tmpdir(), 'xivelab-ui-'));
const report = join(tmp, 'report');
const app = join(tmp, 'app');
mkdirSync(join(report, 'traces'), { recursive: true });
mkdirSync(app);
writeFileSync(join(tmp, 'secret.txt'), 'secret\n');
writeFileSync(join(report, 'results.json'), '{"tool":"xivelab"}\n');
writeFileSync(join(report, 'traces', 'a.trace.json'), '{"traceEvents":[]}\n');
const race = (scenario: string): string =>
  JSON.stringify({
    traceEvents: [],
    metadata: { scenario, design: 'rmap', schedule: '0.0.0.1.1.1.1.1.1.1.1.1.0.0' },
  });
writeFileSync(join(report, 'traces', 'race.trace.json'), race('s12-fault-vs-bind'));
writeFileSync(join(report, 'traces', 'race-path.trace.json'), race('../secret'));
writeFileSync(join(app, 'index.html'), '<!doctype html><head><title>app</title></head>\n');
/** The app's page as served: what the app asks for first, preloaded. */
const page = (...urls: string[]): string =>
  `<!doctype html><head><title>app</title>${urls
    .map((u) => `<link rel="preload" href="${u}" as="fetch" crossorigin="anonymous" />`)
    .join('')}</head>\n`;
symlinkSync(join(tmp, 'secret.txt'), join(report, 'out-link.txt'));
symlinkSync(tmp, join(report, 'up'));

/** GET `path` verbatim (no URL normalisation, unlike fetch). */
function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('xivelab ui server: serves the app and the report read-only, nothing outside them', () => {
  let server: UiServer;
  let port = 0;
  beforeAll(async () => {
    server = new UiServer(resolveUiInput(report), app);
    const url = await server.listen(0);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    port = Number(new URL(url).port);
  });
  afterAll(() => server.close());

  test('the app at /, the report files under /data/, what was given at /api/input', async () => {
    expect(await get(port, '/')).toEqual({ status: 200, body: page('api/input', 'data/results.json') });
    expect((await get(port, '/index.html')).body).toBe(page('api/input', 'data/results.json'));
    expect(await get(port, '/data/results.json')).toEqual({ status: 200, body: '{"tool":"xivelab"}\n' });
    expect(await get(port, '/data/traces/a.trace.json')).toEqual({
      status: 200,
      body: '{"traceEvents":[]}\n',
    });
    expect(JSON.parse((await get(port, '/api/input')).body)).toEqual({
      kind: 'report',
      name: 'report',
      results: 'results.json',
    });
  });

  test.each([
    ['/data/../secret.txt', 403],
    ['/data/%2e%2e/secret.txt', 403],
    ['/data/traces/%2e%2e/%2e%2e/secret.txt', 403],
    ['/data/..%2fsecret.txt', 403],
    ['/data/%2F..%2Fsecret.txt', 403],
    ['/data/..\\secret.txt', 403],
    ['/data/results.json%00.png', 403],
    ['/data/out-link.txt', 403],
    ['/data/up/secret.txt', 403],
    ['/../secret.txt', 403],
    ['/%2e%2e/report/results.json', 403],
    ['/data//etc/passwd', 404],
    ['/data/%2Fetc%2Fpasswd', 404],
    ['/data/nope.json', 404],
    ['/data/%E0%A4%A', 400],
  ])('GET %s → %i', async (path, status) => {
    const r = await get(port, path);
    expect(r.status).toBe(status);
    expect(r.body).not.toContain('secret');
  });

  test('read-only: POST and PUT are refused (405)', async () => {
    expect((await get(port, '/data/results.json', 'POST')).status).toBe(405);
    expect((await get(port, '/data/results.json', 'PUT')).status).toBe(405);
  });

  test("a race counterexample's schedule replayed traced: each event's time its step; only built-in races", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/race?file=traces/race.trace.json`);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const { columns } = TraceColumns.decode(await res.arrayBuffer());
    const install = Array.from({ length: columns.length }, (_, i) => columns.event(i)).filter(
      (e) => e.kind === 'mm.insert_pfn' && e.time > 0,
    );
    expect(install.map((e) => [e.time, e.args])).toEqual([[13, [1, 0x7fff_f77b_0000, 0x6_0100_0021, 2]]]);
    expect(await get(port, '/api/race?file=traces/race-path.trace.json')).toEqual({
      status: 404,
      body: 'cannot replay traces/race-path.trace.json here: ../secret is not a built-in race scenario\n',
    });
    expect((await get(port, '/api/race?file=../secret.txt')).status).toBe(403);
    expect(await get(port, '/api/race?file=traces/a.trace.json')).toEqual({
      status: 404,
      body: 'traces/a.trace.json: not an explorer counterexample (no schedule in its metadata)\n',
    });
  });

  test('a cell whose scenario cannot be found here is a 404 naming it', async () => {
    expect(await get(port, '/api/run?scenario=no-such&design=rmap&seed=1')).toEqual({
      status: 404,
      body: 'cannot re-run no-such × rmap here\n',
    });
  });
});

describe('confinedPath', () => {
  test('a file inside is its real path; a directory is 404', () => {
    expect(confinedPath(report, 'results.json')).toBe(join(report, 'results.json'));
    expect(confinedPath(report, 'traces')).toBe(404);
  });
});

describe('xivelab ui on a scenario: run at start-up, its events served as columns', () => {
  test('the demo cut to 200 triggers', async () => {
    const file = join(tmp, 'small.yaml');
    writeFileSync(
      file,
      readFileSync('scenarios/demo.yaml', 'utf8').replace('triggers: 20000', 'triggers: 200'),
    );
    const server = new UiServer(resolveUiInput(file), app);
    const port = Number(new URL(await server.listen(0)).port);
    try {
      expect((await get(port, '/')).body).toBe(page('api/input', 'api/run'));
      expect(JSON.parse((await get(port, '/api/input')).body)).toEqual({
        kind: 'scenario',
        name: 'demo',
        seed: '1',
      });
      const res = await fetch(`http://127.0.0.1:${port}/api/run`);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      const r = TraceColumns.decode(await res.arrayBuffer());
      const events = Array.from({ length: r.columns.length }, (_, i) => r.columns.event(i));
      expect(r.dropped).toBe(0);
      expect(events[0]).toEqual({ seq: 0, time: 0, cat: 0x100, kind: 'xive.reset', args: [0, 0, 0, 0] });
      expect([events.length, events.filter((e) => e.kind === 'esb.trigger').length]).toEqual([2413, 235]);
      expect((await get(port, '/data/small.yaml')).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('resolveUiInput', () => {
  test('a directory without results.json, a missing path and an unknown extension are usage errors', () => {
    expect(() => resolveUiInput(app)).toThrow(`${app}: not a report directory (no results.json`);
    expect(() => resolveUiInput(join(tmp, 'missing'))).toThrow(
      `${join(tmp, 'missing')}: no such file or directory`,
    );
    expect(() => resolveUiInput(join(tmp, 'secret.txt'))).toThrow(
      `${join(tmp, 'secret.txt')}: expected a report directory, a trace .json or a scenario .yaml`,
    );
  });
});
