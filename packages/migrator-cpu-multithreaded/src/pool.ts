// init and dispose: the worker pool's lifetime and the machine the migrator copies for.
import { type MigratorContext, PagemigError } from '@pagemig/core';
import { Piscina } from 'piscina';
import { retireSession } from './run_session.js';
import { STOP } from './session_words.js';
import type { CopyPool, MtState } from './state.js';
import { workerUrl } from './worker_url.js';

/** A pool of exactly `threads` threads, each started and with the worker module loaded. */
async function startPool(threads: number): Promise<Piscina> {
  const own = new Piscina({
    filename: workerUrl,
    minThreads: threads,
    maxThreads: threads,
    // Threads never exceed minThreads, so this only matters if piscina replaces a thread.
    idleTimeout: 30_000,
  });
  // Load everything now, not during the first batch.
  try {
    await Promise.all(Array.from({ length: threads }, () => own.run(null, { name: 'ping' })));
  } catch (e) {
    await own.destroy();
    throw new PagemigError(
      'ERR_MIGRATOR_INIT',
      `cpu-multithreaded: the worker pool did not start (${workerUrl}): ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  return own;
}

export async function mtInit(state: MtState, ctx: MigratorContext): Promise<void> {
  if (state.disposing) await state.disposing;
  state.disposing = null;
  state.ctx = ctx;
  state.ram = ctx.sections.map((s) => new Uint8Array(s));
  state.shift = ctx.sectionPfnShift;
  state.ramId = Math.random();
  state.timelineTrack ??= ctx.timeline?.track('worker', 'cpu-multithreaded', 'worker');
  if (state.injected) {
    state.pool = state.injected;
    return;
  }
  if (!state.pool) {
    const own = await startPool(state.options.threads);
    state.ownPool = own;
    state.pool = own as unknown as CopyPool;
  }
}

async function disposeNow(state: MtState): Promise<void> {
  for (const stop of state.inFlight.values()) Atomics.store(stop, 0, 1);
  await Promise.allSettled([...state.inFlight.keys()]);
  // Workers kept for runs go back to the pool before it is destroyed.
  state.runs.clear();
  if (state.session) Atomics.store(state.session.ctl, STOP, 1);
  retireSession(state);
  await Promise.allSettled([...state.ending]);
  state.ending.clear();
  const own = state.ownPool;
  state.ownPool = null;
  state.pool = null;
  state.ram = [];
  state.ctx = null;
  if (own) await own.destroy();
}

/** Stops the batches in flight, waits for them and destroys our own pool; idempotent. */
export function mtDispose(state: MtState): Promise<void> {
  state.disposing ??= disposeNow(state);
  return state.disposing;
}
