import { suggestKey } from '@pagemig/core';
import { RegistryErrorCode, registryError } from './errors.js';

/** The migrators of the pagemig project: id → package. */
export const builtinMigrators = {
  'cpu-serial': '@pagemig/migrator-cpu-serial',
  'cpu-multithreaded': '@pagemig/migrator-cpu-multithreaded',
  ptdma: '@pagemig/migrator-ptdma',
  sdxi: '@pagemig/migrator-sdxi',
} as const;

export type BuiltinMigratorId = keyof typeof builtinMigrators;
export const builtinMigratorIds = Object.keys(builtinMigrators) as BuiltinMigratorId[];

/** Third-party migrators are published as `pagemig-migrator-<id>`. */
export const THIRD_PARTY_PREFIX = 'pagemig-migrator-';

/** What an id names: the id shown in listings and messages, and the package to import. */
export interface MigratorRef {
  readonly id: string;
  readonly package: string;
  /** builtin: one of builtinMigrators; third-party: pagemig-migrator-<id>; package: a name given as is. */
  readonly kind: 'builtin' | 'third-party' | 'package';
}

const ID_RE = /^[a-z0-9][a-z0-9._~-]*$/;

/**
 * The id → package rule:
 * - a built-in id (`cpu-serial`, `cpu-multithreaded`, `ptdma`, `sdxi`) → `@pagemig/migrator-<id>`;
 * - a name with a scope or a path (starts with `@` or contains `/`) is imported as given
 *   (a built-in's own package name maps back to its id);
 * - `pagemig-migrator-<id>` is taken as the package itself, with id `<id>`;
 * - any other id `<id>` (lower case, npm name characters) → `pagemig-migrator-<id>`.
 */
export function migratorRef(id: string): MigratorRef {
  if (typeof id !== 'string' || id.trim() === '') {
    throw registryError(
      RegistryErrorCode.ID,
      `a migrator id must be a non-empty string, got ${id === '' ? '""' : typeof id === 'string' ? JSON.stringify(id) : String(id)}`,
    );
  }
  if (Object.hasOwn(builtinMigrators, id)) {
    return { id, package: builtinMigrators[id as BuiltinMigratorId], kind: 'builtin' };
  }
  if (id.startsWith('@') || id.includes('/')) {
    const builtin = builtinMigratorIds.find((b) => builtinMigrators[b] === id);
    return builtin ? { id: builtin, package: id, kind: 'builtin' } : { id, package: id, kind: 'package' };
  }
  if (id.startsWith(THIRD_PARTY_PREFIX) && ID_RE.test(id.slice(THIRD_PARTY_PREFIX.length))) {
    return { id: id.slice(THIRD_PARTY_PREFIX.length), package: id, kind: 'third-party' };
  }
  if (!ID_RE.test(id)) {
    const hint = suggestKey(id, builtinMigratorIds);
    throw registryError(
      RegistryErrorCode.ID,
      `${JSON.stringify(id)} is not a migrator id: use a built-in id (${builtinMigratorIds.join(', ')}), ` +
        `a lower-case third-party id (loads ${THIRD_PARTY_PREFIX}<id>) or a package name` +
        (hint ? `; did you mean ${JSON.stringify(hint)}?` : ''),
    );
  }
  return { id, package: `${THIRD_PARTY_PREFIX}${id}`, kind: 'third-party' };
}
