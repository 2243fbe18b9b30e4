import { createRequire } from 'node:module';
import type { Machine } from '@pagemig/core';
import { createMigrator } from '@pagemig/migrator-cpu-serial';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../src/index.js';
import { caught, fixtures, migrateAndVerify, smallMachine } from './helpers.js';

const cpuSerialVersion = (
  createRequire(import.meta.url)('@pagemig/migrator-cpu-serial/package.json') as {
    version: string;
  }
).version;

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('register', () => {
  it('adds a migrator object after validation; load(name) returns that object', async () => {
    const reg = createRegistry({ root: fixtures });
    const own = { ...createMigrator(), name: 'my-copy' };
    expect(reg.register(own)).toBe(own);
    expect(await reg.load('my-copy')).toBe(own);
    const opt = await caught(() => reg.load('my-copy', { checkEvery: 2 }));
    expect(opt.code).toBe('ERR_MIGRATOR_OPTION');
    m = await smallMachine();
    await m.offload.register(own, 'all');
    const { result } = await migrateAndVerify(m, 'syscall_or_cpuset');
    expect(result.offload.migrator).toBe('my-copy');
  });

  it('a duplicate name is ERR_MIGRATOR_DUPLICATE', async () => {
    const reg = createRegistry();
    const a = reg.register(createMigrator());
    const e = await caught(() => reg.register(createMigrator()));
    expect(e.code).toBe('ERR_MIGRATOR_DUPLICATE');
    expect(e.message).toContain('"cpu-serial" is already registered');
    const same = await caught(() => reg.register(a));
    expect(same.code).toBe('ERR_MIGRATOR_DUPLICATE');
  });

  it('validates with core: bad objects get core’s codes', async () => {
    const reg = createRegistry();
    const invalid = await caught(() => reg.register({ name: 'x' } as never));
    expect(invalid.code).toBe('ERR_MIGRATOR_API_VERSION');
    const old = await caught(() => reg.register({ ...createMigrator(), engines: { core: '^9.0.0' } }));
    expect(old.code).toBe('ERR_MIGRATOR_ENGINE_MISMATCH');
    const anon = await caught(() => reg.register({ ...createMigrator(), name: '' }));
    expect(anon.code).toBe('ERR_MIGRATOR_INVALID');
  });
});

describe('list', () => {
  it('reports every built-in: cpu-serial installed with version and capabilities, sdxi installed too', async () => {
    const rows = await createRegistry().list();
    expect(rows.map((r) => r.id)).toEqual(['cpu-serial', 'cpu-multithreaded', 'ptdma', 'sdxi']);
    expect(rows[0]).toEqual({
      id: 'cpu-serial',
      package: '@pagemig/migrator-cpu-serial',
      installed: true,
      version: cpuSerialVersion,
      capabilities: { offloadsCpu: false, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
      source: 'builtin',
    });
    // @pagemig/migrator-sdxi exists now and resolves in this workspace, as every built-in does.
    expect(rows.find((r) => r.id === 'sdxi')).toMatchObject({
      id: 'sdxi',
      package: '@pagemig/migrator-sdxi',
      installed: true,
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      source: 'builtin',
    });
  });

  it('adds loaded third-party packages and registered objects', async () => {
    const reg = createRegistry({ root: fixtures });
    await reg.load('fake');
    await reg.load('@acme/pagemig-migrator-scoped');
    await caught(() => reg.load('fake-old')); // failed loads are not listed
    reg.register({ ...createMigrator(), name: 'my-copy' });
    const rows = await reg.list();
    expect(rows.map((r) => r.id)).toEqual([
      'cpu-serial',
      'cpu-multithreaded',
      'ptdma',
      'sdxi',
      'fake',
      '@acme/pagemig-migrator-scoped',
      'my-copy',
    ]);
    expect(rows[4]).toMatchObject({
      package: 'pagemig-migrator-fake',
      installed: true,
      version: '1.2.3',
      capabilities: { channels: 1, fixture: true },
      source: 'third-party',
    });
    expect(rows[5]).toMatchObject({ version: '4.5.6', capabilities: { channels: 2 } });
    expect(rows[6]).toMatchObject({
      package: null,
      installed: true,
      version: cpuSerialVersion,
      source: 'registered',
    });
  });

  it('a driver that cannot be created with default options is installed, with the reason', async () => {
    const reg = createRegistry({ root: fixtures });
    await reg.load('fake-needs-device', { device: '/dev/fake0' });
    const rows = await reg.list();
    expect(rows.find((r) => r.id === 'fake-needs-device')).toEqual({
      id: 'fake-needs-device',
      package: 'pagemig-migrator-fake-needs-device',
      installed: true,
      version: '0.3.0',
      capabilities: null,
      source: 'third-party',
      error:
        'migrator "fake-needs-device": createMigrator of pagemig-migrator-fake-needs-device threw: fake-needs-device: option "device" is required',
    });
  });
});
