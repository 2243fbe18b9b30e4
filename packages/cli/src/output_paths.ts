import { closeSync, existsSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { usageError } from './exit_codes.js';

/**
 * Checks, before a command runs, that `file` can be written: its directory exists, and the file
 * opens for writing (an existing one without truncating it, a new one is created and removed
 * again). Opening is the only test that holds for root, whom access(2) lets write anywhere, even
 * into /proc. A usage error names the flag, so a long run never ends in a write failure.
 */
export function checkWritable(flag: string, file: string, cwd: string): string {
  const abs = path.resolve(cwd, file);
  const dir = path.dirname(abs);
  let dirStat: ReturnType<typeof statSync> | undefined;
  try {
    dirStat = statSync(dir);
  } catch {
    throw usageError(`${flag} ${file}: the directory ${dir} does not exist`);
  }
  if (!dirStat.isDirectory()) throw usageError(`${flag} ${file}: ${dir} is not a directory`);
  let fileStat: ReturnType<typeof statSync> | undefined;
  try {
    fileStat = statSync(abs);
  } catch {
    // a new file
  }
  if (fileStat?.isDirectory()) throw usageError(`${flag} ${file}: ${abs} is a directory`);
  try {
    closeSync(openSync(abs, fileStat ? 'r+' : 'wx'));
    if (!fileStat) unlinkSync(abs);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? String(e);
    throw usageError(`${flag} ${file}: ${abs} cannot be written (${why})`);
  }
  return abs;
}

/**
 * mkdir -p for an output directory, one level at a time: Node's recursive mkdirSync never returns
 * for a path under /proc (it retries the ENOENT forever). A usage error names the flag.
 */
export function makeOutputDir(flag: string, dir: string, cwd: string): string {
  const abs = path.resolve(cwd, dir);
  const missing: string[] = [];
  for (let d = abs; !existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e);
      throw usageError(`${flag} ${dir}: ${d} cannot be created (${why})`);
    }
  }
  if (!statSync(abs).isDirectory()) throw usageError(`${flag} ${dir}: ${abs} is not a directory`);
  return abs;
}
