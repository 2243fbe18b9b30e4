// Growth benchmark (issue 15): one process whose area has every other page unmapped, so it has n
// VMAs, for n = 1k, 4k, 16k, 64k. Timed per size: creating it (n splitting munmaps), compaction of
// node 0 (compact_node over the fragmented area), move_pages(2) of every page to the other node,
// fork(), and the child's exit(). Each row shows the time, the ratio to the previous size (4x
// more VMAs: O(log n) per VMA keeps it near 4x, O(n) per VMA makes it ~16x), and for move_pages
// the same run's raw copy of the same bytes. Writes bench-results/scale.json.
//
//   node --expose-gc bench/run.mjs            (PAGEMIG_SCALE_SIZES=1024,4096 for fewer sizes)
//   PAGEMIG_CORE=/path/to/core/dist/index.js  measures another build of core (before/after)
import { median, printTable, rawCopier, writeResults } from '@pagemig-tools/bench';

const core = await import(process.env.PAGEMIG_CORE ?? '@pagemig/core');
const { attachKcompactd } = await import(process.env.PAGEMIG_KCOMPACTD ?? '@pagemig/kcompactd');
const { createMachine, MPOL_MF_MOVE, PAGE_SIZE } = core;

const sizes = (process.env.PAGEMIG_SCALE_SIZES ?? '1024,4096,16384,65536').split(',').map(Number);
const REPS = Number(process.env.PAGEMIG_BENCH_REPS ?? 3);
const gc = () => globalThis.gc?.();
const log = (msg) => console.error(`scale bench: ${msg}`);

const time = async (fn) => {
  const t = performance.now();
  const r = await fn();
  return [(performance.now() - t) / 1000, r];
};

/** One measurement of every operation for `n` VMAs on a fresh machine (its creation untimed). */
async function measure(n, raw) {
  const pages = 2 * n;
  const memory = `${Math.max(64, 2 ** Math.ceil(Math.log2((pages * PAGE_SIZE * 2) / 2 ** 20)))}MiB`;
  const m = await createMachine({ nodes: [{ memory }, { memory }] });
  // 64k areas is past the default vm.max_map_count (65530): raise it as an administrator would.
  m.sysctl.write('vm.max_map_count', String(2 * n + 1024));
  const kd = attachKcompactd(m);
  const p = m.spawn({ comm: 'scale' });
  const a = p.mmap(pages * PAGE_SIZE, { node: 0, thp: 'never' });
  p.touch(a, pages * PAGE_SIZE, 'write');
  // The area is bound to node 0; pages move with move_pages(2), which policy does not stop.
  const [create] = await time(() => {
    for (let i = 1; i < pages; i += 2) p.munmap(a + i * PAGE_SIZE, PAGE_SIZE);
  });
  if (p.maps().length !== n) throw new Error(`expected ${n} VMAs, got ${p.maps().length}`);
  // compact_node over the fragmented area: the migrate scanner isolates every page (each in its own
  // VMA of one anon_vma: the rmap and VM_IO checks are what scale); order-0 holes inside the
  // area's pageblocks are no targets here, so few pages move (reported as pagesMigrated).
  const [compact, cr] = await time(() => kd.compactNode(0));
  const migrated = cr.zones.reduce((s, z) => s + z.pagesMigrated, 0);
  const addrs = Array.from({ length: n }, (_, i) => a + 2 * i * PAGE_SIZE);
  const [move, mv] = await time(() => p.movePages(0, addrs, new Array(n).fill(1), MPOL_MF_MOVE));
  if (mv.ret !== 0) throw new Error(`move_pages ret ${mv.ret}`);
  const rawMove = raw.pass(PAGE_SIZE) * (n / (raw.bytes / PAGE_SIZE));
  const [fork, child] = await time(() => p.fork());
  const [exit] = await time(() => child.exit());
  m.checkInvariants();
  await kd.stop();
  await m.close();
  return { create, move, rawMove, compact, migrated, fork, exit };
}

const raw = rawCopier(64 << 20);
const rows = [];
for (const n of sizes) {
  log(`${n} VMAs`);
  const runs = [];
  for (let r = 0; r < REPS; r++) {
    gc();
    runs.push(await measure(n, raw));
  }
  const med = (k) => median(runs.map((x) => x[k]));
  rows.push({
    vmas: n,
    createSeconds: med('create'),
    movePagesSeconds: med('move'),
    movePagesRawCopySeconds: med('rawMove'),
    compactSeconds: med('compact'),
    compactPagesMigrated: med('migrated'),
    forkSeconds: med('fork'),
    exitSeconds: med('exit'),
    reps: REPS,
  });
}
const ops = [
  ['create (n splitting munmaps)', 'createSeconds'],
  ['compaction of node 0', 'compactSeconds'],
  ['move_pages of every page', 'movePagesSeconds'],
  ['fork', 'forkSeconds'],
  ['child exit', 'exitSeconds'],
];
const ms = (s) => (s * 1000).toFixed(s < 0.01 ? 2 : 1);
for (const r of rows) {
  const i = rows.indexOf(r);
  r.ratioToPrevious = Object.fromEntries(ops.map(([, key]) => [key, i ? r[key] / rows[i - 1][key] : null]));
}
printTable(
  `Core mm at scale: wall ms per operation (median of ${REPS}); x = ratio to the previous size (4x the VMAs)`,
  ['operation', ...rows.map((r) => `${r.vmas} VMAs`)],
  [
    ...ops.map(([label, key]) => [
      label,
      ...rows.map((r, i) => `${ms(r[key])}${i ? ` (${r.ratioToPrevious[key].toFixed(1)}x)` : ''}`),
    ]),
    ['raw copy of the moved bytes (reference)', ...rows.map((r) => ms(r.movePagesRawCopySeconds))],
    [
      'move_pages x raw copy',
      ...rows.map((r) => (r.movePagesRawCopySeconds / r.movePagesSeconds).toFixed(3)),
    ],
  ],
);
writeResults('scale', { sizes, rows });
