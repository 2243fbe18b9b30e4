import {
  HPAGE_PMD_ORDER,
  type Machine,
  MigrateMode,
  type MigrateModeValue,
  MigrateReason,
  type MigrateReasonValue,
  type Migrator,
  type MmapOptions,
  type OffloadInfo,
  PAGE_SIZE,
} from '@pagemig/core';
import type { BatchKind } from './direct_batch.js';
import type { ExpectLike } from './expect.js';
import { checkRegion, machineChecksum, migrateRegion, populateRegion, regionNodes } from './fixtures.js';

// A migrator's `shouldOffload` may decline batches by reason, mode and folio sizes; declining
// costs time, not data. Cases that need rows copied by the migrator therefore build batches its
// gate accepts, and check the decline itself when it accepts none of them.

/** The suite's default reason (syscall_or_cpuset) first, then the others. */
const REASONS = [
  MigrateReason.MR_SYSCALL,
  ...Object.values(MigrateReason).filter((r) => r !== MigrateReason.MR_SYSCALL),
];
/** batchOf's default mode first. */
const MODES = [MigrateMode.MIGRATE_SYNC, MigrateMode.MIGRATE_ASYNC, MigrateMode.MIGRATE_SYNC_LIGHT];
/** migrate_pages_sync offers each batch in MIGRATE_ASYNC first: the mode the engine's gate call sees. */
const ENGINE_MODE = MigrateMode.MIGRATE_ASYNC;
/** Folio orders of direct batches, and those a region can be mapped with (anon mTHP: 0, 2..9). */
const BATCH_ORDERS = Array.from({ length: HPAGE_PMD_ORDER + 1 }, (_, o) => o);
const REGION_ORDERS = BATCH_ORDERS.filter((o) => o !== 1);
/**
 * Gated regions stay within 16 MiB (a 64 MiB node holds one), and a machine with this batch size
 * migrates one in a single batch, as a region of small folios is.
 */
export const GATED_REGION_PAGES = 4096;

const uniform = (folios: number, order: number) => Array<number>(folios).fill(order);

/** What the engine would ask the gate about one batch of folios of these orders. */
function offloadInfo(
  orders: readonly number[],
  reason: MigrateReasonValue,
  mode: MigrateModeValue,
): OffloadInfo {
  const sizes = orders.map((o) => 1 << o);
  return {
    reason,
    mode,
    folios: sizes.length,
    pages: sizes.reduce((a, b) => a + b, 0),
    maxFolioPages: Math.max(...sizes),
  };
}

/** The gate's answer; a migrator without one takes every batch. Throwing fails the case. */
function accepts(mig: Migrator, info: OffloadInfo): boolean {
  return mig.shouldOffload?.(info) ?? true;
}

/**
 * A direct batch the gate accepts, shaped like `orders`: under the first reason and mode for which
 * it accepts a batch of `orders.length` folios of some order, each row's order becomes the nearest
 * accepted one (larger first). null when it declines every such batch.
 */
export function gatedBatch(
  mig: Migrator,
  orders: readonly number[],
): (BatchKind & { orders: number[] }) | null {
  for (const reason of REASONS) {
    for (const mode of MODES) {
      const ok = BATCH_ORDERS.filter((o) =>
        accepts(mig, offloadInfo(uniform(orders.length, o), reason, mode)),
      );
      if (!ok.length) continue;
      const shaped = orders.map((o) => ok.find((a) => a >= o) ?? ok.at(-1)!);
      if (accepts(mig, offloadInfo(shaped, reason, mode))) return { reason, mode, orders: shaped };
    }
  }
  return null;
}

export interface GatedRegion {
  reason: MigrateReasonValue;
  order: number;
  folios: number;
}

const regionFolios = (folios: number, order: number) => Math.min(folios, GATED_REGION_PAGES >> order);

/**
 * A region of up to `folios` folios (the smallest order first, the default reason first) whose
 * batch, on a machine with GATED_REGION_PAGES per batch, the gate accepts; null when it declines all.
 */
export function gatedRegion(mig: Migrator, folios: number): GatedRegion | null {
  for (const reason of REASONS) {
    for (const order of REGION_ORDERS) {
      const n = regionFolios(folios, order);
      if (accepts(mig, offloadInfo(uniform(n, order), reason, ENGINE_MODE)))
        return { reason, order, folios: n };
    }
  }
  return null;
}

/** The mmap `thp` option that maps folios of `order`. */
export function thpFor(order: number): MmapOptions['thp'] {
  if (order === 0) return 'never';
  return order === HPAGE_PMD_ORDER ? 'always' : `${(PAGE_SIZE << order) >> 10}KiB`;
}

/**
 * The check of a case whose gate declines every batch it could build: the engine never offers
 * such a batch (`folios` 4 KiB folios under the default reason), so nothing is marked and nothing
 * fails, and its CPU copy moves every byte.
 */
export async function expectDeclined(
  expect: ExpectLike,
  m: Machine,
  mig: Migrator,
  folios: number,
): Promise<void> {
  const info = offloadInfo(uniform(folios, 0), MigrateReason.MR_SYSCALL, ENGINE_MODE);
  if (accepts(mig, info))
    throw new Error(
      `shouldOffload declines every batch of this case but accepts ${JSON.stringify(info)}: it must answer by the batch's reason, mode and folio sizes alone`,
    );
  const r = populateRegion(m, { bytes: folios * PAGE_SIZE, thp: 'never', seed: 51 });
  const before = machineChecksum(m);
  const res = await migrateRegion(m, r, 1);
  expect({
    ret: res.ret,
    offered: res.offload.foliosOffered,
    copied: res.offload.foliosCopied,
    failures: res.offload.failures,
  }).toEqual({ ret: 0, offered: 0, copied: 0, failures: 0 });
  expect(regionNodes(r)).toEqual([1]);
  expect(checkRegion(m, r)).toEqual([]);
  expect(machineChecksum(m)).toBe(before);
}
