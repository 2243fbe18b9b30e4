import type { Machine } from '@pagemig/core';
import { populateRegion, verifyPattern } from './fixtures.js';

const FOLIO_SIZES = [
  ['never', 4096],
  ['64KiB', 64 << 10],
  ['always', 2 << 20],
] as const;

/**
 * Migrates a fresh region of `bytes` from node 0 to node 1 once per folio size (4 KiB, 64 KiB,
 * 2 MiB), each in its own process that then exits. Checks that the region has `bytes / size`
 * folios, that the migration returns 0 with every folio copied by the registered migrator, and
 * that the region is on node 1 with its bytes intact; `m.checkInvariants()` throws on its own.
 * Returns the folios migrated and the problems (empty when all is well).
 */
export async function migrateEachFolioSize(
  m: Machine,
  opts: { bytes: number; seed?: number },
): Promise<{ folios: number; problems: string[] }> {
  const problems: string[] = [];
  let folios = 0;
  for (const [thp, size] of FOLIO_SIZES) {
    const { p, addr, data, heads } = populateRegion(m, { bytes: opts.bytes, thp, seed: opts.seed ?? 1 });
    const want = opts.bytes / size;
    if (heads.length !== want) problems.push(`thp ${thp}: ${heads.length} folios, expected ${want}`);
    const r = await m.migrateFolios(heads, { node: 1 });
    if (r.ret !== 0) problems.push(`thp ${thp}: migrateFolios returned ${r.ret}`);
    if (r.offload.foliosCopied !== heads.length)
      problems.push(`thp ${thp}: the migrator copied ${r.offload.foliosCopied} of ${heads.length} folios`);
    const node = p.pageInfo(addr)?.node;
    if (node !== 1) problems.push(`thp ${thp}: the region is on node ${node}, not 1`);
    problems.push(...verifyPattern(p, addr, data).map((x) => `thp ${thp}: ${x}`));
    m.checkInvariants();
    folios += heads.length;
    p.exit();
  }
  return { folios, problems };
}
