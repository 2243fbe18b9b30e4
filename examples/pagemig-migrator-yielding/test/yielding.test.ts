import { createMachine, type Machine } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createMigrator } from '../src/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

/** 8 MiB of 4 KiB folios on node 0 with a known pattern: 2048 folios, 4 batches of 512. */
async function setup() {
  m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }] });
  const p = m.spawn();
  const len = 8 << 20;
  const a = p.mmap(len, { thp: 'never', node: 0 });
  const data = new Uint8Array(len).map((_, i) => (i * 7 + (i >>> 12)) & 255);
  p.write(a, data);
  const pfns: number[] = [];
  for (let off = 0; off < len; off += 4096) pfns.push(p.pageInfo(a + off)!.headPfn);
  return { m, p, a, len, data, pfns };
}

describe('pagemig-migrator-yielding', () => {
  it('copies every folio and yields once per slice', async () => {
    const { m, p, a, len, data, pfns } = await setup();
    const mig = createMigrator({ sliceBytes: 64 << 10 });
    await m.offload.register(mig, 'all');
    const r = await m.migrateFolios(pfns, { node: 1 });
    expect(r.ret).toBe(0);
    expect(r.offload).toMatchObject({ migrator: 'yielding', foliosCopied: 2048 });
    expect(Buffer.compare(p.read(a, len), data)).toBe(0);
    expect(p.pageInfo(a)!.node).toBe(1);
    // 512 rows of 4 KiB per batch: a yield after every 16 rows but the last, 31 per batch.
    expect(mig.stats()).toMatchObject({ batches: 4, rowsCopied: 2048, yields: 4 * 31 });
    m.checkInvariants();
  });

  it('leaves batches below minBatchPages to the engine', async () => {
    const { m, p, a, len, data, pfns } = await setup();
    const mig = createMigrator({ minBatchPages: 1024 });
    await m.offload.register(mig, 'all');
    const r = await m.migrateFolios(pfns, { node: 1 });
    expect(r.ret).toBe(0);
    expect(r.offload.foliosCopied).toBe(0);
    expect(mig.stats()).toMatchObject({ batches: 0, declined: 4 });
    expect(Buffer.compare(p.read(a, len), data)).toBe(0);
    m.checkInvariants();
  });

  it('rejects unknown or bad options with ERR_MIGRATOR_OPTION', () => {
    expect(() => createMigrator({ slice: 1 } as never)).toThrow(/unknown option "slice"/);
    expect(() => createMigrator({ sliceBytes: 100 })).toThrow(
      expect.objectContaining({ code: 'ERR_MIGRATOR_OPTION' }),
    );
  });
});
