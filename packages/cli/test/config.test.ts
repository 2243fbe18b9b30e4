import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ExitCode } from '../src/exit_codes.js';
import { run, tempDir } from './helpers.js';

const json = (o: unknown) => JSON.stringify(o);

describe('config file', () => {
  it('finds pagemig.config.json in the working directory', async () => {
    const dir = tempDir({ 'pagemig.config.json': json({ machine: { nodes: [{ memory: '32MiB' }] } }) });
    const { file, config } = await loadConfig(dir);
    expect(file).toBe(path.join(dir, 'pagemig.config.json'));
    expect(config.machine?.nodes).toEqual([{ memory: '32MiB' }]);
  });

  it('loads pagemig.config.ts with types stripped', async () => {
    const dir = tempDir({
      'pagemig.config.ts': `
        interface Node { memory: string; tier?: string }
        const nodes: Node[] = [{ memory: '32MiB' }, { memory: '32MiB', tier: 'cxl' }];
        export default { machine: { nodes }, migrator: { id: 'cpu-serial' as const } };
      `,
    });
    const { config } = await loadConfig(dir);
    expect(config.machine?.nodes?.[1]).toEqual({ memory: '32MiB', tier: 'cxl' });
    expect(config.migrator?.id).toBe('cpu-serial');
  });

  it('returns an empty config when there is no file', async () => {
    expect(await loadConfig(tempDir())).toEqual({ file: null, config: {} });
  });

  it('refuses two config files side by side', async () => {
    const dir = tempDir({ 'pagemig.config.ts': 'export default {}', 'pagemig.config.json': '{}' });
    await expect(loadConfig(dir)).rejects.toThrow(
      `found pagemig.config.ts and pagemig.config.json in ${dir}: keep one, or pass --config`,
    );
  });

  it('names the file and the field of a validation error (exit 4)', async () => {
    const dir = tempDir({ 'pagemig.config.json': json({ machine: { nodes: [{ memroy: '32MiB' }] } }) });
    const r = await run(['migrate', '--json'], { cwd: dir });
    expect(r.code).toBe(ExitCode.CONFIG);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      schemaVersion: 1,
      command: 'migrate',
      ok: false,
      error: { code: 'ERR_CONFIG', exitCode: 4 },
    });
    expect(doc.error.message).toBe(
      'pagemig.config.json: machine.nodes[0].memory: is required: a size string like "64MiB"; pagemig.config.json: machine.nodes[0]: unknown key "memroy"',
    );
  });

  it('rejects a migrator timing profile that is not defined', async () => {
    const dir = tempDir({
      'pagemig.config.json': json({
        timingProfiles: { slow: { bandwidth: '1GB/s' } },
        migrator: { id: 'ptdma', timing: 'fast' },
      }),
    });
    const r = await run(['migrate'], { cwd: dir });
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      'pagemig migrate: pagemig.config.json: migrator.timing: unknown timing profile "fast"; known: slow\n',
    );
  });

  it('reports invalid JSON and a missing --config file', async () => {
    const dir = tempDir({ 'pagemig.config.json': '{ nodes: 1 }' });
    const bad = await run(['proc', 'vmstat'], { cwd: dir });
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/pagemig\.config\.json: not valid JSON: /);
    const missing = await run(['migrate', '--config', 'nope.json'], { cwd: dir });
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe('pagemig migrate: config file nope.json does not exist\n');
  });

  it('a migrator the file names that is not installed: exit 3, naming the file and the field', async () => {
    const dir = tempDir({ 'pagemig.config.json': json({ migrator: { id: 'nosuch' } }) });
    const r = await run(['migrate', '--total', '4MiB', '--json'], { cwd: dir });
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).error.message).toMatch(
      /^pagemig\.config\.json: migrator\.id: migrator "nosuch" is not installed: install pagemig-migrator-nosuch/,
    );
  });

  it('reads a JSON file that starts with a byte-order mark; a .ts file needs a default export', async () => {
    const machine = { nodes: [{ memory: '64MiB' }, { memory: '64MiB' }, { memory: '64MiB' }] };
    const bom = tempDir({ 'pagemig.config.json': `\uFEFF${json({ machine })}` });
    const ok = await run(['proc', 'buddyinfo', '--json'], { cwd: bom });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).ok).toBe(true);
    const named = tempDir({ 'pagemig.config.ts': `export const config = ${json({ machine })};` });
    const bad = await run(['proc', 'buddyinfo', '--json'], { cwd: named });
    expect(bad.code).toBe(4);
    expect(JSON.parse(bad.stdout).error.message).toBe(
      'pagemig.config.ts: has no default export; end it with export default defineConfig({ ... })',
    );
  });

  it('flags override the file: node size, node count, migrator', async () => {
    const dir = tempDir({
      'pagemig.config.json': json({
        machine: { nodes: [{ memory: '64MiB' }, { memory: '64MiB', tier: 'cxl' }], migrationBatchPages: 256 },
        migrator: { id: 'cpu-serial' },
      }),
    });
    const fromFile = JSON.parse((await run(['migrate', '--total', '4MiB', '--json'], { cwd: dir })).stdout);
    expect(fromFile.machine).toEqual({
      nodes: [
        { memory: 64 << 20, tier: 'dram' },
        { memory: 64 << 20, tier: 'cxl' },
      ],
      migrationBatchPages: 256,
    });
    expect(fromFile.offload.migrator).toBe('cpu-serial');
    expect(fromFile.offload.foliosCopied).toBe(2);

    const r = await run(
      [
        'migrate',
        '--total',
        '4MiB',
        '--node-memory',
        '32MiB',
        '--nodes',
        '3',
        '--migrator',
        'none',
        '--json',
      ],
      { cwd: dir },
    );
    const flagged = JSON.parse(r.stdout);
    expect(flagged.machine.nodes).toEqual([
      { memory: 32 << 20, tier: 'dram' },
      { memory: 32 << 20, tier: 'cxl' },
      { memory: 32 << 20, tier: 'dram' },
    ]);
    expect(flagged.offload.migrator).toBeNull();
    expect(flagged.offload.foliosCopied).toBe(0);
  });

  it.each(['ptdma', 'sdxi'])(
    'applies a timing profile named by --timing to %s, and rejects an unknown one (exit 2)',
    async (id) => {
      const dir = tempDir({
        'pagemig.config.json': json({ timingProfiles: { slow: { bandwidth: '2GB/s', latencyUs: 1 } } }),
      });
      const r = await run(['migrate', '--total', '4MiB', '--migrator', id, '--timing', 'slow', '--json'], {
        cwd: dir,
      });
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.migrator.options).toEqual({ timing: { bandwidth: '2GB/s', latencyUs: 1 } });
      expect(doc.offload).toMatchObject({ migrator: id, foliosCopied: 2 });
      const bad = await run(['migrate', '--migrator', id, '--timing', 'fast'], { cwd: dir });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toBe('pagemig migrate: --timing: unknown timing profile "fast"; known: slow\n');
    },
  );

  it('routes a reason from the file to a migrator', async () => {
    const dir = tempDir();
    writeFileSync(
      path.join(dir, 'pagemig.config.ts'),
      `export default { routes: { numa_misplaced: { id: 'cpu-serial' } } };`,
    );
    const routed = JSON.parse(
      (await run(['migrate', '--total', '4MiB', '--reason', 'numa_misplaced', '--json'], { cwd: dir }))
        .stdout,
    );
    expect(routed.migrator.routes).toEqual({ numa_misplaced: 'cpu-serial' });
    expect(routed.offload.migrator).toBe('cpu-serial');
    const other = JSON.parse((await run(['migrate', '--total', '4MiB', '--json'], { cwd: dir })).stdout);
    expect(other.offload.migrator).toBeNull();
  });
});

