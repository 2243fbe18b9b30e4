import {
  type MigrateModeName,
  type MigrateReasonName,
  migrateModeNames,
  migrateReasonNames,
} from '@pagemig/core';
import type { Command } from 'commander';
import { usageError } from './exit_codes.js';
import { intFlag, type MachineFlags, sizeFlag } from './machine.js';

/** Raw flag values commander hands over for the machine and migrator options. */
export interface MachineOpts {
  nodes?: string;
  nodeMemory?: string;
  migrator?: string;
  option?: Record<string, unknown>;
  timing?: string;
  batchPages?: string;
}

export function addMachineFlags(cmd: Command): Command {
  return cmd
    .option('--nodes <n>', 'NUMA nodes of the machine')
    .option('--node-memory <size>', 'memory per node, a multiple of 2MiB (e.g. 256MiB)')
    .option('--batch-pages <n>', 'NR_MAX_BATCHED_MIGRATION in base pages (default 512)');
}

export function addMigratorFlags(cmd: Command, what = 'the copy'): Command {
  return cmd
    .option(
      '-m, --migrator <id>',
      `migrator for ${what}: cpu-serial, cpu-multithreaded, ptdma, sdxi, a third-party id, or none (the kernel's CPU copy)`,
    )
    .option(
      '-o, --option <key=value>',
      'a migrator option, repeatable (e.g. -o channels=2); values are JSON or strings',
      collectOption,
    )
    .option(
      '--timing <profile>',
      'throttle an emulated DMA engine to a timingProfiles entry of the config file',
    );
}

/** `--node-memory`: a size that is a positive multiple of 2MiB (one pageblock). */
function nodeMemoryFlag(value: string): number {
  const bytes = sizeFlag('--node-memory', value);
  if (bytes === 0 || bytes % (2 << 20))
    throw usageError(
      `--node-memory: ${JSON.stringify(value)} is not a positive multiple of 2MiB (one pageblock)`,
    );
  return bytes;
}

export function machineFlags(o: MachineOpts): MachineFlags & { batchPages?: number } {
  return {
    ...(o.nodes !== undefined ? { nodes: intFlag('--nodes', o.nodes, 1, 64) } : {}),
    // Checked here, passed on as typed so createMachine's errors quote the user's spelling.
    ...(o.nodeMemory !== undefined && nodeMemoryFlag(o.nodeMemory) >= 0 ? { nodeMemory: o.nodeMemory } : {}),
    ...(o.batchPages !== undefined ? { batchPages: intFlag('--batch-pages', o.batchPages, 1, 1 << 20) } : {}),
  };
}

/** MIGRATE_SYNC, sync, sync_light, sync-light, async → the kernel's mode name. */
export function modeFlag(value: string): MigrateModeName {
  const norm = value.toUpperCase().replace(/-/g, '_');
  const name = (norm.startsWith('MIGRATE_') ? norm : `MIGRATE_${norm}`) as MigrateModeName;
  if (!migrateModeNames.includes(name))
    throw usageError(
      `--mode: unknown migrate mode ${JSON.stringify(value)}; use one of ${migrateModeNames.join(', ')}`,
    );
  return name;
}

export function reasonFlag(value: string): MigrateReasonName {
  if (!(migrateReasonNames as readonly string[]).includes(value))
    throw usageError(
      `--reason: unknown migrate reason ${JSON.stringify(value)}; use one of ${migrateReasonNames.join(', ')}`,
    );
  return value as MigrateReasonName;
}

/** `-o key=value` pairs; values are JSON when they parse (numbers, booleans, objects), else strings. */
export function collectOption(pair: string, acc: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw usageError(`--option ${JSON.stringify(pair)}: expected key=value`);
  const raw = pair.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string
  }
  return { ...acc, [pair.slice(0, eq)]: value };
}
