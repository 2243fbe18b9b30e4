import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  defineMigrator,
  type FaultPlan,
  type FaultRule,
  InjectedFault,
  MIGRATOR_API_VERSION,
  type MigrationBatch,
  type Migrator,
  type MigratorCapabilities,
  type MigratorContext,
  type OffloadInfo,
} from '@pagemig/core';
import type { CopyTask } from './mock_copy_worker.js';

export interface MockMigratorOptions {
  /** Default 'mock'. */
  name?: string;
  /** Merged over the defaults (the declared faultSites follow `workers`). */
  capabilities?: Partial<MigratorCapabilities>;
  /** A plan of its own; otherwise the machine's (`ctx.faults`) is honoured. */
  faults?: FaultPlan | null;
  /** Copy on this many worker threads (0: on the calling thread). Default 0. */
  workers?: number;
  /** Rows copied between yields to the event loop (where the signal is checked). Default 32. */
  yieldEvery?: number;
  /** How long a hung device is waited for before the reset (device_hang). Default 50 ms. */
  deviceTimeoutMs?: number;
  /** Per-batch gate. */
  shouldOffload?: (info: OffloadInfo) => boolean;
  /** Listen for migration runs (runStart/runEnd), counted in `stats()`. Default false. */
  runHooks?: boolean;
}

export interface MockMigratorStats {
  batches: number;
  rowsOffered: number;
  rowsCopied: number;
  deviceErrors: number;
  deviceResets: number;
  workerRestarts: number;
  inits: number;
  disposes: number;
  /** With `runHooks`: runs started and ended. */
  runsStarted: number;
  runsEnded: number;
}

export type MockMigrator = Migrator & {
  stats(): MockMigratorStats;
  /** Every fault it honoured, as `site:action@row`. */
  readonly honoured: string[];
};

let workerUrl: URL | undefined;
function copyWorkerUrl(): URL {
  if (workerUrl) return workerUrl;
  for (const rel of ['./mock-copy-worker.js', '../dist/mock-copy-worker.js']) {
    const u = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(u))) return (workerUrl = u);
  }
  throw new Error(
    'the mock migrator worker mode needs the built dist/mock-copy-worker.js of @pagemig/testkit',
  );
}

const ROW = 4;
type RowFate = 'copy' | 'skip' | 'garbage' | 'stop';

/**
 * A migrator for tests that honours every fault site (see `fault_inject` in @pagemig/core): it
 * throws, rejects, hangs, skips or scribbles rows, reports a device error or a device hang with
 * a reset in the middle of a batch, and (with `workers`) loses a copy worker. Without faults it
 * copies every row correctly, so it passes the conformance suite, and it is the reference for
 * how a driver honours the plan.
 */
