import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Migrator, PagemigError } from '@pagemig/core';
import {
  builtinMigrators,
  createRegistry,
  type MigratorListing,
  migratorRef,
  RegistryErrorCode,
  THIRD_PARTY_PREFIX,
} from '@pagemig/registry';
import { CliError, ExitCode, type ExitCodeValue } from './exit_codes.js';

/** Migrators as the CLI sees them: the application's (cwd) first, then those installed beside pagemig. */
export interface Drivers {
  list(): Promise<MigratorListing[]>;
  load(id: string, options?: Record<string, unknown>): Promise<Migrator>;
}

const isNotInstalled = (e: unknown) =>
  PagemigError.isInstance(e) && e.code === RegistryErrorCode.NOT_INSTALLED;

/** The keyword a migrator package lists in its package.json so tools can find it. */
export const MIGRATOR_KEYWORD = 'pagemig-migrator';

function packageJson(dir: string): { name?: unknown; version?: unknown; keywords?: unknown } | null {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
  } catch {
    return null;
  }
}

/**
 * Third-party migrator packages visible from `root` the way Node resolves packages: every
 * `node_modules` from `root` up to the file system root, nearest first; a package counts when it
 * is named `pagemig-migrator-<id>` or lists the `pagemig-migrator` keyword. pagemig's own drivers
 * are left to the built-in list.
 */
export function discoverMigratorPackages(root: string): { name: string; dir: string }[] {
  const found: { name: string; dir: string }[] = [];
  const builtin = new Set<string>(Object.values(builtinMigrators));
  const consider = (name: string, dir: string) => {
    if (builtin.has(name) || found.some((f) => f.name === name)) return;
    if (name.startsWith(THIRD_PARTY_PREFIX)) {
      found.push({ name, dir });
      return;
    }
    const json = packageJson(dir);
    if (Array.isArray(json?.keywords) && json.keywords.includes(MIGRATOR_KEYWORD)) found.push({ name, dir });
  };
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (let dir = path.resolve(root); ; dir = path.dirname(dir)) {
    const nm = path.join(dir, 'node_modules');
    for (const entry of list(nm)) {
      if (entry.startsWith('.')) continue;
      if (entry.startsWith('@')) {
        for (const sub of list(path.join(nm, entry))) consider(`${entry}/${sub}`, path.join(nm, entry, sub));
      } else consider(entry, path.join(nm, entry));
    }
    if (path.dirname(dir) === dir) break;
  }
  return found;
}

/**
 * `root` is where the user's project keeps its drivers (third-party ones included); pagemig's own
 * directory comes second because a package manager links optional peers there.
 */
export function createDrivers(root: string): Drivers {
  const app = createRegistry({ root });
  const own = createRegistry({ root: new URL('..', import.meta.url) });
  return {
    async list() {
      // The registry lists built-ins and what it has loaded: load what the project has installed.
      const broken: MigratorListing[] = [];
      for (const pkg of discoverMigratorPackages(app.root)) {
        try {
          await app.load(pkg.name);
        } catch (e) {
          let ref: { id: string; package: string } = { id: pkg.name, package: pkg.name };
          try {
            ref = migratorRef(pkg.name);
          } catch {
            // not a name the registry takes: listed under its package name
          }
          const version = packageJson(pkg.dir)?.version;
          broken.push({
            id: ref.id,
            package: ref.package,
            installed: true,
            version: typeof version === 'string' ? version : null,
            capabilities: null,
            source: 'third-party',
            error: (e as Error).message,
          });
        }
      }
      const [a, b] = await Promise.all([app.list(), own.list()]);
      const ours = new Map(b.map((l) => [l.id, l]));
      return [...a.map((l) => (l.installed ? l : (ours.get(l.id) ?? l))), ...broken];
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
