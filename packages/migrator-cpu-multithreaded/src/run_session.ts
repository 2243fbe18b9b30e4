// The workers kept awake for a migration run: started with the run's first pooled batch (one
// wake-up per worker per run, not per batch), fed each batch through a control block in shared
// memory (a doorbell, no task and no message), and sent back to the pool when the last run ends.
import { availableParallelism } from 'node:os';
import { type MigrationBatch, TL_COPY_SHARE } from '@pagemig/core';
import { AWAKE, endCycle, preferredMode } from './adaptive.js';
import { copyRange } from './copy_range.js';
import type { ServeResult, ServeTask } from './protocol.js';
import {
  ACTIVE,
  BATCH_ID,
  CTL_WORDS,
  DONE,
  MAX_POLLERS,
  MAX_SHARES,
  NEXT,
  NSHARES,
  POLLERS,
  RUN,
  SEQ,
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
import { markCutRows, type Share, splitBatch } from './split.js';
import { account, type MtState, PAGE_SIZE } from './state.js';
import { workerUrl } from './worker_url.js';

/** The engine's thread blocks at most this long for a batch (as an inline copy would), then awaits. */
const SYNC_WAIT_MS = 50;
/** How long the engine's thread polls for the workers' shares to finish before it sleeps. */
const SYNC_SPIN_MS = 0.5;
/** A share no worker claimed by then (workers still waking up on a loaded host) is copied here. */
const CLAIM_GRACE_MS = 20;
/** After an abort, how long the claimed shares get to stop (each looks at STOP every 1 MiB). */
const QUIESCE_MS = 100;
/**
 * After the last run ends, the workers sleep inside the session this long before they go back to
 * the pool: a run that follows soon wakes them with its first batch, without a task round trip
 * through the engine's event loop (which a batch waiting synchronously would hold up).
 */
export const SESSION_LINGER_MS = 1000;

/** Workers awake for the runs in progress, and the control block they share with the engine. */
export interface RunSession {
  readonly ctl: Int32Array;
  /** The batch table the workers were given: batches in another table take the per-batch path. */
  readonly table: Int32Array;
  /** The serve tasks, settled when their worker went back to the pool. */
  readonly tasks: Promise<void>;
  /** A batch is in progress (the session copies one at a time). */
  busy: boolean;
  /** A claimed share never finished (a worker died): the session takes no more batches. */
  broken: boolean;
}

/** Starts serve tasks on the pool for the run's batches in `table`: up to one per spare core. */
export function startSession(state: MtState, table: Int32Array): RunSession {
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  ctl[RUN] = 1;
  ctl[ACTIVE] = 1;
  const awake = Math.min(state.options.threads, Math.max(1, availableParallelism() - 1));
  ctl[MAX_POLLERS] = awake;
  ctl[SPIN_NS] = state.options.runSpinNs;
  const tl = state.ctx!.timeline;
  const task: ServeTask = {
    ramId: state.ramId,
    sections: state.ctx!.sections,
    sectionPfnShift: state.shift,
    table,
    ctl,
    ...(tl?.recording && state.timelineTrack !== undefined
      ? { tl: { buffer: tl.buffer, track: state.timelineTrack } }
      : {}),
  };
  const runs: Promise<void>[] = [];
  const s: RunSession = { ctl, table, tasks: Promise.resolve(), busy: false, broken: false };
  // As many workers as may poll (the host's cores but one): more would only sleep on the doorbell
  // and cost a wake-up whenever no poller claimed a share first.
  for (let i = 0; i < awake; i++) {
    let run: Promise<ServeResult>;
    try {
      run = state.pool!.run(task as never, {
        filename: workerUrl,
        name: 'serve',
      }) as unknown as Promise<ServeResult>;
    } catch (e) {
      run = Promise.reject(e);
    }
    runs.push(
      run.then(
        () => {},
        (e: unknown) => {
          // A worker gone mid-run: its claims never finish; the batch waiting on them stops.
          s.broken = true;
          Atomics.notify(ctl, DONE);
          state.stats.failedTasks++;
          state.ctx?.logger.warn(
            `a worker kept awake for the run failed: ${e instanceof Error ? e.message : String(e)}`,
          );
        },
      ),
    );
  }
  state.stats.sessions++;
  // The sleeps of the previous session are final: they move into the total.
  if (state.lastCtl) state.stats.workerSleeps += Atomics.load(state.lastCtl, SLEEPS);
  state.lastCtl = ctl;
  (s as { tasks: Promise<void> }).tasks = Promise.all(runs).then(() => {});
  return s;
}

/** Sends the session's workers back to the pool (they return from serve within one poll). */
export function endSession(s: RunSession): void {
  Atomics.store(s.ctl, RUN, 0);
  Atomics.store(s.ctl, ACTIVE, 0);
  Atomics.add(s.ctl, SEQ, 1);
  Atomics.notify(s.ctl, SEQ);
}

/** Writes the shares into the control block and rings the doorbell. */
function post(s: RunSession, shares: readonly Share[], batchId: number): number {
  const c = s.ctl;
  for (let k = 0; k < shares.length; k++) {
    const o = SHARES + k * SHARE_WORDS;
    const sh = shares[k]!;
    c[o + SH_START_ROW] = sh.startRow;
    c[o + SH_START_PAGE] = sh.startPage;
    c[o + SH_PAGES] = sh.pages;
    c[o + SH_DONE] = 0;
    c[o + SH_THREAD] = 0;
  }
  c[NSHARES] = shares.length;
  c[BATCH_ID] = batchId;
  Atomics.store(c, DONE, 0);
  Atomics.store(c, STOP, 0);
  const seq = (c[SEQ]! + 1) | 0;
  // Claims carry the batch's tag: a worker still busy with an older batch cannot take these.
  Atomics.store(c, NEXT, (seq & 0x7fffff) << 8);
  Atomics.store(c, SEQ, seq);
  // A polling worker sees the doorbell at once; only when none polls is a sleeper woken (a futex
  // wake of another thread, tens of microseconds of this thread's CPU here). Returns the pollers.
  const pollers = Atomics.load(c, POLLERS);
  if (pollers === 0 && Atomics.load(c, SLEEPERS) > 0) Atomics.notify(c, SEQ, 1);
  return pollers;
}

/** The calling thread claims and copies shares no worker has taken. */
function claimHere(state: MtState, s: RunSession, batch: MigrationBatch): void {
  const c = s.ctl;
  const tag = Atomics.load(c, SEQ) & 0x7fffff;
  const n = c[NSHARES]!;
  const stop = new Int32Array(c.buffer, STOP * 4, 1);
  for (;;) {
    const v = Atomics.load(c, NEXT);
    if (v >>> 8 !== tag || (v & 0xff) >= n) return;
    if (Atomics.compareExchange(c, NEXT, v, v + 1) !== v) continue;
    const o = SHARES + (v & 0xff) * SHARE_WORDS;
    const share = {
      startRow: c[o + SH_START_ROW]!,
      startPage: c[o + SH_START_PAGE]!,
      pages: c[o + SH_PAGES]!,
    };
    const tl = state.ctx?.timeline;
    const t0 = tl?.recording ? tl.writer.now() : 0;
    try {
      const r = copyRange(state.ram, state.shift, batch.table, share, stop);
      c[o + SH_DONE] = r.pages;
      c[o + SH_MARKED_ROWS] = r.markedRows;
      c[o + SH_MARKED_PAGES] = r.markedPages;
      // On the workers' track too, as thread 0 (the engine's own threadId).
      if (tl?.recording && state.timelineTrack !== undefined)
        tl.writer.record(
          TL_COPY_SHARE,
          state.timelineTrack,
          t0,
          tl.writer.now(),
          batch.id,
          share.pages,
          share.startRow,
          r.pages,
          0,
        );
    } catch {
      c[o + SH_DONE] = -1;
    }
    c[o + SH_THREAD] = -1;
    Atomics.add(c, DONE, 1);
  }
}

/**
 * Blocks until every share is done or `deadline` passes; claims leftovers after CLAIM_GRACE_MS.
 * It polls DONE for up to SYNC_SPIN_MS first: the worker's share usually ends within microseconds
 * of this thread's, and a futex wake-up would cost this thread 40-115 µs here.
 */
function waitSync(state: MtState, s: RunSession, batch: MigrationBatch, n: number): boolean {
  const c = s.ctl;
  const t0 = performance.now();
  for (let i = 1; Atomics.load(c, DONE) < n; i++) {
    if ((i & 63) === 0 && performance.now() - t0 >= SYNC_SPIN_MS) break;
  }
  let helped = false;
  for (;;) {
    const v = Atomics.load(c, DONE);
    if (v >= n) return true;
    const now = performance.now();
    if (!helped && now - t0 >= CLAIM_GRACE_MS) {
      helped = true;
      claimHere(state, s, batch);
      continue;
    }
    const left = (helped ? SYNC_WAIT_MS : CLAIM_GRACE_MS) - (now - t0);
    if (left <= 0) return false;
    Atomics.wait(c, DONE, v, left);
  }
}

/** What the shares copied: rows cut by share boundaries are marked here; counts go to the stats. */
function collect(state: MtState, s: RunSession, batch: MigrationBatch, shares: readonly Share[]): number {
  const c = s.ctl;
  const done = new Float64Array(shares.length);
  let rows = 0;
  let pages = 0;
  let failed = false;
  for (let k = 0; k < shares.length; k++) {
    const o = SHARES + k * SHARE_WORDS;
    const d = c[o + SH_DONE]!;
    if (d < 0) {
      failed = true;
      continue;
    }
    done[k] = d;
    rows += c[o + SH_MARKED_ROWS]!;
    pages += c[o + SH_MARKED_PAGES]!;
    const who = c[o + SH_THREAD]!;
    account(state, who < 0 ? 'caller' : `worker-${who}`, d * PAGE_SIZE);
    if (who >= 0) state.stats.tasks++;
  }
  const cut = markCutRows(batch.table, shares, done);
  rows += cut.rows;
  pages += cut.pages;
  if (failed) {
    // A share that threw may have marked rows before it did: count the marks themselves.
    rows = 0;
    pages = 0;
    for (let i = 0; i < batch.rows; i++) {
      if (batch.isCopied(i)) {
        rows++;
        pages += batch.nrPages(i);
      }
    }
  }
  const st = state.stats;
  st.folios += rows;
  st.bytes += pages * PAGE_SIZE;
  if (rows < batch.rows) st.incompleteBatches++;
  return rows;
}

/**
 * Copies a batch of `pages` base pages on the session's awake workers (and the calling thread with
 * `callerCopies`). Synchronous when the batch finishes within SYNC_WAIT_MS (the usual case: no
 * promise, no timer); otherwise a promise that honours `signal`.
 */
export function copyInSession(
  state: MtState,
  s: RunSession,
  batch: MigrationBatch,
  pages: number,
  n: number,
  signal: AbortSignal,
): Promise<void> | void {
  const shares = splitBatch(batch.table, batch.rows, pages, Math.min(n, MAX_SHARES));
  s.busy = true;
  state.stats.pooledBatches++;
  state.stats.awakeBatches++;
  const pollers = post(s, shares, batch.id);
  // With callerCopies, or when fewer workers poll than there are shares (a host with no core to
  // spare for more, or a worker that went to sleep and is being woken), this thread copies the
  // shares no worker claimed first instead of sleeping: a batch never waits out a wake-up.
  if (state.options.callerCopies || pollers < shares.length) claimHere(state, s, batch);
  if (waitSync(state, s, batch, shares.length)) {
    s.busy = false;
    if (pollers === 0) state.stats.coldBatches++;
    collect(state, s, batch, shares);
    return;
  }
  return finishAsync(state, s, batch, shares, signal);
}

/**
 * A batch still going after SYNC_WAIT_MS: wait without blocking. On abort (or a worker gone) the
 * copying threads stop within 1 MiB; shares nobody claimed copy nothing; a claim still open after
 * QUIESCE_MS leaves the session broken (it takes no more batches) and its rows unmarked.
 */
async function finishAsync(
  state: MtState,
  s: RunSession,
  batch: MigrationBatch,
  shares: readonly Share[],
  signal: AbortSignal,
): Promise<void> {
  const c = s.ctl;
  const n = shares.length;
  const onAbort = () => Atomics.store(c, STOP, 1);
  signal.addEventListener('abort', onAbort, { once: true });
  let complete = false;
  try {
    let quiesceBy = Number.POSITIVE_INFINITY;
    for (;;) {
      const v = Atomics.load(c, DONE);
      if (v >= n) {
        complete = true;
        break;
      }
      if ((s.broken || Atomics.load(c, STOP)) && quiesceBy === Number.POSITIVE_INFINITY) {
        Atomics.store(c, STOP, 1);
        quiesceBy = performance.now() + QUIESCE_MS;
        claimHere(state, s, batch);
        continue;
      }
      if (performance.now() > quiesceBy) break;
      const w = Atomics.waitAsync(c, DONE, v, Number.isFinite(quiesceBy) ? 5 : 50);
      if (w.async) await w.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (complete) s.busy = false;
  else {
    s.broken = true;
    state.ctx?.logger.warn(
      'a worker did not finish its share after the batch stopped; its rows stay unmarked',
    );
    for (let k = 0; k < n; k++) {
      const o = SHARES + k * SHARE_WORDS;
      if (c[o + SH_THREAD] === 0) c[o + SH_DONE] = -1;
    }
  }
  collect(state, s, batch, shares);
}

/**
 * runStart: a run whose pooled batches the workers copy awake. Workers still in their session
 * (asleep since the last run) are woken now, while the engine unmaps, so its first batch finds them
 * polling; otherwise they start with the run's first pooled batch.
 */
export function mtRunStart(state: MtState, info: object): void {
  if (!state.pool || state.disposing) return;
  state.runs.add(info);
  state.stats.runs++;
  const s = state.session;
  if (!s || state.runs.size > 1) return;
  clearTimeout(state.linger);
  state.linger = undefined;
  // Only while the workers measured faster than an inline copy: otherwise they stay asleep (a
  // polling thread on a host whose other core is busy takes the engine's core).
  if (state.options.adaptive && preferredMode(state.adapt) !== AWAKE) return;
  const c = s.ctl;
  Atomics.store(c, ACTIVE, 1);
  // A doorbell without a batch (the claim tag does not match): sleepers wake and poll.
  if (Atomics.load(c, SLEEPERS) > 0) {
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
  }
}

/**
 * Whether the session's workers poll between batches (the run's batches go to them) or sleep
 * (they are copied inline for now); turning it on wakes nobody: the next posted batch does.
 */
export function keepAwake(state: MtState, on: boolean): void {
  const s = state.session;
  if (s && state.runs.size > 0) Atomics.store(s.ctl, ACTIVE, on ? 1 : 0);
}

/** Ends the current session: its workers go back to the pool (dispose awaits them). */
export function retireSession(state: MtState): void {
  clearTimeout(state.linger);
  state.linger = undefined;
  const s = state.session;
  if (!s) return;
  state.session = null;
  endSession(s);
  const tasks = s.tasks.then(() => {
    state.ending.delete(tasks);
  });
  state.ending.add(tasks);
}

/**
 * runEnd: once no run is left, the workers stop polling and sleep (inside the session for
 * SESSION_LINGER_MS, then back in the pool).
 */
export function mtRunEnd(state: MtState, info: object): void {
  if (!state.runs.delete(info) || state.runs.size > 0) return;
  endCycle(state.adapt);
  const s = state.session;
  if (!s) return;
  Atomics.store(s.ctl, ACTIVE, 0);
  if (s.broken) {
    retireSession(state);
    return;
  }
  const t = setTimeout(() => {
    if (state.linger === t) retireSession(state);
  }, SESSION_LINGER_MS);
  t.unref();
  state.linger = t;
}

/** The run's session for a batch in `table`, started on first use; null when it cannot take it. */
export function sessionFor(state: MtState, table: Int32Array): RunSession | null {
  if (state.runs.size === 0 || state.disposing) return null;
  // A broken session retires; a batch of another table (a concurrent run's) takes the per-batch path.
  if (state.session?.broken && !state.session.busy) retireSession(state);
  const s = state.session ?? (state.session = startSession(state, table));
  return s.table === table && !s.busy && !s.broken ? s : null;
}
