// A worker of parallelRawCopier: sleeps until a pass is announced, reports ready and spins until
// go (so the timed copy excludes its wake-up), copies its run of pieces if the pass uses it,
// reports done.
import { workerData } from 'node:worker_threads';
import { copyShare } from './raw-copy-share.mjs';

const { src: srcBuf, dst: dstBuf, ctl, index } = workerData;
const src = new Uint8Array(srcBuf);
const dst = new Uint8Array(dstBuf);
const [CMD, GO, READY, DONE, CHUNK, THREADS] = [0, 1, 2, 3, 4, 5];

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
  if (index < threads) copyShare(src, dst, Atomics.load(ctl, CHUNK), index, threads);
  Atomics.add(ctl, DONE, 1);
}
