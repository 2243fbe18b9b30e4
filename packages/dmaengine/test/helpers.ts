import { createMachine, type Machine, MigrateMode, MigrateReason, MigrationBatch } from '@pagemig/core';

/** Deterministic bytes: every 4-byte word differs between seeds and positions. */
export function pattern(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const w = new Uint32Array(out.buffer, 0, n >>> 2);
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i + 1, 2654435761) ^ Math.imul(seed + 1, 40503);
  return out;
}

export async function smallMachine(memory = '32MiB', nodes = 2): Promise<Machine> {
  return createMachine({
    nodes: Array.from({ length: nodes }, () => ({ memory })),
    prefault: false,
  });
}

/** A batch table in a SharedArrayBuffer, as the engine builds it. */
export function makeBatch(rows: [src: number, dst: number, nr: number][]): MigrationBatch {
  const table = new Int32Array(new SharedArrayBuffer(Math.max(rows.length, 1) * 16));
  rows.forEach(([s, d, n], i) => {
    table.set([s, d, n, 0], i * 4);
  });
  return new MigrationBatch(table, rows.length, MigrateReason.MR_SYSCALL, MigrateMode.MIGRATE_SYNC);
}

export function markedRows(batch: MigrationBatch): number[] {
  const out: number[] = [];
  for (let i = 0; i < batch.rows; i++) if (batch.isCopied(i)) out.push(i);
  return out;
}

/** Fills pfns [pfn, pfn + nr) with the pattern of `seed` and returns the bytes. */
export function fillPages(m: Machine, pfn: number, nr: number, seed: number): Uint8Array {
  const data = pattern(seed, nr * 4096);
  m.kernel.mem.view(pfn, nr).set(data);
  return data;
}

export function samePages(m: Machine, pfn: number, data: Uint8Array): boolean {
  return Buffer.compare(m.kernel.mem.view(pfn, data.length / 4096), data) === 0;
}

export const never: AbortSignal = new AbortController().signal;
