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
      `${path.join(dir, 'pagemig.config.json')}: machine.nodes.0.memory: expected a size: a byte count or a string such as "256MiB"`,
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
      `pagemig migrate: ${path.join(dir, 'pagemig.config.json')}: migrator.timing: unknown timing profile "fast"; known: slow\n`,
    );
  });

  it('reports invalid JSON and a missing --config file', async () => {
    const dir = tempDir({ 'pagemig.config.json': '{ nodes: 1 }' });
    const bad = await run(['proc', 'vmstat'], { cwd: dir });
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/pagemig\.config\.json: not valid JSON: /);
    const missing = await run(['migrate', '--config', 'nope.json'], { cwd: dir });
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe(
      `pagemig migrate: config file ${path.join(dir, 'nope.json')} does not exist\n`,
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
