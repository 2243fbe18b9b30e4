import { defineMigrator, MIGRATOR_API_VERSION } from '@pagemig/core';
import { describe, expect, it } from 'vitest';
import type { Drivers } from '../src/drivers.js';
import { run } from './helpers.js';

/** Marks every row copied without copying: the engine must then find stale bytes. */
const liar: Drivers = {
  list: async () => [],
  load: async () =>
    defineMigrator({
      apiVersion: MIGRATOR_API_VERSION,
      name: 'liar',
      version: '0.0.0',
      engines: { core: '*' },
      capabilities: { offloadsCpu: true, channels: 1, maxInFlightBatches: 1, needsSharedMemory: false },
      init() {},
      copyBatch(batch) {
        for (let i = 0; i < batch.rows; i++) batch.markCopied(i);
      },
      dispose() {},
    }),
};

describe('pagemig migrate', () => {
  it('migrates, verifies and reports as JSON', async () => {
    const r = await run([
      'migrate',
      '--total',
      '8MiB',
      '--folio',
      '64KiB',
      '--migrator',
      'cpu-serial',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'migrate',
      ok: true,
      verified: true,
      folios: 128,
      nrSucceeded: 2048, // base pages, as pgmigrate_success counts
      nrFailed: 0,
      request: {
        total: 8 << 20,
        folio: 64 << 10,
        from: 0,
        to: 1,
        mode: 'MIGRATE_SYNC',
        reason: 'syscall_or_cpuset',
      },
      machine: { nodes: [{ memory: 24 << 20 }, { memory: 24 << 20 }] },
      offload: { migrator: 'cpu-serial', foliosCopied: 128 },
    });
    expect(Object.keys(doc.phases)).toEqual(['unmap', 'flush', 'batchCopy', 'fallbackCopy', 'move']);
    expect(doc.ratio).toBeCloseTo(doc.bytesPerSec / doc.rawBytesPerSec, 10);
  });

  it('prints the machine, the verification and the phase table', async () => {
    const r = await run([
      'migrate',
      '--total',
      '4MiB',
      '--folio',
      '4KiB',
      '--mode',
      'async',
      '--reason',
      'numa_misplaced',
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(
      'machine: 2 nodes x 20MiB; migrator: none (kernel CPU copy); numa_misplaced, MIGRATE_ASYNC',
    );
    expect(lines[1]).toBe(
      'migrated 4MiB = 1024 folios of 4KiB from node 0 to node 1: every byte and the invariants verified',
    );
    expect(lines[2]).toMatch(/^┌/);
    expect(lines[3]).toMatch(
      /│ GB\/s │ base pages\/s │ raw copy GB\/s │ x raw │ wall ms │ engine CPU ms │ offloaded │/,
    );
    expect(lines[4]).toMatch(/│ +0\/1024 │$/);
    for (const phase of ['unmap', 'TLB flush', 'batch copy (migrator)', 'CPU copy', 'move'])
      expect(r.stdout).toMatch(
        new RegExp(`│ ${phase.replace(/[()]/g, '\\$&')} +│ +\\d+\\.\\d\\d │ +\\d+% │`),
      );
  });

  it('exits 1 when the bytes do not verify', async () => {
    const r = await run(['migrate', '--total', '4MiB', '--migrator', 'liar', '--json'], { drivers: liar });
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.error).toEqual({
      code: 'ERR_VERIFY',
      message: 'verification failed: bytes differ in the 4MiB at offset 0',
      exitCode: 1,
    });
    expect(r.stderr).toBe('pagemig migrate: verification failed: bytes differ in the 4MiB at offset 0\n');
  });

  it('exits 3 with the package to install for a missing migrator', async () => {
    const r = await run(['migrate', '--total', '4MiB', '--migrator', 'nope']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      'pagemig migrate: migrator "nope" is not installed: install pagemig-migrator-nope (e.g. pnpm add pagemig-migrator-nope)\n',
    );
  });

  it.each([
    [
      ['--folio', '8KiB'],
      '--folio: 8KiB is not a folio size; use one of 4KiB, 16KiB, 32KiB, 64KiB, 128KiB, 256KiB, 512KiB, 1MiB, 2MiB',
    ],
    [['--total', '3MiB'], '--total 3MiB must be a positive multiple of the folio size 2MiB'],
    [['--to', '0'], '--from and --to are both node 0; migrate between two nodes'],
    [['--to', '2'], 'node 2 does not exist: the machine has 2 node(s)'],
    [
      ['--mode', 'fast'],
      '--mode: unknown migrate mode "fast"; use one of MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT, MIGRATE_SYNC',
    ],
    [
      ['--node-memory', '3MiB'],
      'machine: nodes.0.memory: "3MiB" must be a positive multiple of 2MiB (one pageblock)',
    ],
    [['--nodes', 'two'], '--nodes: expected an integer from 1 to 64, got "two"'],
    [
      ['--migrator', 'cpu-serial', '-o', 'chekEvery=3'],
      'unknown option "chekEvery" for migrator cpu-serial; did you mean "checkEvery"?',
    ],
    [['-o', 'novalue'], '--option "novalue": expected key=value'],
  ])('exits 2 on bad input %j', async (args, message) => {
    const r = await run(['migrate', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`^pagemig( migrate)?: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`),
    );
  });
});
