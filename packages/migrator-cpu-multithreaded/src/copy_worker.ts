// The worker module piscina loads in each thread: one task copies one share of a batch. It keeps
// Uint8Array views of the RAM sections across tasks, rebuilt only when the machine changes.
import { threadId } from 'node:worker_threads';
import { TimelineWriter, TL_COPY_SHARE } from '@pagemig/core/timeline-writer';
import { copyRange } from './copy_range.js';
import type { CopyResult, CopyTask } from './protocol.js';

let ramId = Number.NaN;
let ram: Uint8Array[] = [];

export default function copyShare(task: CopyTask): CopyResult {
  if (task.ramId !== ramId) {
    ram = task.sections.map((s) => new Uint8Array(s));
    ramId = task.ramId;
  }
  const tl = task.tl;
  if (tl === undefined)
    return { threadId, ...copyRange(ram, task.sectionPfnShift, task.table, task, task.stop) };
  // The machine's timeline records: this share is a span on the workers' track, sub-track threadId.
  const tlw = new TimelineWriter(tl.buffer, tl.track);
  const t0 = tlw.now();
  const r = copyRange(ram, task.sectionPfnShift, task.table, task, task.stop);
  tlw.record(TL_COPY_SHARE, tl.track, t0, tlw.now(), tl.batch, task.pages, task.startRow, r.pages, threadId);
  return { threadId, ...r };
}

/** A no-op task: `init` runs one per thread so the threads and this module are loaded before the first batch. */
export function ping(): number {
  return threadId;
}
