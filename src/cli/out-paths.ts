/**
 * Output paths of the command line, checked before any work: `run --trace FILE` and
 * `compare --out DIR`. A path that cannot be written is a usage error (one line, exit 2) at once,
 * not an internal error after the run.
 */

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from './usage-error.ts';

/** What went wrong with a file-system call, in a few words. */
function reason(e: unknown): string {
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Check that `file` can be written: its directory exists and the file can be opened for writing
 * (it is created, empty, when absent; an existing file is left as is until the run writes it).
 * @throws UsageError `<option> <file>: <why>`.
 */
export function checkOutputFile(option: string, file: string): void {
  const dir = dirname(resolve(file));
  if (!existsSync(dir)) throw new UsageError(`${option} ${file}: no such directory ${dirname(file)}`);
  if (!statSync(dir).isDirectory())
    throw new UsageError(`${option} ${file}: ${dirname(file)} is not a directory`);
  if (existsSync(file) && statSync(file).isDirectory())
    throw new UsageError(`${option} ${file}: is a directory`);
  try {
    closeSync(openSync(file, 'a'));
  } catch (e) {
    throw new UsageError(`${option} ${file}: ${reason(e)}`);
  }
}

/**
 * Make `dir` (and its missing parents) a directory, one level at a time: Node 20's recursive
 * `mkdirSync` never returns for a path under `/proc`.
 * @throws UsageError `<option> <dir>: <why>`.
 */
export function makeOutputDir(option: string, dir: string): void {
  const abs = resolve(dir);
  const missing: string[] = [];
  let at = abs;
  while (!existsSync(at)) {
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  if (existsSync(at) && !statSync(at).isDirectory()) {
    throw new UsageError(
      at === abs
        ? `${option} ${dir}: exists and is not a directory`
        : `${option} ${dir}: ${at} is not a directory`,
    );
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      throw new UsageError(`${option} ${dir}: cannot create ${d}: ${reason(e)}`);
    }
  }
}

/** True when every entry of `dir` is a file whose name ends with `suffix` (what a report writes). */
export function onlyFilesEndingWith(dir: string, suffix: string): boolean {
  return readdirSync(dir, { withFileTypes: true }).every((e) => e.isFile() && e.name.endsWith(suffix));
}
