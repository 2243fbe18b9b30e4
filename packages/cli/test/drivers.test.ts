import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { formatDrivers } from '../src/commands/drivers.js';
import type { Drivers } from '../src/drivers.js';
import { run } from './helpers.js';

const require = createRequire(import.meta.url);

const listing: Awaited<ReturnType<Drivers['list']>> = [
  {
    id: 'cpu-serial',
    package: '@pagemig/migrator-cpu-serial',
    installed: true,
    version: '0.1.0',
    capabilities: { offloadsCpu: false, channels: 1, maxInFlightBatches: 1, needsSharedMemory: true },
    source: 'builtin',
  },
  {
    id: 'ptdma',
    package: '@pagemig/migrator-ptdma',
    installed: true,
    version: '0.2.0',
    capabilities: {
      offloadsCpu: true,
      channels: 4,
      minFolioBytes: 65536,
      maxInFlightBatches: 1,
      needsSharedMemory: true,
    },
    source: 'builtin',
  },
  {
    id: 'sdxi',
    package: '@pagemig/migrator-sdxi',
    installed: false,
    version: null,
    capabilities: null,
    source: 'builtin',
  },
  {
    id: 'foo',
    package: 'pagemig-migrator-foo',
    installed: true,
    version: '1.0.0',
    capabilities: null,
    source: 'third-party',
    error: 'createMigrator threw: no device',
  },
];

describe('pagemig drivers', () => {
  it('prints installed drivers with capabilities and missing ones with the package to install', () => {
    expect(formatDrivers(listing)).toBe(
      [
        '┌────────────┬──────────────────────────────┬─────────┬──────────────┬──────────┬───────────┬────────────────────────────────────────────────┐',
        '│ id         │ package                      │ version │ offloads CPU │ channels │ min folio │ status                                         │',
        '│ cpu-serial │ @pagemig/migrator-cpu-serial │ 0.1.0   │ no           │        1 │         - │ installed                                      │',
        '│ ptdma      │ @pagemig/migrator-ptdma      │ 0.2.0   │ yes          │        4 │     64KiB │ installed                                      │',
        '│ sdxi       │ @pagemig/migrator-sdxi       │ -       │ -            │        - │         - │ not installed: pnpm add @pagemig/migrator-sdxi │',
        '│ foo        │ pagemig-migrator-foo         │ 1.0.0   │ -            │        - │         - │ broken: createMigrator threw: no device        │',
        '└────────────┴──────────────────────────────┴─────────┴──────────────┴──────────┴───────────┴────────────────────────────────────────────────┘',
        '',
      ].join('\n'),
    );
  });

  it('lists the real registry as JSON', async () => {
    const r = await run(['drivers', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ schemaVersion: 1, command: 'drivers', ok: true });
    const ids = doc.drivers.map((d: { id: string }) => d.id);
    expect(ids.slice(0, 4)).toEqual(['cpu-serial', 'cpu-multithreaded', 'ptdma', 'sdxi']);
    // The CLI's own devDependencies are installed beside it.
    for (const id of ['cpu-serial', 'cpu-multithreaded', 'ptdma']) {
      const d = doc.drivers.find((x: { id: string }) => x.id === id);
      const { version } = require(`@pagemig/migrator-${id}/package.json`) as { version: string };
      expect(d).toMatchObject({ installed: true, version, package: `@pagemig/migrator-${id}` });
      expect(typeof d.capabilities.offloadsCpu).toBe('boolean');
    }
  });
});
