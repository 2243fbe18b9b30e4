import { openSync, readSync } from 'node:fs';

let statFd = -1;
const statBuf = Buffer.alloc(128);
const nap = new Int32Array(new SharedArrayBuffer(4));

/**
 * The calling thread's on-CPU seconds (/proc/thread-self/schedstat; elsewhere process CPU time).
 *
 * The kernel folds the running slice into schedstat only at a scheduler tick (4 ms at HZ=250) or a
 * context switch, so a plain read lags by up to a tick. `exact` sleeps 1 µs first, which forces the
 * switch: spans of a few milliseconds are then exact to tens of microseconds, at ~70 µs per read
 * (against ~4 µs without). The engine reads it plainly once per run; callers that time whole
 * zones or scenarios read it exactly.
 */
export function threadCpuSeconds(exact = false): number {
  try {
    if (statFd < 0) statFd = openSync('/proc/thread-self/schedstat', 'r');
    if (exact) Atomics.wait(nap, 0, 0, 0.001);
    const n = readSync(statFd, statBuf, 0, statBuf.length, 0);
    return Number(statBuf.toString('latin1', 0, n).split(' ')[0]) / 1e9;
  } catch {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
}
