// A worker of parallelRawCopier: sleeps until a pass is announced, reports ready and spins until
// go (so the timed copy excludes its wake-up), copies its run of pieces if the pass uses it,
// reports done. A batched pass (passBatched) copies its part of each batch in step with the others.
import { workerData } from 'node:worker_threads';
import { copyBatchedShare, copyShare } from './raw-copy-share.mjs';

const { src: srcBuf, dst: dstBuf, ctl, index } = workerData;
const src = new Uint8Array(srcBuf);
const dst = new Uint8Array(dstBuf);
const [CMD, GO, READY, DONE, CHUNK, THREADS, BATCHED, SEQ, BDONE] = [0, 1, 2, 3, 4, 5, 6, 7, 8];

let seen = 0;
for (;;) {
  Atomics.wait(ctl, CMD, seen);
  const cmd = Atomics.load(ctl, CMD);
  if (cmd < 0) break;
  seen = cmd;
  Atomics.add(ctl, READY, 1);
  while (Atomics.load(ctl, GO) !== cmd);
  const threads = Atomics.load(ctl, THREADS);
  // Outside this pass's threads: nothing to copy, but it still reports done.
  const chunk = Atomics.load(ctl, CHUNK);
  if (index < threads) {
    if (Atomics.load(ctl, BATCHED)) copyBatchedShare(src, dst, chunk, index, threads, ctl, SEQ, BDONE);
    else copyShare(src, dst, chunk, index, threads);
  }
  Atomics.add(ctl, DONE, 1);
}
