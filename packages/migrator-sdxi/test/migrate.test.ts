import type { Machine } from '@pagemig/core';
import { DmaStatusCode, type DmaTxResult } from '@pagemig/dmaengine';
import {
  batchOf,
  copyBatchRounds,
  createTestMachine,
  markedRows,
  migrateEachFolioSize,
  migratorOptionError,
  patternBytes,
  populateRegion,
  scatteredRows,
} from '@pagemig/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CONTEXT_BLOCK_PAGES,
  createMigrator,
  deviceCodeOf,
  ErrStep,
  optionKeys,
  type SdxiChannel,
  type SdxiMigrator,
  tables,
} from '../dist/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

const never = new AbortController().signal;

describe('migration through an emulated SDXI function', () => {
  it.each([1, 2, 4, 8])('migrates with %i context(s): bytes verified, invariants hold', async (channels) => {
    m = await createTestMachine();
    const mig = createMigrator({ channels });
    await m.offload.register(mig, 'all');
    const fn = mig.function!;
    expect(fn.contexts.length).toBe(channels);
    const { folios, problems } = await migrateEachFolioSize(m, { bytes: 8 << 20, seed: channels });
    expect(problems).toEqual([]);
    const s = mig.stats();
    expect(s).toMatchObject({ folios_migrated: folios, folios_failures: 0, descriptorFailures: 0 });
    // Every batch window was unmapped; the function keeps only its tables, log and context blocks.
    for (const c of fn.contexts) expect(c.iommu.mappedPages()).toBe(0);
    expect(fn.iommu.mappedPages()).toBe(3 + (channels + 1) * (CONTEXT_BLOCK_PAGES - 6));
    expect(fn.deviceCounters()).toMatchObject({ bytes: 3 * (8 << 20), errors: 0 });
    expect(fn.contexts.every((c) => c.ring.state() === tables.CXTV_RUN)).toBe(true);
  });

  it('migrates a process with migrate_pages(2): every page on the new node, every byte intact', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 3 });
    await m.offload.register(mig, 'all');
    const p = m.spawn();
    const a = p.mmap(6 << 20, { thp: 'always', node: 0 });
    const b = p.mmap(2 << 20, { thp: 'never', node: 0 });
    const da = patternBytes(6 << 20, 11);
    const db = patternBytes(2 << 20, 12);
    p.write(a, da);
    p.write(b, db);
    const r = await p.migratePages(0, [0], [1]);
    expect(r.ret).toBe(0);
    for (const [at, len] of [
      [a, 6 << 20],
      [b, 2 << 20],
    ] as const)
      for (let off = 0; off < len; off += 1 << 20) expect(p.pageInfo(at + off)!.node).toBe(1);
    expect(Buffer.compare(p.read(a, da.length), da)).toBe(0);
    expect(Buffer.compare(p.read(b, db.length), db)).toBe(0);
    expect(mig.stats().folios_migrated).toBe(3 + 512);
    m.checkInvariants();
  });

  it('an invalid AKey fails that context: its folios go to the CPU, the context is stopped and restarted', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2 });
    await m.offload.register(mig);
    const fn = mig.function!;
    const mem = m.kernel.mem;
    // Eight rows that do not merge: context 1 gets rows 0-3, context 2 rows 4-7.
    const rows = scatteredRows(8, 1000, 9000);
    for (const [s] of rows) mem.view(s).set(patternBytes(4096, s));
    for (const [, d] of rows) mem.view(d).fill(0xee);
    const ctx2 = fn.contexts[1]!;
    ctx2.ring.setAkey(0, { valid: false, interrupt: true, vector: 2, targetSfunc: 0, pasid: 2 });
    const batch = batchOf(rows);
    await mig.copyBatch(batch, { signal: never });
    expect(markedRows(batch)).toEqual([0, 1, 2, 3]);
    for (const [i, [s, d]] of rows.entries()) {
      if (i < 4) expect(Buffer.compare(mem.view(d), mem.view(s))).toBe(0);
      else expect(mem.view(d).every((x) => x === 0xee)).toBe(true);
    }
    const ch = ctx2.channels[0];
    expect(ch.stats()).toMatchObject({ completed: 0, errors: 1, notAttempted: 3 });
    expect(mig.stats()).toMatchObject({ folios_migrated: 4, folios_failures: 4, descriptorFailures: 4 });
    const rec = fn.errorLog().at(-1)!;
    expect(rec).toMatchObject({ step: ErrStep.AKEY, subStep: 3, reaction: 1, cxt: 2, buf: 0 });
    expect(m.offload.log.join('\n')).toContain(`INVALID_SRC_ADDR, device code ${deviceCodeOf(rec)}`);
    // The driver stopped and restarted the context through the admin context.
    for (let i = 0; i < 100 && ch.recoveries === 1 && ctx2.ring.state() !== tables.CXTV_RUN; i++)
      await new Promise((res) => setTimeout(res, 5));
    expect(ch.recoveries).toBe(1);
    expect(ctx2.ring.state()).toBe(tables.CXTV_RUN);
    expect(ctx2.ring.readIndex()).toBe(ctx2.ring.write);
    // With the key back, the same context copies again.
    ctx2.ring.setAkey(0, { valid: true, interrupt: true, vector: 2, targetSfunc: 0, pasid: 2 });
    const again = batchOf(rows);
    await mig.copyBatch(again, { signal: never });
    expect(markedRows(again)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const [s, d] of rows) expect(Buffer.compare(mem.view(d), mem.view(s))).toBe(0);
  });

  it('loses no completion across many refills of a 1024-slot ring', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1 });
    await m.offload.register(mig);
    const rows = scatteredRows(1500, 1000, 6000);
    expect(await copyBatchRounds(m, mig, rows, 40)).toEqual([]);
    expect(mig.stats()).toMatchObject({ folios_migrated: 40 * rows.length, folios_failures: 0, timeouts: 0 });
  });

  it('terminateAll stops the context, completes or aborts every descriptor, and leaves the channel usable', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1 });
    await m.offload.register(mig);
    const ctx = mig.function!.contexts[0]!;
    const ch: SdxiChannel = ctx.channels[0];
    const mem = m.kernel.mem;
    ctx.iommu.map(1000, 512, 1);
    ctx.iommu.map(3000, 512, 2);
    mem.view(1000, 512).set(patternBytes(512 * 4096, 3));
    const results: DmaTxResult[] = [];
    for (let i = 0; i < 512; i++) {
      const tx = ch.prepMemcpy((3000 + i) * 4096, (1000 + i) * 4096, 4096)!;
      tx.callback = (res) => results.push(res);
      tx.submit();
    }
    ch.issuePending();
    await ch.terminateAll();
    expect(results.length).toBe(512);
    const ok = results.filter((x) => x.status === DmaStatusCode.SUCCESSFUL).length;
    expect(ok + results.filter((x) => x.status === DmaStatusCode.USER_ABORT).length).toBe(512);
    expect(ctx.ring.state()).toBe(tables.CXTV_RUN);
    expect(ctx.ring.readIndex()).toBe(ctx.ring.write);
    const tx = ch.prepMemcpy(3000 * 4096, 1000 * 4096, 4096)!;
    const done = new Promise<DmaTxResult>((res) => {
      tx.callback = res;
    });
    tx.submit();
    ch.issuePending();
    expect((await done).status).toBe(DmaStatusCode.SUCCESSFUL);
    expect(Buffer.compare(mem.view(3000), mem.view(1000))).toBe(0);
    ctx.iommu.unmapAll();
  });

  it('handles errors as the dmadev error_handling test of DPDK does: 16-copy bursts with a failure at 0, 7, 14, 15', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 1 });
    await m.offload.register(mig);
    const ctx = mig.function!.contexts[0]!;
    const ch = ctx.channels[0];
    const mem = m.kernel.mem;
    ctx.iommu.map(1000, 16, 1);
    mem.view(1000, 16).set(patternBytes(16 * 4096, 21));
    for (const bad of [0, 7, 14, 15]) {
      // Every destination mapped but the bad one's: the function refuses it, writes nothing.
      for (let i = 0; i < 16; i++) if (i !== bad) ctx.iommu.map(3000 + i, 1, 2);
      mem.view(3000, 16).fill(0);
      const before = ch.stats();
      const results: number[] = [];
      const all = Array.from({ length: 16 }, (_, i) => {
        const tx = ch.prepMemcpy((3000 + i) * 4096, (1000 + i) * 4096, 4096)!;
        const done = new Promise<void>((res) => {
          tx.callback = (r) => {
            results[i] = r.status;
            res();
          };
        });
        tx.submit();
        return done;
      });
      ch.issuePending();
      await Promise.all(all);
      const want = Array.from({ length: 16 }, (_, i) =>
        i < bad
          ? DmaStatusCode.SUCCESSFUL
          : i === bad
            ? DmaStatusCode.INVALID_DST_ADDR
            : DmaStatusCode.NOT_ATTEMPTED,
      );
      expect(results, `failure at ${bad}`).toEqual(want);
      for (let i = 0; i < 16; i++) {
        const copied = Buffer.compare(mem.view(3000 + i), mem.view(1000 + i)) === 0;
        expect(copied, `page ${i}`).toBe(i < bad);
      }
      const after = ch.stats();
      expect(after.completed - before.completed).toBe(bad);
      expect(after.errors - before.errors).toBe(1);
      expect(after.notAttempted - before.notAttempted).toBe(15 - bad);
      for (let i = 0; i < 16; i++) if (i !== bad) ctx.iommu.unmap(3000 + i, 1);
    }
    expect(ch.recoveries).toBe(4);
    ctx.iommu.unmapAll();
  });

  it('fails outstanding work with DEV_LINK_ERROR when the function thread dies; the CPU takes over', async () => {
    m = await createTestMachine();
    const mig = createMigrator({ channels: 2 });
    await m.offload.register(mig);
    const fn = mig.function!;
    await (fn as unknown as { dev: { worker: { terminate(): Promise<number> } } }).dev.worker.terminate();
    for (let i = 0; i < 100 && fn.state === 'up'; i++) await new Promise((res) => setTimeout(res, 5));
    expect(fn.state).toBe('dead');
    const { p, addr: a, data, heads: pfns } = populateRegion(m, { bytes: 1 << 20, thp: 'never', seed: 7 });
    const r = await m.migrateFolios(pfns, { node: 1 });
    expect(r.ret).toBe(0);
    expect(r.offload.foliosCopied).toBe(0);
    expect(Buffer.compare(p.read(a, data.length), data)).toBe(0);
    expect(m.offload.log.join('\n')).toContain('sdxi0: function thread exited');
    m.checkInvariants();
  });
});

