import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { EBUSY, EINVAL } from '../src/errno.js';
import type { Machine } from '../src/machine.js';
import { MPOL_MF_MOVE_ALL } from '../src/mempolicy.js';
import { defineMigrator, type MigrationBatch, type MigratorContext } from '../src/migrator.js';
import { checkChromeTrace, type TimelineCapture } from '../src/timeline.js';
import { TimelineWriter, TL_FLAG } from '../src/timeline_writer.js';
import { parseTraceLines } from '../src/trace.js';
import { expectErrno, machinesCheckedAfterEach } from './helpers.js';

const machine = machinesCheckedAfterEach();
const PG = 4096;
const FNS = new URL('./fixtures/thread-fns.mjs', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `pages` 4 KiB pages of one process on node 0, touched; returns the pfns. */
function pages(m: Machine, n: number) {
  const p = m.spawn({ privileged: true });
  const a = p.mmap(n * PG, { node: 0, thp: 'never' });
  p.touch(a, n * PG, 'write');
  const pfns = Array.from({ length: n }, (_, i) => p.pageInfo(a + i * PG)!.pfn);
  return { p, a, pfns };
}

/** A migrator that copies every row on the engine's thread, after `delayMs`, and records a span of its own kind. */
/** A CPU copier that sleeps `delayMs` before each batch, or with `until` until it holds (at most `delayMs`). */
function copier(delayMs = 0, until?: () => boolean) {
  let ram: Uint8Array[] = [];
  let shift = 0;
  let ctx: MigratorContext | null = null;
  let kind = 0;
  let track = 0;
  const view = (pfn: number, nr: number) => {
    const off = (pfn & ((1 << shift) - 1)) * PG;
    return ram[pfn >>> shift]!.subarray(off, off + nr * PG);
  };
  return defineMigrator({
    apiVersion: 'pagemig.migrator/v1' as const,
    name: 'tl-copier',
    version: '1.0.0',
    engines: { core: '^0.1.0' },
    capabilities: { offloadsCpu: false, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
    init(c: MigratorContext) {
      ctx = c;
      ram = c.sections.map((s) => new Uint8Array(s));
      shift = c.sectionPfnShift;
      if (c.timeline) {
        kind = c.timeline.kind('tl_copier_rows', { args: ['batch', 'rows'] });
        track = c.timeline.track('tl-copier', 'tl-copier', 'custom');
      }
    },
    async copyBatch(batch: MigrationBatch) {
      const t0 = performance.now();
      if (until) while (!until() && performance.now() - t0 < delayMs) await sleep(1);
      else if (delayMs) await sleep(delayMs);
      for (let i = 0; i < batch.rows; i++) {
        view(batch.dst(i), batch.nrPages(i)).set(view(batch.src(i), batch.nrPages(i)));
        batch.markCopied(i);
      }
      const tl = ctx?.timeline;
      if (tl?.recording)
        tl.writer.record(kind, track, tl.writer.us(t0), tl.writer.now(), batch.id, batch.rows);
    },
    dispose() {},
  });
}

function expectValid(cap: TimelineCapture) {
  const json = JSON.parse(cap.toChromeJson());
  expect(checkChromeTrace(json)).toEqual([]);
  return json as { traceEvents: Record<string, unknown>[] };
}

describe('timeline recorder', () => {
  it('is off by default, records nothing while off, and refuses a second start or a stop while off', async () => {
    const m = await machine();
    expect(m.timeline.recording).toBe(false);
    const { pfns } = pages(m, 64);
    await m.migrateFolios(pfns, { node: 1 });
    expect(new Int32Array(m.timeline.buffer)[TL_FLAG]).toBe(0);
    expectErrno(() => m.timeline.stop(), EINVAL);
    m.timeline.start({ capacity: 1024 });
    expectErrno(() => m.timeline.start(), EBUSY);
    const cap = m.timeline.stop();
    expect(cap.events).toEqual([]);
    expectErrno(() => m.timeline.start({ capacity: 0 }), EINVAL);
  });

  it('the engine: a run span with one batch span per batch, its phases nested, one batch_copy per offered batch', async () => {
    const m = await machine({ migrationBatchPages: 128 });
    await m.offload.register(copier(), 'all');
    const { pfns } = pages(m, 512);
    m.timeline.start();
    const r = await m.migrateFolios(pfns, { node: 1 });
    const cap = m.timeline.stop();
    expect(r.nrSucceeded).toBe(512);
    expect(cap.dropped).toBe(0);
    const runs = cap.find('migrate_pages');
    expect(runs).toHaveLength(1);
    expect(runs[0]!.args).toMatchObject({ folios: 512, node: 1 });
    const lane = cap.thread(runs[0]!.tid)!;
    expect(lane).toMatchObject({ name: '<idle>-0', process: 'kernel', kind: 'task' });
    const batches = cap.find('batch');
    expect(batches).toHaveLength(4);
    const copies = cap.find('batch_copy');
    expect(copies).toHaveLength(r.offload.batches);
    expect(copies.map((e) => e.args.rows)).toEqual([128, 128, 128, 128]);
    expect(copies.every((e) => e.args.copied === e.args.rows)).toBe(true);
    for (const name of ['unmap', 'flush', 'move']) expect(cap.find(name)).toHaveLength(4);
    // Every phase lies inside its batch, every batch inside the run, all on the run's lane.
    const run = runs[0]!;
    for (const b of batches) {
      expect(b.tid).toBe(run.tid);
      expect(b.ts).toBeGreaterThanOrEqual(run.ts);
      expect(b.ts + b.dur).toBeLessThanOrEqual(run.ts + run.dur + 1e-6);
      const inside = cap.events.filter((e) => e.args.batch === b.args.batch && e !== b && e.tid === run.tid);
      expect(inside.map((e) => e.name)).toEqual(['unmap', 'flush', 'batch_copy', 'move']);
      for (const e of inside) {
        expect(e.ts).toBeGreaterThanOrEqual(b.ts);
        expect(e.ts + e.dur).toBeLessThanOrEqual(b.ts + b.dur + 1e-6);
      }
    }
    // The migrator's own spans, labelled with the batch ids.
    const own = cap.find('tl_copier_rows');
    expect(own.map((e) => e.args.batch)).toEqual(copies.map((e) => e.args.batch));
    const json = expectValid(cap);
    // The tracepoints of the run are in it, as instants.
    expect(json.traceEvents.some((e) => e.name === 'migrate:mm_migrate_pages')).toBe(true);
  });

  it('without a migrator every batch shows a fallback copy and no batch copy; folio spans on request', async () => {
    const m = await machine({ migrationBatchPages: 64 });
    const { pfns } = pages(m, 100);
    m.timeline.start({ folios: true });
    await m.migrateFolios(pfns, { node: 1 });
    const cap = m.timeline.stop();
    expect(cap.find('batch_copy')).toHaveLength(0);
    expect(cap.find('fallback_copy').map((e) => e.args.folios)).toEqual([64, 36]);
    const folios = cap.find('folio_move');
    expect(folios).toHaveLength(100);
    expect(new Set(folios.map((e) => e.args.src_pfn))).toEqual(new Set(pfns));
    expectValid(cap);
  });

  it('two runs of one task at once get two lanes; a process syscall lands on its own lane', async () => {
    const m = await machine();
    const a = pages(m, 64);
    const b = pages(m, 64);
    m.timeline.start();
    await Promise.all([m.migrateFolios(a.pfns, { node: 1 }), m.migrateFolios(b.pfns, { node: 1 })]);
    await b.p.movePages(0, [b.a], [0], MPOL_MF_MOVE_ALL);
    const cap = m.timeline.stop();
    const lanes = cap.find('migrate_pages').map((e) => cap.thread(e.tid)!.name);
    expect(lanes).toEqual(['<idle>-0', '<idle>-0 #2', `${b.p.comm}-${b.p.pid}`]);
    expect(cap.thread(cap.find('migrate_pages')[2]!.tid)!.process).toBe(`${b.p.comm} (pid ${b.p.pid})`);
    expectValid(cap);
  });

  it('a user thread blocked on a migration entry shows a wait span that ends after its folio moved', async () => {
    const m = await machine();
    // The copy is held until the thread slept on the entry (a loaded host may not run it for a
    // while), at most 10 s.
    let slept = () => false;
    await m.offload.register(
      copier(10_000, () => slept()),
      'all',
    );
    const { p, a, pfns } = pages(m, 16);
    const t = p.spawnThread({ module: FNS, export: 'counter', data: { addr: a } });
    const waits0 = t.stats().migrationWaits;
    slept = () => t.stats().migrationWaits > waits0;
    while (t.state !== 'running') await sleep(1);
    await sleep(5);
    m.timeline.start({ folios: true });
    const r = await p.movePages(0, [a], [1], MPOL_MF_MOVE_ALL);
    // The thread records its wait span when it wakes: stop the capture only once it has (its wait
    // time is counted, then it accesses memory again), at most 10 s on a loaded host.
    const accesses = () => t.stats().accessesByNode.reduce((x, y) => x + y, 0);
    const until = performance.now() + 10_000;
    while (t.stats().migrationWaitMs === 0 && performance.now() < until) await sleep(1);
    const after = accesses();
    while (accesses() === after && performance.now() < until) await sleep(1);
    const cap = m.timeline.stop();
    t.stop();
    await t.join();
    expect(r.ret).toBe(0);
    const waits = cap.find('migration_wait');
    expect(waits.length).toBeGreaterThan(0);
    const thread = cap.thread(waits[0]!.tid)!;
    expect(thread).toMatchObject({
      kind: 'user',
      name: `${p.comm}:${t.tid}`,
      process: `${p.comm} (pid ${p.pid})`,
    });
    expect(waits[0]!.args.pfn).toBe(pfns[0]);
    // A thread woken before its entry is gone (a timed or spurious wake) closes its span and
    // waits again: the last span on the folio is the one that ends with the move.
    const onFolio = waits.filter((e) => e.args.pfn === pfns[0]);
    const wait = onFolio.at(-1)!;
    const moved = cap.find('folio_move').find((e) => e.args.src_pfn === wait.args.pfn)!;
    expect(moved).toBeDefined();
    expect(onFolio[0]!.ts).toBeLessThan(moved.ts);
    expect(wait.ts + wait.dur).toBeGreaterThanOrEqual(moved.ts + moved.dur);
    // The thread ran before and after the wait, and acknowledged the shootdown of the batch.
    const running = cap.find('running').filter((e) => e.tid === wait.tid);
    expect(running.some((e) => e.ts + e.dur <= wait.ts + 1e-6)).toBe(true);
    expect(running.some((e) => e.ts >= wait.ts + wait.dur - 1e-6)).toBe(true);
    expect(cap.find('tlb_ack').filter((e) => e.tid === wait.tid).length).toBeGreaterThan(0);
    expectValid(cap);
  });

  it('the ftrace text is the trace file format and parses back into the same events', async () => {
    const m = await machine({ migrationBatchPages: 128 });
    await m.offload.register(copier(), 'all');
    const { p, a } = pages(m, 300);
    m.timeline.start();
    await p.movePages(
      0,
      Array.from({ length: 300 }, (_, i) => a + i * PG),
      Array(300).fill(1),
      MPOL_MF_MOVE_ALL,
    );
    const cap = m.timeline.stop();
    const text = cap.toFtrace();
    const parsed = parseTraceLines(text);
    expect(parsed).toHaveLength(cap.events.length + cap.trace.length);
    // The tracepoints come out exactly as m.trace.lines() prints them.
    const lines = text.split('\n');
    for (const l of m.trace.lines('mm_migrate_pages')) expect(lines).toContain(l);
    const back = parsed
      .filter((l) => !l.event.startsWith('mm_') && l.event !== 'migrate_phases')
      .map((l) => {
        const { dur_us, ...args } = l.fields;
        return {
          comm: l.comm,
          pid: l.pid,
          event: l.event,
          ts: Math.round(l.ts * 1e6),
          dur: dur_us ?? 0,
          args,
        };
      });
    const want = cap.events.map((e) => {
      const t = cap.thread(e.tid)!;
      return {
        comm: t.comm,
        pid: t.pid,
        event: e.name,
        ts: Math.round(e.ts),
        dur: Number(e.dur.toFixed(3)),
        args: e.args,
      };
    });
    const key = (x: { ts: number; event: string; comm: string }) => `${x.ts} ${x.event} ${x.comm}`;
    expect(back.map(key).sort()).toEqual(want.map(key).sort());
    expect(new Set(back.map((x) => JSON.stringify(x)))).toEqual(new Set(want.map((x) => JSON.stringify(x))));
    // And the migrate: tracepoints parse into their fields.
    const done = parsed.find((l) => l.event === 'mm_migrate_pages')!;
    expect(done.fields).toMatchObject({
      nr_succeeded: 300,
      nr_failed: 0,
      mode: 'MIGRATE_SYNC',
      reason: 'syscall_or_cpuset',
    });
  });

  it('a worker thread and the main thread agree on the clock within a shared-memory round trip', async () => {
    const m = await machine();
    const tl = m.timeline;
    const writerUrl = new URL('../dist/timeline-writer.js', import.meta.url).href;
    const ping = new Int32Array(new SharedArrayBuffer(16));
    const seen = new Float64Array(new SharedArrayBuffer(8));
    const w = new Worker(
      `import { workerData } from 'node:worker_threads';
       const { TimelineWriter } = await import(workerData.url);
       const w = new TimelineWriter(workerData.buffer, 0);
       const ping = new Int32Array(workerData.ping); const seen = new Float64Array(workerData.seen);
       for (let k = 1; k <= 200; k++) {
         while (Atomics.load(ping, 0) !== k) {}
         seen[0] = w.now();
         Atomics.store(ping, 1, k);
       }`,
      { eval: true, workerData: { url: writerUrl, buffer: tl.buffer, ping: ping.buffer, seen: seen.buffer } },
    );
    await sleep(200);
    const main = new TimelineWriter(tl.buffer, 0);
    let worst = 0;
    let minRtt = Number.POSITIVE_INFINITY;
    for (let k = 1; k <= 200; k++) {
      const before = main.now();
      Atomics.store(ping, 0, k);
      while (Atomics.load(ping, 1) !== k) {}
      const after = main.now();
      // The worker read its clock between the two reads of ours.
      worst = Math.max(worst, before - seen[0]!, seen[0]! - after);
      minRtt = Math.min(minRtt, after - before);
    }
    await w.terminate();
    // A negative `worst` means every worker reading fell inside the round trip; allow 5 µs of rounding.
    expect(worst).toBeLessThan(5);
    expect(minRtt).toBeLessThan(1000);
    // The engine's writer (offset from the tracer's origin) and a fresh one agree too.
    expect(Math.abs(tl.writer.now() - main.now())).toBeLessThan(50);
  });

  it('records that do not fit are dropped and counted', async () => {
    const m = await machine({ migrationBatchPages: 8 });
    const { pfns } = pages(m, 64);
    m.timeline.start({ capacity: 10 });
    await m.migrateFolios(pfns, { node: 1 });
    const cap = m.timeline.stop();
    expect(cap.events).toHaveLength(10);
    expect(cap.dropped).toBeGreaterThan(0);
    expect(cap.toFtrace()).toMatch(/entries-in-buffer\/entries-written: \d+\/\d+/);
  });
});

describe('checkChromeTrace', () => {
  const meta = [
    { ph: 'M', name: 'process_name', pid: 1, tid: 0, args: { name: 'p' } },
    { ph: 'M', name: 'thread_name', pid: 1, tid: 1, args: { name: 't' } },
  ];
  it('accepts nested spans and refuses overlapping ones, unnamed threads and missing fields', () => {
    const ok = [
      ...meta,
      { ph: 'X', name: 'a', ts: 0, dur: 10, pid: 1, tid: 1 },
      { ph: 'X', name: 'b', ts: 2, dur: 3, pid: 1, tid: 1 },
    ];
    expect(checkChromeTrace({ traceEvents: ok })).toEqual([]);
    const overlap = [
      ...meta,
      { ph: 'X', name: 'a', ts: 0, dur: 10, pid: 1, tid: 1 },
      { ph: 'X', name: 'b', ts: 5, dur: 10, pid: 1, tid: 1 },
    ];
    expect(checkChromeTrace({ traceEvents: overlap }).join()).toMatch(/overlaps a/);
    expect(
      checkChromeTrace({
        traceEvents: [...meta, { ph: 'X', name: 'x', ts: 0, dur: 1, pid: 1, tid: 2 }],
      }).join(),
    ).toMatch(/thread 1:2 has no thread_name/);
    expect(
      checkChromeTrace({ traceEvents: [...meta, { ph: 'X', name: 'x', ts: 0, pid: 1, tid: 1 }] }).join(),
    ).toMatch(/dur/);
    expect(checkChromeTrace({})).toEqual(['traceEvents is not an array']);
  });
});
