import {
  createMachine,
  type Machine,
  type MachineConfig,
  type Migrator,
  PagemigError,
  parseSize,
  type Size,
} from '@pagemig/core';
import { configureMachine, migratorRef, type RegistryConfig, RegistryErrorCode } from '@pagemig/registry';
import type { PagemigConfig } from './config.js';
import { configError, specOptions } from './config.js';
import { type Drivers, driverError } from './drivers.js';
import { CliError, ExitCode, usageError } from './exit_codes.js';
import { formatSize } from './table.js';

/** A size flag in bytes; errors name the flag. */
export function sizeFlag(flag: string, value: Size): number {
  try {
    return parseSize(value, flag);
  } catch (e) {
    throw usageError((e as Error).message);
  }
}

/** A positive integer flag (`--nodes 2`). */
export function intFlag(flag: string, value: string | number, min = 1, max = 1 << 30): number {
  // Decimal digits only: Number() would also take '1e3', '0x10' and ' 5 '.
  const n = typeof value === 'string' && !/^-?\d+$/.test(value) ? Number.NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw usageError(`${flag}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

export interface MachineFlags {
  nodes?: number;
  /** Memory per node (bytes or '256MiB'). */
  nodeMemory?: Size;
}

/** The machine to build: flags over the config file's `machine` over the command's defaults. */
export function machineConfig(
  cfg: PagemigConfig,
  flags: MachineFlags,
  defaults: { nodes: number; nodeMemory: number },
): MachineConfig {
  const fileNodes = cfg.machine?.nodes;
  const count = flags.nodes ?? fileNodes?.length ?? defaults.nodes;
  const nodes = Array.from({ length: count }, (_, i) => {
    const fromFile = fileNodes?.[i];
    const memory = flags.nodeMemory ?? fromFile?.memory ?? defaults.nodeMemory;
    // Zones describe the file's node size; a node resized by a flag gets one Normal zone.
    const zones = flags.nodeMemory === undefined ? fromFile?.zones : undefined;
    return {
      memory,
      ...(fromFile?.tier ? { tier: fromFile.tier } : {}),
      ...(fromFile?.cpus !== undefined ? { cpus: fromFile.cpus } : {}),
      ...(zones ? { zones } : {}),
    };
  });
  const { nodes: _nodes, ...rest } = cfg.machine ?? {};
  // Distances from the file only fit its own node count.
  if (rest.distances && rest.distances.length !== count) delete rest.distances;
  return { ...rest, nodes } as MachineConfig;
}

/**
 * createMachine; its configuration errors are the flags' (exit 2) when a flag set the field, else
 * the config file's (exit 4, naming it and the field).
 */
export async function openMachine(
  config: MachineConfig,
  from: { configName?: string | undefined; flags?: MachineFlags & { batchPages?: number } } = {},
): Promise<Machine> {
  try {
    return await createMachine(config);
  } catch (e) {
    if (!PagemigError.isInstance(e) || e.code !== 'ERR_INVALID_CONFIG') throw e;
    const detail = e.message.replace(/^createMachine: /, '');
    const field = /^([\w.]+): /.exec(detail)?.[1] ?? '';
    const f = from.flags ?? {};
    const byFlag =
      (field.startsWith('nodes') && (f.nodes !== undefined || f.nodeMemory !== undefined)) ||
      (field === 'migrationBatchPages' && f.batchPages !== undefined);
    if (from.configName !== undefined && !byFlag) {
      const path = `machine.${field}`.replace(/\.(\d+)/g, '[$1]');
      throw configError(`${from.configName}: ${path}: ${detail.slice(field.length + 2)}`);
    }
    throw new CliError(`machine: ${detail}`, ExitCode.USAGE, e.code);
  }
}

export interface MigratorChoice {
  /** A migrator id, or 'none' for the kernel's own CPU copy. */
  id: string;
  options: Record<string, unknown>;
  reasons?: string | string[];
  /** Where the choice came from, so an error blames the config file or the flag. */
  source?: { idFromFile: boolean; fileKeys: string[] };
}

/** The default migrator: `--migrator`/`--option`/`--timing` over the config file's `migrator`. */
export function migratorChoice(
  cfg: PagemigConfig,
  flags: { migrator?: string; option?: Record<string, unknown>; timing?: string },
  fallback = 'none',
): MigratorChoice {
  const file = cfg.migrator;
  const id = flags.migrator ?? file?.id ?? fallback;
  const sameAsFile = file !== undefined && file.id === id;
  // Options for no migrator would be dropped without a word: say so instead.
  if (id === 'none' && flags.option && Object.keys(flags.option).length)
    throw usageError(
      `--option ${Object.keys(flags.option).join(', ')}: no migrator takes it (the kernel's own copy is used); give --migrator`,
    );
  const timing = flags.timing ?? (sameAsFile ? file.timing : undefined);
  if (timing !== undefined && !cfg.timingProfiles?.[timing]) {
    const known = Object.keys(cfg.timingProfiles ?? {});
    throw usageError(
      `--timing: unknown timing profile ${JSON.stringify(timing)}; ${known.length ? `known: ${known.join(', ')}` : 'define timingProfiles in pagemig.config.json'}`,
    );
  }
  const base = sameAsFile ? specOptions(cfg, { ...file, timing }) : specOptions(cfg, { id, timing });
  const fileKeys = sameAsFile
    ? Object.keys(base).filter((k) => !(k in (flags.option ?? {})) && !(k === 'timing' && flags.timing))
    : [];
  return {
    id,
    options: { ...base, ...flags.option },
    ...(sameAsFile && file.reasons !== undefined ? { reasons: file.reasons } : {}),
    source: { idFromFile: flags.migrator === undefined && file !== undefined, fileKeys },
  };
}

/** Canonical (id, options) key, to tell which spec a load belongs to. */
function specKey(id: string, options: Record<string, unknown>): string {
  const sorted = (v: unknown): unknown =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([k, x]) => [k, sorted(x)]),
        )
      : v;
  try {
    return `${id}\0${JSON.stringify(sorted(options))}`;
  } catch {
    return `${id}\0?`;
  }
}

