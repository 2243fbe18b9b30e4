// Writes docs/zonemap.svg: a 128 MiB zone before and after `vm.compact_memory=1`, with movable
// user memory fragmented in 64 KiB chunks, a few kernel (unmovable) pages and a pinned page.
//
//   node bench/zonemap.mjs            (after pnpm build)
import { writeFileSync } from 'node:fs';
import { createMachine, MIGRATE_UNMOVABLE, PAGE_SIZE } from '@pagemig/core';
import { attachKcompactd, renderZoneMapsSvg, zoneMap, zoneMapText } from '../dist/index.js';

const m = await createMachine({ nodes: [{ memory: '128MiB' }] });
const kd = attachKcompactd(m, { proactiveness: 0 });
const p = m.spawn({ comm: 'fragment' });
const chunks = [];
while (m.freePages(0) > 6000) {
  const a = p.mmap(16 * PAGE_SIZE, { thp: 'never' });
  p.touch(a, 16 * PAGE_SIZE);
  chunks.push(a);
  // Now and then the kernel allocates for itself, and a driver pins a user page.
  if (chunks.length % 300 === 0) m.kernel.allocFolio({ order: 0, nid: 0, mt: MIGRATE_UNMOVABLE });
  if (chunks.length % 700 === 0) m.pinFolio(p.pageInfo(a).pfn);
}
for (let i = 0; i < chunks.length; i += 2) p.munmap(chunks[i], 16 * PAGE_SIZE);
const before = zoneMap(m, 0);
await kd.compactMemory();
const after = zoneMap(m, 0);
m.checkInvariants();
const url = new URL('../docs/zonemap.svg', import.meta.url);
writeFileSync(url, renderZoneMapsSvg([before, after], { titles: ['before vm.compact_memory=1', 'after'] }));
console.log(zoneMapText(before, 32));
console.log(zoneMapText(after, 32));
console.log(`wrote ${url.pathname}`);
await kd.stop();
await m.close();
