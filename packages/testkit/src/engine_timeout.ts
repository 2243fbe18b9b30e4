import type { MigrationResult } from '@pagemig/core';

/**
 * Problems with a migration whose every offloaded batch ran past the engine's copy timeout
 * (`copyTimeoutMs`), for a dmaengine-style migrator given its `stats()`: the migration must still
 * succeed, with no folio copied by the migrator, every batch failed and counted as a timeout,
 * and some channel aborted.
 */
export function engineTimeoutProblems(
  r: MigrationResult,
  stats: { timeouts: number; channels: readonly { aborted: number }[] },
): string[] {
  const problems: string[] = [];
  const { batches, failures, foliosCopied } = r.offload;
  if (r.ret !== 0) problems.push(`migrateFolios returned ${r.ret}`);
  if (foliosCopied !== 0) problems.push(`the migrator copied ${foliosCopied} folios`);
  if (failures !== batches) problems.push(`${failures} of ${batches} batches failed`);
  if (stats.timeouts !== batches) problems.push(`${stats.timeouts} timeouts for ${batches} batches`);
  if (!stats.channels.some((c) => c.aborted > 0)) problems.push('no channel aborted');
  return problems;
}
