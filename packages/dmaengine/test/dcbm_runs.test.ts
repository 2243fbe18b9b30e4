// The dcbm's per-batch path: coalescing of physically contiguous rows into descriptors (a
// property test against a plain oracle), migration runs (runStart/runEnd: a large folio is cut
// across channels while the devices are awake), and the gate's declines counted in stats().
import {
  type Machine,
  MigrateMode,
  MigrateReason,
  type MigrationRunInfo,
  type OffloadInfo,
} from '@pagemig/core';
import { batchOf, markedRows } from '@pagemig/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDmaMigrator,
  type DmaCapability,
  type DmaDevice,
  type DmaMigrator,
  type DmaProvider,
  DmaStatusCode,
  InterruptLine,
  IommuDomain,
  RamView,
  skeletonProvider,
  VirtDmaChannel,
  type VirtDmaTx,
} from '../src/index.js';
import { fillPages, never, samePages, smallMachine } from './helpers.js';

let m: Machine;
beforeAll(async () => {
  m = await smallMachine('32MiB');
});
afterAll(async () => {
  await m.close();
});

const runInfo = (pages: number, folios = 1): MigrationRunInfo => ({
  reason: MigrateReason.MR_SYSCALL,
  mode: MigrateMode.MIGRATE_SYNC,
  node: 1,
  folios,
  pages,
});

function dcbm(provider: DmaProvider, knobs: Record<string, unknown> = {}): DmaMigrator {
  return createDmaMigrator({ name: 'dcbm-runs', version: '0.1.0', provider, ...knobs });
}

type Row = [src: number, dst: number, nr: number];

/** `base` with run hooks whose devices all poll (`awake` channels), as a driver's on a big host. */
function polling(base: DmaProvider, awake: number, calls: string[] = []): DmaProvider {
  return {
    ...base,
    probe: (ctx) => base.probe(ctx),
    remove: () => base.remove(),
    runStart: () => {
      calls.push('start');
      return awake;
    },
    runEnd: () => {
      calls.push('end');
    },
  };
}

/**
 * The descriptors the batch should cost: pages split into k near-equal parts in row order, and
 * in each part, row pieces of at most `maxPages` merged while source and destination both
 * continue the open descriptor and it stays within `maxPages`.
 */
function expectedDescriptors(rows: readonly Row[], k: number, maxPages: number): number {
  const total = rows.reduce((n, r) => n + r[2], 0);
  let count = 0;
  let page = 0;
  let open: { src: number; dst: number; n: number; part: number } | null = null;
  for (const [src, dst, nr] of rows) {
    for (let off = 0; off < nr; ) {
      const part = partOf(page + off, total, k);
      const partEnd = Math.floor((total * (part + 1)) / k);
      const take = Math.min(nr - off, partEnd - (page + off), maxPages);
      const s = src + off;
      const d = dst + off;
      if (
        open &&
        open.part === part &&
        open.src + open.n === s &&
        open.dst + open.n === d &&
        open.n + take <= maxPages
      )
        open.n += take;
      else {
        open = { src: s, dst: d, n: take, part };
        count++;
      }
      off += take;
    }
    page += nr;
  }
  return count;
}

/** The part (channel) of batch page `p`: parts are [floor(total*c/k), floor(total*(c+1)/k)). */
function partOf(p: number, total: number, k: number): number {
  let c = 0;
  while (Math.floor((total * (c + 1)) / k) <= p) c++;
  return c;
}

/** Rows laid out from `gaps`: each row continues the last (both sides) or leaves a gap on one side. */
function layOut(spec: readonly { nr: number; gap: 0 | 1 | 2 | 3 }[]): Row[] {
  const rows: Row[] = [];
  let src = 100;
  let dst = 4000;
  for (const { nr, gap } of spec) {
    if (gap & 1) src += 3;
    if (gap & 2) dst += 5;
    rows.push([src, dst, nr]);
    src += nr;
    dst += nr;
  }
  return rows;
}

