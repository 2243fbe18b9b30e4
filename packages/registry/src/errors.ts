import { EINVAL, MigratorErrorCode, PagemigError } from '@pagemig/core';

/**
 * Stable codes of the errors the registry throws. Every error is a `PagemigError` from
 * `@pagemig/core` (recognise it with `PagemigError.isInstance(e)`, which works across duplicate
 * copies of core). Validation of the migrator object itself is core's `validateMigrator`, so
 * `ERR_MIGRATOR_INVALID`, `ERR_MIGRATOR_API_VERSION` and `ERR_MIGRATOR_ENGINE_MISMATCH` carry
 * core's wording.
 */
export const RegistryErrorCode = {
  /** The id is not a built-in id, an unscoped id or a package name. */
  ID: 'ERR_MIGRATOR_ID',
  /** No package for the id resolves from the registry's root (or from the registry itself). */
  NOT_INSTALLED: 'ERR_MIGRATOR_NOT_INSTALLED',
  /** The package resolves but importing it failed (not built, a missing dependency, a throw). */
  LOAD: 'ERR_MIGRATOR_LOAD',
  /** The package has no usable `createMigrator` export, or a malformed `optionKeys` export. */
  INVALID: MigratorErrorCode.INVALID,
  API_VERSION: MigratorErrorCode.API_VERSION,
  ENGINE_MISMATCH: MigratorErrorCode.ENGINE_MISMATCH,
  /** An unknown or malformed option (thrown by the registry from `optionKeys`, or by the driver). */
  OPTION: 'ERR_MIGRATOR_OPTION',
  /** `createMigrator` threw something that is not a PagemigError (kept as `cause`). */
  CREATE: 'ERR_MIGRATOR_CREATE',
  /** `register()` of a name that is already registered. */
  DUPLICATE: 'ERR_MIGRATOR_DUPLICATE',
  /** `configure()` got a config of the wrong shape; the message names the field. */
  CONFIG: 'ERR_INVALID_CONFIG',
} as const;

export type RegistryErrorCodeValue = (typeof RegistryErrorCode)[keyof typeof RegistryErrorCode];

export function registryError(code: RegistryErrorCodeValue, message: string, cause?: unknown): PagemigError {
  return new PagemigError(code, message, cause === undefined ? {} : { cause });
}

/** An EINVAL PagemigError worded like core's kernelError, keeping core's error as the cause. */
export function einval(message: string, cause?: unknown): PagemigError {
  return new PagemigError('EINVAL', `EINVAL: ${message}`, { errno: EINVAL, cause });
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
