// Engine throughput with cpu-serial (issue 3's benchmark): 256 MiB migrated between two nodes
// for 4 KiB, 64 KiB and 2 MiB folios, with the kernel's own move-phase copy (no migrator) and
// with cpu-serial in the batch-copy hook. Every figure is reported against this run's raw copy of
// the same bytes in the same pieces, one raw pass timed right after each migration so both see the
// same machine load. Bytes are verified after the last migration of each case.

import { createMachine } from '@pagemig/core';
import { median, printTable, rawCopier, writeResults } from '@pagemig-tools/bench';
import { createMigrator } from '../dist/index.js';

const REGION = 256 << 20;
const REPS = Number(process.env.PAGEMIG_BENCH_REPS ?? 7);
const cases = [
  { folio: '4KiB', thp: 'never', bytes: 4 << 10 },
  { folio: '64KiB', thp: '64KiB', bytes: 64 << 10 },
  { folio: '2MiB', thp: 'always', bytes: 2 << 20 },
];

const m = await createMachine({ nodes: [{ memory: '1GiB' }, { memory: '1GiB' }] });
const raw = rawCopier(REGION);
const rows = [];
for (const migrator of [null, createMigrator()]) {
  if (migrator) await m.offload.register(migrator, 'all');
  for (const c of cases) {
    const p = m.spawn({ comm: 'bench' });
    const a = p.mmap(REGION, { thp: c.thp, node: 0 });
    const data = new Uint8Array(REGION);
    const words = new Uint32Array(data.buffer);
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 2654435761 + c.bytes);
    p.write(a, data);
    const secs = [];
    const rawSecs = [];
    const cpu = [];
    let node = 0;
    for (let rep = 0; rep < REPS + 1; rep++) {
      const pfns = [];
      for (let off = 0; off < REGION; off += c.bytes) pfns.push(p.pageInfo(a + off).headPfn);
      node ^= 1;
      const r = await m.migrateFolios(pfns, { node, mode: 'MIGRATE_SYNC', reason: 'syscall_or_cpuset' });
      if (r.ret !== 0) throw new Error(`migration failed: ret ${r.ret}`);
      // The first pass warms the JIT and is not counted.
      const rawSeconds = raw.pass(c.bytes);
      if (rep > 0) {
        secs.push(r.wallSeconds);
        rawSecs.push(rawSeconds);
        cpu.push(r.cpuSeconds);
      }
    }
    if (Buffer.compare(p.read(a, REGION), data) !== 0) throw new Error('bytes differ after migration');
    m.checkInvariants();
    p.exit();
    const s = median(secs);
    const rawBytesPerSec = REGION / median(rawSecs);
    const pagesPerSec = REGION / 4096 / s;
    rows.push({
      migrator: migrator ? migrator.name : 'none (kernel copy)',
      folio: c.folio,
      seconds: s,
      gbps: REGION / s / 1e9,
      basePagesPerSec: pagesPerSec,
      rawGbps: rawBytesPerSec / 1e9,
      ratioToRawCopy: REGION / s / rawBytesPerSec,
      engineCpuSeconds: median(cpu),
      reps: REPS,
    });
  }
  if (migrator) await m.offload.unregister(migrator);
}
await m.close();
printTable(
  `Engine throughput, ${REGION >> 20} MiB node 0 <-> node 1, MIGRATE_SYNC, median of ${REPS}`,
  ['migrator', 'folio', 'GB/s', 'base pages/s', 'raw copy GB/s', 'x raw copy', 'engine CPU ms'],
  rows.map((r) => [
    r.migrator,
    r.folio,
    r.gbps.toFixed(2),
    `${(r.basePagesPerSec / 1e6).toFixed(2)} M`,
    r.rawGbps.toFixed(2),
    r.ratioToRawCopy.toFixed(2),
    (r.engineCpuSeconds * 1000).toFixed(1),
  ]),
);
console.log(`results: ${writeResults('engine-cpu-serial', { region: REGION, rows })}`);
