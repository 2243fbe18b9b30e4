import { EINVAL, kernelError } from './errno.js';
import { show } from './show.js';

/** enum migrate_mode (include/linux/migrate_mode.h) with the tracepoint strings. */
export const MigrateMode = {
  MIGRATE_ASYNC: 0,
  MIGRATE_SYNC_LIGHT: 1,
  MIGRATE_SYNC: 2,
} as const;
export type MigrateModeValue = (typeof MigrateMode)[keyof typeof MigrateMode];
export type MigrateModeName = keyof typeof MigrateMode;
export const migrateModeNames: readonly MigrateModeName[] = [
  'MIGRATE_ASYNC',
  'MIGRATE_SYNC_LIGHT',
  'MIGRATE_SYNC',
];

/** enum migrate_reason with migrate_reason_names[] (the strings the tracepoints print). */
export const MigrateReason = {
  MR_COMPACTION: 0,
  MR_MEMORY_FAILURE: 1,
  MR_MEMORY_HOTPLUG: 2,
  MR_SYSCALL: 3,
  MR_MEMPOLICY_MBIND: 4,
  MR_NUMA_MISPLACED: 5,
  MR_CONTIG_RANGE: 6,
  MR_LONGTERM_PIN: 7,
  MR_DEMOTION: 8,
  MR_DAMON: 9,
} as const;
export type MigrateReasonValue = (typeof MigrateReason)[keyof typeof MigrateReason];
export const MR_TYPES = 10;
export const migrateReasonNames = [
  'compaction',
  'memory_failure',
  'memory_hotplug',
  'syscall_or_cpuset',
  'mempolicy_mbind',
  'numa_misplaced',
  'contig_range',
  'longterm_pin',
  'demotion',
  'damon',
] as const;
export type MigrateReasonName = (typeof migrateReasonNames)[number];

/** Every reason (MIGRATE_OFFLOAD_REASONS_ALLOWED = BIT(MR_TYPES) - 1). */
export const REASON_MASK_ALL = (1 << MR_TYPES) - 1;

export function resolveMode(mode: MigrateModeName | number | undefined): MigrateModeValue {
  if (mode === undefined) return MigrateMode.MIGRATE_SYNC;
  if (typeof mode === 'number' && mode >= 0 && mode < migrateModeNames.length && Number.isInteger(mode)) {
    return mode as MigrateModeValue;
  }
  if (typeof mode === 'string' && mode in MigrateMode) return MigrateMode[mode as MigrateModeName];
  throw kernelError(EINVAL, `unknown migrate mode ${show(mode)}; use one of ${migrateModeNames.join(', ')}`);
}

export function resolveReason(reason: MigrateReasonName | number | undefined): MigrateReasonValue {
  if (reason === undefined) return MigrateReason.MR_SYSCALL;
  if (typeof reason === 'number' && Number.isInteger(reason) && reason >= 0 && reason < MR_TYPES) {
    return reason as MigrateReasonValue;
  }
  const i = migrateReasonNames.indexOf(reason as MigrateReasonName);
  if (i >= 0) return i as MigrateReasonValue;
  throw kernelError(
    EINVAL,
    `unknown migrate reason ${show(reason)}; use one of ${migrateReasonNames.join(', ')}`,
  );
}

/**
 * migrate_offload_reason_mask_parse: a number (decimal or 0x hex), `all`, `none`, or a comma list
 * of reason names. Unknown names are EINVAL; the result is clamped to the allowed reasons.
 */
export function parseReasonMask(input: string | number | readonly string[]): number {
  if (Array.isArray(input)) return parseReasonMask(input.join(','));
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input < 0)
      throw kernelError(EINVAL, `reason mask ${show(input)} is not a non-negative integer`);
    return input & REASON_MASK_ALL;
  }
  const s = String(input).trim();
  if (s === 'all') return REASON_MASK_ALL;
  if (s === 'none' || s === '') return 0;
  if (/^(0x[0-9a-f]+|\d+)$/i.test(s)) return Number(s) & REASON_MASK_ALL;
  let mask = 0;
  for (const part of s.split(',')) {
    const name = part.trim();
    const i = migrateReasonNames.indexOf(name as MigrateReasonName);
    if (i < 0) {
      throw kernelError(
        EINVAL,
        `unknown migrate reason ${JSON.stringify(name)} in reason mask; known: ${migrateReasonNames.join(', ')}, or all, none, a number`,
      );
    }
    mask |= 1 << i;
  }
  return mask;
}

/** migrate_offload_reason_mask_format: a comma list of reason names, or `none`. */
export function formatReasonMask(mask: number): string {
  const names = migrateReasonNames.filter((_, i) => mask & (1 << i));
  return names.length ? names.join(',') : 'none';
}
