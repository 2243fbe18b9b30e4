import semver from 'semver';
import { PagemigError } from './errno.js';
import { MIGRATOR_API_VERSION, type Migrator } from './migrator.js';

/** Coded errors a migrator can fail validation with. */
export const MigratorErrorCode = {
  INVALID: 'ERR_MIGRATOR_INVALID',
  API_VERSION: 'ERR_MIGRATOR_API_VERSION',
  ENGINE_MISMATCH: 'ERR_MIGRATOR_ENGINE_MISMATCH',
} as const;

export const CORE_VERSION: string = __PACKAGE_VERSION__;

function invalid(name: string, what: string): never {
  throw new PagemigError(MigratorErrorCode.INVALID, `migrator ${name}: ${what}`);
}

/**
 * Structural validation of a migrator object (never instanceof): required fields and their types,
 * the apiVersion literal, and the engines.core range against this core's version.
 */
export function validateMigrator(m: unknown, coreVersion = CORE_VERSION): asserts m is Migrator {
  if (typeof m !== 'object' || m === null)
    throw new PagemigError(
      MigratorErrorCode.INVALID,
      `a migrator must be an object, got ${m === null ? 'null' : typeof m}`,
    );
  const o = m as Record<string, unknown>;
  const name = typeof o.name === 'string' && o.name ? o.name : '<anonymous>';
  if (name === '<anonymous>')
    invalid(name, 'needs a non-empty string `name` (it is the key it is registered and routed by)');
  if (o.apiVersion !== MIGRATOR_API_VERSION) {
    throw new PagemigError(
      MigratorErrorCode.API_VERSION,
      `migrator ${name}: apiVersion ${JSON.stringify(o.apiVersion)} is not supported; this core speaks ${MIGRATOR_API_VERSION}`,
    );
  }
  if (typeof o.version !== 'string' || !semver.valid(o.version))
    invalid(name, `\`version\` must be a semver string, got ${JSON.stringify(o.version)}`);
  const engines = o.engines as { core?: unknown } | undefined;
  if (
    typeof engines !== 'object' ||
    engines === null ||
    typeof engines.core !== 'string' ||
    !semver.validRange(engines.core)
  ) {
    invalid(name, '`engines.core` must be a semver range of @pagemig/core, e.g. "^0.1.0"');
  }
  if (!semver.satisfies(coreVersion, engines.core as string, { includePrerelease: true })) {
    throw new PagemigError(
      MigratorErrorCode.ENGINE_MISMATCH,
      `migrator ${name} needs @pagemig/core ${engines.core}, ${coreVersion} is installed`,
    );
  }
  const caps = o.capabilities as Record<string, unknown> | undefined;
  if (typeof caps !== 'object' || caps === null) invalid(name, '`capabilities` must be an object');
  if (typeof caps.offloadsCpu !== 'boolean') invalid(name, '`capabilities.offloadsCpu` must be a boolean');
  for (const key of ['channels', 'maxInFlightBatches'] as const) {
    const v = caps[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      invalid(name, `\`capabilities.${key}\` must be a positive integer`);
  }
  if (typeof caps.needsSharedMemory !== 'boolean')
    invalid(name, '`capabilities.needsSharedMemory` must be a boolean');
  try {
    JSON.stringify(caps);
  } catch {
    invalid(name, '`capabilities` must be JSON-serialisable');
  }
  for (const fn of ['init', 'copyBatch', 'dispose'] as const) {
    if (typeof o[fn] !== 'function') invalid(name, `\`${fn}\` must be a function`);
  }
  if (o.shouldOffload !== undefined && typeof o.shouldOffload !== 'function')
    invalid(name, '`shouldOffload` must be a function when present');
  if (o.stats !== undefined && typeof o.stats !== 'function')
    invalid(name, '`stats` must be a function when present');
  for (const fn of ['runStart', 'runEnd'] as const) {
    if (o[fn] !== undefined && typeof o[fn] !== 'function')
      invalid(name, `\`${fn}\` must be a function when present`);
  }
}