// Issue 20: config errors exited 2 without naming the file; a bad distances matrix was dropped.
describe('config file errors: exit 4, the file and the JSON path of each bad field', () => {
  it.each([
    [
      { machine: { nodes: [{ memory: 64 }, { memory: '64MiB' }] } },
      'pagemig.config.json: machine.nodes[0].memory: expected a size string like "64MiB", got 64',
    ],
    [
      { machine: { nodes: [{ memory: '64MiB' }, { memory: '3MiB' }] } },
      'pagemig.config.json: machine.nodes[1].memory: "3MiB" is not a positive multiple of 2MiB (one pageblock)',
    ],
    [
      { migrator: { id: 'ptdma', options: { channels: 'two' } } },
      'pagemig.config.json: migrator.options.channels: ptdma: channels must be an integer in 1..16, got "two"',
    ],
    [
      { migrator: { id: 'ptdma', options: { chanels: 2 } } },
      'pagemig.config.json: migrator.options.chanels: unknown option "chanels" for migrator ptdma; did you mean "channels"?',
    ],
    [
      { routes: { compaction: { id: 'cpu-serial', options: { checkEvery: -1 } } } },
      'pagemig.config.json: routes.compaction.options.checkEvery: ',
    ],
    [
      { routes: { compacton: { id: 'ptdma' } } },
      'pagemig.config.json: routes.compacton: unknown migrate reason "compacton"; did you mean "compaction"? (a route is for one of compaction, ',
    ],
    [
      { migrator: { id: 'ptdma', reasons: 'compaction,numa_misplacd' } },
      'pagemig.config.json: migrator.reasons: ',
    ],
    [
      { timingProfiles: { x: { bandwidth: 'fast' } }, migrator: { id: 'ptdma', timing: 'x' } },
      'pagemig.config.json: timingProfiles.x.bandwidth: expected a rate like "4GB/s", "800MB/s" or "2GiB/s" (or bytes per second), got "fast"',
    ],
    [
      { machine: { nodes: [{ memory: '64MiB' }, { memory: '64MiB' }], distances: [[10, 20, 30]] } },
      'pagemig.config.json: machine.distances: expected a 2x2 matrix (a row and a column per node), got 1 row(s) of 3',
    ],
    [
      {
        machine: {
          nodes: [{ memory: '64MiB' }, { memory: '64MiB' }],
          distances: [
            [10, 20],
            [20, 9],
          ],
        },
      },
      'pagemig.config.json: machine.distances[1][1]: the local distance is 10, got 9',
    ],
    [{ machine: { distances: [[10]] } }, 'pagemig.config.json: machine.distances: needs machine.nodes'],
    [{ migrator: { id: 'PTdma' } }, 'pagemig.config.json: migrator.id: "PTdma" is not a migrator id'],
  ])('%j', async (config, message) => {
    const dir = tempDir({ 'pagemig.config.json': json(config) });
    const r = await run(['migrate', '--total', '4MiB', '--json'], { cwd: dir });
    expect(r.code).toBe(ExitCode.CONFIG);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ ok: false, error: { code: 'ERR_CONFIG', exitCode: 4 } });
    expect(doc.error.message.startsWith(message)).toBe(true);
    expect(r.stderr).toBe(`pagemig migrate: ${doc.error.message}\n`);
  });

  it('names every bad field, not only the first', async () => {
    const dir = tempDir({
      'pagemig.config.json': json({ machine: { nodes: [{ memory: 64 }, { memory: '64MiB', tier: 3 }] } }),
    });
    const r = await run(['proc', 'vmstat'], { cwd: dir });
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      'pagemig proc: pagemig.config.json: machine.nodes[0].memory: expected a size string like "64MiB", got 64; pagemig.config.json: machine.nodes[1].tier: expected string, got 3\n',
    );
  });

  it('a flag that causes the problem is a usage error (exit 2), not the file', async () => {
    const dir = tempDir({
      'pagemig.config.json': json({ migrator: { id: 'ptdma', options: { channels: 2 } } }),
    });
    const r = await run(['migrate', '--total', '4MiB', '-o', 'channels=99'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pagemig migrate: ptdma: channels must be an integer in 1..16, got 99\n');
  });

  it('names a config file outside the working directory by its path (--config)', async () => {
    const other = tempDir({ 'x.json': json({ machine: { nodes: [{ memory: 64 }] } }) });
    const r = await run(['compact', '--config', path.join(other, 'x.json')]);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      `pagemig compact: ${path.join(other, 'x.json')}: machine.nodes[0].memory: expected a size string like "64MiB", got 64\n`,
    );
  });
});
