// The worker module piscina loads in each thread: one task copies one share of a batch. It keeps
// Uint8Array views of the RAM sections across tasks, rebuilt only when the machine changes.
import { threadId } from 'node:worker_threads';
import { TimelineWriter, TL_COPY_SHARE } from '@pagemig/core/timeline-writer';
import { copyRange } from './copy_range.js';
import type { CopyResult, CopyTask, ServeResult, ServeTask } from './protocol.js';
import {
  ACTIVE,
  BATCH_ID,
  DONE,
  MAX_POLLERS,
  NEXT,
  NSHARES,
  POLLERS,
  PREEMPTED_NS,
  RUN,
  SEQ,
  SERVING,
  SH_DONE,
  SH_MARKED_PAGES,
  SH_MARKED_ROWS,
  SH_PAGES,
  SH_START_PAGE,
  SH_START_ROW,
  SH_THREAD,
  SHARE_WORDS,
  SHARES,
  SLEEPERS,
  SLEEPS,
  SPIN_NS,
  STOP,
} from './session_words.js';

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

const nowNs = (): number => performance.now() * 1e6;

/**
 * Polls SEQ for up to `budgetNs` after a batch: 1 once it moves past `seen`; 0 when the budget is
 * spent or the run ended; -1 when this thread was off the CPU for PREEMPTED_NS (the core is needed).
 */
function poll(c: Int32Array, seen: number, budgetNs: number): number {
  let last = nowNs();
  const until = last + budgetNs;
  for (let i = 1; ; i++) {
    if (Atomics.load(c, SEQ) !== seen) return 1;
    if ((i & 63) !== 0) continue;
    if (Atomics.load(c, ACTIVE) === 0) return 0;
    const now = nowNs();
    if (now - last > PREEMPTED_NS) return -1;
    if (now >= until) return 0;
    last = now;
  }
}

/** A learned poll below this is not worth it: sleep at once. */
const MIN_POLL_NS = 20_000;

/**
 * Claims shares of the batch posted as `seq` (the NEXT word carries its tag, so a worker late for
 * an older batch claims nothing) and copies them; the last share to finish wakes the engine.
 */
function claimShares(task: ServeTask, stop: Int32Array, tlw: TimelineWriter | null, seq: number): number {
  const c = task.ctl;
  const tag = seq & 0x7fffff;
  const n = Atomics.load(c, NSHARES);
  let copied = 0;
  for (;;) {
    const v = Atomics.load(c, NEXT);
    if (v >>> 8 !== tag || (v & 0xff) >= n) return copied;
    if (Atomics.compareExchange(c, NEXT, v, v + 1) !== v) continue;
    const o = SHARES + (v & 0xff) * SHARE_WORDS;
    const share = {
      startRow: c[o + SH_START_ROW]!,
      startPage: c[o + SH_START_PAGE]!,
      pages: c[o + SH_PAGES]!,
    };
    const t0 = tlw ? tlw.now() : 0;
    try {
      const r = copyRange(ram, task.sectionPfnShift, task.table, share, stop);
      c[o + SH_DONE] = r.pages;
      c[o + SH_MARKED_ROWS] = r.markedRows;
      c[o + SH_MARKED_PAGES] = r.markedPages;
      if (tlw)
        tlw.record(
          TL_COPY_SHARE,
          tlw.track,
          t0,
          tlw.now(),
          Atomics.load(c, BATCH_ID),
          share.pages,
          share.startRow,
          r.pages,
          threadId,
        );
    } catch {
      c[o + SH_DONE] = -1;
    }
    c[o + SH_THREAD] = threadId;
    copied++;
    // Plain stores above, then this sequentially consistent add: the engine sees them once it sees DONE.
    if (Atomics.add(c, DONE, 1) + 1 === n) Atomics.notify(c, DONE);
  }
}

/**
 * A worker kept for migration runs: it copies its claims of every batch the engine posts, polls
 * for the next one for a bounded time after each while a run goes (ACTIVE), sleeps on SEQ when
 * that runs out or the run ends, and returns to the pool when the session ends (RUN = 0).
 */
export function serve(task: ServeTask): ServeResult {
  if (task.ramId !== ramId) {
    ram = task.sections.map((s) => new Uint8Array(s));
    ramId = task.ramId;
  }
  const c = task.ctl;
  const stop = new Int32Array(c.buffer, c.byteOffset + STOP * 4, 1);
  const tlw = task.tl ? new TimelineWriter(task.tl.buffer, task.tl.track) : null;
  Atomics.add(c, SERVING, 1);
  let seen = 0;
  let shares = 0;
  let sleeps = 0;
  // The poll learned as an adaptive mutex spins: the whole budget to start with and after an idle
  // period no longer than `max`, half of it after a longer one or when the scheduler took the core.
  let budget = -1;
  // Holding one of the MAX_POLLERS slots: awake (polling, or copying what it found), so the engine
  // counts on this thread and wakes nobody for its batches.
  let awake = false;
  for (;;) {
    if (Atomics.load(c, RUN) === 0) break;
    const seq = Atomics.load(c, SEQ);
    if (seq !== seen) {
      seen = seq;
      shares += claimShares(task, stop, tlw, seq);
      continue;
    }
    const active = Atomics.load(c, ACTIVE) !== 0;
    const max = Atomics.load(c, SPIN_NS) >>> 0;
    // A run's poll starts at the full budget (a batch is expected soon) and only shrinks on evidence;
    // what it learned is kept while inline batches let the workers sleep.
    if (budget < 0 || budget > max) budget = max;
    const idle0 = nowNs();
    let outcome = 0;
    // Only as many workers stay awake as there are cores beside the engine's thread: more would
    // share a core with it (or each other) and wait out the scheduler's time slices.
    if (active && budget > 0 && !awake) {
      awake = Atomics.add(c, POLLERS, 1) < Atomics.load(c, MAX_POLLERS);
      if (!awake) Atomics.sub(c, POLLERS, 1);
    }
    if (awake && active && budget > 0) outcome = poll(c, seq, budget);
    if (outcome !== 1) {
      if (awake) {
        Atomics.sub(c, POLLERS, 1);
        awake = false;
      }
      // Registered as a sleeper before the last look at SEQ (inside wait): the engine, which bumps
      // SEQ and then reads POLLERS and SLEEPERS, either sees this thread or is seen by it.
      Atomics.add(c, SLEEPERS, 1);
      sleeps++;
      Atomics.add(c, SLEEPS, 1);
      Atomics.wait(c, SEQ, seq);
      Atomics.sub(c, SLEEPERS, 1);
    }
    if (active) {
      // As an adaptive mutex spins: double while the next batch comes within `max`, halve otherwise.
      const half = budget / 2;
      budget =
        outcome !== -1 && nowNs() - idle0 <= max
          ? Math.min(max, Math.max(budget, MIN_POLL_NS) * 2)
          : half < MIN_POLL_NS
            ? 0
            : half;
    }
  }
  if (awake) Atomics.sub(c, POLLERS, 1);
  Atomics.sub(c, SERVING, 1);
  return { threadId, shares, sleeps };
}

/** A no-op task: `init` runs one per thread so the threads and this module are loaded before the first batch. */
export function ping(): number {
  return threadId;
}