/** A spec's load error: the config file's fault (exit 4, file and JSON path) or the flags' (exit 2). */
function specError(
  e: unknown,
  spec: { where: string; fileKeys: string[]; idFromFile: boolean; options: Record<string, unknown> },
  configName: string | undefined,
): CliError {
  const err = e instanceof CliError ? e : driverError(e);
  if (configName === undefined) return err;
  if (err.code === RegistryErrorCode.ID && spec.idFromFile)
    return configError(`${configName}: ${spec.where}.id: ${err.message}`);
  // Still exit 3 (install it), but say which field of which file asked for it.
  if (err.exitCode === ExitCode.DRIVER_MISSING && spec.idFromFile)
    return new CliError(`${configName}: ${spec.where}.id: ${err.message}`, err.exitCode, err.code);
  if (err.code !== RegistryErrorCode.OPTION) return err;
  // The option the driver names: the key quoted in the message, or the first key it mentions.
  const keys = Object.keys(spec.options);
  const key =
    keys.find((k) => err.message.includes(`"${k}"`)) ??
    keys.find((k) =>
      new RegExp(`(^|[^\\w])${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^\\w]|$)`).test(err.message),
    );
  const fromFile =
    key !== undefined ? spec.fileKeys.includes(key) : spec.fileKeys.length > 0 && spec.idFromFile;
  if (!fromFile) return err;
  const field = key === undefined ? 'options' : key === 'timing' ? 'timing' : `options.${key}`;
  return configError(`${configName}: ${spec.where}.${field}: ${err.message}`);
}

/**
 * Loads and wires the default migrator and the config file's routes with the registry's
 * configure: each (id, options) is loaded once, so a default and a route that agree share one
 * instance, and another instance of a driver joins under `<name>#2`. Returns the names it wired.
 */
export async function wireMigrators(
  m: Machine,
  drivers: Drivers,
  cfg: PagemigConfig,
  choice: MigratorChoice,
  configName?: string,
): Promise<{
  default: Migrator | null;
  routes: Record<string, string>;
  /** The migrator each routed reason got. */
  migrators: Record<string, Migrator>;
}> {
  type Spec = { where: string; fileKeys: string[]; idFromFile: boolean; options: Record<string, unknown> };
  const specs = new Map<string, Spec>();
  const config: RegistryConfig = {};
  if (choice.id !== 'none') {
    config.default = { id: choice.id, options: choice.options, reasons: choice.reasons ?? 'all' };
    specs.set(specKey(choice.id, choice.options), {
      where: 'migrator',
      fileKeys: choice.source?.fileKeys ?? [],
      idFromFile: choice.source?.idFromFile ?? false,
      options: choice.options,
    });
  }
  const routes: Record<string, { id: string; options: Record<string, unknown> }> = {};
  for (const [reason, spec] of Object.entries(cfg.routes ?? {})) {
    const options = specOptions(cfg, spec);
    routes[reason] = { id: spec.id, options };
    const key = specKey(spec.id, options);
    if (!specs.has(key))
      specs.set(key, {
        where: `routes.${reason}`,
        fileKeys: Object.keys(options),
        idFromFile: true,
        options,
      });
  }
  if (Object.keys(routes).length) config.routes = routes;
  // Ids first: a spelling no package can have is the file's or the flag's, before anything loads.
  for (const [key, spec] of specs) {
    try {
      migratorRef(key.slice(0, key.indexOf('\0')));
    } catch (e) {
      throw specError(e, spec, configName);
    }
  }
  const load = async (id: string, options: Record<string, unknown> = {}) => {
    try {
      return await drivers.load(id, options);
    } catch (e) {
      const spec = specs.get(specKey(id, options));
      throw spec ? specError(e, spec, configName) : driverError(e);
    }
  };
  let wired: Awaited<ReturnType<typeof configureMachine>>;
  try {
    wired = await configureMachine(load, m, config);
  } catch (e) {
    if (e instanceof CliError) throw e;
    // A reason mask from a flag-built default (the file's were checked when it was read).
    if (PagemigError.isInstance(e) && e.code === 'EINVAL') throw usageError(e.message);
    throw e;
  }
  const names: Record<string, string> = {};
  const migrators: Record<string, Migrator> = {};
  for (const [reason, mig] of Object.entries(wired.routes))
    if (mig) {
      names[reason] = mig.name;
      migrators[reason] = mig;
    }
  return { default: wired.default, routes: names, migrators };
}

/** The machine as JSON (bytes per node) and as one line of text. */
export function describeMachine(mc: MachineConfig): {
  json: { nodes: { memory: number; tier: string }[]; migrationBatchPages: number };
  text: string;
} {
  const nodes = mc.nodes.map((n) => ({ memory: parseSize(n.memory), tier: n.tier ?? 'dram' }));
  const sizes = [...new Set(nodes.map((n) => formatSize(n.memory)))];
  return {
    json: { nodes, migrationBatchPages: mc.migrationBatchPages ?? 512 },
    text: `${nodes.length} node${nodes.length > 1 ? 's' : ''} x ${sizes.join('/')}`,
  };
}
