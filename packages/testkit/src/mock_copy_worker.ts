/**
 * The copy worker of the mock migrator's worker mode (built as dist/mock-copy-worker.js): copies
 * a range of batch rows between the machine's RAM sections and marks each row it copied. Told to
 * die at a row, it exits in the middle of the batch, as a crashing copy worker would.
 */
import { parentPort, workerData } from 'node:worker_threads';

export interface CopyTask {
  id: number;
  table: Int32Array;
  /** Rows to copy, in order. */
  rows: number[];
  /** Exit the thread when reaching this row (worker_exit fault). */
  dieAt: number;
}

const ROW = 4;
const sections = (workerData as { sections: SharedArrayBuffer[] }).sections.map((s) => new Uint8Array(s));
const shift = (workerData as { shift: number }).shift;
const mask = (1 << shift) - 1;

parentPort!.on('message', (task: CopyTask) => {
  const t = task.table;
  for (const i of task.rows) {
    if (i === task.dieAt) process.exit(3);
    const src = t[i * ROW]!;
    const dst = t[i * ROW + 1]!;
    const len = t[i * ROW + 2]! * 4096;
    const from = (src & mask) * 4096;
    sections[dst >>> shift]!.set(sections[src >>> shift]!.subarray(from, from + len), (dst & mask) * 4096);
    Atomics.or(t, i * ROW + 3, 1);
  }
  parentPort!.postMessage({ id: task.id });
});
