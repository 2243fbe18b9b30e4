// The worker module piscina loads in each thread: one task copies one share of a batch. It keeps
// Uint8Array views of the RAM sections across tasks, rebuilt only when the machine changes.
import { threadId } from 'node:worker_threads';
import { copyRange } from './copy_range.js';
import type { CopyResult, CopyTask } from './protocol.js';

let ramId = Number.NaN;
let ram: Uint8Array[] = [];

export default function copyShare(task: CopyTask): CopyResult {
  if (task.ramId !== ramId) {
    ram = task.sections.map((s) => new Uint8Array(s));
    ramId = task.ramId;
  }
  return { threadId, ...copyRange(ram, task.sectionPfnShift, task.table, task, task.stop) };
}

/** A no-op task: `init` runs one per thread so the threads and this module are loaded before the first batch. */
export function ping(): number {
  return threadId;
}
