import {
  createMachine,
  type Machine,
  type MachineConfig,
  type Migrator,
  PagemigError,
  parseSize,
  type Size,
} from '@pagemig/core';
import type { PagemigConfig } from './config.js';
import { specOptions } from './config.js';
import type { Drivers } from './drivers.js';
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
  const n = Number(value);
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
      ...(zones ? { zones } : {}),
    };
  });
  const { nodes: _nodes, ...rest } = cfg.machine ?? {};
  // Distances from the file only fit its own node count.
  if (rest.distances && rest.distances.length !== count) delete rest.distances;
  return { ...rest, nodes } as MachineConfig;
}

/** createMachine with its configuration errors as usage errors. */
export async function openMachine(config: MachineConfig): Promise<Machine> {
  try {
    return await createMachine(config);
  } catch (e) {
    if (PagemigError.isInstance(e) && e.code === 'ERR_INVALID_CONFIG')
      throw new CliError(`machine: ${e.message.replace(/^createMachine: /, '')}`, ExitCode.USAGE, e.code);
    throw e;
  }
}

export interface MigratorChoice {
  /** A migrator id, or 'none' for the kernel's own CPU copy. */
  id: string;
  options: Record<string, unknown>;
  reasons?: string | string[];
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
  const timing = flags.timing ?? (sameAsFile ? file.timing : undefined);
  if (timing !== undefined && !cfg.timingProfiles?.[timing]) {
    const known = Object.keys(cfg.timingProfiles ?? {});
    throw usageError(
      `--timing: unknown timing profile ${JSON.stringify(timing)}; ${known.length ? `known: ${known.join(', ')}` : 'define timingProfiles in pagemig.config.json'}`,
    );
  }
  const base = sameAsFile ? specOptions(cfg, { ...file, timing }) : specOptions(cfg, { id, timing });
  return {
    id,
    options: { ...base, ...flags.option },
    ...(sameAsFile && file.reasons !== undefined ? { reasons: file.reasons } : {}),
  };
}

/** Loads and registers the default migrator and the config file's routes; returns what it wired. */
export async function wireMigrators(
  m: Machine,
  drivers: Drivers,
  cfg: PagemigConfig,
  choice: MigratorChoice,
): Promise<{ default: Migrator | null; routes: Record<string, string> }> {
  let dflt: Migrator | null = null;
  if (choice.id !== 'none') {
    dflt = await drivers.load(choice.id, choice.options);
    await registerOrUsage(() => m.offload.register(dflt!, choice.reasons ?? 'all'));
  }
  const routes: Record<string, string> = {};
  for (const [reason, spec] of Object.entries(cfg.routes ?? {})) {
    const mig = await drivers.load(spec.id, specOptions(cfg, spec));
    await registerOrUsage(() => m.offload.route(reason as never, mig), `routes.${reason}`);
    routes[reason] = mig.name;
  }
  return { default: dflt, routes };
}

async function registerOrUsage(fn: () => Promise<void>, where = 'migrator.reasons'): Promise<void> {
  try {
    await fn();
  } catch (e) {
    // An unknown reason name is the user's input; a failing init is the driver's.
    if (PagemigError.isInstance(e) && e.code === 'EINVAL') throw usageError(`${where}: ${e.message}`);
    throw e;
  }
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
