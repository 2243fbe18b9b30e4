export {
  type ConfigureResult,
  configureMachine,
  type MigratorSpec,
  type OffloadTarget,
  type RegistryConfig,
} from './config.js';
export { RegistryErrorCode, type RegistryErrorCodeValue } from './errors.js';
export {
  type BuiltinMigratorId,
  builtinMigratorIds,
  builtinMigrators,
  type MigratorRef,
  migratorRef,
  THIRD_PARTY_PREFIX,
} from './naming.js';
export {
  createRegistry,
  type MigratorListing,
  type MigratorOptions,
  type Registry,
  type RegistryOptions,
} from './registry.js';
