import { EAGAIN } from './errno.js';
import type { Kernel } from './kernel.js';
import { nodeIsToptier } from './memory_tiers.js';
import { isolateFolio, type MigrationResult, migratePages } from './migrate.js';
import { MigrateMode, MigrateReason } from './migrate_mode.js';
import { WMARK_HIGH, zoneNames } from './mmzone.js';
import { threadCpuSeconds } from './schedstat.js';
import { NUMA_BALANCING_MEMORY_TIERING } from './task_numa.js';

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
  /** Pages of the migrations in flight, by target node: already promised to that node. */
  readonly pendingPages: Map<number, number>;
  readonly listeners: Set<(m: MisplacedMigration) => void>;
  /** The kernel thread's CPU time when the current busy period (some migration in flight) began. */
  busyCpu0: number;
  /** CPU seconds of the busy periods that ended. */
  cpuSeconds: number;
}

const states = new WeakMap<Kernel, MisplacedState>();

/** ZONE_MOVABLE's index: the highest zone a misplaced folio's wake-up lets kswapd balance. */
const ZONE_MOVABLE = zoneNames.indexOf('Movable');

function state(k: Kernel): MisplacedState {
  let s = states.get(k);
  if (!s) {
    s = { inFlight: new Set(), pendingPages: new Map(), listeners: new Set(), busyCpu0: 0, cpuSeconds: 0 };
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

/**
 * The CPU time of the kernel's thread (the main thread, where the engine runs) while misplaced-folio
 * migrations were in flight on `k`, over the busy periods that ended: what the engine spent on them
 * and anything else that thread did meanwhile. Per-run accounting would read the CPU clock twice per
 * fault and count overlapping single-folio runs twice; a busy period reads it twice in all.
 */
export function misplacedCpuSeconds(k: Kernel): number {
  return states.get(k)?.cpuSeconds ?? 0;
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
 * or -EAGAIN when node `node` is nearly full or the folio cannot be isolated. On a nearly full
 * node under memory tiering, kswapd of the node's highest managed zone is woken (order of the
 * folio, highest zone ZONE_MOVABLE) so that it demotes and makes room for later promotions.
 * pagemig's memory is anonymous or shmem, so the checks for file folios (shared libraries, dirty
 * pages) never apply.
 */
export function migrateMisplacedFolioPrepare(k: Kernel, head: number, node: number): number {
  const order = k.folioOrder(head);
  // The kernel's fault migrates before it returns, so the next fault's check sees those pages
  // taken; here the migration runs after the fault, so the pages promised to the node count as
  // taken (otherwise a burst of faults all pass the check and their allocations fail).
  const pending = states.get(k)?.pendingPages.get(node) ?? 0;
  if (!migrateBalancedPgdat(k, node, (1 << order) + pending)) {
    if (!(k.kern.numa_balancing & NUMA_BALANCING_MEMORY_TIERING)) return -EAGAIN;
    const zones = k.nodes[node]!.zones;
    let z = zones.length - 1;
    while (z >= 0 && zones[z]!.managed === 0) z--;
    // "If there are no managed zones, it should not proceed further."
    if (z < 0) return -EAGAIN;
    k.wakeupKswapd(node, order, ZONE_MOVABLE);
    return -EAGAIN;
  }
  return isolateFolio(k, head) ? 0 : -EAGAIN;
}

/**
 * migrate_misplaced_folio: migrates the isolated folio `head` to `node` through the engine
 * (MIGRATE_ASYNC, MR_NUMA_MISPLACED; the engine counts numa_pages_migrated and pgmigrate_*) and
 * resolves to whether it moved. Pages moved from a slow tier to the top tier while memory tiering
 * is on count pgpromote_success. The run starts on the next microtask, after the fault that asked
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
        if (
          result.nrSucceeded &&
          k.kern.numa_balancing & NUMA_BALANCING_MEMORY_TIERING &&
          !nodeIsToptier(k, from) &&
          nodeIsToptier(k, node)
        )
          k.count('pgpromote_success', result.nrSucceeded);
        tell({ head, order, from, to: node, result });
        return result.ret === 0;
      },
      (error: unknown) => {
        tell({ head, order, from, to: node, result: null, error });
        return false;
      },
    );
  if (s.inFlight.size === 0) s.busyCpu0 = threadCpuSeconds();
  s.inFlight.add(run);
  s.pendingPages.set(node, (s.pendingPages.get(node) ?? 0) + (1 << order));
  k.migrations.add(run);
  void run.then(() => {
    s.inFlight.delete(run);
    const left = s.pendingPages.get(node)! - (1 << order);
    if (left) s.pendingPages.set(node, left);
    else s.pendingPages.delete(node);
    k.migrations.delete(run);
    if (s.inFlight.size === 0) s.cpuSeconds += threadCpuSeconds() - s.busyCpu0;
  });
  return run;
}
