/**
 * The user-thread side of the busy-system scenario (built as dist/busy-worker.js and loaded by
 * core's user threads as `fn(mmu, data, tid)`). It walks its region page by page: one
 * read-modify-write of the thread's own word (checked against what it wrote last, so a write lost
 * during a migration is counted) and `readWords` more loads per page. Every 64 pages it adds to a
 * shared counter, so the host can sample the throughput over any window. Imports nothing at run
 * time.
 */
import type { Mmu } from '@pagemig/core';

export interface BusyWorkerData {
  addr: number;
  pages: number;
  /** Int32 counters, one per thread slot: pages visited so far. */
  counter: SharedArrayBuffer;
  /** This thread's counter and the word of each page it owns (0..15). */
  slot: number;
  /** Extra 32-bit loads per page visit (words 16..16+readWords). Default 16. */
  readWords?: number;
}

export interface BusyWorkerResult {
  slot: number;
  visits: number;
  /** Own-word values that were not what this thread last wrote (lost writes). */
  errors: number;
  seconds: number;
  migrationWaits: number;
  tlbFlushes: number;
  faults: number;
}

export default function busyTouch(mmu: Mmu, d: BusyWorkerData): BusyWorkerResult {
  const counter = new Int32Array(d.counter);
  const base = mmu.vpnOf(d.addr);
  const pages = d.pages;
  const slot = d.slot;
  const extra = d.readWords ?? 16;
  const expect = new Int32Array(pages);
  for (let i = 0; i < pages; i++) expect[i] = mmu.loadWord(base + i, slot);
  const t0 = performance.now();
  let visits = 0;
  let errors = 0;
  let sink = 0;
  let p = 0;
  for (;;) {
    const vpn = base + p;
    const got = mmu.loadWord(vpn, slot);
    if (got !== expect[p]) errors++;
    const next = (got + 1) | 0;
    mmu.storeWord(vpn, slot, next);
    expect[p] = next;
    for (let w = 16; w < 16 + extra; w++) sink ^= mmu.loadWord(vpn, w);
    if (++p === pages) p = 0;
    if ((++visits & 63) === 0) {
      Atomics.add(counter, slot, 64);
      if (mmu.shouldStop()) break;
    }
  }
  const st = mmu.stats();
  return {
    slot,
    visits: visits + (sink & 0),
    errors,
    seconds: (performance.now() - t0) / 1000,
    migrationWaits: st.migrationWaits,
    tlbFlushes: st.tlbFlushes,
    faults: st.faults,
  };
}
