/**
 * Copies run `index` of `threads` contiguous runs of the pieces of `chunk` bytes that cover `src`
 * (parallelRawCopier's split, shared by the calling thread and its workers).
 * @param {Uint8Array} src
 * @param {Uint8Array} dst
 * @param {number} chunk
 * @param {number} index
 * @param {number} threads
 */
export function copyShare(src, dst, chunk, index, threads) {
  const pieces = Math.ceil(src.length / chunk);
  const end = Math.min(Math.floor(((index + 1) * pieces) / threads) * chunk, src.length);
  for (let off = Math.floor((index * pieces) / threads) * chunk; off < end; off += chunk)
    dst.set(src.subarray(off, Math.min(off + chunk, end)), off);
}

/**
 * The batched split: the pieces of `batch` bytes one after another, each cut into `threads`
 * contiguous parts, part `index` copied here; every thread waits at the end of each batch until
 * the calling thread posts the next one (`seq` word), and counts its part done (`done` word): the
 * best any pool of threads already running can do when one batch at a time is split across them.
 * @param {Uint8Array} src
 * @param {Uint8Array} dst
 * @param {number} batch
 * @param {number} index
 * @param {number} threads
 * @param {Int32Array} ctl
 * @param {number} seq
 * @param {number} done
 */
export function copyBatchedShare(src, dst, batch, index, threads, ctl, seq, done) {
  const batches = Math.ceil(src.length / batch);
  for (let b = 0; b < batches; b++) {
    if (index > 0) atLeast(ctl, seq, b + 1);
    const off = b * batch;
    const len = Math.min(batch, src.length - off);
    const from = off + Math.floor((len * index) / threads);
    const to = off + Math.floor((len * (index + 1)) / threads);
    dst.set(src.subarray(from, to), from);
    if (index > 0) Atomics.add(ctl, done, 1);
    else atLeast(ctl, done, (b + 1) * (threads - 1));
    if (index === 0 && b + 1 < batches) Atomics.store(ctl, seq, b + 2);
  }
}

/**
 * Spins until word `at` reaches `target` (the other threads' parts of a batch end within
 * microseconds of each other on an idle host); after half a millisecond it sleeps 0.2 ms at a time
 * instead, so a host with fewer free cores than threads (a loaded CI) is slowed, not stalled.
 * @param {Int32Array} ctl
 * @param {number} at
 * @param {number} target
 */
function atLeast(ctl, at, target) {
  let until = 0;
  for (let i = 0; ; i++) {
    const v = Atomics.load(ctl, at);
    if (v >= target) return;
    if ((i & 255) !== 255) continue;
    const now = performance.now();
    if (until === 0) until = now + 0.5;
    else if (now > until) Atomics.wait(ctl, at, v, 0.2);
  }
}
