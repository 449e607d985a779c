/**
 * Worker thread of the scenario-file fuzzer: runs `xivelab run FILE` through the CLI's own code
 * path (`runCli`) and posts the exit code and what the CLI wrote (first `'ready'`, once loaded). A run that never ends is the
 * parent's to detect: it terminates this worker.
 */

import { parentPort } from 'node:worker_threads';
import { runCli } from '../../src/cli/program.ts';

/** A file to run. */
export interface ScenarioTask {
  readonly file: string;
}

/** What the CLI did with it. */
export interface ScenarioReply {
  readonly code: number;
  readonly stderr: string;
  readonly stdoutBytes: number;
}

const port = parentPort;
if (port === null) throw new Error('scenario-worker.ts runs as a worker thread');
port.on('message', async (t: ScenarioTask) => {
  let stderr = '';
  let stdoutBytes = 0;
  const code = await runCli(['run', t.file], {
    out: (s) => {
      stdoutBytes += s.length;
    },
    err: (s) => {
      stderr += s;
    },
  });
  port.postMessage({ code, stderr, stdoutBytes } satisfies ScenarioReply);
});
// Loaded: ready for the first file.
port.postMessage('ready');
