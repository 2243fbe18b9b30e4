// Before/after in one run: the same migrations through the user's path (move_pages, migrate_pages(2),
// compact_node) on two builds of core and kcompactd, interleaved rep by rep in one process, each rep
// next to a raw copy of the same bytes timed right after it. The "before" build is a built checkout
// of another commit (git worktree add /tmp/before <rev>; pnpm install; pnpm build).
//
//   PAGEMIG_BEFORE=/tmp/before/packages REPS=11 CREPS=8 node --expose-gc bench/ab.mjs
//   ONLY=compaction | ONLY='move_pages 4KiB' ...   one case; SWAP=1 runs the new build first
import { fileURLToPath } from 'node:url';
import { median, rawCopier } from '@pagemig-tools/bench';

const afterDir = process.env.PAGEMIG_AFTER ?? fileURLToPath(new URL('../../../packages', import.meta.url));
const beforeDir = process.env.PAGEMIG_BEFORE;
if (!beforeDir)
  throw new Error('set PAGEMIG_BEFORE to the packages/ folder of a built checkout to compare with');
const before = await import(`${beforeDir}/core/dist/index.js`);
const after = await import(`${afterDir}/core/dist/index.js`);
const kdBefore = await import(`${beforeDir}/kcompactd/dist/index.js`);
const kdAfter = await import(`${afterDir}/kcompactd/dist/index.js`);
const REGION = 128 << 20;
const REPS = Number(process.env.REPS ?? 7);
const raw = rawCopier(REGION);
const PG = 4096;
async function setup(core, thp) {
  const m = await core.createMachine({ nodes: [{ memory: '512MiB' }, { memory: '512MiB' }] });
  const p = m.spawn();
  const a = p.mmap(REGION, { thp, node: 0 });
  const data = new Uint8Array(REGION);
  const w = new Uint32Array(data.buffer);
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i + 1, 2654435761);
  p.write(a, data);
  return { m, p, a, data, node: 0 };
}
async function movePagesRep(s, core, step) {
  s.node ^= 1;
  const addrs = [];
  for (let off = 0; off < REGION; off += step) addrs.push(s.a + off);
  const nodes = new Array(addrs.length).fill(s.node);
  const t = performance.now();
  const r = await s.p.movePages(0, addrs, nodes, core.MPOL_MF_MOVE);
  const sec = (performance.now() - t) / 1000;
  if (r.ret !== 0) throw new Error(`move_pages ret ${r.ret}`);
  return sec;
}
async function migratePagesRep(s) {
  const from = s.node;
  s.node ^= 1;
  const t = performance.now();
  const r = await s.p.migratePages(0, [from], [s.node]);
  const sec = (performance.now() - t) / 1000;
  if (r.ret !== 0) throw new Error(`migrate_pages ret ${r.ret}`);
  return sec;
}
const results = {};
const CASES = [
  ['move_pages 4KiB', 'never', PG, 'move'],
  ['move_pages 2MiB', 'always', 2 << 20, 'move'],
  ['migrate_pages(2) 4KiB', 'never', PG, 'migrate'],
].filter((c) => !process.env.ONLY || c[0].startsWith(process.env.ONLY));
for (const [label, thp, step, kind] of CASES) {
  const sb = await setup(before, thp);
  const sa = await setup(after, thp);
  const t = { before: [], after: [], rawB: [], rawA: [] };
  for (let rep = 0; rep <= REPS; rep++) {
    for (const [name, core, s] of [
      ['before', before, sb],
      ['after', after, sa],
    ]) {
      const sec = kind === 'move' ? await movePagesRep(s, core, step) : await migratePagesRep(s);
      const r = raw.pass(step === PG ? PG : 2 << 20);
      if (rep > 0) {
        t[name].push(sec);
        t[name === 'before' ? 'rawB' : 'rawA'].push(r);
      }
    }
  }
  for (const s of [sb, sa]) {
    if (Buffer.compare(s.p.read(s.a, REGION), s.data) !== 0) throw new Error('bytes differ');
    s.m.checkInvariants();
    await s.m.close();
  }
  const b = median(t.before),
    a = median(t.after);
  results[label] = {
    before: REGION / PG / b,
    after: REGION / PG / a,
    beforeXraw: median(t.rawB) / b,
    afterXraw: median(t.rawA) / a,
  };
}
// Compaction of a 256 MiB zone with half its pages freed at random (engine CPU per migrated page).
async function compactRep(core, kd, seed) {
  const m = await core.createMachine({ nodes: [{ memory: '256MiB' }], prefault: true });
  const p = m.spawn();
  // As kcompactd's bench: 64 KiB areas (one VMA each), every other one unmapped at random.
  let x = seed;
  const areas = [];
  for (let c = 0; c < (200 << 20) / (64 << 10); c++) {
    const a = p.mmap(64 << 10, { node: 0, thp: 'never' });
    p.touch(a, 64 << 10, 'write');
    areas.push(a);
  }
  for (const a of areas) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    if (x & 0x10000) p.munmap(a, 64 << 10);
  }
  const k = kd.attachKcompactd(m);
  const r = await k.compactNode(0);
  const z = r.zones[0];
  await k.stop();
  m.checkInvariants();
  await m.close();
  return { pps: z.pagesMigrated / z.wallSeconds, cpuPerPage: z.cpuSeconds / z.pagesMigrated };
}
const cb = [],
  ca = [];
if (!process.env.ONLY || process.env.ONLY === 'compaction') {
  for (let rep = 0; rep < Number(process.env.CREPS ?? 5); rep++) {
    if (process.env.SWAP) {
      ca.push(await compactRep(after, kdAfter, rep + 1));
      cb.push(await compactRep(before, kdBefore, rep + 1));
    } else {
      cb.push(await compactRep(before, kdBefore, rep + 1));
      ca.push(await compactRep(after, kdAfter, rep + 1));
    }
  }
  results['compaction 200MiB half freed'] = {
    before: median(cb.map((c) => c.pps)),
    after: median(ca.map((c) => c.pps)),
    beforeCpuUsPerPage: median(cb.map((c) => c.cpuPerPage)) * 1e6,
    afterCpuUsPerPage: median(ca.map((c) => c.cpuPerPage)) * 1e6,
  };
}
for (const [k, v] of Object.entries(results))
  console.log(
    k.padEnd(30),
    Object.entries(v)
      .map(([n, x]) => `${n}=${x >= 1000 ? `${(x / 1e3).toFixed(0)}k` : x.toFixed(3)}`)
      .join('  '),
  );
