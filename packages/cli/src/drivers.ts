import { type Migrator, PagemigError } from '@pagemig/core';
import { createRegistry, type MigratorListing, RegistryErrorCode } from '@pagemig/registry';
import { CliError, ExitCode, type ExitCodeValue } from './exit_codes.js';

/** Migrators as the CLI sees them: the application's (cwd) first, then those installed beside pagemig. */
export interface Drivers {
  list(): Promise<MigratorListing[]>;
  load(id: string, options?: Record<string, unknown>): Promise<Migrator>;
}

const isNotInstalled = (e: unknown) =>
  PagemigError.isInstance(e) && e.code === RegistryErrorCode.NOT_INSTALLED;

/**
 * `root` is where the user's project keeps its drivers (third-party ones included); pagemig's own
 * directory comes second because a package manager links optional peers there.
 */
export function createDrivers(root: string): Drivers {
  const app = createRegistry({ root });
  const own = createRegistry({ root: new URL('..', import.meta.url) });
  return {
    async list() {
      const [a, b] = await Promise.all([app.list(), own.list()]);
      const ours = new Map(b.map((l) => [l.id, l]));
      return a.map((l) => (l.installed ? l : (ours.get(l.id) ?? l)));
    },
    async load(id, options = {}) {
      try {
        return await app.load(id, options);
      } catch (e) {
        if (!isNotInstalled(e)) throw driverError(e);
        try {
          return await own.load(id, options);
        } catch (e2) {
          throw driverError(isNotInstalled(e2) ? e : e2);
        }
      }
    },
  };
}

const USAGE_CODES: string[] = [RegistryErrorCode.ID, RegistryErrorCode.OPTION];

/** A registry error as a CLI error: missing → 3, a bad id or option → 2, anything else → 1. */
export function driverError(e: unknown): CliError {
  if (!PagemigError.isInstance(e)) return new CliError((e as Error)?.message ?? String(e), ExitCode.FAILURE);
  let exit: ExitCodeValue = ExitCode.FAILURE;
  if (e.code === RegistryErrorCode.NOT_INSTALLED) exit = ExitCode.DRIVER_MISSING;
  else if (USAGE_CODES.includes(e.code)) exit = ExitCode.USAGE;
  return new CliError(e.message, exit, e.code);
}
