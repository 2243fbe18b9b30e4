// Per-call growth benchmark: what one call costs as the thing the kernel keeps in a tree or a
// counter grows. Each row doubles one dimension and shows µs per call and the ratio per doubling
// (O(1) or O(log n) stays near 1.0, O(n) reaches 2.0):
//   - /proc/vmstat and /proc/meminfo against machine RAM (the kernel reads counters);
//   - a NUMA balancing scan pass against the process's VMAs (task_numa_work resumes a VMA
//     iterator at mm->numa_scan_offset);
//   - get_mempolicy(MPOL_F_ADDR) and a one-page mbind on shared memory against its policy ranges
//     (struct shared_policy is an rb-tree);
//   - mmap + munmap of an untouched shared area against its length (the page cache is an xarray);
//   - move_pages(2) of a page one forked child copied on write, against the number of siblings
//     (the child's own anon_vma holds only its VMA), next to the same run's raw copy of 4 KiB.
// Machines are metadata-only (backing 'none') or small; their creation is not timed.
// Writes bench-results/scale-per-call.json.
//
//   node --expose-gc bench/per-call.mjs          (PAGEMIG_PER_CALL=vmstat,numab to pick rows)
//   PAGEMIG_CORE=/path/to/core/dist/index.js     measures another build of core (before/after)
import { median, printTable, rawCopier, writeResults } from '@pagemig-tools/bench';

const core = await import(process.env.PAGEMIG_CORE ?? '@pagemig/core');
const { attachNumaBalancing } = await import(process.env.PAGEMIG_NUMA_BALANCING ?? '@pagemig/numa-balancing');
const { createMachine, MPOL_BIND, MPOL_PREFERRED, MPOL_F_ADDR, MPOL_MF_MOVE, PAGE_SIZE } = core;

const REPS = Number(process.env.PAGEMIG_BENCH_REPS ?? 5);
const only = process.env.PAGEMIG_PER_CALL?.split(',');
const gc = () => globalThis.gc?.();
const log = (msg) => console.error(`per-call bench: ${msg}`);

/** µs per call of `fn(i)` over `k` calls, median of REPS passes (awaits fn when it returns a promise). */
async function perCall(fn, k) {
  const out = [];
  let i = 0;
  for (let r = 0; r < REPS; r++) {
    gc();
    const t = performance.now();
    for (let j = 0; j < k; j++) {
      const x = fn(i++);
      if (x?.then) await x;
    }
    out.push(((performance.now() - t) * 1000) / k);
  }
  return median(out);
}

/** One row per operation: µs at each size (a warm-up size first, dropped). */
async function grow(dimension, sizes, setup, ops) {
  const rows = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  for (const n of [sizes[0], ...sizes]) {
    const c = await setup(n);
    try {
      for (const [name, [op, k]] of Object.entries(ops)) rows[name].push(await perCall(op(c), k));
    } finally {
      await c.close();
    }
  }
  return Object.entries(rows).map(([op, us]) => {
    us.shift();
    const ratio = (us.at(-1) / us[0]) ** (1 / Math.log2(sizes.at(-1) / sizes[0]));
    return { dimension, op, sizes, microseconds: us, ratioPerDoubling: ratio };
  });
}