describe('dcbm: one descriptor per physically contiguous run', () => {
  it('property: every byte lands and descriptors = contiguous runs split at the channel limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            nr: fc.constantFrom(1, 1, 2, 4, 16, 512),
            gap: fc.constantFrom<0 | 1 | 2 | 3>(0, 0, 1, 2, 3),
          }),
          { minLength: 1, maxLength: 24 },
        ),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(1, 2, 4, 16, 256),
        fc.boolean(),
        async (spec, channels, maxPages, inRun) => {
          const rows = layOut(spec);
          const mig = dcbm(
            polling(
              skeletonProvider({ channels, maxSegmentBytes: maxPages * 4096, order: 'random' }),
              channels,
            ),
          );
          await m.offload.register(mig, 'all');
          try {
            const data = rows.map(([src, , nr], i) => fillPages(m, src, nr, i + 1));
            for (const [, dst, nr] of rows) m.kernel.mem.view(dst, nr).fill(0);
            const total = rows.reduce((n, r) => n + r[2], 0);
            const run = runInfo(total, rows.length);
            if (inRun) mig.runStart!(run);
            const batch = batchOf(rows);
            await mig.copyBatch(batch, { signal: never });
            if (inRun) mig.runEnd!(run);
            expect(markedRows(batch)).toEqual(rows.map((_, i) => i));
            expect(rows.filter(([, dst], i) => !samePages(m, dst, data[i]!))).toEqual([]);
            // While a run keeps the devices awake a large folio is cut across channels (parts of
            // at least 64 pages); otherwise never more channels than folios.
            const k = Math.min(
              channels,
              total,
              // (a run keeps the devices awake from RUN_AWAKE_MIN_PAGES = 512 pages on)
              inRun && total >= 512 ? Math.max(rows.length, Math.floor(total / 64)) : rows.length,
            );
            expect(mig.stats().descriptors).toBe(expectedDescriptors(rows, k, maxPages));
            for (const ch of mig.channels) expect(ch.device.iommu.mappedPages()).toBe(0);
          } finally {
            await m.offload.unregister(mig);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('dcbm: migration runs', () => {
  it('keeps the devices awake for the runs it offloads, once for overlapping runs', async () => {
    const calls: string[] = [];
    const mig = dcbm(polling(skeletonProvider({ channels: 2 }), 2, calls), { minBatchPages: 64 });
    await m.offload.register(mig, 'all');
    try {
      const a = runInfo(1024);
      const b = runInfo(512);
      const small = runInfo(32);
      const cluster = runInfo(256);
      mig.runStart!(a);
      mig.runStart!(b);
      mig.runStart!(small); // below minBatchPages: the CPU copies its batches, no device needed
      mig.runStart!(cluster); // one batch: not worth keeping a device awake for (RUN_AWAKE_MIN_PAGES)
      mig.runEnd!(a);
      expect(calls).toEqual(['start']);
      mig.runEnd!(small);
      mig.runEnd!(cluster);
      mig.runEnd!(b);
      expect(calls).toEqual(['start', 'end']);
      expect(mig.stats().runs).toBe(2);
      // A run of a reason it does not offload wakes nothing either.
      mig.params.set('reason_mask', 'compaction');
      mig.runStart!(a);
      mig.runEnd!(a);
      expect(calls).toEqual(['start', 'end']);
    } finally {
      await m.offload.unregister(mig);
    }
    // After dispose: nothing.
    const late = runInfo(1024);
    mig.runStart!(late);
    mig.runEnd!(late);
    expect(calls).toEqual(['start', 'end']);
  });

  it('cuts a lone 2 MiB folio across the polling channels during a run, one descriptor each', async () => {
    const mig = dcbm(polling(skeletonProvider({ channels: 2 }), 2));
    await m.offload.register(mig, 'all');
    try {
      const src = fillPages(m, 2048, 512, 3);
      const run = runInfo(512);
      mig.runStart!(run);
      const batch = batchOf([[2048, 6144, 512]]);
      await mig.copyBatch(batch, { signal: never });
      mig.runEnd!(run);
      expect(markedRows(batch)).toEqual([0]);
      expect(samePages(m, 6144, src)).toBe(true);
      expect(mig.stats().channels.map((c) => [c.submitted, c.bytes])).toEqual([
        [1, 256 * 4096],
        [1, 256 * 4096],
      ]);
    } finally {
      await m.offload.unregister(mig);
    }
  });

  it('uses only the channels that poll during a run: a sleeping one would cost a wake-up per batch', async () => {
    const mig = dcbm(polling(skeletonProvider({ channels: 3 }), 1));
    await m.offload.register(mig, 'all');
    try {
      const run = runInfo(520, 2);
      mig.runStart!(run);
      // Two folios and 520 pages: three channels outside a run would take two parts; one polls.
      const batch = batchOf([
        [2048, 6144, 512],
        [3000, 7000, 8],
      ]);
      fillPages(m, 2048, 512, 5);
      fillPages(m, 3000, 8, 6);
      await mig.copyBatch(batch, { signal: never });
      mig.runEnd!(run);
      expect(markedRows(batch)).toEqual([0, 1]);
      expect(mig.stats().channels.map((c) => c.submitted)).toEqual([2, 0, 0]);
    } finally {
      await m.offload.unregister(mig);
    }
  });
});

describe('dcbm: the gate declines at no cost and says why', () => {
  const info = (pages: number, reason: number = MigrateReason.MR_COMPACTION): OffloadInfo => ({
    reason: reason as OffloadInfo['reason'],
    mode: MigrateMode.MIGRATE_ASYNC,
    folios: pages,
    pages,
    maxFolioPages: 1,
  });

  it('counts declined batches and pages by why in stats(), and the engine copies them', async () => {
    const mig = dcbm(skeletonProvider({ channels: 1 }), { minBatchPages: 64 });
    expect(mig.shouldOffload!(info(512))).toBe(false); // no channel before init
    await m.offload.register(mig, 'all');
    try {
      expect(mig.shouldOffload!(info(32))).toBe(false); // a compaction cluster: below 64 pages
      expect(mig.shouldOffload!(info(64))).toBe(true);
      mig.params.set('reason_mask', 'demotion');
      expect(mig.shouldOffload!(info(512))).toBe(false);
      mig.params.set('offloading', '0');
      expect(mig.shouldOffload!(info(512, MigrateReason.MR_DEMOTION))).toBe(false);
      expect(mig.stats().declined).toEqual({
        offloading: { batches: 1, pages: 512 },
        no_channel: { batches: 1, pages: 512 },
        reason_mask: { batches: 1, pages: 512 },
        small: { batches: 1, pages: 32 },
      });
      // Through the engine: a 32-page batch (COMPACT_CLUSTER_MAX) goes to the CPU, bytes intact.
      mig.params.set('offloading', '1');
      mig.params.set('reason_mask', 'all');
      const p = m.spawn();
      const a = p.mmap(32 * 4096, { thp: 'never', node: 0 });
      const bytes = new Uint8Array(32 * 4096).map((_, i) => (i * 7) & 255);
      p.write(a, bytes);
      const pfns = Array.from({ length: 32 }, (_, i) => p.pageInfo(a + i * 4096)!.headPfn);
      const r = await m.migrateFolios(pfns, { node: 1, reason: 'compaction' });
      expect(r.ret).toBe(0);
      expect(r.offload.batches).toBe(0);
      expect(Buffer.compare(p.read(a, bytes.length), bytes)).toBe(0);
      expect(mig.stats().declined.small).toEqual({ batches: 2, pages: 64 });
      expect(mig.stats().runs).toBe(0);
      p.exit();
      m.checkInvariants();
    } finally {
      await m.offload.unregister(mig);
    }
  });

  it('refuses a bad minBatchPages with a coded error naming it', () => {
    for (const bad of [-1, 1.5, '64']) {
      expect(() => dcbm(skeletonProvider(), { minBatchPages: bad })).toThrow(/minBatchPages must be/);
    }
  });
});

/**
 * A channel whose completions come only through its interrupt line: the n-th call of the line's
 * handler (and each one after) copies and completes what was issued. Its line never rings, so a
 * wait in place sleeps its whole 20 ms and services the line twice (on entry and at the deadline).
 */
class LineChannel extends VirtDmaChannel {
  readonly name = 'line0chan0';
  readonly capabilities: readonly DmaCapability[] = ['MEMCPY'];
  readonly maxSegmentBytes = 1 << 30;
  readonly irqLine = new InterruptLine();
  readonly device: DmaDevice;
  services = 0;
  private running: VirtDmaTx[] = [];

  constructor(
    private readonly ram: RamView,
    nrPages: number,
    private readonly completeOnCall: number,
  ) {
    super();
    this.device = { name: 'line0', iommu: new IommuDomain(nrPages), channels: [this] };
    this.irqLine.register({ service: () => this.service() });
  }

  protected kick(): void {
    for (let tx = this.takeIssued(); tx; tx = this.takeIssued()) this.running.push(tx);
    if (this.running.length) this.irqLine.arm();
  }

  private service(): boolean {
    if (++this.services >= this.completeOnCall) {
      const done = this.running;
      this.running = [];
      for (const tx of done) {
        this.ram.copy(tx.dst, tx.src, tx.bytes);
        this.complete(tx, DmaStatusCode.SUCCESSFUL);
      }
    }
    return this.running.length > 0;
  }

  protected async stopHardware(): Promise<void> {}

  protected takeInflight(): VirtDmaTx[] {
    const out = this.running;
    this.running = [];
    return out;
  }
}

function lineProvider(completeOnCall: number, made: LineChannel[]): DmaProvider {
  return {
    name: 'line',
    channels: 1,
    probe(ctx) {
      const ch = new LineChannel(
        new RamView(ctx.sections, ctx.sectionPfnShift, ctx.nrPages),
        ctx.nrPages,
        completeOnCall,
      );
      made.push(ch);
      return [ch.device];
    },
    remove() {},
  };
}

describe('dcbm: waiting for a batch in place', () => {
  it('a batch done within the wait returns with it done: no promise, rows marked, windows unmapped', async () => {
    const made: LineChannel[] = [];
    const mig = dcbm(lineProvider(1, made));
    await m.offload.register(mig, 'all');
    try {
      const src = fillPages(m, 2048, 16, 11);
      const batch = batchOf([[2048, 6144, 16]]);
      expect(mig.copyBatch(batch, { signal: never })).toBeUndefined();
      expect(markedRows(batch)).toEqual([0]);
      expect(samePages(m, 6144, src)).toBe(true);
      expect(made[0]!.device.iommu.mappedPages()).toBe(0);
    } finally {
      await m.offload.unregister(mig);
    }
  });

  it("a completion the line's dispatcher sees first, as the wait in place hands over, still ends the batch", async () => {
    // Two services in place (entry, deadline), the third is the dispatcher's, started when the wait
    // gives up and before the batch is awaited: that one completes the descriptor.
    const made: LineChannel[] = [];
    const mig = dcbm(lineProvider(3, made));
    await m.offload.register(mig, 'all');
    try {
      const src = fillPages(m, 2048, 16, 12);
      const batch = batchOf([[2048, 6144, 16]]);
      const t0 = performance.now();
      const ret = mig.copyBatch(batch, { signal: AbortSignal.timeout(2000) });
      expect(ret).toBeInstanceOf(Promise);
      await ret;
      // Not the 2 s abort: done as soon as the dispatcher serviced the line.
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(mig.stats()).toMatchObject({ timeouts: 0, folios_migrated: 1 });
      expect(markedRows(batch)).toEqual([0]);
      expect(samePages(m, 6144, src)).toBe(true);
      expect(made[0]!.device.iommu.mappedPages()).toBe(0);
    } finally {
      await m.offload.unregister(mig);
    }
  });
});

describe('InterruptLine: waiting in place', () => {
  it('sleep() returns on a raise or at its timeout; bad timeouts and an unmatched release() are refused', () => {
    const line = new InterruptLine();
    const pin = new Int32Array(line.sab);
    const t0 = performance.now();
    line.sleep(line.count, 5);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(4);
    InterruptLine.raise(pin);
    const t1 = performance.now();
    line.sleep(line.count - 1, 1000); // the line moved past `seen`: no sleep at all
    expect(performance.now() - t1).toBeLessThan(500);
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY])
      expect(() => line.sleep(line.count, bad)).toThrow(/timeoutMs must be a finite number >= 0/);
    expect(() => line.release(true)).toThrow(/release\(\) without a hold\(\)/);
  });

  it('hold() keeps the dispatcher off until release(busy) hands over to it', async () => {
    const line = new InterruptLine();
    let pending = 1;
    let services = 0;
    line.register({
      service: () => {
        services++;
        return pending > 0;
      },
    });
    line.hold();
    line.arm(); // held: not started
    expect(services).toBe(0);
    line.release(true); // a source still expects interrupts: the dispatcher starts and services
    expect(services).toBe(1);
    pending = 0;
    InterruptLine.raise(new Int32Array(line.sab));
    await new Promise((r) => setTimeout(r, 20));
    expect(services).toBe(2);
  });
});
