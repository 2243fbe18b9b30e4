import type { Kernel } from './kernel.js';
import { vpnToAddr } from './mm.js';

/**
 * The events core emits, by system: include/trace/events/migrate.h's, and pagemig's own
 * `migrate_phases` (a batch's phase times). The daemons define theirs when they are attached.
 */
export const CORE_TRACE_EVENTS = Object.freeze({
  migrate: Object.freeze([
    'mm_migrate_pages_start',
    'mm_migrate_pages',
    'set_migration_pte',
    'remove_migration_pte',
  ] as const),
  pagemig: Object.freeze(['migrate_phases'] as const),
});

/**
 * The migration_pte event class of include/trace/events/migrate.h: `addr=%lx, pte=%lx order=%d`,
 * the entry's user address, its new value (the emulated PTE encoding) and the folio's order
 * (HPAGE_PMD_ORDER for a PMD). Off by default; callers check `k.trace.setMigrationPte` /
 * `removeMigrationPte` first, so a disabled event costs its site one flag load.
 */
function migrationPte(k: Kernel, event: string, vpn: number, pte: number, order: number): void {
  const addr = vpnToAddr(vpn);
  const val = pte >>> 0;
  k.trace.emit(
    'migrate',
    event,
    { addr, pte: val, order },
    `addr=${addr.toString(16)}, pte=${val.toString(16)} order=${order}`,
  );
}

/** trace_set_migration_pte (try_to_migrate_one, set_pmd_migration_entry): an entry became a migration entry. */
export function traceSetMigrationPte(k: Kernel, vpn: number, pte: number, order: number): void {
  migrationPte(k, 'set_migration_pte', vpn, pte, order);
}

/** trace_remove_migration_pte (remove_migration_pte, remove_migration_pmd): a migration entry was replaced. */
export function traceRemoveMigrationPte(k: Kernel, vpn: number, pte: number, order: number): void {
  migrationPte(k, 'remove_migration_pte', vpn, pte, order);
}
