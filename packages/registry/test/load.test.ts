import { CORE_VERSION, type Machine, PagemigError } from '@pagemig/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry, migratorRef, RegistryErrorCode } from '../src/index.js';
import { caught, fixtures, migrateAndVerify, smallMachine } from './helpers.js';

let m: Machine | undefined;
afterEach(async () => {
  await m?.close();
  m = undefined;
});

describe('load: built-in drivers', () => {
  it("load('cpu-serial') returns a valid migrator that migrates every byte", async () => {
    const reg = createRegistry();
    const mig = await reg.load('cpu-serial');
    expect(mig).toMatchObject({ apiVersion: 'pagemig.migrator/v1', name: 'cpu-serial' });
    m = await smallMachine();
    await m.offload.register(mig, 'all');
    const { result, pages } = await migrateAndVerify(m, 'syscall_or_cpuset');
    expect(result.offload).toMatchObject({ migrator: 'cpu-serial', foliosCopied: pages });
  });

  it('passes options through and each load creates a new migrator', async () => {
    const reg = createRegistry();
    const a = await reg.load('cpu-serial', { checkEvery: 8 });
    const b = await reg.load('@pagemig/migrator-cpu-serial');
    expect(a).not.toBe(b);
    expect(b.name).toBe('cpu-serial');
  });

  // Every built-in resolves in this workspace (sdxi too, since it exists), so a missing driver is a
  // third-party id nobody installed.
  it('a missing driver says which package to install', async () => {
    const e = await caught(() => createRegistry().load('nvme-dma', { channels: 4 }));
    expect(e.code).toBe('ERR_MIGRATOR_NOT_INSTALLED');
    expect(e.message).toBe(
      'migrator "nvme-dma" is not installed: install pagemig-migrator-nvme-dma (e.g. pnpm add pagemig-migrator-nvme-dma)',
    );
  });

  it('a typo of a built-in id gets a suggestion', async () => {
    const e = await caught(() => createRegistry().load('cpu-seral'));
    expect(e.code).toBe('ERR_MIGRATOR_NOT_INSTALLED');
    expect(e.message).toContain('did you mean "cpu-serial"?');
    expect(e.message).toContain('pagemig-migrator-cpu-seral');
    const far = await caught(() => createRegistry().load('zzzz'));
    expect(far.message).not.toContain('did you mean');
  });

  it('rejects ids that cannot name a package', async () => {
    for (const id of ['', 'CPU Serial', 'node:fs']) {
      const e = await caught(() => createRegistry().load(id));
      expect(e.code).toBe('ERR_MIGRATOR_ID');
    }
    const e = await caught(() => createRegistry().load('CPU-serial'));
    expect(e.message).toContain('did you mean "cpu-serial"?');
  });

  it("cpu-serial's optionKeys give unknown options a suggestion before the driver runs", async () => {
    const e = await caught(() => createRegistry().load('cpu-serial', { checkEvry: 4 }));
    expect(e.code).toBe('ERR_MIGRATOR_OPTION');
    expect(e.message).toBe('unknown option "checkEvry" for migrator cpu-serial; did you mean "checkEvery"?');
    const far = await caught(() => createRegistry().load('cpu-serial', { zzz: 1 }));
    expect(far.message).toBe('unknown option "zzz" for migrator cpu-serial; known options: checkEvery');
    // Values are still the driver's to check.
    const bad = await caught(() => createRegistry().load('cpu-serial', { checkEvery: 0 }));
    expect(bad.code).toBe('ERR_MIGRATOR_OPTION');
    expect(bad.message).toContain('checkEvery must be a positive integer');
    const notObject = await caught(() => createRegistry().load('cpu-serial', 4 as never));
    expect(notObject.code).toBe('ERR_MIGRATOR_OPTION');
  });
});

