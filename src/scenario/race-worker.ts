/**
 * Worker thread of `xivelab compare` with `--jobs` > 1: explores the built-in race scenarios
 * ({@link exploreBuiltinRaces}) while the cells run on the other workers, and posts the
 * {@link RaceTable} (or the error's first line).
 */

import { parentPort } from 'node:worker_threads';
import { exploreBuiltinRaces, type RaceTable } from './race-table.ts';

/** Message from the race worker. */
export type RaceWorkerReply =
  | { readonly ok: true; readonly table: RaceTable }
  | { readonly ok: false; readonly error: string };

const port = parentPort;
if (port === null) throw new Error('race-worker.ts runs only as a worker thread');
let reply: RaceWorkerReply;
try {
  reply = { ok: true, table: exploreBuiltinRaces() };
} catch (e) {
  reply = { ok: false, error: (e instanceof Error ? e.message : String(e)).split('\n')[0]! };
}
port.postMessage(reply);
