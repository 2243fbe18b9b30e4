import { EAGAIN } from './errno.js';
import type { Kernel } from './kernel.js';
import { isolateFolio, type MigrationResult, migratePages } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import { WMARK_HIGH } from './mmzone.js';

/**
 * mm/migrate.c for NUMA balancing: migrate_misplaced_folio_prepare (is the target node roomy, can
 * the folio be isolated) and migrate_misplaced_folio (the engine's migrate_pages with
 * MIGRATE_ASYNC and MR_NUMA_MISPLACED, so the migrator routed for numa_misplaced copies).
 */

/** One migrate_misplaced_folio and what the engine did with it. */
export interface MisplacedMigration {
  /** The folio (head pfn before the migration), its order and the node it was on. */
  head: number;
  order: number;
  from: number;
  /** The node mpol_misplaced chose. */
  to: number;
  /** The engine's result, null when the engine threw (`error`). */
  result: MigrationResult | null;
  error?: unknown;
}

interface MisplacedState {
  readonly inFlight: Set<Promise<boolean>>;
  readonly listeners: Set<(m: MisplacedMigration) => void>;
}

const states = new WeakMap<Kernel, MisplacedState>();

function state(k: Kernel): MisplacedState {
  let s = states.get(k);
  if (!s) {
    s = { inFlight: new Set(), listeners: new Set() };
    states.set(k, s);
  }
  return s;
}

/** Calls `fn` after every misplaced-folio migration of machine `k`; returns the function that removes it. */
export function onMisplacedMigration(k: Kernel, fn: (m: MisplacedMigration) => void): () => void {
  const s = state(k);
  s.listeners.add(fn);
  return () => s.listeners.delete(fn);
}

/** Migrations that hinting faults started on `k` and that have not ended. */
export function misplacedInFlight(k: Kernel): number {
  return states.get(k)?.inFlight.size ?? 0;
}

/** Resolves once no migration started by a hinting fault is in flight on `k`. */
export async function misplacedSettled(k: Kernel): Promise<void> {
  const s = states.get(k);
  while (s?.inFlight.size) await Promise.allSettled([...s.inFlight]);
}

/**
 * migrate_balanced_pgdat: some zone of node `nid` stays above its high watermark with `nr` more
 * pages taken ("avoid waking kswapd by allocating pages_to_migrate pages").
 */
function migrateBalancedPgdat(k: Kernel, nid: number, nr: number): boolean {
  const zones = k.nodes[nid]!.zones;
  for (let z = zones.length - 1; z >= 0; z--) {
    const zone = zones[z]!;
    if (zone.managed === 0) continue;
    if (zone.watermarkOk(0, zone.watermark[WMARK_HIGH]! + nr)) return true;
  }
  return false;
}

/**
 * migrate_misplaced_folio_prepare: 0 with folio `head` isolated (the isolation holds a reference),
 * or -EAGAIN when node `node` is nearly full or the folio cannot be isolated. pagemig's memory is
 * anonymous or shmem, so the checks for file folios (shared libraries, dirty pages) never apply;
 * the memory-tiering mode's kswapd wake-up on a full node is not built.
 */
export function migrateMisplacedFolioPrepare(k: Kernel, head: number, node: number): number {
  if (!migrateBalancedPgdat(k, node, 1 << k.folioOrder(head))) return -EAGAIN;
  return isolateFolio(k, head) ? 0 : -EAGAIN;
}

/**
 * migrate_misplaced_folio: migrates the isolated folio `head` to `node` through the engine
 * (MIGRATE_ASYNC, MR_NUMA_MISPLACED; the engine counts numa_pages_migrated and pgmigrate_*) and
 * resolves to whether it moved. The run starts on the next microtask, after the fault that asked
 * for it has returned, and is one of the machine's runs in progress (close() waits for it).
 */
export function migrateMisplacedFolio(k: Kernel, head: number, node: number): Promise<boolean> {
  const s = state(k);
  const order = k.folioOrder(head);
  const from = k.nodeOf(head);
  const tell = (m: MisplacedMigration) => {
    for (const fn of s.listeners) {
      try {
        fn(m);
      } catch (e) {
        process.emitWarning(`a misplaced-migration listener threw: ${String(e)}`);
      }
    }
  };
  const run = Promise.resolve()
    .then(() =>
      migratePages(k, [head], {
        node,
        mode: MigrateMode.MIGRATE_ASYNC,
        reason: MigrateReason.MR_NUMA_MISPLACED,
        // One folio per fault: the caller sums the phases; no schedstat read per fault.
        account: false,
      }),
    )
    .then(
      (result) => {
        tell({ head, order, from, to: node, result });
        return result.ret === 0;
      },
      (error: unknown) => {
        tell({ head, order, from, to: node, result: null, error });
        return false;
      },
    );
  s.inFlight.add(run);
  k.migrations.add(run);
  void run.then(() => {
    s.inFlight.delete(run);
    k.migrations.delete(run);
  });
  return run;
}
