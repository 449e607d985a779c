/**
 * Worker thread of `xivelab compare --jobs N`: receives {@link WorkerTask}s, runs each cell with
 * the designs registry, replies with the {@link CellResult} (or the error's first line). Cells of
 * the same plan row share the emulated {@link Reference} the worker made for the row's first.
 */

import { parentPort } from 'node:worker_threads';
import { registryRunner } from './cell-dispatch.ts';
import type { WorkerReply, WorkerTask } from './compare.ts';
import { Reference } from './reference.ts';

const port = parentPort;
if (port === null) throw new Error('compare-worker.ts runs only as a worker thread');
let reference: { row: number; ref: Reference } | null = null;
port.on('message', (task: WorkerTask) => {
  const t0 = performance.now();
  let reply: WorkerReply;
  try {
    const { scenario, design, seed } = task.cell;
    if (reference?.row !== task.row)
      reference = { row: task.row, ref: new Reference(scenario.scenario, seed) };
    reply = {
      index: task.index,
      ok: true,
      result: registryRunner(scenario, design, seed, reference.ref),
      ms: performance.now() - t0,
    };
  } catch (e) {
    reply = {
      index: task.index,
      ok: false,
      error: (e instanceof Error ? e.message : String(e)).split('\n')[0]!,
    };
  }
  port.postMessage(reply);
});
