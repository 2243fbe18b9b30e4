import {
  type Machine,
  MigrateMode,
  type MigrateModeValue,
  MigrateReason,
  type MigrateReasonValue,
  type MigrationBatch,
  type Migrator,
  PAGE_SIZE,
} from '@pagemig/core';
import { batchOf, patternBytes } from './fixtures.js';

/** Rows of a direct batch: frames allocated by the suite on node 0 (src) and node 1 (dst). */
export interface DirectBatch {
  batch: MigrationBatch;
  src: number[];
  dst: number[];
  nr: number[];
  release(): void;
}

/** The reason and mode a direct batch carries (what the migrator's gate was asked about). */
export interface BatchKind {
  reason: MigrateReasonValue;
  mode: MigrateModeValue;
}

const DEFAULT_KIND: BatchKind = { reason: MigrateReason.MR_SYSCALL, mode: MigrateMode.MIGRATE_SYNC };

/** Allocates `orders.length` folio pairs, fills sources with a pattern and destinations with garbage. */
export function directBatch(
  m: Machine,
  orders: readonly number[],
  seed = 1,
  kind: BatchKind = DEFAULT_KIND,
): DirectBatch {
  const k = m.kernel;
  const rows: [number, number, number][] = [];
  const src: number[] = [];
  const dst: number[] = [];
  const nr: number[] = [];
  const guard: number[] = [];
  orders.forEach((order, i) => {
    const s = k.allocFolio({ order, nid: 0 });
    // A guard page before each destination shows writes outside the row.
    const d = k.allocFolio({ order: order + 1, nid: 1 });
    if (s < 0 || d < 0) throw new Error('conformance: the test machine ran out of memory');
    const n = 1 << order;
    const dd = d + n;
    guard.push(d);
    if (k.mem.backed) {
      k.mem.view(s, n).set(patternBytes(n * PAGE_SIZE, seed * 1000 + i));
      k.mem.view(d, 2 * n).fill(0xee);
    }
    rows.push([s, dd, n]);
    src.push(s);
    dst.push(dd);
    nr.push(n);
  });
  return {
    batch: batchOf(rows, kind.reason, kind.mode),
    src,
    dst,
    nr,
    release() {
      for (const s of src) k.folioPut(s);
      for (const g of guard) k.folioPut(g);
    },
  };
}

/**
 * Marking semantics: a marked row's destination equals its source; no byte outside the rows'
 * destinations changed (the guard pages); sources unchanged. Returns the problems.
 */
export function checkMarks(m: Machine, d: DirectBatch, seed = 1): { marked: number; problems: string[] } {
  const k = m.kernel;
  const problems: string[] = [];
  let marked = 0;
  for (let i = 0; i < d.batch.rows; i++) {
    const n = d.nr[i]!;
    const want = patternBytes(n * PAGE_SIZE, seed * 1000 + i);
    if (Buffer.compare(k.mem.view(d.src[i]!, n), want) !== 0) problems.push(`row ${i}: the source changed`);
    const guard = k.mem.view(d.dst[i]! - n, n);
    if (!guard.every((b) => b === 0xee))
      problems.push(`row ${i}: bytes written outside the row's destination`);
    if (!d.batch.isCopied(i)) continue;
    marked++;
    if (Buffer.compare(k.mem.view(d.dst[i]!, n), want) !== 0)
      problems.push(`row ${i} is marked copied but differs`);
  }
  return { marked, problems };
}

/** Settles `p` or fails after `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** Hands `d` to the migrator with a signal that never aborts; fails if it takes over 10 s. */
export function copyDirect(mig: Migrator, d: DirectBatch): Promise<void> {
  return within(
    Promise.resolve(mig.copyBatch(d.batch, { signal: new AbortController().signal })),
    10_000,
    'copyBatch',
  );
}
