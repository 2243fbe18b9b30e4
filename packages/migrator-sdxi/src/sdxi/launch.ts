/**
 * Starting an emulated SDXI function: its BARs and its worker thread, before any driver logic
 * (also what register-level tests use).
 */
import { Worker } from 'node:worker_threads';
import type { InterruptLine, IommuDomain } from '@pagemig/dmaengine';
import type { SdxiDeviceInit } from './device.js';
import {
  BAR0_BYTES,
  BAR2_BYTES,
  EMU_SPIN_NS,
  EMU_STATE,
  EMU_STATE_BOOT,
  EMU_STATE_READY,
  Mmio,
} from './regs.js';

/** The function model's worker module, next to this file in dist/. */
export const deviceUrl: URL = new URL('./sdxi-device.js', import.meta.url);

const BOOT_TIMEOUT_MS = 10_000;

/** A function thread and its BARs. */
export interface LaunchedFunction {
  readonly worker: Worker;
  readonly mmio: Mmio;
  /** Resolves once the function thread runs its loop; rejects if it dies first. */
  readonly ready: Promise<void>;
}

export interface LaunchOptions {
  name: string;
  /** This function's id (default 0). */
  sfunc?: number;
  sections: readonly SharedArrayBuffer[];
  sectionPfnShift: number;
  nrPages: number;
  /** The function's own domain: what it reaches for control structures. */
  iommu: IommuDomain;
  /** Data address spaces by PASID (null where none). */
  addressSpaces: readonly (IommuDomain | null)[];
  /** Idle spin of the function thread before it sleeps (ns). */
  spinNs?: number;
  /** The host interrupt line its MSIs go to. */
  irqLine?: InterruptLine;
}

/** Starts one emulated SDXI function in its own worker thread (unref'd: it never keeps a process alive). */
export function launchFunction(o: LaunchOptions): LaunchedFunction {
  const mmio = new Mmio(new SharedArrayBuffer(BAR0_BYTES), new SharedArrayBuffer(BAR2_BYTES));
  // Set before the thread runs (the worker start publishes it).
  mmio.i32[EMU_SPIN_NS >>> 2] = o.spinNs ?? 0;
  const init: SdxiDeviceInit = {
    kind: 'pagemig.sdxi',
    name: o.name,
    sfunc: o.sfunc ?? 0,
    bar0: mmio.bar0,
    bar2: mmio.bar2,
    sections: o.sections,
    sectionPfnShift: o.sectionPfnShift,
    nrPages: o.nrPages,
    iommu: o.iommu.sab,
    addressSpaces: o.addressSpaces.map((d) => d?.sab ?? null),
    irqLine: o.irqLine?.sab,
  };
  const worker = new Worker(deviceUrl, { workerData: init });
  const i32 = mmio.i32;
  const ready = new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      worker.unref();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    worker.once('error', fail);
    worker.once('exit', (code) =>
      fail(new Error(`sdxi function ${o.name} exited with code ${code} during start`)),
    );
    // Referenced while it boots; the state word flips to READY when it runs.
    const deadline = performance.now() + BOOT_TIMEOUT_MS;
    const poll = () => {
      if (settled) return;
      if (Atomics.load(i32, EMU_STATE >>> 2) === EMU_STATE_READY) {
        settled = true;
        worker.unref();
        resolve();
        return;
      }
      if (performance.now() > deadline) {
        fail(new Error(`sdxi function ${o.name} did not start within ${BOOT_TIMEOUT_MS} ms`));
        return;
      }
      const w = Atomics.waitAsync(i32, EMU_STATE >>> 2, EMU_STATE_BOOT, 50);
      if (w.async) void w.value.then(poll);
      else poll();
    };
    poll();
  });
  return { worker, mmio, ready };
}
