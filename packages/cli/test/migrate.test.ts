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
    // The CPU clock moves in scheduler ticks: the header gives the step, the cell is rounded to it.
    expect(lines[3]).toMatch(
      /│ GB\/s │ base pages\/s │ raw copy GB\/s │ x raw │ wall ms │ engine CPU ms \(±\d+(\.\d+)?\) │ offloaded │/,
    );
    expect(lines[4]).toMatch(/│ +0\/1024 │$/);
    const phases = [
      'unmap (allocate, unmap)',
      'TLB flush',
      'batch copy (migrator)',
      'CPU copy',
      'move',
      'other (batching, retries, putback, tracing)',
    ];
    let ms = 0;
    for (const phase of phases) {
      const m = new RegExp(`│ ${phase.replace(/[()]/g, '\\$&')} +│ +(\\d+\\.\\d\\d) │ +\\d+% │`).exec(
        r.stdout,
      );
      expect(m, phase).not.toBeNull();
      ms += Number(m![1]);
    }
    // Every phase is accounted for: the rows add up to the wall time (to the rounding of the cells).
    const wall = Number(/│ wall time +│ +(\d+\.\d\d) │ +100% │/.exec(r.stdout)![1]);
    expect(Math.abs(ms - wall)).toBeLessThanOrEqual(0.03);
    expect(r.stdout).toMatch(
      /\nengine CPU: the engine thread's schedstat, which moves in steps of about \d+(\.\d+)? ms here/,
    );
    expect(r.stdout).toContain("CPU copy: the move phase's copy loop:");
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
    [['--to', '2'], '--to 2: node 2 does not exist: the machine has 2 node(s)'],
    [['--from', '5'], '--from 5: node 5 does not exist: the machine has 2 node(s)'],
    [['--nodes', '1'], '--to 1: node 1 does not exist: the machine has 1 node(s)'],
    [
      ['--mode', 'fast'],
      '--mode: unknown migrate mode "fast"; use one of MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT, MIGRATE_SYNC',
    ],
    [['--node-memory', '3MiB'], '--node-memory: "3MiB" is not a positive multiple of 2MiB (one pageblock)'],
    [
      ['--node-memory', '8MiB', '--total', '64MiB'],
      '--total 64MiB does not fit --node-memory 8MiB: nodes 0 and 1 need at least 66MiB each (the folios, their page tables and the watermarks); raise --node-memory or lower --total',
    ],
    [['--nodes', 'two'], '--nodes: expected an integer from 1 to 64, got "two"'],
    [['--batch-pages', '1e3'], '--batch-pages: expected an integer from 1 to 1048576, got "1e3"'],
    [['--nodes', '0x2'], '--nodes: expected an integer from 1 to 64, got "0x2"'],
    [
      ['--migrator', 'cpu-serial', '-o', 'chekEvery=3'],
      'unknown option "chekEvery" for migrator cpu-serial; did you mean "checkEvery"?',
    ],
    [['-o', 'novalue'], '--option "novalue": expected key=value'],
    [
      ['-o', 'channels=2'],
      "--option channels: no migrator takes it (the kernel's own copy is used); give --migrator",
    ],
    [
      ['--migrator', 'none', '-o', 'channels=2'],
      "--option channels: no migrator takes it (the kernel's own copy is used); give --migrator",
    ],
  ])('exits 2 on bad input %j', async (args, message) => {
    const r = await run(['migrate', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`^pagemig( migrate)?: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`),
    );
  });

  // Issue 20: errors found while parsing the flags printed no JSON under --json.
  it.each([
    [['-o', 'channels'], '--option "channels": expected key=value'],
    [['--totl', '4MiB'], "unknown option '--totl'"],
    [['--node-memory', '8MiB', '--total', '64MiB'], '--total 64MiB does not fit --node-memory 8MiB'],
  ])('under --json, %j still prints one error document and exits 2', async (args, message) => {
    const r = await run(['migrate', ...args, '--json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'migrate',
      ok: false,
      error: { code: 'ERR_USAGE', exitCode: 2 },
    });
    expect(doc.error.message).toContain(message);
  });

  it('says what the CPU copy row is when every folio was offloaded', async () => {
    const r = await run(['migrate', '--total', '4MiB', '--migrator', 'cpu-serial']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('│       2/2 │');
    expect(r.stdout).toContain(
      "CPU copy: the move phase's copy loop: folios no migrator copied are copied on the CPU, and every folio's copied mark is checked (all were offloaded: this is the checking)\n",
    );
  });
});
