// Where a DMA batch's time goes, through the user's path: move_pages(2) of 2 MiB folios at the
// default batch with PTDMA (2 channels) and SDXI (2 contexts), three warm calls recorded on the
// machine's timeline. Per batch (medians, µs): the engine's unmap/flush/move around the copy, the
// batch copy as the engine waits for it, the device's descriptor, the doorbell until the device
// starts it, and the device's completion until the engine resumes; beside it the same run's raw
// copy per 2 MiB on one thread (the same 64 MiB in 2 MiB pieces, median of 9 passes).
//
//   pnpm --filter @pagemig-tools/bench exec node bench/dma-breakdown.mjs
import { fileURLToPath } from 'node:url';
import { median, printTable, rawCopier, writeResults } from '../src/index.mjs';

const here = fileURLToPath(new URL('../../../packages', import.meta.url));
const core = await import(`${here}/core/dist/index.js`);
const drivers = {
  'ptdma 2ch': await import(`${here}/migrator-ptdma/dist/index.js`),
  'sdxi 2ctx': await import(`${here}/migrator-sdxi/dist/index.js`),
};
const MiB = 2 ** 20;
const bytes = 64 * MiB;
// The raw reference streams the same 64 MiB in 2 MiB pieces (as the batches do), per 2 MiB.
const raw = rawCopier(bytes);
const rows = [];
for (const [name, mod] of Object.entries(drivers)) {
  const m = await core.createMachine({ nodes: [{ memory: '192MiB' }, { memory: '192MiB' }] });
  const p = m.spawn({ comm: 'bench' });
  const a = p.mmap(bytes, { thp: 'always', node: 0 });
  const data = new Uint8Array(bytes).map((_, i) => (i * 7 + (i >>> 12)) & 255);
  p.write(a, data);
  const addrs = [];
  for (let off = 0; off < bytes; off += 2 * MiB) addrs.push(a + off);
  let node = 0;
  const move = async () => {
    node ^= 1;
    const r = await p.movePages(0, addrs, new Array(addrs.length).fill(node), core.MPOL_MF_MOVE);
    if (r.ret !== 0) throw new Error(`${name}: move_pages returned ${r.ret}`);
  };
  const mig = mod.createMigrator({ channels: 2 });
  await m.offload.register(mig, 'all');
  for (let i = 0; i < 5; i++) await move();
  m.timeline.start();
  for (let i = 0; i < 3; i++) await move();
  const cap = m.timeline.stop();
  if (Buffer.compare(p.read(a, bytes), data) !== 0) throw new Error(`${name}: bytes differ`);
  const of = (kind) => cap.events.filter((e) => e.name === kind).sort((x, y) => x.ts - y.ts);
  const descs = of('dma_desc');
  const copies = of('batch_copy');
  const start = [];
  const resume = [];
  for (const b of copies) {
    const inside = descs.filter((d) => d.ts >= b.ts && d.ts <= b.ts + b.dur);
    if (!inside.length) continue;
    start.push(Math.min(...inside.map((d) => d.ts)) - b.ts);
    resume.push(b.ts + b.dur - Math.max(...inside.map((d) => d.ts + d.dur)));
  }
  const dur = (kind) => median(of(kind).map((e) => e.dur));
  rows.push({
    migrator: name,
    batchUs: dur('batch'),
    unmapFlushMoveUs: dur('unmap') + dur('flush') + dur('move'),
    batchCopyUs: dur('batch_copy'),
    descriptorUs: dur('dma_desc'),
    doorbellToStartUs: median(start),
    completionToResumeUs: median(resume),
    rawCopy2MiBUs: (median(Array.from({ length: 9 }, () => raw.pass(2 * MiB))) * 1e6 * 2 * MiB) / bytes,
  });
  await m.offload.unregister(mig);
  await m.close();
}
printTable(
  'one move_pages(2) batch (one 2 MiB folio, the default batch), medians over 3 warm calls of 32 batches, µs',
  [
    'migrator',
    { header: 'batch', align: 'right' },
    { header: 'unmap+flush+move', align: 'right' },
    { header: 'batch copy', align: 'right' },
    { header: 'device descriptor', align: 'right' },
    { header: 'doorbell -> device starts', align: 'right' },
    { header: 'device completes -> engine resumes', align: 'right' },
    { header: 'raw copy of 2 MiB', align: 'right' },
  ],
  rows.map((r) => [
    r.migrator,
    ...[
      r.batchUs,
      r.unmapFlushMoveUs,
      r.batchCopyUs,
      r.descriptorUs,
      r.doorbellToStartUs,
      r.completionToResumeUs,
      r.rawCopy2MiBUs,
    ].map((x) => x.toFixed(1)),
  ]),
);
console.log(`results: ${writeResults('dma-breakdown', { rows })}`);