const benches = {
  vmstat: () =>
    grow(
      'machine RAM (GiB)',
      [1, 2, 4, 8, 16],
      async (g) => {
        const m = await createMachine({
          nodes: [{ memory: `${g / 2}GiB` }, { memory: `${g / 2}GiB` }],
          backing: 'none',
          prefault: false,
        });
        const p = m.spawn();
        const a = p.mmap(16 << 20, { thp: 'never' });
        p.touch(a, 16 << 20, 'write');
        return { m, close: () => m.close() };
      },
      {
        'm.vmstat()': [(c) => () => c.m.vmstat(), 20],
        '/proc/meminfo': [(c) => () => c.m.procfs.meminfo(), 20],
      },
    ),
  numab: () =>
    grow(
      'VMAs of the scanned process',
      [4096, 8192, 16384, 32768, 65536],
      async (n) => {
        const m = await createMachine({
          nodes: [{ memory: '64MiB' }, { memory: '512MiB' }],
          backing: 'none',
          prefault: false,
        });
        m.sysctl.write('vm.max_map_count', String(2 * n + 4096));
        const p = m.spawn({ node: 0 });
        const addrs = [];
        for (let i = 0; i < n; i++) {
          const a = p.mmap(3 * PAGE_SIZE, { thp: 'never' });
          p.touch(a, PAGE_SIZE, 'write');
          addrs.push(a);
        }
        // Every page on node 1, the task on node 0: every present PTE is a hinting candidate.
        await p.movePages(0, addrs, new Array(n).fill(1), MPOL_MF_MOVE);
        m.sysctl.write('kernel.numa_balancing', '1');
        const nb = attachNumaBalancing(m, { scanSizeMb: 1, scanDelayMs: 0 });
        return {
          nb,
          close: async () => {
            await nb.stop();
            await m.close();
          },
        };
      },
      { 'NUMA balancing scan pass (256 pages)': [(c) => () => c.nb.scanNow(), 50] },
    ),
  shmemPolicy: () =>
    grow(
      'policy ranges of one shared area',
      [1024, 2048, 4096, 8192, 16384],
      async (r) => {
        const m = await createMachine({
          nodes: [{ memory: '64MiB' }, { memory: '64MiB' }],
          backing: 'none',
          prefault: false,
        });
        m.sysctl.write('vm.max_map_count', String(4 * r + 4096));
        const p = m.spawn();
        const a = p.mmap(r * PAGE_SIZE, { thp: 'never', shared: true });
        // Neighbouring pages differ, so the object holds r ranges.
        for (let i = 0; i < r; i++) await p.mbind(a + i * PAGE_SIZE, PAGE_SIZE, MPOL_BIND, [i & 1], 0);
        // A fixed pseudo-random order, the same for both builds of an A/B.
        const pg = (i) => a + ((i * 2654435761) % r) * PAGE_SIZE;
        return { p, pg, close: () => m.close() };
      },
      {
        'get_mempolicy(MPOL_F_ADDR)': [
          (c) => (i) => c.p.getMempolicy({ addr: c.pg(i), flags: MPOL_F_ADDR }),
          150,
        ],
        'mbind of one page': [
          (c) => (i) =>
            c.p.mbind(c.pg(i >> 1), PAGE_SIZE, i & 1 ? MPOL_BIND : MPOL_PREFERRED, [(i >> 1) & 1], 0),
          150,
        ],
      },
    ),
  shmemMmap: () =>
    grow(
      'length of an untouched shared area (GiB)',
      [1, 2, 4, 8, 16],
      async (g) => {
        const m = await createMachine({ nodes: [{ memory: '64MiB' }], backing: 'none', prefault: false });
        return { p: m.spawn(), bytes: g * 2 ** 30, close: () => m.close() };
      },
      {
        'mmap + munmap, MAP_SHARED': [
          (c) => () => c.p.munmap(c.p.mmap(c.bytes, { shared: true, thp: 'never' }), c.bytes),
          5,
        ],
      },
    ),
  forkedCow: async () => {
    const rows = await grow(
      'forked siblings',
      [16, 64, 256, 1024],
      async (n) => {
        const m = await createMachine({
          nodes: [{ memory: '64MiB' }, { memory: '64MiB' }],
          backing: 'none',
          prefault: false,
        });
        const p = m.spawn();
        const a = p.mmap(8 * PAGE_SIZE, { thp: 'never' });
        p.touch(a, 8 * PAGE_SIZE, 'write');
        const kids = Array.from({ length: n }, () => p.fork());
        // Each child breaks copy-on-write of page 0: a folio only that child maps.
        for (const c of kids) c.touch(a, PAGE_SIZE, 'write');
        return { a, kids, close: () => m.close() };
      },
      {
        "move_pages of a child's copy-on-write page": [
          (c) => (i) => {
            const k = c.kids[i % c.kids.length];
            return k.movePages(0, [c.a], [(Math.floor(i / c.kids.length) + 1) & 1], MPOL_MF_MOVE);
          },
          256,
        ],
      },
    );
    const raw = rawCopier(64 << 20);
    const rawUs = median(
      Array.from({ length: REPS }, () => (raw.pass(PAGE_SIZE) * 1e6) / (raw.bytes / PAGE_SIZE)),
    );
    for (const r of rows) r.rawCopy4KiBMicroseconds = rawUs;
    return rows;
  },
};

const unknown = only?.filter((x) => !(x in benches));
if (unknown?.length) {
  console.error(
    `PAGEMIG_PER_CALL: no bench ${unknown.join(', ')}; the benches: ${Object.keys(benches).join(', ')}`,
  );
  process.exit(2);
}
const rows = [];
for (const [name, run] of Object.entries(benches)) {
  if (only && !only.includes(name)) continue;
  log(name);
  rows.push(...(await run()));
}
const fmt = (us) => (us < 10 ? us.toFixed(2) : us.toFixed(0));
printTable(
  `Per-call cost as one dimension doubles: µs per call (median of ${REPS}); O(log n) keeps the ratio near 1.0, O(n) makes it 2.0`,
  ['dimension', 'operation', 'sizes', 'µs per call', { header: 'ratio per doubling', align: 'right' }],
  rows.map((r) => [
    r.dimension,
    r.op,
    r.sizes.join(', '),
    `${r.microseconds.map(fmt).join(', ')}${r.rawCopy4KiBMicroseconds ? ` (raw 4 KiB copy ${fmt(r.rawCopy4KiBMicroseconds)})` : ''}`,
    r.ratioPerDoubling.toFixed(2),
  ]),
);
writeResults('scale-per-call', { reps: REPS, rows });
