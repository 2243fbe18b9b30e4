import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  describeKnownKeys,
  type Migrator,
  type MigratorCapabilities,
  PagemigError,
  suggestKey,
  validateMigrator,
} from '@pagemig/core';
import { type ConfigureResult, configureMachine, type OffloadTarget, type RegistryConfig } from './config.js';
import { messageOf, RegistryErrorCode, registryError } from './errors.js';
import { builtinMigratorIds, builtinMigrators, type MigratorRef, migratorRef } from './naming.js';
import { type ResolvedPackage, resolvePackage } from './resolve.js';

/** Options a driver's `createMigrator(options)` takes; the registry passes them through. */
export type MigratorOptions = Record<string, unknown>;

export interface RegistryOptions {
  /**
   * Where packages are resolved from, as the application would: a directory (or a file: URL of
   * one) whose node_modules, or its parents', hold the drivers. Default: `process.cwd()`.
   */
  root?: string | URL;
}

/** One line of `list()`. */
export interface MigratorListing {
  /** The id to `load()` it by (for a registered object: its name). */
  id: string;
  /** The package it comes from; null for a migrator registered as an object. */
  package: string | null;
  /** Whether the package resolves from the registry's root (always true for a registered object). */
  installed: boolean;
  /** The package's version from its package.json (a registered object's own `version`). */
  version: string | null;
  /** The manifest of an instance created with default options (never initialised), or null. */
  capabilities: MigratorCapabilities | null;
  /** builtin: a pagemig driver; third-party: loaded by id or package name; registered: `register()`. */
  source: 'builtin' | 'third-party' | 'registered';
  /** Why the package is installed but no capabilities could be read (import or create failed). */
  error?: string;
}

export interface Registry {
  /** The directory packages are resolved from. */
  readonly root: string;
  /**
   * Resolves an id to its package, imports it, checks `options` against its `optionKeys` export,
   * calls its `createMigrator(options)` and validates the result with core's `validateMigrator`.
   * Every call creates a new migrator, except for a name given to `register()`, which is returned
   * as it is. Not initialised: `machine.offload.register()` / `route()` do that.
   */
  load(id: string, options?: MigratorOptions): Promise<Migrator>;
  /** Adds a migrator object created elsewhere (validated); `load(name)` then returns it. */
  register<M extends Migrator>(migrator: M): M;
  /** Every built-in id, plus third-party ids loaded so far and registered objects. */
  list(): Promise<MigratorListing[]>;
  /**
   * Loads the migrators a config names (once per id and options) and wires them into a machine:
   * `default` with `machine.offload.register(m, reasons ?? 'all')`, each route with
   * `machine.offload.route(reason, m)`. Shape, reasons and every load are checked before the
   * machine is touched.
   */
  configure(machine: OffloadTarget, config: RegistryConfig): Promise<ConfigureResult>;
}

type Factory = (options: MigratorOptions) => unknown;

