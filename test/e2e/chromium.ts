/** Debian's Chromium for the browser e2e tests: where it is, how it runs, where screenshots go. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './cli-env.ts';

/** The Chromium binary, or undefined where none is installed (the browser tests then skip). */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** Where the browser tests write their screenshots, to be looked at. */
export const SHOTS = join(new URL('.', root).pathname, '.ci-out', 'screenshots');

/** Headless, sandbox-less, and quiet on the network (nothing fetched, nothing synced). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
