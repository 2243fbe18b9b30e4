import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { usageError } from './exit_codes.js';

/**
 * Checks, before a command runs, that `file` can be written: its directory exists and is
 * writable, and the file itself, if it is there, is a writable file. A usage error names the flag,
 * so a long run never ends in a write failure.
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
    accessSync(fileStat ? abs : dir, constants.W_OK);
  } catch {
    throw usageError(`${flag} ${file}: ${fileStat ? abs : `the directory ${dir}`} is not writable`);
  }
  return abs;
}