interface DriverModule {
  factory: Factory;
  optionKeys: readonly string[] | undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function notInstalled(ref: MigratorRef, known: Iterable<string>): PagemigError {
  const install = `${ref.package} (e.g. pnpm add ${ref.package})`;
  const hint = ref.kind === 'builtin' ? undefined : suggestKey(ref.id, known);
  return registryError(
    RegistryErrorCode.NOT_INSTALLED,
    hint
      ? `migrator ${JSON.stringify(ref.id)} is not installed: did you mean ${JSON.stringify(hint)}? Otherwise install ${install}`
      : `migrator ${JSON.stringify(ref.id)} is not installed: install ${install}`,
  );
}

/** `createMigrator`, a default-exported function, or a CommonJS `module.exports.createMigrator`. */
function driverModule(ref: MigratorRef, ns: Record<string, unknown>): DriverModule {
  const def = ns.default as unknown;
  const defObj = typeof def === 'object' && def !== null ? (def as Record<string, unknown>) : undefined;
  let factory: Factory | undefined;
  if (typeof ns.createMigrator === 'function') factory = ns.createMigrator as Factory;
  else if (typeof def === 'function') factory = def as Factory;
  else if (defObj && typeof defObj.createMigrator === 'function') {
    const fn = defObj.createMigrator as Factory;
    factory = (options) => fn.call(defObj, options);
  }
  if (!factory) {
    throw registryError(
      RegistryErrorCode.INVALID,
      `package ${ref.package} (migrator ${JSON.stringify(ref.id)}) does not export createMigrator(options) or a default factory function`,
    );
  }
  const keys = ns.optionKeys ?? defObj?.optionKeys;
  if (keys !== undefined && (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string'))) {
    throw registryError(
      RegistryErrorCode.INVALID,
      `package ${ref.package} (migrator ${JSON.stringify(ref.id)}): the optionKeys export must be an array of strings`,
    );
  }
  return { factory, optionKeys: keys as readonly string[] | undefined };
}

function checkOptions(ref: MigratorRef, optionKeys: readonly string[] | undefined, options: MigratorOptions) {
  if (!optionKeys) return; // the driver checks its options itself
  for (const key of Object.keys(options)) {
    if (optionKeys.includes(key)) continue;
    const hint = suggestKey(key, optionKeys);
    const tail = hint ? `; did you mean ${JSON.stringify(hint)}?` : `; ${describeKnownKeys(optionKeys)}`;
    throw registryError(
      RegistryErrorCode.OPTION,
      `unknown option ${JSON.stringify(key)} for migrator ${ref.id}${tail}`,
    );
  }
}

async function create(ref: MigratorRef, driver: DriverModule, options: MigratorOptions): Promise<unknown> {
  try {
    return await driver.factory(options);
  } catch (e) {
    if (PagemigError.isInstance(e)) throw e;
    throw registryError(
      RegistryErrorCode.CREATE,
      `migrator ${JSON.stringify(ref.id)}: createMigrator of ${ref.package} threw: ${messageOf(e)}`,
      e,
    );
  }
}

export function createRegistry(options: RegistryOptions = {}): Registry {
  const rootOption = options.root ?? process.cwd();
  const root = path.resolve(rootOption instanceof URL ? fileURLToPath(rootOption) : rootOption);
  /** Third-party refs loaded successfully, by id, in load order. */
  const loaded = new Map<string, MigratorRef>();
  /** Objects given to register(), by name. */
  const registered = new Map<string, Migrator>();
  /** Capabilities read by list(), per resolved entry (list() creates each driver once). */
  const probed = new Map<string, { capabilities: MigratorCapabilities | null; error?: string }>();

  const knownIds = () => new Set<string>([...builtinMigratorIds, ...loaded.keys(), ...registered.keys()]);

  async function importDriver(ref: MigratorRef, resolved: ResolvedPackage | null): Promise<DriverModule> {
    if (!resolved) throw notInstalled(ref, knownIds());
    if (resolved.broken !== undefined) {
      throw registryError(
        RegistryErrorCode.LOAD,
        `migrator ${JSON.stringify(ref.id)}: package ${ref.package} is installed${resolved.dir ? ` at ${resolved.dir}` : ''} but cannot be resolved (is it built?): ${resolved.broken}`,
      );
    }
    let ns: Record<string, unknown>;
    try {
      ns = (await import(resolved.entry ? pathToFileURL(resolved.entry).href : ref.package)) as Record<
        string,
        unknown
      >;
    } catch (e) {
      throw registryError(
        RegistryErrorCode.LOAD,
        `migrator ${JSON.stringify(ref.id)}: importing ${ref.package} failed: ${messageOf(e)}`,
        e,
      );
    }
    return driverModule(ref, ns);
  }

  async function load(id: string, opts: MigratorOptions = {}): Promise<Migrator> {
    const ref = migratorRef(id);
    if (!isPlainObject(opts)) {
      throw registryError(
        RegistryErrorCode.OPTION,
        `options for migrator ${ref.id} must be a plain object, got ${opts === null ? 'null' : typeof opts}`,
      );
    }
    const own = registered.get(ref.id);
    if (own) {
      if (Object.keys(opts).length) {
        throw registryError(
          RegistryErrorCode.OPTION,
          `migrator ${ref.id} was registered as an object; it takes no options (create it with them instead)`,
        );
      }
      return own;
    }
    const driver = await importDriver(ref, resolvePackage(ref.package, root));
    checkOptions(ref, driver.optionKeys, opts);
    const m = await create(ref, driver, opts);
    validateMigrator(m);
    if (ref.kind !== 'builtin' && !loaded.has(ref.id)) loaded.set(ref.id, ref);
    return m;
  }

  function register<M extends Migrator>(migrator: M): M {
    validateMigrator(migrator);
    const have = registered.get(migrator.name);
    if (have) {
      throw registryError(
        RegistryErrorCode.DUPLICATE,
        `a migrator named ${JSON.stringify(migrator.name)} is already registered` +
          (have === migrator ? ' (the same object)' : ` (version ${have.version})`),
      );
    }
    registered.set(migrator.name, migrator);
    return migrator;
  }

  async function probe(ref: MigratorRef): Promise<MigratorListing> {
    const resolved = resolvePackage(ref.package, root);
    const listing: MigratorListing = {
      id: ref.id,
      package: ref.package,
      installed: resolved !== null,
      version: resolved?.packageJson?.version ?? null,
      capabilities: null,
      source: ref.kind === 'builtin' ? 'builtin' : 'third-party',
    };
    if (!resolved) return listing;
    const key = resolved.entry ?? `${ref.package}@${resolved.dir}`;
    let seen = probed.get(key);
    if (!seen) {
      try {
        const m = await create(ref, await importDriver(ref, resolved), {});
        validateMigrator(m);
        seen = { capabilities: JSON.parse(JSON.stringify(m.capabilities)) as MigratorCapabilities };
      } catch (e) {
        seen = { capabilities: null, error: messageOf(e) };
      }
      probed.set(key, seen);
    }
    listing.capabilities = seen.capabilities;
    if (seen.error !== undefined) listing.error = seen.error;
    return listing;
  }

  function registeredListing(m: Migrator): MigratorListing {
    return {
      id: m.name,
      package: null,
      installed: true,
      version: m.version,
      capabilities: JSON.parse(JSON.stringify(m.capabilities)) as MigratorCapabilities,
      source: 'registered',
    };
  }

  async function list(): Promise<MigratorListing[]> {
    const out: MigratorListing[] = [];
    const done = new Set<string>();
    const refs: MigratorRef[] = [
      ...builtinMigratorIds.map(
        (id): MigratorRef => ({ id, package: builtinMigrators[id], kind: 'builtin' }),
      ),
      ...loaded.values(),
    ];
    for (const ref of refs) {
      if (done.has(ref.id)) continue;
      done.add(ref.id);
      const own = registered.get(ref.id);
      out.push(own ? registeredListing(own) : await probe(ref));
    }
    for (const m of registered.values()) if (!done.has(m.name)) out.push(registeredListing(m));
    return out;
  }

  return {
    root,
    load,
    register,
    list,
    configure: (machine, config) => configureMachine(load, machine, config),
  };
}
