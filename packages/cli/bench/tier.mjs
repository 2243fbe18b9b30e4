/**
 * The memory-tiering benchmark of issue 19: a Zipf hot set moving every second over a region twice
 * the size of a 64 MiB DRAM node, with a 256 MiB CXL node; kswapd demotes, NUMA balancing mode 2
 * promotes, and the same workload (same seed) runs once per migrator: cpu-serial,
 * cpu-multithreaded, ptdma, sdxi. It runs `pagemig tier --compare` on the built package, writes
 * bench-results/tier.json (the tier document with the environment) and the report
 * bench-results/tier/tier.html, prints the table and, with --readme, rewrites the table between
 * the tier-bench markers of packages/kswapd/README.md. One run varies a lot on a shared host (the
 * modeled time of a DMA migrator by 3x between runs), so the whole comparison runs
 * PAGEMIG_TIER_REPS times (default 3) and each cell is the median, with the range beside it.
 *
 *   PAGEMIG_TIER_REPS=3 node bench/tier.mjs [--readme]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { median, printTable, repoRoot, writeResults } from '@pagemig-tools/bench';
import { runCli } from '../dist/index.js';

const ARGS = [
  'tier',
  '--dram',
  '64MiB',
  '--cxl',
  '256MiB',
  '--workload',
  'zipf',
  '--move-every',
  '1000',
  '--duration',
  '10000',
  '--seed',
  '1',
  '--compare',
  'cpu-serial,cpu-multithreaded,ptdma,sdxi',
  '--out',
  path.join(repoRoot, 'bench-results', 'tier'),
  '--json',
];

const reps = Number(process.env.PAGEMIG_TIER_REPS ?? 3);
if (!Number.isInteger(reps) || reps < 1)
  throw new RangeError(`PAGEMIG_TIER_REPS must be an integer >= 1, got ${process.env.PAGEMIG_TIER_REPS}`);

/** One `pagemig tier --compare` run: its JSON document. */
async function tierRun() {
  let stdout = '';
  const io = {
    stdout: { write: (s) => (stdout += s) },
    stderr: process.stderr,
    env: { ...process.env, CI: '1' },
    cwd: process.cwd(),
  };
  const code = await runCli(ARGS, { io });
  const doc = JSON.parse(stdout);
  if (code !== 0) {
    console.error(`pagemig tier failed (exit ${code}): ${doc.error?.message}`);
    process.exit(code);
  }
  return doc;
}

const docs = [];
for (let i = 0; i < reps; i++) docs.push(await tierRun());
const doc = docs.at(-1);

const fixed = (x, d) => (x === null || x === undefined ? '-' : x.toFixed(d));
/** The median of the runs' values, with their range when there are several. */
const spread = (xs, d) => {
  const v = xs.filter((x) => x !== null && x !== undefined);
  if (!v.length) return '-';
  const med = fixed(median(v), d);
  return v.length > 1 ? `${med} (${fixed(Math.min(...v), d)}-${fixed(Math.max(...v), d)})` : med;
};
const rows = doc.runs.map((_, m) => {
  const runs = docs.map((d) => d.runs[m]);
  // The hot set's arrival: the median over every move of every run (the first move is the start).
  const moves = runs.flatMap((r) => r.moves.slice(1));
  const arrived = moves.map((mv) => mv.arrivedMs).filter((x) => x !== null);
  return [
    runs[0].migrator.label,
    `${fixed(arrived.length ? median(arrived) : null, 0)} (${arrived.length}/${moves.length})`,
    spread(
      runs.map((r) => r.pagesPromoted),
      0,
    ),
    spread(
      runs.map((r) => r.pagesDemoted),
      0,
    ),
    spread(
      runs.map((r) => (r.promotion.cpuPerPageSeconds === null ? null : r.promotion.cpuPerPageSeconds * 1e6)),
      1,
    ),
    spread(
      runs.map((r) => r.promotion.cpuPerPageVsRawCopy),
      1,
    ),
    spread(
      runs.map((r) => r.modeled.totalNs / 1e6),
      0,
    ),
    spread(
      runs.map((r) => r.modeled.nsPerAccess),
      1,
    ),
    spread(
      runs.map((r) => r.wallMs),
      0,
    ),
  ];
});
const columns = [
  'migrator',
  { header: 'hot set on DRAM after a move, ms (median over all runs, arrived/moves)', align: 'right' },
  { header: 'pages promoted', align: 'right' },
  { header: 'pages demoted', align: 'right' },
  { header: 'engine CPU µs per promoted page', align: 'right' },
  { header: 'x raw 4 KiB copy', align: 'right' },
  { header: 'modeled workload ms', align: 'right' },
  { header: 'modeled ns/access', align: 'right' },
  { header: 'wall ms', align: 'right' },
];
printTable(
  `memory tiering: Zipf hot set moving every second, 64 MiB DRAM + 256 MiB CXL; median (range) of ${reps} run(s)`,
  columns,
  rows,
);
const resultsPath = writeResults('tier', { reps, runs: docs });
console.log(resultsPath);

if (process.argv.includes('--readme')) {
  const readme = path.join(repoRoot, 'packages', 'kswapd', 'README.md');
  const text = readFileSync(readme, 'utf8');
  const start = '<!-- tier-bench:start -->';
  const end = '<!-- tier-bench:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${readme} has no ${start} ... ${end} section`);
  const cell = (c) => (typeof c === 'string' ? c : c.header);
  const e = JSON.parse(readFileSync(resultsPath, 'utf8')).environment;
  const table = [
    `| ${columns.map(cell).join(' | ')} |`,
    `| ${columns.map((_c, i) => (i ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
  const section = `${start}
Produced by \`pnpm --filter @pagemig/cli bench:tier -- --readme\`, i.e. \`pagemig ${ARGS.slice(0, -3).join(' ')}\`
(${e.cpuModel}, ${e.availableParallelism} CPUs, Node ${e.node}, ${e.date?.slice(0, 10)}; a shared host: each cell is the median of ${reps} runs of the
whole comparison, with their range in parentheses, as one run varies a lot).
Page popularity over the ${(doc.workload.bytes / 2 ** 20).toFixed(0)} MiB region follows Zipf's law (s = 0.99) and moves every second; the hot set is the top
ranks covering a tenth of the region. "On DRAM" is the time until a move_pages(2) sample (every ${doc.sampling.everyMs} ms, the resolution) saw
90% of the new hot set on DRAM; 25% of the accesses write, and every byte is verified after each run.
Engine CPU is the kernel thread's CPU time (schedstat) while promotions were in flight (numa-balancing's \`cpuSeconds\`:
it also holds the hinting faults served and whatever else ran then), per promoted page, next to each run's raw copy of a 4 KiB page (${spread(
    docs.map((d) => d.rawCopy4KiBSeconds * 1e6),
    2,
  )} µs). Modeled time prices each access by its tier's load latency
(timing profile dram-cxl) plus the thread's waits on migration entries.
Promotions move one 4 KiB folio per hinting fault: an offload engine pays a doorbell and a wake-up per folio while the
faulting thread sleeps on the migration entry (the stall in the modeled time), and a wake-up costs far more than
copying 4 KiB; kswapd's demotions come in batches, where batching and offload can pay.

${table}
${end}`;
  writeFileSync(readme, text.slice(0, a) + section + text.slice(b + end.length));
  console.log(`updated ${readme}`);
}
