/**
 * An application that uses a third-party migrator: `pagemig-migrator-yielding` (in
 * ../pagemig-migrator-yielding) is a dependency of this package, so the registry finds it by its
 * id, `yielding`, exactly as it would find a package installed from npm.
 */
import { pathToFileURL } from 'node:url';
import { createMachine, type MigrationResult, PAGE_SIZE } from '@pagemig/core';
import { createRegistry } from '@pagemig/registry';

export interface MigrationSummary {
  reason: string;
  copiedBy: string | null;
  foliosOffered: number;
  foliosCopied: number;
  node: number;
  verified: boolean;
}

export interface CustomMigratorResult {
  listed: { id: string; package: string | null; installed: boolean; version: string | null } | undefined;
  typoError: string;
  migrations: MigrationSummary[];
  stats: Record<string, unknown>;
}

export async function runCustomMigrator(): Promise<CustomMigratorResult> {
  // Resolve drivers from this package (its node_modules), wherever the process was started.
  const reg = createRegistry({ root: new URL('..', import.meta.url) });
  const yielding = await reg.load('yielding', { sliceBytes: 256 << 10 });
  const listed = (await reg.list()).find((d) => d.id === 'yielding');

  // The registry checks option keys against the package's `optionKeys` export.
  const typoError = await reg.load('yielding', { sliceByte: 1 }).then(
    () => 'no error',
    (e: Error) => e.message,
  );

  const m = await createMachine({ nodes: [{ memory: '128MiB' }, { memory: '128MiB' }] });
  // Route by reason: only NUMA-balancing migrations go to the migrator; the rest use the kernel's copy.
  await m.offload.register(yielding, 'numa_misplaced');

  const p = m.spawn();
  const len = 16 << 20;
  const a = p.mmap(len, { thp: 'never', node: 0 });
  const data = new Uint8Array(len).map((_, i) => (i * 31 + (i >>> 12)) & 255);
  p.write(a, data);
  const folios = () => {
    const pfns: number[] = [];
    for (let off = 0; off < len; off += PAGE_SIZE) pfns.push(p.pageInfo(a + off)!.headPfn);
    return pfns;
  };
  const summary = (reason: string, r: MigrationResult): MigrationSummary => ({
    reason,
    copiedBy: r.offload.migrator,
    foliosOffered: r.offload.foliosOffered,
    foliosCopied: r.offload.foliosCopied,
    node: p.pageInfo(a)!.node,
    verified: r.ret === 0 && Buffer.compare(p.read(a, len), data) === 0,
  });

  const migrations = [
    summary('numa_misplaced', await m.migrateFolios(folios(), { node: 1, reason: 'numa_misplaced' })),
    summary('syscall_or_cpuset', await m.migrateFolios(folios(), { node: 0, reason: 'syscall_or_cpuset' })),
  ];
  m.checkInvariants();
  const stats = yielding.stats?.() ?? {};
  await m.close(); // unregisters and disposes the migrator

  return {
    listed: listed && {
      id: listed.id,
      package: listed.package,
      installed: listed.installed,
      version: listed.version,
    },
    typoError,
    migrations,
    stats,
  };
}

async function main(): Promise<void> {
  const r = await runCustomMigrator();
  console.log('registry.list():', r.listed);
  console.log('a typo in an option:', r.typoError);
  for (const s of r.migrations) {
    const by = s.foliosOffered
      ? `${s.foliosCopied} of ${s.foliosOffered} folios copied by ${s.copiedBy}`
      : `copied by the kernel's CPU copy (nothing routed for ${s.reason})`;
    console.log(`${s.reason}: 16 MiB -> node ${s.node}, ${by}; bytes ${s.verified ? 'verified' : 'WRONG'}`);
  }
  console.log('migrator stats:', r.stats);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
