import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const SMALL = ['--node-memory', '16MiB', '--hot', '256KiB', '--cold', '512KiB', '--scan-period-ms', '10'];

describe('pagemig numa', () => {
  it('moves the hot memory to the thread, leaves the cold memory; --json is one document', async () => {
    const r = await run(['numa', ...SMALL, '--migrator', 'cpu-serial', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'numa',
      ok: true,
      verified: true,
      migrator: { id: 'cpu-serial' },
      workload: { processNode: 0, threadNode: 1, folioBytes: 4096, hotPages: 64, coldPages: 128 },
      knobs: { scanDelayMs: 0, scanPeriodMs: 10, scanSizeMb: 4 },
      placement: { before: { hot: [64, 0], cold: [128, 0] }, after: { hot: [0, 64], cold: [128, 0] } },
      pagesMigrated: 64,
      pagesFailed: 0,
      migratorShare: { migrator: 'cpu-serial', foliosOffered: 64, foliosCopied: 64 },
    });
    expect(doc.counters).toMatchObject({
      numa_pages_migrated: 64,
      numa_hint_faults_local: 0,
      pgmigrate_fail: 0,
    });
    expect(doc.counters.numa_hint_faults).toBeGreaterThanOrEqual(64);
    expect(doc.counters.numa_pte_updates).toBeGreaterThanOrEqual(192);
    expect(doc.convergeMs).toBeGreaterThan(0);
    expect(doc.migratorShare.copyShare).toBeGreaterThan(0);
    expect(doc.migratorShare.copyShare).toBeLessThanOrEqual(1);
  });

  it('prints the placement, the counters and the migrator share', async () => {
    const r = await run(['numa', ...SMALL, '--folio', '4KiB']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(
      'app runs on node 0 and its thread on node 1: 64 hot pages the thread writes, 128 cold pages (folios of 4KiB)',
    );
    expect(r.stdout).toMatch(/│ before +│ +64 │ +0 │ +128 │ +0 │/);
    expect(r.stdout).toMatch(/│ after +│ +0 │ +64 │ +128 │ +0 │/);
    expect(r.stdout).toMatch(/^converged in \d+ ms \(\d+ scan passes\)$/m);
    expect(r.stdout).toMatch(/│ numa_pages_migrated +│ +64 │/);
    expect(r.stdout).toMatch(/^the kernel's CPU copy moved every folio \(no migrator for numa_misplaced\)/m);
    expect(lines.at(-2)).toBe('every byte verified');
  });

  it('2 MiB folios move whole on one hinting fault each', async () => {
    const r = await run([
      'numa',
      '--node-memory',
      '32MiB',
      '--folio',
      '2MiB',
      '--hot',
      '4MiB',
      '--cold',
      '2MiB',
      '--scan-period-ms',
      '10',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.placement.after).toEqual({ hot: [0, 1024], cold: [512, 0] });
    expect(doc.counters).toMatchObject({ numa_hint_faults: 2, numa_pages_migrated: 1024 });
    expect(doc.counters.numa_huge_pte_updates).toBeGreaterThanOrEqual(3);
  });

  it('exits 2 for bad flags, before building anything', async () => {
    const folio = await run(['numa', '--folio', '8KiB']);
    expect(folio.code).toBe(2);
    expect(folio.stderr).toBe('pagemig numa: --folio: expected 4KiB or 2MiB, got "8KiB"\n');
    const hot = await run(['numa', '--folio', '2MiB', '--hot', '1MiB', '--json']);
    expect(hot.code).toBe(2);
    expect(JSON.parse(hot.stdout).error).toEqual({
      code: 'ERR_USAGE',
      message: '--hot: "1MiB" is not a positive multiple of 2MiB',
      exitCode: 2,
    });
    const nodes = await run(['numa', '--nodes', '1']);
    expect(nodes.code).toBe(2);
    expect(nodes.stderr).toBe(
      'pagemig numa: the scenario needs two nodes (a process on node 0, its thread on node 1); --nodes 1\n',
    );
  });

  it('exits 2 when the machine is too small for the run (ENOMEM building it)', async () => {
    const r = await run(['numa', '--node-memory', '8MiB', '--json']);
    expect(r.code).toBe(2);
    const { error } = JSON.parse(r.stdout);
    expect(error).toMatchObject({ code: 'ERR_MACHINE_TOO_SMALL', exitCode: 2 });
    expect(error.message).toMatch(
      /^the machine is too small for this run: ENOMEM: out of memory faulting in page at/,
    );
    expect(error.message).toMatch(/give its nodes more memory \(--node-memory/);
  });

  it('exits 1 when the hot memory does not move in time', async () => {
    const r = await run(['numa', ...SMALL, '--scan-delay-ms', '600000', '--timeout', '100', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toEqual({
      code: 'ERR_NOT_CONVERGED',
      message: 'the hot memory did not converge in 100 ms: 0 of 64 hot pages on node 1',
      exitCode: 1,
    });
  });
});
