// Core machine benchmark: buddy allocator, page faults, page metadata and machine creation, each
// next to the same run's raw copy (TypedArray.prototype.set) of the same bytes. Runs on the built
// package (`pnpm bench` builds first). Prints a table and writes bench-results/core-machine.json.
//
//   node --expose-gc bench/run.mjs
import {
  formatBytes,
  formatRate,
  printTable,
  rawCopy,
  timeIt,
  timeItAsync,
  writeResults,
} from '@pagemig-tools/bench';
import { createMachine } from '../dist/index.js';

const KiB = 2 ** 10;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const PAGE = 4 * KiB;
/** DESIGN.md: "at most 32 bytes per 4 KiB page". */
const METADATA_BUDGET = 32;

const gc = () => globalThis.gc?.();
if (!globalThis.gc)
  console.error('core bench: run with `node --expose-gc` so memory is released between cases');
const log = (msg) => console.error(`core bench: ${msg}`);
const started = performance.now();

/** JSON records, one per case. */
const cases = [];
/** Table rows: case | measured | raw copy of the same bytes (this run) | ratio. */
const rows = [];

const x = (n) => `${n.toPrecision(3)}x`;
const secs = (s) => (s < 1 ? `${(s * 1000).toPrecision(3)} ms` : `${s.toPrecision(3)} s`);

// ---- References: raw copies of warm SharedArrayBuffers -------------------------------------------

const FAULT_BYTES = 256 * MiB;
log('raw copy references');
const copy4k = rawCopy({ bytes: FAULT_BYTES, chunk: 4 * KiB });
gc();
const copy2m = rawCopy({ bytes: FAULT_BYTES, chunk: 2 * MiB });
gc();
for (const [id, r] of [
  ['raw.copy.4KiB', copy4k],
  ['raw.copy.2MiB', copy2m],
]) {
  cases.push({ id, ...r });
  rows.push([
    `raw copy ${formatBytes(r.bytes)}, ${formatBytes(r.chunk)} pieces (reference)`,
    `${formatRate(r.copiesPerSec, 'copies/s')}, ${formatRate(r.bytesPerSec, 'B/s')}`,
    '-',
    '-',
  ]);
}

// ---- Buddy allocator: alloc+free pairs, in bursts so blocks split and merge ----------------------

const BURST = 256;
const BURSTS_PER_RUN = 16;

async function allocator(order, ref) {
  const m = await createMachine({ nodes: [{ memory: '1GiB' }], backing: 'none' });
  const k = m.kernel;
  const free0 = m.freePages(0);
  const heads = new Int32Array(BURST);
  const run = () => {
    for (let b = 0; b < BURSTS_PER_RUN; b++) {
      for (let i = 0; i < BURST; i++) {
        const head = k.allocFolio({ order, nid: 0 });
        if (head < 0) throw new Error(`allocFolio(order ${order}) failed after ${i} allocations`);
        heads[i] = head;
      }
      for (let i = 0; i < BURST; i++) k.folioPut(heads[i]);
    }
  };
  const t = timeIt(run, { warmup: 1 });
  // Every pair must give its pages back, merged (else the figure measures a leak).
  if (m.freePages(0) !== free0) throw new Error(`order ${order}: free pages ${m.freePages(0)} != ${free0}`);
  m.checkInvariants();
  await m.close();
  const pairs = BURST * BURSTS_PER_RUN;
  const pairsPerSec = pairs / t.perRun;
  const ratio = pairsPerSec / ref.copiesPerSec;
  cases.push({
    id: `alloc.order${order}`,
    pairsPerSec,
    pairsPerRun: pairs,
    burst: BURST,
    timing: t,
    reference: { id: `raw.copy.${formatBytes(ref.chunk).replace(' ', '')}`, copiesPerSec: ref.copiesPerSec },
    ratio,
    ratioOf: 'alloc+free pairs per second / raw copies per second of one folio',
  });
  rows.push([
    `alloc+free order ${order}, bursts of ${BURST}`,
    formatRate(pairsPerSec, 'pairs/s'),
    `${formatRate(ref.copiesPerSec, 'copies/s')}, ${formatBytes(ref.chunk)} each`,
    `${x(ratio)} copy rate`,
  ]);
}

log('allocator');
await allocator(0, copy4k);
gc();
await allocator(9, copy2m);
gc();

// ---- Page faults: write-touch a fresh 256 MiB mapping, 4 KiB pages and 2 MiB THPs -----------------

