import {
  type MigrateReasonName,
  type Migrator,
  migrateReasonNames,
  type OffloadHost,
  PagemigError,
  parseReasonMask,
  suggestKey,
} from '@pagemig/core';
import { z } from 'zod';
import { einval, RegistryErrorCode, registryError } from './errors.js';
import { migratorRef } from './naming.js';

/** What `configure()` needs of a machine: its offload host (a `Machine` from `createMachine`). */
export interface OffloadTarget {
  readonly offload: Pick<OffloadHost, 'register' | 'route'>;
}

/** A migrator to load: an id (or package name) for `load()` and the options for its factory. */
export interface MigratorSpec {
  id: string;
  options?: Record<string, unknown>;
}

/**
 * Which migrators a machine uses: a default one registered with a reason mask (default 'all'),
 * and routes that send one migrate reason each to another migrator.
 */
export interface RegistryConfig {
  default?: MigratorSpec & {
    /** A kernel reason mask: 'all', 'none', 'compaction,numa_misplaced', a number, or a list. */
    reasons?: string | number | readonly string[];
  };
  /** Reason name (`compaction`, `numa_misplaced`, ...) → migrator. */
  routes?: Partial<Record<MigrateReasonName, MigratorSpec>>;
}

export interface ConfigureResult {
  /** The migrator registered as the machine's default, or null. */
  default: Migrator | null;
  /** The migrator each reason was routed to. */
  routes: Partial<Record<MigrateReasonName, Migrator>>;
  /** Every distinct migrator loaded, in load order (dispose them through the machine). */
  migrators: Migrator[];
}

const spec = {
  id: z.string().min(1, 'must be a migrator id or package name'),
  options: z.record(z.string(), z.unknown()).optional(),
};

const schema = z
  .object({
    default: z
      .object({
        ...spec,
        reasons: z.union([z.string(), z.number().int().nonnegative(), z.array(z.string())]).optional(),
      })
      .strict()
      .optional(),
    routes: z.record(z.string(), z.object(spec).strict()).optional(),
  })
  .strict();

function badConfig(where: string, message: string): PagemigError {
  return registryError(RegistryErrorCode.CONFIG, `configure: ${where}: ${message}`);
}

/** Core's EINVAL message without its "EINVAL: " prefix. */
function coreReason(e: unknown): string {
  return (e as Error).message.replace(/^EINVAL: /, '');
}

/** A route key is one reason name; core's parser tells an unknown name (EINVAL) from a mask. */
function checkRouteReason(reason: string): MigrateReasonName {
  if ((migrateReasonNames as readonly string[]).includes(reason)) return reason as MigrateReasonName;
  const where = `configure: routes.${reason}`;
  const known = `use one of ${migrateReasonNames.join(', ')}`;
  let coreError: unknown;
  try {
    parseReasonMask(reason);
  } catch (e) {
    coreError = e;
  }
  if (coreError === undefined)
    throw einval(`${where}: a route is for one migrate reason, not a mask; ${known}`);
  if (!PagemigError.isInstance(coreError) || coreError.code !== 'EINVAL') throw coreError;
  const hint = suggestKey(reason, migrateReasonNames);
  throw einval(
    `${where}: unknown migrate reason ${JSON.stringify(reason)}${hint ? `; did you mean ${JSON.stringify(hint)}?` : ''} (${known})`,
    coreError,
  );
}

/** One key per (package, options): 'fake' and 'pagemig-migrator-fake' share an instance. */
function optionsKey(id: string, options: Record<string, unknown> | undefined): string | symbol {
  id = migratorRef(id).package;
  if (!options || Object.keys(options).length === 0) return id;
  try {
    return `${id}\0${JSON.stringify(options, (_k, v: unknown) =>
      typeof v === 'object' && v !== null && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
    )}`;
  } catch {
    return Symbol(id); // not serialisable: never shared
  }
}

/**
 * `m` under another name: a view that forwards everything else (methods bound to `m`, so private
 * state keeps working). The target is a fresh object, so a frozen migrator can be renamed too.
 */
export function renamed(m: Migrator, name: string): Migrator {
  return new Proxy(Object.create(null) as Migrator, {
    get(_t, key) {
      if (key === 'name') return name;
      const v = Reflect.get(m, key, m) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(m) : v;
    },
    has: (_t, key) => Reflect.has(m, key),
  });
}

/**
 * Loads what `config` names with `load` (each `(id, options)` once) and wires it into `machine`:
 * what `registry.configure()` does, for callers with their own loader.
 */
export async function configureMachine(
  load: (id: string, options?: Record<string, unknown>) => Promise<Migrator>,
  machine: OffloadTarget,
  config: RegistryConfig,
): Promise<ConfigureResult> {
  if (typeof machine !== 'object' || machine === null || typeof machine.offload?.register !== 'function') {
    throw badConfig('machine', 'expected a machine from createMachine() (with machine.offload)');
  }
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badConfig(issue.path.length ? issue.path.map(String).join('.') : 'config', issue.message);
  }
  const cfg = parsed.data;

  // Every reason first: nothing is loaded or wired when one is wrong.
  if (cfg.default?.reasons !== undefined) {
    try {
      parseReasonMask(cfg.default.reasons);
    } catch (e) {
      if (PagemigError.isInstance(e) && e.code === 'EINVAL')
        throw einval(`configure: default.reasons: ${coreReason(e)}`, e);
      throw e;
    }
  }
  const routes = Object.entries(cfg.routes ?? {}).map(([reason, s]) => ({
    reason: checkRouteReason(reason),
    where: `routes.${reason}`,
    spec: s,
  }));

  // Load each (id, options) once, so specs that agree share one instance. A machine holds one
  // migrator per name (core's OffloadHost), so a second instance under a taken name (the same
  // driver with other options) joins as `<name>#2`, `#3`, ...
  const cache = new Map<string | symbol, Promise<Migrator>>();
  const byName = new Map<string, Migrator>();
  const wired = new Map<Migrator, Migrator>();
  const migrators: Migrator[] = [];
  const get = async (s: MigratorSpec): Promise<Migrator> => {
    const key = optionsKey(s.id, s.options);
    let p = cache.get(key);
    if (!p) {
      p = load(s.id, s.options);
      cache.set(key, p);
    }
    const loaded = await p;
    let m = wired.get(loaded);
    if (!m) {
      m = loaded;
      for (let n = 2; byName.has(m.name); n++) m = renamed(loaded, `${loaded.name}#${n}`);
      wired.set(loaded, m);
      byName.set(m.name, m);
      migrators.push(m);
    }
    return m;
  };
  const dflt = cfg.default ? await get(cfg.default) : null;
  const routed: { reason: MigrateReasonName; migrator: Migrator }[] = [];
  for (const r of routes) routed.push({ reason: r.reason, migrator: await get(r.spec) });

  // Wire: the default first (EBUSY from core if the machine already has one), then each route.
  if (dflt) await machine.offload.register(dflt, cfg.default?.reasons ?? 'all');
  const result: ConfigureResult = { default: dflt, routes: {}, migrators };
  for (const { reason, migrator } of routed) {
    await machine.offload.route(reason, migrator);
    result.routes[reason] = migrator;
  }
  return result;
}
