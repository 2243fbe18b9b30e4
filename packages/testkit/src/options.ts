import { PagemigError } from '@pagemig/core';

/**
 * The message of the ERR_MIGRATOR_OPTION error `create` throws (a migrator factory given bad
 * options). Throws when `create` returns, or throws anything else, so the test fails.
 */
export function migratorOptionError(create: () => unknown): string {
  try {
    create();
  } catch (e) {
    if (PagemigError.isInstance(e) && e.code === 'ERR_MIGRATOR_OPTION') return e.message;
    throw new Error(`expected ERR_MIGRATOR_OPTION, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected ERR_MIGRATOR_OPTION, but the migrator was created');
}