export function createMockMigrator(opts: MockMigratorOptions = {}): MockMigrator {
  const name = opts.name ?? 'mock';
  const nWorkers = opts.workers ?? 0;
  const yieldEvery = opts.yieldEvery ?? 32;
  const sites = [
    'copy_batch',
    'copy_row',
    'device_error',
    'device_hang',
    ...(nWorkers ? ['worker_exit'] : []),
  ];
  const capabilities: MigratorCapabilities = {
    offloadsCpu: nWorkers > 0,
    channels: Math.max(1, nWorkers),
    maxInFlightBatches: 4,
    needsSharedMemory: true,
    faultSites: sites,
    ...opts.capabilities,
  };
  let ctx: MigratorContext | null = null;
  let ram: Uint8Array[] = [];
  let shift = 0;
  let mask = 0;
  let workers: (Worker | null)[] = [];
  let taskId = 0;
  const pending = new Map<number, { worker: number; resolve: (died: boolean) => void }>();
  const honoured: string[] = [];
  const stats: MockMigratorStats = {
    batches: 0,
    rowsOffered: 0,
    rowsCopied: 0,
    deviceErrors: 0,
    deviceResets: 0,
    workerRestarts: 0,
    inits: 0,
    disposes: 0,
    runsStarted: 0,
    runsEnded: 0,
  };

  const plan = (): FaultPlan | null => (opts.faults !== undefined ? opts.faults : (ctx?.faults ?? null));
  const note = (r: Readonly<FaultRule>, row: number) => honoured.push(`${r.site}:${r.action ?? ''}@${row}`);

  function startWorker(i: number): void {
    const w = new Worker(copyWorkerUrl(), { workerData: { sections: ctx!.sections, shift } });
    w.on('message', (msg: { id: number }) => {
      const t = pending.get(msg.id);
      pending.delete(msg.id);
      t?.resolve(false);
    });
    w.on('exit', () => {
      if (workers[i] !== w) return;
      workers[i] = null;
      // Tasks of a dead worker end "died": their unfinished rows stay unmarked.
      for (const [id, t] of pending) {
        if (t.worker !== i) continue;
        pending.delete(id);
        t.resolve(true);
      }
    });
    workers[i] = w;
  }

  function copyRow(batch: MigrationBatch, i: number): void {
    const src = batch.src(i);
    const dst = batch.dst(i);
    const len = batch.nrPages(i) * 4096;
    const from = (src & mask) * 4096;
    ram[dst >>> shift]!.set(ram[src >>> shift]!.subarray(from, from + len), (dst & mask) * 4096);
  }

  function scribble(batch: MigrationBatch, i: number): void {
    const dst = batch.dst(i);
    const at = (dst & mask) * 4096;
    ram[dst >>> shift]!.fill(0xa5, at, at + batch.nrPages(i) * 4096);
  }

  /** Waits `ms` or until the signal aborts. */
  function wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async function copyInline(batch: MigrationBatch, fates: RowFate[], signal: AbortSignal): Promise<number> {
    let copied = 0;
    for (let i = 0; i < batch.rows; i++) {
      if (i % yieldEvery === 0 && i > 0) await new Promise((r) => setImmediate(r));
      if (signal.aborted) break;
      const f = fates[i]!;
      if (f === 'stop') break;
      if (f === 'skip') continue;
      if (f === 'garbage') {
        scribble(batch, i);
        continue;
      }
      copyRow(batch, i);
      batch.markCopied(i);
      copied++;
    }
    return copied;
  }

  async function copyOnWorkers(batch: MigrationBatch, fates: RowFate[], dieAt: number): Promise<number> {
    // Rows up to a stop (device error or hang) are dealt round-robin in contiguous shares.
    const rows: number[] = [];
    for (let i = 0; i < batch.rows && fates[i] !== 'stop'; i++) {
      if (fates[i] === 'garbage') scribble(batch, i);
      else if (fates[i] === 'copy') rows.push(i);
    }
    const per = Math.ceil(rows.length / workers.length);
    const jobs: Promise<boolean>[] = [];
    for (let w = 0; w < workers.length && w * per < rows.length; w++) {
      if (!workers[w]) startWorker(w);
      const share = rows.slice(w * per, (w + 1) * per);
      const id = ++taskId;
      jobs.push(
        new Promise<boolean>((resolve) => {
          pending.set(id, { worker: w, resolve });
          const task: CopyTask = {
            id,
            table: batch.table,
            rows: share,
            dieAt: share.includes(dieAt) ? dieAt : -1,
          };
          workers[w]!.postMessage(task);
        }),
      );
    }
    const died = await Promise.all(jobs);
    for (let w = 0; w < died.length; w++) {
      if (!died[w]) continue;
      stats.workerRestarts++;
      ctx?.count('worker_restarts');
      ctx?.logger.warn(`copy worker ${w} died; its unfinished rows are left to the engine`);
      startWorker(w);
    }
    let copied = 0;
    for (let i = 0; i < batch.rows; i++) if (batch.isCopied(i)) copied++;
    return copied;
  }

  return defineMigrator({
    apiVersion: MIGRATOR_API_VERSION,
    name,
    version: __PACKAGE_VERSION__,
    engines: { core: __CORE_RANGE__ },
    capabilities,
    honoured,

    init(c: MigratorContext) {
      stats.inits++;
      ctx = c;
      ram = c.sections.map((s) => new Uint8Array(s));
      shift = c.sectionPfnShift;
      mask = (1 << shift) - 1;
      workers = Array.from({ length: nWorkers }, () => null);
      for (let i = 0; i < nWorkers; i++) startWorker(i);
    },

    ...(opts.shouldOffload ? { shouldOffload: opts.shouldOffload } : {}),
    ...(opts.runHooks
      ? {
          runStart() {
            stats.runsStarted++;
          },
          runEnd() {
            stats.runsEnded++;
          },
        }
      : {}),

    async copyBatch(batch: MigrationBatch, { signal }: { signal: AbortSignal }) {
      if (!ctx) throw new Error(`${name}: copyBatch before init`);
      stats.batches++;
      stats.rowsOffered += batch.rows;
      const faults = plan();
      // copy_batch: the whole call misbehaves.
      const f = faults?.hit('copy_batch', { migrator: name }) ?? null;
      if (f) {
        note(f, -1);
        const msg = f.message ?? `${name}: injected ${f.action ?? 'throw'} at copy_batch`;
        switch (f.action ?? 'throw') {
          case 'throw':
            throw new InjectedFault('copy_batch', msg);
          case 'reject':
            await Promise.resolve();
            throw new InjectedFault('copy_batch', msg);
          case 'hang':
            await new Promise<void>((resolve) => {
              if (signal.aborted) resolve();
              else signal.addEventListener('abort', () => resolve(), { once: true });
            });
            return;
          case 'hang_ignore_abort':
            await new Promise<never>(() => {});
            return;
        }
      }
      // Per-row fates, decided up front (the order of a real device's descriptors).
      const fates: RowFate[] = new Array(batch.rows).fill('copy');
      let stopKind: 'error' | 'hang' | null = null;
      let stopRule: Readonly<FaultRule> | null = null;
      let dieAt = -1;
      if (faults) {
        for (let i = 0; i < batch.rows; i++) {
          const info = { migrator: name, row: i };
          const die = nWorkers && dieAt < 0 ? faults.hit('worker_exit', info) : null;
          if (die) {
            note(die, i);
            dieAt = i;
          }
          const hang = faults.hit('device_hang', info);
          const err = hang ? null : faults.hit('device_error', info);
          if (hang || err) {
            note((hang ?? err)!, i);
            stopKind = hang ? 'hang' : 'error';
            stopRule = hang ?? err;
            fates.fill('stop', i);
            break;
          }
          const row = faults.hit('copy_row', info);
          if (row) {
            note(row, i);
            fates[i] = row.action === 'garbage' ? 'garbage' : 'skip';
          }
        }
      }
      const copied = nWorkers
        ? await copyOnWorkers(batch, fates, dieAt)
        : await copyInline(batch, fates, signal);
      stats.rowsCopied += copied;
      if (stopKind === 'error') {
        stats.deviceErrors++;
        ctx.count('device_errors');
        ctx.logger.warn(
          `descriptor error ${String(stopRule?.code ?? 'EIO')} at row ${fates.indexOf('stop')}; the rest is left to the engine`,
        );
      } else if (stopKind === 'hang') {
        // The device stopped completing: wait for the completion timeout, then reset the channel.
        await wait(stopRule?.timeoutMs ?? opts.deviceTimeoutMs ?? 50, signal);
        stats.deviceResets++;
        ctx.count('device_resets');
        ctx.logger.warn(`device hang at row ${fates.indexOf('stop')}: timed out, channel reset`);
      }
    },

    async dispose() {
      stats.disposes++;
      const ws = workers.filter((w): w is Worker => w !== null);
      workers = [];
      for (const t of pending.values()) t.resolve(true);
      pending.clear();
      await Promise.all(ws.map((w) => w.terminate()));
      ram = [];
      ctx = null;
    },

    stats: () => ({ ...stats }),
  }) as MockMigrator;
}

/** Reads the table flags of a batch row (for tests). */
export function rowMarked(batch: MigrationBatch, i: number): boolean {
  return (Atomics.load(batch.table, i * ROW + 3) & 1) !== 0;
}
