/**
 * Worker entry of a user thread (built as dist/user-thread.js). It builds the thread's MMU over
 * the shared page tables and RAM, runs a built-in workload or the default (or named) export of a
 * user module as `fn(mmu, data)`, and posts the result. Imports only worker-safe modules.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Mmu, MmuFault, type MmuInit } from './mmu.js';
import { runWorkload, type Workload } from './workload.js';
import { runAccessWorkload } from './workload_access.js';

export interface UserThreadData {
  mmu: MmuInit;
  tid: number;
  workload?: Workload;
  module?: string;
  export?: string;
  data?: unknown;
}

export type UserThreadMessage =
  | { ok: true; result: unknown }
  | { ok: false; error: { name: string; message: string; stack?: string; errno?: number; addr?: number } };

const d = workerData as UserThreadData;
const mmu = new Mmu(d.mmu);

async function main(): Promise<unknown> {
  mmu.enter();
  if (d.workload)
    return d.workload.kind === 'pattern' ? runWorkload(mmu, d.workload) : runAccessWorkload(mmu, d.workload);
  if (!d.module) throw new Error('a user thread needs a workload or a module');
  const mod = (await mmu.park(import(d.module))) as Record<string, unknown>;
  const name = d.export ?? 'default';
  const fn = mod[name];
  if (typeof fn !== 'function')
    throw new Error(`module ${d.module} has no function export ${JSON.stringify(name)}`);
  return await (fn as (mmu: Mmu, data: unknown, tid: number) => unknown)(mmu, d.data, d.tid);
}

main().then(
  (result) => {
    mmu.exit();
    const transfer =
      result && typeof result === 'object' && 'generations' in result
        ? [(result as { generations: Uint32Array | null }).generations?.buffer].filter(
            (b): b is ArrayBuffer => b instanceof ArrayBuffer,
          )
        : [];
    parentPort!.postMessage({ ok: true, result } satisfies UserThreadMessage, transfer);
  },
  (e: unknown) => {
    mmu.exit();
    const err = e instanceof Error ? e : new Error(String(e));
    parentPort!.postMessage({
      ok: false,
      error: {
        name: err.name,
        message: err.message,
        stack: err.stack,
        ...(e instanceof MmuFault ? { errno: e.errno, addr: e.addr } : {}),
      },
    } satisfies UserThreadMessage);
  },
);
