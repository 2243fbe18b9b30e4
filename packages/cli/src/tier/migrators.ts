import { usageError } from '../exit_codes.js';

/** The two reasons a tiering run migrates for: kswapd's demotions and mode-2 promotions. */
export const TIER_REASONS = ['demotion', 'numa_misplaced'] as const;
export type TierReason = (typeof TIER_REASONS)[number];

/** Which migrator copies each tiering reason ('none': the kernel's CPU copy). */
export interface TierMigrators {
  /** How the user wrote it: `cpu-serial`, or `demotion=ptdma,numa_misplaced=sdxi`. */
  label: string;
  routes: Record<TierReason, string>;
}

const ID = /^[\w@./-]+$/;

function checkId(flag: string, id: string): string {
  if (!ID.test(id)) throw usageError(`${flag}: ${JSON.stringify(id)} is not a migrator id`);
  return id;
}

/**
 * `--migrator`: one id for both reasons (`ptdma`), or `reason=id` pairs
 * (`demotion=ptdma,numa_misplaced=sdxi`); a reason left out is copied by the kernel's CPU copy.
 */
export function parseTierMigrators(flag: string, value: string): TierMigrators {
  if (!value.includes('=')) {
    const id = checkId(flag, value);
    return { label: id, routes: { demotion: id, numa_misplaced: id } };
  }
  const routes: Record<TierReason, string> = { demotion: 'none', numa_misplaced: 'none' };
  const seen = new Set<string>();
  for (const pair of value.split(',')) {
    const [reason = '', id = '', ...rest] = pair.split('=');
    if (rest.length || !id)
      throw usageError(`${flag}: ${JSON.stringify(pair)} is not reason=id (e.g. demotion=ptdma)`);
    if (!(TIER_REASONS as readonly string[]).includes(reason))
      throw usageError(
        `${flag}: ${JSON.stringify(reason)} is not a reason a tiering run migrates for; use ${TIER_REASONS.join(' or ')}`,
      );
    if (seen.has(reason)) throw usageError(`${flag}: ${reason} is given twice`);
    seen.add(reason);
    routes[reason as TierReason] = checkId(flag, id);
  }
  return { label: value, routes };
}

/** `--compare a,b,c`: one run per migrator id (each copying both reasons), in that order. */
export function parseCompare(value: string): TierMigrators[] {
  const ids = value.split(',').map((s) => s.trim());
  if (ids.some((id) => !id)) throw usageError(`--compare: ${JSON.stringify(value)} has an empty migrator id`);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw usageError(`--compare: ${dup} is given twice`);
  return ids.map((id) => {
    if (id.includes('='))
      throw usageError(
        `--compare: ${JSON.stringify(id)}: give migrator ids; per-reason routes go to --migrator`,
      );
    return parseTierMigrators('--compare', id);
  });
}
