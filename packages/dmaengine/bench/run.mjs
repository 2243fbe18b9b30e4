// dcbm overhead (issue 5): what the generic batch-copy migrator costs per batch beyond the copy
// itself — slicing, coalescing, IOMMU map/unmap, descriptors, completions, marking — measured over
// skeleton channels (software devices that copy on this thread) against this run's raw copy of the
// same bytes in the pieces the descriptors move (one 2 MiB run, or 512 pieces of 4 KiB). Batches as
// the engine builds them: 512 base pages, as 512 rows of 4 KiB that merge into one run, 512 rows
// that do not merge, or one 2 MiB row.
//
//   pnpm --filter @pagemig/dmaengine bench        (node --expose-gc bench/run.mjs)

import { createMachine, MigrateMode, MigrateReason, MigrationBatch } from '@pagemig/core';
import { printTable, rawCopy, timeItAsync, writeResults } from '@pagemig-tools/bench';
import { createDmaMigrator, skeletonProvider } from '../dist/index.js';

const m = await createMachine({ nodes: [{ memory: '256MiB' }, { memory: '256MiB' }] });
const node1 = m.nodes[1].startPfn;
const never = new AbortController().signal;

function batchOf(rows) {
  const t = new Int32Array(new SharedArrayBuffer(rows.length * 16));
  rows.forEach(([s, d, n], i) => {
    t.set([s, d, n, 0], i * 4);
  });
  return new MigrationBatch(t, rows.length, MigrateReason.MR_SYSCALL, MigrateMode.MIGRATE_SYNC);
}

const shapes = [
  {
    shape: '512 x 4KiB, contiguous',
    piece: 2 << 20,
    rows: Array.from({ length: 512 }, (_, i) => [4096 + i, node1 + 4096 + i, 1]),
  },
  {
    shape: '512 x 4KiB, scattered',
    piece: 4096,
    rows: Array.from({ length: 512 }, (_, i) => [4096 + 2 * i, node1 + 4096 + 2 * i, 1]),
  },
  {
    shape: '1 x 2MiB (one channel: a lone folio is not split)',
    piece: 2 << 20,
    rows: [[8192, node1 + 8192, 512]],
  },
];

const results = [];
for (const s of shapes) {
  const raw = rawCopy({ bytes: 2 << 20, chunk: s.piece, minMs: 100 });
  for (const channels of [1, 2, 4, 16]) {
    const mig = createDmaMigrator({
      name: 'dcbm-skel',
      version: '0.0.0',
      provider: skeletonProvider({ channels }),
    });
    await m.offload.register(mig);
    const t = await timeItAsync(
      async () => {
        const b = batchOf(s.rows);
        await mig.copyBatch(b, { signal: never });
        if (!b.isCopied(b.rows - 1)) throw new Error('the batch was not copied');
      },
      { minMs: 300, warmup: 20 },
    );
    const st = mig.stats();
    results.push({
      shape: s.shape,
      channels,
      usPerBatch: t.perRun * 1e6,
      rawCopyUs: raw.seconds * 1e6,
      descriptorsPerBatch: st.descriptors / st.batches,
    });
    await m.offload.unregister(mig);
  }
}
await m.close();
printTable(
  'dcbm per-batch cost over skeleton channels (the copy runs on this thread), median',
  [
    'batch',
    { header: 'channels', align: 'right' },
    { header: 'descriptors', align: 'right' },
    { header: 'µs per batch', align: 'right' },
    { header: 'raw copy µs', align: 'right' },
    { header: 'overhead µs', align: 'right' },
  ],
  results.map((r) => [
    r.shape,
    r.channels,
    r.descriptorsPerBatch.toFixed(0),
    r.usPerBatch.toFixed(1),
    r.rawCopyUs.toFixed(1),
    (r.usPerBatch - r.rawCopyUs).toFixed(1),
  ]),
);
console.log(`results: ${writeResults('dmaengine-dcbm', { results })}`);