log('page faults');
{
  let m = await createMachine({ nodes: [{ memory: '512MiB' }] });
  const p = m.spawn();
  for (const [thp, ref] of [
    ['never', copy4k],
    ['always', copy2m],
  ]) {
    let addr = 0;
    let before;
    let faults = 0;
    let thpFaults = 0;
    const t = timeIt(() => p.touch(addr, FAULT_BYTES, 'write'), {
      warmup: 1,
      beforeEach: () => {
        addr = p.mmap(FAULT_BYTES, { node: 0, thp });
        before = m.vmstat();
      },
      afterEach: () => {
        const v = m.vmstat();
        faults = v.pgfault - before.pgfault;
        thpFaults = v.thp_fault_alloc - before.thp_fault_alloc;
        p.munmap(addr, FAULT_BYTES);
      },
    });
    const pages = FAULT_BYTES / PAGE;
    const faultsPerSec = faults / t.perRun;
    const bytesPerSec = FAULT_BYTES / t.perRun;
    const ratio = bytesPerSec / ref.bytesPerSec;
    const size = thp === 'always' ? '2 MiB' : '4 KiB';
    if (thp === 'always' && thpFaults !== FAULT_BYTES / (2 * MiB))
      log(`warning: only ${thpFaults} of ${FAULT_BYTES / (2 * MiB)} THP faults got a huge page`);
    cases.push({
      id: `fault.${thp === 'always' ? '2MiB' : '4KiB'}`,
      bytes: FAULT_BYTES,
      thp,
      faultsPerRun: faults,
      thpFaultsPerRun: thpFaults,
      faultsPerSec,
      basePagesPerSec: pages / t.perRun,
      bytesPerSec,
      timing: t,
      reference: {
        id: `raw.copy.${formatBytes(ref.chunk).replace(' ', '')}`,
        bytesPerSec: ref.bytesPerSec,
      },
      ratio,
      ratioOf: 'faulted-in bytes per second / raw-copied bytes per second',
    });
    rows.push([
      `write faults ${formatBytes(FAULT_BYTES)}, ${size} folios (thp ${thp})`,
      `${formatRate(faultsPerSec, 'faults/s')}, ${formatRate(pages / t.perRun, 'pages/s')}, ${formatRate(bytesPerSec, 'B/s')}`,
      `${formatRate(ref.bytesPerSec, 'B/s')} in ${formatBytes(ref.chunk)} pieces`,
      `${x(ratio)} copy rate`,
    ]);
  }
  m.checkInvariants();
  await m.close();
  m = null;
  gc();
}

// ---- Page metadata of a 16 GiB metadata-only machine ---------------------------------------------

log('metadata');
const BIG = 16 * GiB;
{
  // ArrayBuffer bytes a metadata-only machine of `bytes` takes, and its per-pageblock tables (the
  // kernel's usemap: migratetype and skip bits, the zone of each block), which are not struct page.
  async function footprint(bytes) {
    gc();
    const ab0 = process.memoryUsage().arrayBuffers;
    let m = await createMachine({ nodes: [{ memory: bytes }], backing: 'none' });
    const ab1 = process.memoryUsage().arrayBuffers;
    const k = m.kernel;
    const f = {
      pages: m.nrPages,
      delta: ab1 - ab0,
      usemap: k.pageblocks.flags.byteLength + k.pageblockZone.byteLength,
      declared: m.metadataBytesPerPage,
    };
    await m.close();
    m = null;
    gc();
    return f;
  }
  const half = await footprint(BIG / 2);
  const big = await footprint(BIG);
  // Per page: the growth from 8 to 16 GiB (fixed per-machine buffers cancel out), usemap aside.
  const measured = (big.delta - big.usemap - (half.delta - half.usemap)) / (big.pages - half.pages);
  const { declared, pages: nrPages } = big;
  const ok = declared <= METADATA_BUDGET && measured <= METADATA_BUDGET;
  if (!ok) {
    log(`metadata over the ${METADATA_BUDGET}-byte budget: declared ${declared}, measured ${measured}`);
    process.exitCode = 1;
  }
  cases.push({
    id: 'metadata.bytesPerPage',
    machineBytes: BIG,
    pages: nrPages,
    declared,
    measured,
    arrayBuffersDelta: big.delta,
    usemapBytes: big.usemap,
    budget: METADATA_BUDGET,
    withinBudget: ok,
  });
  rows.push([
    `struct page bytes/page, 8 -> 16 GiB (budget ${METADATA_BUDGET})`,
    `${declared} declared, ${measured.toFixed(3)} measured`,
    `(${formatBytes(big.delta)} of ArrayBuffers at 16 GiB, ${formatBytes(big.usemap)} of them pageblock tables)`,
    ok ? 'within budget' : 'OVER BUDGET',
  ]);
}

// ---- Machine creation ------------------------------------------------------------------------------

async function creation(id, label, config, bytes, opts = {}) {
  let m = null;
  const t = await timeItAsync(
    async () => {
      m = await createMachine(config);
    },
    {
      ...opts,
      afterEach: async () => {
        await m.close();
        m = null;
        gc();
      },
    },
  );
  const copySeconds = bytes / copy2m.bytesPerSec;
  const ratio = t.perRun / copySeconds;
  cases.push({
    id,
    config,
    bytes,
    seconds: t.perRun,
    timing: t,
    reference: { id: 'raw.copy.2MiB', bytesPerSec: copy2m.bytesPerSec, seconds: copySeconds },
    ratio,
    ratioOf: `creation seconds / seconds to raw-copy ${formatBytes(bytes)} at the measured bandwidth`,
  });
  rows.push([
    label,
    secs(t.perRun),
    `${secs(copySeconds)} (${formatBytes(bytes)} at ${formatRate(copy2m.bytesPerSec, 'B/s')})`,
    `${x(ratio)} copy time`,
  ]);
}

log('machine creation');
await creation(
  'create.16GiB.none',
  'create 16 GiB, backing none',
  { nodes: [{ memory: '16GiB' }], backing: 'none' },
  BIG,
);
await creation(
  'create.16GiB.shared.noPrefault',
  'create 16 GiB, shared, no prefault',
  { nodes: [{ memory: '16GiB' }], backing: 'shared', prefault: false },
  BIG,
);
await creation(
  'create.2GiB.shared.prefault',
  'create 2 GiB, shared, prefault',
  { nodes: [{ memory: '2GiB' }] },
  2 * GiB,
  { minMs: 0 },
);

// ---- Output ----------------------------------------------------------------------------------------

const totalSeconds = (performance.now() - started) / 1000;
printTable(
  `@pagemig/core machine benchmark (${totalSeconds.toFixed(1)} s; ratios against this run's raw copy)`,
  ['case', 'measured', 'raw copy of the same bytes (this run)', { header: 'ratio', align: 'right' }],
  rows,
);
const path = writeResults('core-machine', { totalSeconds, cases });
console.log(`results: ${path}`);
