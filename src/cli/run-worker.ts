/**
 * Worker thread of `xivelab run` from the real entry point: runs the scenario, posts progress at
 * the runner's quiescent points, and stops the workload once the CLI sets the shared stop flag
 * (SIGINT reaches only the main thread, which is free while this one runs).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { runScenario } from '../scenario/runner.ts';
import type { RunWorkerData, RunWorkerReply } from './run-progress.ts';

const port = parentPort;
if (port === null) throw new Error('run-worker.ts runs only as a worker thread');
const data = workerData as RunWorkerData;
const stop = new Int32Array(data.stop);
const abort = new AbortController();
const post = (m: RunWorkerReply): void => port.postMessage(m);
try {
  const { result } = runScenario(data.scenario, data.seed, {
    ...(data.kvm ? { kvm: {} } : {}),
    signal: abort.signal,
    onProgress: (progress) => {
      post({ kind: 'progress', progress });
      if (Atomics.load(stop, 0) !== 0) abort.abort();
    },
  });
  post({ kind: 'result', result, interrupted: abort.signal.aborted });
} catch (e) {
  post({ kind: 'error', message: (e instanceof Error ? e.message : String(e)).split('\n')[0]! });
}
