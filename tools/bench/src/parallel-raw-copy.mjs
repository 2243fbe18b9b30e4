// The same-run ceiling for multi-threaded copies: the raw copy of rawCopier, cut into `threads`
// contiguous shares copied at once by the calling thread and `threads - 1` worker threads. The
// workers are already spinning when the clock starts (a wake-up of a parked thread costs 100-400 µs
// on these VMs and is a cost of the migrator, not of the memory), and the calling thread copies a
// share instead of waiting (a waiting thread would spin on a core a copier needs), so a pass times
// only the copy: what N threads get out of this machine's memory, against which a parallel
// migrator's speed-up is judged.
import { Worker } from 'node:worker_threads';
import { copyBatchedShare, copyShare } from './raw-copy-share.mjs';

const PAGE = 4096;
/** Words of the control block: the command each pass bumps, its go word, the ready and done counts, the piece size and the pass's thread count. */
const CMD = 0;
const GO = 1;
const READY = 2;
const DONE = 3;
const CHUNK = 4;
const THREADS = 5;
/** A batched pass: its batch sequence and the parts done so far. */
const BATCHED = 6;
const SEQ = 7;
const BDONE = 8;
const STOP = -1;

/**
 * Starts `threads - 1` worker threads over two pre-faulted SharedArrayBuffers of `bytes` bytes;
 * `pass(chunk, n = threads)` copies all of `src` to `dst` in pieces of `chunk` bytes, the pieces cut
 * into `n` contiguous runs, one per thread (the calling thread's is run 0), and returns the seconds
 * from go to the last thread done; `pass(chunk, 1)` is the one-thread reference over the same
 * memory. `passBatched(batch, n)` copies one batch of `batch` bytes at a time, each cut into `n`
 * contiguous parts copied at once, every thread waiting for the others at the end of each batch: the
 * ceiling of a pool that splits one batch at a time (cpu-multithreaded at the default batch).
 * `close()` ends the workers (they never keep the process alive).
 * @param {number} bytes
 * @param {number} threads
 * @returns {Promise<{ readonly bytes: number, readonly threads: number, pass(chunk: number, n?: number): number, passBatched(batch: number, n?: number): number, close(): Promise<void> }>}
 */
export async function parallelRawCopier(bytes, threads) {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > 2 ** 32) {
    throw new RangeError(`parallelRawCopier: bytes must be an integer in 1..2^32 (got ${bytes})`);
  }
  if (!Number.isSafeInteger(threads) || threads < 1) {
    throw new RangeError(`parallelRawCopier: threads must be a positive integer (got ${threads})`);
  }
  const srcBuf = new SharedArrayBuffer(bytes);
  const dstBuf = new SharedArrayBuffer(bytes);
  const src = new Uint8Array(srcBuf);
  const dst = new Uint8Array(dstBuf);
  for (let i = 0; i < bytes; i += PAGE) {
    src[i] = (i / PAGE) % 251;
    dst[i] = 255;
  }
  const ctl = new Int32Array(new SharedArrayBuffer(4 * 9));
  const workers = [];
  for (let i = 1; i < threads; i++) {
    const w = new Worker(new URL('./raw-copy-worker.mjs', import.meta.url), {
      workerData: { src: srcBuf, dst: dstBuf, ctl, index: i },
    });
    workers.push(w);
  }
  const exited = workers.map((w) => new Promise((resolve) => w.once('exit', resolve)));
  await Promise.all(
    workers.map(
      (w) =>
        new Promise((resolve, reject) => {
          w.once('online', resolve);
          w.once('error', reject);
        }),
    ),
  );
  // Started: from now on the threads never keep the process alive.
  for (const w of workers) w.unref();

  let cmd = 0;
  const run = (chunk, n, batched) => {
    if (n === 1) {
      const t0 = performance.now();
      copyShare(src, dst, chunk, 0, 1);
      return (performance.now() - t0) / 1000;
    }
    Atomics.store(ctl, CHUNK, chunk);
    Atomics.store(ctl, THREADS, n);
    Atomics.store(ctl, BATCHED, batched ? 1 : 0);
    Atomics.store(ctl, SEQ, 1);
    Atomics.store(ctl, BDONE, 0);
    Atomics.store(ctl, READY, 0);
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, CMD, ++cmd);
    Atomics.notify(ctl, CMD);
    while (Atomics.load(ctl, READY) < threads - 1);
    const t0 = performance.now();
    Atomics.store(ctl, GO, cmd);
    if (batched) copyBatchedShare(src, dst, chunk, 0, n, ctl, SEQ, BDONE);
    else copyShare(src, dst, chunk, 0, n);
    while (Atomics.load(ctl, DONE) < threads - 1);
    return (performance.now() - t0) / 1000;
  };
  /** One timed pass, every page checked after it. */
  const timed = (chunk, n, batched) => {
    if (!warm) {
      run(chunk, threads, batched);
      warm = true;
    }
    for (let i = 0; i < bytes; i += PAGE) dst[i] = 255;
    const seconds = run(chunk, n, batched);
    // Every page of every share must have landed: a copy that did not is a broken reference.
    for (let i = 0; i < bytes; i += PAGE) {
      if (dst[i] !== src[i]) throw new Error(`parallelRawCopier: the copy did not land at byte ${i}`);
    }
    return seconds;
  };
  const check = (chunk, n) => {
    if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk > bytes) {
      throw new RangeError(`parallelRawCopier: chunk must be an integer in 1..bytes (got ${chunk})`);
    }
    if (!Number.isSafeInteger(n) || n < 1 || n > threads) {
      throw new RangeError(`parallelRawCopier: n must be an integer in 1..${threads} (got ${n})`);
    }
  };
  let warm = false;
  return {
    bytes,
    threads,
    pass(chunk, n = threads) {
      check(chunk, n);
      return timed(chunk, n, false);
    },
    passBatched(batch, n = threads) {
      check(batch, n);
      return timed(batch, n, true);
    },
    async close() {
      // Referenced again until they exit, or the process could end with this promise pending.
      for (const w of workers) w.ref();
      Atomics.store(ctl, CMD, STOP);
      Atomics.notify(ctl, CMD);
      await Promise.all(exited);
    },
  };
}