describe('load: third-party packages', () => {
  const reg = () => createRegistry({ root: fixtures });

  it('maps ids to packages', () => {
    expect(migratorRef('ptdma')).toEqual({
      id: 'ptdma',
      package: '@pagemig/migrator-ptdma',
      kind: 'builtin',
    });
    expect(migratorRef('fake')).toEqual({
      id: 'fake',
      package: 'pagemig-migrator-fake',
      kind: 'third-party',
    });
    expect(migratorRef('pagemig-migrator-fake')).toEqual(migratorRef('fake'));
    expect(migratorRef('@acme/x')).toEqual({ id: '@acme/x', package: '@acme/x', kind: 'package' });
    expect(migratorRef('@pagemig/migrator-sdxi')).toMatchObject({ id: 'sdxi', kind: 'builtin' });
  });

  it('a third-party id resolves to pagemig-migrator-<id> from the root', async () => {
    const r = reg();
    expect(r.root).toBe(fixtures.replace(/\/$/, ''));
    const mig = await r.load('fake', { channels: 3 });
    expect(mig.name).toBe('fake');
    expect(mig.capabilities.channels).toBe(3);
    m = await smallMachine();
    await m.offload.register(mig, 'all');
    const { result, pages } = await migrateAndVerify(m, 'syscall_or_cpuset', 5);
    expect(result.offload).toMatchObject({ migrator: 'fake', foliosCopied: pages });
    // Not installed from the default root (the registry package itself).
    const e = await caught(() => createRegistry().load('fake'));
    expect(e.code).toBe('ERR_MIGRATOR_NOT_INSTALLED');
    expect(e.message).toBe(
      'migrator "fake" is not installed: install pagemig-migrator-fake (e.g. pnpm add pagemig-migrator-fake)',
    );
  });

  it('root may be a file URL', async () => {
    const mig = await createRegistry({ root: new URL('./fixtures/', import.meta.url) }).load('fake');
    expect(mig.name).toBe('fake');
  });

  it('built-ins still resolve through the root’s parents', async () => {
    expect((await reg().load('cpu-serial')).name).toBe('cpu-serial');
  });

  it('unknown option keys get a "did you mean" from the optionKeys export', async () => {
    const e = await caught(() => reg().load('fake', { chanels: 2 }));
    expect(e.code).toBe('ERR_MIGRATOR_OPTION');
    expect(e.message).toBe('unknown option "chanels" for migrator fake; did you mean "channels"?');
  });

  it('a scoped package name is imported as given (ESM-only exports)', async () => {
    const mig = await reg().load('@acme/pagemig-migrator-scoped');
    expect(mig).toMatchObject({ name: 'acme-scoped', version: '4.5.6' });
  });

  it('accepts a default-exported factory and a CommonJS module.exports.createMigrator', async () => {
    expect((await reg().load('fake-default')).name).toBe('fake-default');
    const cjs = await reg().load('fake-cjs', { depth: 4 });
    expect(cjs.capabilities.maxInFlightBatches).toBe(4);
    const e = await caught(() => reg().load('fake-cjs', { dept: 4 }));
    expect(e.message).toContain('did you mean "depth"?');
  });

  it('a migrator for another core major fails with core’s wording', async () => {
    const e = await caught(() => reg().load('fake-old'));
    expect(e.code).toBe('ERR_MIGRATOR_ENGINE_MISMATCH');
    expect(CORE_VERSION).toBe('0.1.0');
    expect(e.message).toBe('migrator fake-old needs @pagemig/core ^9.0.0, 0.1.0 is installed');
  });

  it('a wrong apiVersion, missing fields and a missing factory are invalid', async () => {
    const api = await caught(() => reg().load('fake-api'));
    expect(api.code).toBe('ERR_MIGRATOR_API_VERSION');
    expect(api.message).toContain('"pagemig.migrator/v0" is not supported');
    const partial = await caught(() => reg().load('fake-partial'));
    expect(partial.code).toBe('ERR_MIGRATOR_INVALID');
    expect(partial.message).toBe('migrator fake-partial: `copyBatch` must be a function');
    const none = await caught(() => reg().load('fake-nofactory'));
    expect(none.code).toBe('ERR_MIGRATOR_INVALID');
    expect(none.message).toContain('pagemig-migrator-fake-nofactory');
    expect(none.message).toContain('does not export createMigrator');
  });

  it('a package that is there but cannot be loaded is not reported as missing', async () => {
    const broken = await caught(() => reg().load('fake-broken'));
    expect(broken.code).toBe('ERR_MIGRATOR_LOAD');
    expect(broken.message).toContain('fake-broken fails while loading');
    expect(broken.cause).toBeInstanceOf(Error);
    const dep = await caught(() => reg().load('fake-missing-dep'));
    expect(dep.code).toBe('ERR_MIGRATOR_LOAD');
    expect(dep.message).toContain('pagemig-fixture-dependency-that-is-not-installed');
    const unbuilt = await caught(() => reg().load('fake-unbuilt'));
    expect(unbuilt.code).toBe('ERR_MIGRATOR_LOAD');
    expect(unbuilt.message).toContain('is installed at');
    expect(unbuilt.message).toContain('is it built?');
  });

  it('a factory that throws a plain error is wrapped with a code', async () => {
    const e = await caught(() => reg().load('fake-throws'));
    expect(e.code).toBe(RegistryErrorCode.CREATE);
    expect(e.message).toContain('fake-throws cannot be created');
    expect(e.cause).toBeInstanceOf(TypeError);
  });

  it('a typo of a third-party id already loaded is suggested too', async () => {
    const r = reg();
    await r.load('fake');
    const e = await caught(() => r.load('fak'));
    expect(e.code).toBe('ERR_MIGRATOR_NOT_INSTALLED');
    expect(e.message).toContain('did you mean "fake"?');
  });

  it('every error is a PagemigError recognised by isInstance, never by instanceof alone', async () => {
    const e = await caught(() => reg().load('nvme-dma'));
    expect(PagemigError.isInstance(e)).toBe(true);
    expect(PagemigError.isInstance(new Error('x'))).toBe(false);
  });
});
