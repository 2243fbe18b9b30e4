// Repro for the ptdma owner: compaction batches (~30-500 pages per migrate_pages()) through
// @pagemig/migrator-ptdma (1 channel) sometimes never complete: the engine's batch-copy timeout
// (2 s here, 10 s by default) fires and the engine copies that batch on the CPU. Seen in about 2 of
// 8 compactions of a 1 GiB zone on the 2-vCPU VM. Needs packages/migrator-ptdma built.
//   node bench/ptdma-timeout-repro.mjs

import { createMachine, PAGE_SIZE } from '@pagemig/core';
import { attachKcompactd } from '../dist/index.js';

const { createMigrator } = await import('../../migrator-ptdma/dist/index.js');
const m = await createMachine({ nodes: [{ memory: '1GiB' }] });
const kd = attachKcompactd(m, { proactiveness: 0, copyTimeoutMs: 2000 });
const buf = new Uint8Array(16 * PAGE_SIZE).fill(3);
for (let rep = 0; rep < 8; rep++) {
  const mig = createMigrator({ channels: 1 });
  await m.offload.register(mig, 'compaction');
  const p = m.spawn();
  const chunks = [];
  while (m.freePages(0) > 4096 + 16) {
    const a = p.mmap(16 * PAGE_SIZE, { thp: 'never' });
    p.write(a, buf);
    chunks.push(a);
  }
  for (let i = 0; i < chunks.length; i += 2) p.munmap(chunks[i], 16 * PAGE_SIZE);
  const sizes = [];
  const off = m.trace.on('mm_migrate_pages', (e) => sizes.push(e.fields.succeeded));
  const z = (await kd.compactNode(0)).zones[0];
  off();
  console.log(
    rep,
    z.offload.failures,
    z.wallSeconds.toFixed(2),
    's',
    m.offload.log.filter((l) => l.includes('timed out')).slice(-2),
  );
  p.exit();
  await m.offload.unregister(mig);
}
await kd.stop();
await m.close();
