import {
  createMachine,
  type Machine,
  type Migrator,
  PAGE_SIZE,
  type PatternResult,
  type Process,
  type UserThread,
  verifyPattern,
} from '@pagemig/core';
import { expect } from 'vitest';
import type { NumaBalancing } from '../src/index.js';

/** Two 16 MiB nodes: small enough that first touch stays cheap. */
export function smallMachine(): Promise<Machine> {
  return createMachine({ nodes: [{ memory: '16MiB' }, { memory: '16MiB' }] });
}

/** Bytes of `pages` pages, page j filled from seed `seed` and j; no byte is zero. */
export function pageBytes(pages: number, seed: number): Uint8Array {
  const out = new Uint8Array(pages * PAGE_SIZE);
  for (let i = 0; i < out.length; i++) out[i] = (((i >>> 12) * 7 + seed * 13 + (i & 255)) % 251) + 1;
  return out;
}

/** Polls `cond` every 10 ms until it holds; fails after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The node of each page of [addr, addr + pages * PAGE_SIZE); -1 while a page is under migration. */
export function nodesOf(p: Process, addr: number, pages: number): number[] {
  return Array.from({ length: pages }, (_, i) => p.pageInfo(addr + i * PAGE_SIZE)?.node ?? -1);
}

/**
 * The scenario: process `app` runs on node 0 and maps `hot + cold` pages there (the cold
 * ones written with known bytes); one thread on node 1 writes the hot pages again and again.
 */
export interface RemoteHotSet {
  p: Process;
  /** The hot pages, then the cold ones, in one area. */
  addr: number;
  hot: number;
  cold: number;
  coldBytes: Uint8Array;
  thread: UserThread<PatternResult>;
  workload: { kind: 'pattern'; addr: number; bytes: number; lanes: number; lane: number };
}

export function remoteHotSet(m: Machine, hot: number, cold: number): RemoteHotSet {
  const p = m.spawn({ comm: 'app', node: 0 });
  const addr = p.mmap((hot + cold) * PAGE_SIZE, { thp: 'never' });
  // The hot pages are faulted in zeroed (the pattern workload checks every word it finds).
  p.touch(addr, hot * PAGE_SIZE, 'write');
  const coldBytes = pageBytes(cold, 5);
  p.write(addr + hot * PAGE_SIZE, coldBytes);
  const workload = { kind: 'pattern' as const, addr, bytes: hot * PAGE_SIZE, lanes: 1, lane: 0 };
  const thread = p.spawnThread<PatternResult>({ workload, node: 1 });
  return { p, addr, hot, cold, coldBytes, thread, workload };
}

/** Stops the thread and checks every byte: the writer's last generations and the cold pages. */
export async function stopAndVerify(s: RemoteHotSet): Promise<PatternResult> {
  s.thread.stop();
  const r = await s.thread.join();
  expect(r.errors, JSON.stringify(r.firstErrors)).toBe(0);
  const check = verifyPattern((a, n) => s.p.read(a, n), s.workload, [r]);
  expect(check.mismatches).toBe(0);
  expect(check.checked).toBeGreaterThan(0);
  const cold = s.p.read(s.addr + s.hot * PAGE_SIZE, s.cold * PAGE_SIZE);
  expect(Buffer.compare(cold, s.coldBytes)).toBe(0);
  return r;
}

/** Every entry of the area is PROT_NONE or on node 1 (the scanner has seen all of it). */
export function scannedAll(s: RemoteHotSet): boolean {
  for (let i = 0; i < s.hot + s.cold; i++) {
    const info = s.p.pageInfo(s.addr + i * PAGE_SIZE);
    if (!info || (!info.protnone && info.node !== 1)) return false;
  }
  return true;
}

/** Registers `mig` for numa_misplaced only. */
export async function routeNumaMisplaced(m: Machine, mig: Migrator): Promise<void> {
  await m.offload.register(mig, 'numa_misplaced');
}

/** Waits until the hot set is on node 1 and the scanner has covered the area; returns the time it took. */
export async function converge(s: RemoteHotSet, nb: NumaBalancing, ms = 60_000): Promise<number> {
  const t0 = performance.now();
  await until(() => nodesOf(s.p, s.addr, s.hot).every((n) => n === 1), ms, 'the hot set to reach node 1');
  await until(() => scannedAll(s), ms, 'the scanner to cover the cold pages');
  await nb.settled();
  return performance.now() - t0;
}
