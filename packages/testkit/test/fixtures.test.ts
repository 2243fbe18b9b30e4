import { Worker } from 'node:worker_threads';
import { type Machine, MigrateMode, MigrateReason } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertExpect,
  batchOf,
  checkRegion,
  createTestMachine,
  machineChecksum,
  markedRows,
  migrateRegion,
  patternBytes,
  populateRegion,
  regionNodes,
  trackHandles,
} from '../src/index.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('fixtures', () => {
  it('createTestMachine builds small NUMA machines', async () => {
    m = await createTestMachine({ nodes: 3, nodeMemory: '16MiB' });
    expect(m.nodes.map((n) => n.memory)).toEqual([16 << 20, 16 << 20, 16 << 20]);
  });

  it('the machine checksum ignores where memory lives and sees every byte', async () => {
    m = await createTestMachine();
    const a = populateRegion(m, { bytes: 4 << 20, thp: 'always', seed: 1 });
    const b = populateRegion(m, { bytes: 64 * 4096, shared: true, seed: 2 });
    const before = machineChecksum(m);
    expect(before).toMatch(/^[0-9a-f]{16}$/);
    await migrateRegion(m, a, 1);
    await migrateRegion(m, b, 1);
    expect(regionNodes(a)).toEqual([1]);
    expect(machineChecksum(m)).toBe(before);
    b.p.write(b.addr + 4096 * 7 + 3, new Uint8Array([0]));
    expect(machineChecksum(m)).not.toBe(before);
  });

  it('checkRegion reports changed bytes and missing pages', async () => {
    m = await createTestMachine();
    const r = populateRegion(m, { bytes: 8 * 4096 });
    expect(checkRegion(m, r)).toEqual([]);
    r.p.write(r.addr + 5000, new Uint8Array([0]));
    expect(checkRegion(m, r).join()).toMatch(/1 bytes differ .* first at \+5000 \(page 1\)/);
    r.p.munmap(r.addr + 4096 * 3, 4096);
    expect(checkRegion(m, r).join()).toMatch(/page \+12288 is not mapped/);
  });

  it('patternBytes is deterministic, seed-dependent and has no zero byte', () => {
    const a = patternBytes(8192, 3);
    expect(Buffer.compare(a, patternBytes(8192, 3))).toBe(0);
    expect(Buffer.compare(a, patternBytes(8192, 4))).not.toBe(0);
    expect(a.includes(0)).toBe(false);
  });

  it('trackHandles sees a worker and a timer left running', async () => {
    const h = trackHandles();
    const w = new Worker('setTimeout(() => {}, 10000)', { eval: true });
    const t = setTimeout(() => {}, 10_000);
    await h.settle(20);
    const leaked = h.leaked().map((l) => l.split('\n')[0]);
    expect(leaked).toContain('WORKER');
    expect(leaked).toContain('Timeout');
    clearTimeout(t);
    await w.terminate();
    for (let i = 0; i < 20 && h.leaked().length; i++) await h.settle(10);
    expect(h.leaked()).toEqual([]);
    h.stop();
  });

  it('assertExpect works without a test runner', () => {
    assertExpect(1).toBe(1);
    assertExpect({ a: [1] }).toEqual({ a: [1] });
    assertExpect(3).toBeGreaterThan(2);
    expect(() => assertExpect(1).toBeLessThanOrEqual(0)).toThrow(/expected 1 <= 0/);
  });
});

describe('batchOf and markedRows', () => {
  it('lays rows out as the engine does and reports the rows a migrator marked', () => {
    const b = batchOf([
      [10, 20, 1],
      [30, 40, 512],
      [50, 60, 16],
    ]);
    expect([b.rows, b.reason, b.mode]).toEqual([3, MigrateReason.MR_SYSCALL, MigrateMode.MIGRATE_SYNC]);
    expect([0, 1, 2].map((i) => [b.src(i), b.dst(i), b.nrPages(i)])).toEqual([
      [10, 20, 1],
      [30, 40, 512],
      [50, 60, 16],
    ]);
    expect(b.pages).toBe(529);
    expect(markedRows(b)).toEqual([]);
    b.markCopied(2);
    b.markCopied(0);
    expect(markedRows(b)).toEqual([0, 2]);
    const c = batchOf([], MigrateReason.MR_COMPACTION, MigrateMode.MIGRATE_ASYNC);
    expect([c.rows, c.reason, c.mode, markedRows(c)]).toEqual([
      0,
      MigrateReason.MR_COMPACTION,
      MigrateMode.MIGRATE_ASYNC,
      [],
    ]);
  });
});
