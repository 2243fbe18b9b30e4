/**
 * The driver side of starting an emulated device: its worker thread and the boot handshake on the
 * device's state word (see `runDeviceLoop`).
 */
import { Worker } from 'node:worker_threads';
import { EMU_STATE_BOOT, EMU_STATE_READY, type EmulatorWords } from './device_loop.js';

const BOOT_TIMEOUT_MS = 10_000;

export interface DeviceThreadOptions {
  /** The device model's worker module. */
  url: URL;
  workerData: unknown;
  /** The register file that holds the emulator words. */
  regs: Int32Array;
  words: EmulatorWords;
  /** Names the device in errors, e.g. "ptdma device pt0". */
  name: string;
}

export interface DeviceThread {
  readonly worker: Worker;
  /** Resolves once the device thread runs its loop; rejects if it dies or hangs first. */
  readonly ready: Promise<void>;
}

/**
 * Starts a device model in its own worker thread. The thread keeps the process alive only while it
 * boots; once ready (or failed) it is unref'd, so an idle device never holds a process open.
 */
export function startDeviceThread(o: DeviceThreadOptions): DeviceThread {
  const worker = new Worker(o.url, { workerData: o.workerData });
  const { regs, name } = o;
  const state = o.words.state;
  const ready = new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      worker.unref();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    worker.once('error', fail);
    worker.once('exit', (code) => fail(new Error(`${name} exited with code ${code} during start`)));
    const deadline = performance.now() + BOOT_TIMEOUT_MS;
    const poll = () => {
      if (settled) return;
      if (Atomics.load(regs, state) === EMU_STATE_READY) {
        settled = true;
        worker.unref();
        resolve();
        return;
      }
      if (performance.now() > deadline) {
        fail(new Error(`${name} did not start within ${BOOT_TIMEOUT_MS} ms`));
        return;
      }
      const w = Atomics.waitAsync(regs, state, EMU_STATE_BOOT, 50);
      if (w.async) void w.value.then(poll);
      else poll();
    };
    poll();
  });
  return { worker, ready };
}