describe('the sdxi migrator object', () => {
  it('declares a manifest and options the registry can check', () => {
    const mig = createMigrator({ channels: 4 });
    expect(mig.name).toBe('sdxi');
    expect(mig.capabilities).toMatchObject({
      offloadsCpu: true,
      channels: 4,
      maxInFlightBatches: 1,
      needsSharedMemory: true,
      device: 'SNIA SDXI 1.0 function (emulated)',
      ringEntries: 1024,
      descriptorBytes: 64,
    });
    expect(JSON.parse(JSON.stringify(mig.capabilities))).toEqual(mig.capabilities);
    expect(optionKeys).toEqual([
      'channels',
      'timing',
      'offloading',
      'nr_dma_chan',
      'reason_mask',
      'deviceSpinUs',
      'runSpinUs',
      'minBatchPages',
      'driverSpinUs',
    ]);
    expect(mig.function).toBeNull(); // nothing starts before init
    expect(mig.params.list()).toMatchObject({ nr_dma_chan: '4', offloading: '1', reason_mask: 'all' });
  });

  it.each([
    [{ contexts: 2 }, /unknown option "contexts"/],
    [{ channels: 0 }, /channels must be an integer in 1\.\.16/],
    [{ channels: 17 }, /channels must be an integer in 1\.\.16/],
    [{ nr_dma_chan: 40 }, /nr_dma_chan must be 1\.\.16/],
    [{ reason_mask: 'sometimes' }, /unknown migrate reason/],
    [{ deviceSpinUs: -1 }, /deviceSpinUs/],
  ])('rejects %j with ERR_MIGRATOR_OPTION', (opts, msg) => {
    expect(migratorOptionError(() => createMigrator(opts as never))).toMatch(msg);
  });

  it('stops the function thread on close and frees every page it allocated', async () => {
    m = await createTestMachine();
    const free0 = m.vmstat().nr_free_pages;
    const mig: SdxiMigrator = createMigrator({ channels: 3 });
    await m.offload.register(mig);
    // L2, L1, the error log, and a 32-page block per context (admin + 3).
    expect(m.vmstat().nr_free_pages).toBe(free0 - 3 - 4 * CONTEXT_BLOCK_PAGES);
    const fn = mig.function!;
    await m.offload.unregister(mig);
    expect(fn.state).toBe('removed');
    expect(m.vmstat().nr_free_pages).toBe(free0);
    await mig.dispose();
    expect(mig.function).toBeNull();
  });
});
