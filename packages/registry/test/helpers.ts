import { fileURLToPath } from 'node:url';
import { createMachine, type Machine, PagemigError } from '@pagemig/core';
import { expect } from 'vitest';

/** Holds node_modules/ with the fixture driver packages. */
export const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** The error a call throws or a promise rejects with; fails unless it is a PagemigError. */
export async function caught(run: () => unknown): Promise<PagemigError> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error, 'expected an error').toBeDefined();
  expect(PagemigError.isInstance(error), `not a PagemigError: ${String(error)}`).toBe(true);
  expect((error as Record<symbol, unknown>)[Symbol.for('pagemig.error')]).toBe(true);
  return error as PagemigError;
}

export function pattern(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >>> 12)) & 255;
  return out;
}

export function smallMachine(): Promise<Machine> {
  return createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], prefault: false });
}

/**
 * Writes a pattern into a fresh 4 KiB-folio area on node 0, migrates it to node 1 with `reason`,
 * and checks that every byte arrived and the model is consistent.
 */
export async function migrateAndVerify(m: Machine, reason: 'syscall_or_cpuset' | 'compaction', seed = 1) {
  const p = m.spawn();
  const len = 1 << 20;
  const a = p.mmap(len, { thp: 'never', node: 0 });
  const data = pattern(seed, len);
  p.write(a, data);
  const pfns: number[] = [];
  for (let off = 0; off < len; off += 4096) pfns.push(p.pageInfo(a + off)!.headPfn);
  const r = await m.migrateFolios(pfns, { node: 1, reason });
  expect(r.ret).toBe(0);
  expect(p.pageInfo(a)!.node).toBe(1);
  expect(Buffer.compare(p.read(a, len), data)).toBe(0);
  m.checkInvariants();
  return { result: r, pages: pfns.length };
}
