import { expect } from 'vitest';
import type { Machine } from '../src/machine.js';
import { MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { PTE_MIGRATION, PTE_PRESENT } from '../src/pagetable.js';
import type { Process } from '../src/process.js';
import type { UserThread } from '../src/user_threads.js';
import { type PatternResult, type PatternWorkload, verifyPattern } from '../src/workload.js';

/** PAGEMIG_SOAK=1 turns the stress tests into a soak (the selftest's 20 s per variant). */
export const SOAK = process.env.PAGEMIG_SOAK === '1';

/** migration.c's MAX_RETRIES: consecutive positive returns tolerated. */
export const MAX_RETRIES = 100;

export interface PingPong {
  attempts: number;
  moved: number;
  /** Positive returns (pages not migrated), each retried. */
  notMigrated: number;
  maxConsecutive: number;
  node: number;
}

/**
 * tools/testing/selftests/mm/migration.c migrate(): move_pages(0, 1, &ptr, &n2, MOVE_ALL) in a
 * loop, swapping n1/n2 on success; a positive return is retried up to MAX_RETRIES consecutive
 * times; a negative return fails. Bounded by `iterations` and `ms`.
 */
export async function pingPong(
  p: Process,
  addr: number,
  opts: { iterations: number; ms: number; n1?: number; n2?: number },
): Promise<PingPong> {
  let n1 = opts.n1 ?? 0;
  let n2 = opts.n2 ?? 1;
  const out: PingPong = { attempts: 0, moved: 0, notMigrated: 0, maxConsecutive: 0, node: n1 };
  let consecutive = 0;
  const t0 = performance.now();
  while (out.attempts < opts.iterations && performance.now() - t0 < opts.ms) {
    out.attempts++;
    const r = await p.movePages(0, [addr], [n2], MPOL_MF_MOVE_ALL);
    if (r.ret < 0) throw new Error(`move_pages failed: errno ${r.errno}`);
    if (r.ret > 0) {
      out.notMigrated++;
      consecutive++;
      out.maxConsecutive = Math.max(out.maxConsecutive, consecutive);
      if (consecutive > MAX_RETRIES) throw new Error(`${consecutive} consecutive migrations failed`);
      continue;
    }
    consecutive = 0;
    out.moved++;
    [n1, n2] = [n2, n1];
    out.node = n1;
  }
  return out;
}

/** Starts `lanes` pattern writers (and `readers` readers) over [addr, addr + bytes) of `p`. */
export function startPattern(
  p: Process,
  w: Omit<PatternWorkload, 'kind' | 'lane'>,
  opts: { writers?: readonly number[]; readers?: number } = {},
): UserThread<PatternResult>[] {
  const writers = opts.writers ?? Array.from({ length: w.lanes }, (_, i) => i);
  const threads = writers.map((lane) =>
    p.spawnThread<PatternResult>({ workload: { kind: 'pattern', ...w, lane } }),
  );
  for (let i = 0; i < (opts.readers ?? 0); i++)
    threads.push(
      p.spawnThread<PatternResult>({ workload: { kind: 'pattern', ...w, lane: -1, seed: 99 + i } }),
    );
  return threads;
}

/** Waits until every thread ran at least one pass-check (it is RUNNING or has done work). */
export async function untilRunning(threads: readonly UserThread[], timeoutMs = 10_000): Promise<void> {
  const t0 = performance.now();
  while (threads.some((t) => t.state === 'starting')) {
    if (performance.now() - t0 > timeoutMs) throw new Error('threads did not start');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Stops the threads, expects each to end cleanly with no pattern error, and returns the results. */
export async function stopAndCheck(threads: readonly UserThread<PatternResult>[]): Promise<PatternResult[]> {
  for (const t of threads) t.stop();
  const results = await Promise.all(threads.map((t) => t.join()));
  for (const r of results) {
    expect(r.errors, `thread lane ${r.lane}: ${JSON.stringify(r.firstErrors.slice(0, 4))}`).toBe(0);
    expect(r.ops).toBeGreaterThan(0);
  }
  return results;
}

/** verifyPattern on the process's memory; expects every writer's last write to be there. */
export function expectPattern(
  p: Process,
  w: Pick<PatternWorkload, 'addr' | 'bytes' | 'lanes' | 'strideWords'>,
  results: readonly PatternResult[],
): void {
  const check = verifyPattern((a, n) => p.read(a, n), w, results);
  expect(check.mismatches, JSON.stringify(check.first.slice(0, 4))).toBe(0);
  expect(check.checked).toBeGreaterThan(0);
}

/** No migration entry is left in any page table of the machine, and the model is consistent. */
export function expectSettled(m: Machine): void {
  for (const proc of m.kernel.processes.values()) {
    const pt = proc.mm.pt;
    for (let i = 0; i < pt.pmd.length; i++) {
      const e = pt.pmd[i]!;
      if ((e & (PTE_PRESENT | PTE_MIGRATION)) === PTE_MIGRATION)
        throw new Error(`PMD ${i} is a migration entry`);
    }
    const ptes = pt.pte;
    for (let i = 0; i < ptes.length; i++) {
      const e = ptes[i]!;
      if ((e & (PTE_PRESENT | PTE_MIGRATION)) === PTE_MIGRATION)
        throw new Error(`PTE ${i} is a migration entry`);
    }
  }
  m.checkInvariants();
}
