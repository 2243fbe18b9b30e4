import type { Machine } from '@pagemig/core';
import type { Command } from 'commander';
import { loadConfig } from './config.js';
import type { CommandContext } from './context.js';
import { machineConfig, migratorChoice, openMachine, wireMigrators } from './machine.js';
import { addMachineFlags, addMigratorFlags, type MachineOpts, machineFlags } from './machine_flags.js';
import { runScenario, SCENARIOS, type ScenarioName, scenarioFlag } from './scenarios/run.js';

export interface ScenarioOpts extends MachineOpts {
  scenario: string;
  config?: string;
  json?: boolean;
}

export function addScenarioFlags(cmd: Command): Command {
  cmd.option('--scenario <name>', `what runs first: ${SCENARIOS.join(', ')}`, 'migrate');
  addMachineFlags(cmd);
  return addMigratorFlags(cmd);
}

/**
 * Builds the machine (2 nodes x 64MiB unless configured), wires migrators, calls `before` (e.g.
 * to enable tracepoints), runs the scenario, then `fn`.
 */
export async function withScenario<T>(
  ctx: CommandContext,
  o: ScenarioOpts,
  fn: (m: Machine, scenario: ScenarioName) => T,
  before?: (m: Machine) => void,
): Promise<T> {
  const scenario = scenarioFlag(o.scenario);
  const { config, name } = await loadConfig(ctx.io.cwd, o.config);
  const flags = machineFlags(o);
  const mc = machineConfig(config, flags, { nodes: 2, nodeMemory: 64 << 20 });
  if (flags.batchPages !== undefined) mc.migrationBatchPages = flags.batchPages;
  const m = await openMachine(mc, { configName: name, flags });
  try {
    await wireMigrators(m, ctx.drivers(), config, migratorChoice(config, o), name);
    before?.(m);
    await runScenario(m, scenario);
    return fn(m, scenario);
  } finally {
    await m.close();
  }
}
