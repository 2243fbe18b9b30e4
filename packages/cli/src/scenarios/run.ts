import type { Machine } from '@pagemig/core';
import { attachKcompactd } from '@pagemig/kcompactd';
import { CliError, ExitCode, usageError } from '../exit_codes.js';
import { fragmentNode } from './fragment.js';
import { runMigration } from './migration.js';

export const SCENARIOS = ['migrate', 'compact', 'idle'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export function scenarioFlag(value: string): ScenarioName {
  if (!(SCENARIOS as readonly string[]).includes(value))
    throw usageError(
      `--scenario: unknown scenario ${JSON.stringify(value)}; use one of ${SCENARIOS.join(', ')}`,
    );
  return value as ScenarioName;
}

/**
 * What `proc` and `trace` look at: `migrate` moves 16 MiB of 4 KiB and 2 MiB folios from node 0
 * to node 1 (node 0 to itself is refused, so one-node machines need `compact`) and leaves them
 * mapped, `compact` fragments node 0 and has a root shell write 1 to vm.compact_memory, which
 * returns once every node is compacted (the memory stays mapped; the compaction's trace lines are
 * the shell's), `idle` only boots the machine. Everything is verified; the files are printed
 * before the machine closes.
 */
export async function runScenario(m: Machine, name: ScenarioName): Promise<void> {
  if (name === 'migrate') {
    if (m.nodes.length < 2) throw usageError('the migrate scenario needs two nodes (--nodes 2)');
    const base = {
      from: 0,
      to: 1,
      mode: 'MIGRATE_SYNC',
      reason: 'syscall_or_cpuset',
      total: 8 << 20,
      keepMapped: true,
    } as const;
    await runMigration(m, { ...base, folio: 4096, seed: 7 });
    await runMigration(m, { ...base, folio: 2 << 20, seed: 8 });
  } else if (name === 'compact') {
    const kd = attachKcompactd(m, { proactiveness: 0 });
    try {
      const frag = fragmentNode(m, 0);
      // echo 1 > /proc/sys/vm/compact_memory
      const sh = m.spawn({ uid: 0, comm: 'sh' });
      const err = await m.sysctl.writeAsync('vm.compact_memory', '1', { task: sh });
      if (err)
        throw new CliError(
          `compact scenario: writing vm.compact_memory failed (errno ${err})`,
          ExitCode.FAILURE,
        );
      sh.exit();
      frag.verify();
      m.checkInvariants();
    } finally {
      await kd.stop();
    }
  }
}
