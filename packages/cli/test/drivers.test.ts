import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDrivers } from '../src/commands/drivers.js';
import { type Drivers, discoverMigratorPackages } from '../src/drivers.js';
import { cliDir, run, tempDir } from './helpers.js';

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

/** A package in `dir/node_modules`: its package.json and an ESM index.js. */
function installPackage(dir: string, name: string, json: Record<string, unknown>, code: string): void {
  const pkg = path.join(dir, 'node_modules', name);
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    path.join(pkg, 'package.json'),
    JSON.stringify({ name, version: '2.0.0', type: 'module', main: 'index.js', ...json }),
  );
  writeFileSync(path.join(pkg, 'index.js'), code);
}

const plainMigrator = (name: string) => `export const createMigrator = () => ({
  apiVersion: 'pagemig.migrator/v1', name: ${JSON.stringify(name)}, version: '2.0.0', engines: { core: '*' },
  capabilities: { offloadsCpu: false, channels: 3, maxInFlightBatches: 1, needsSharedMemory: true },
  init() {}, copyBatch() {}, dispose() {},
});\n`;

// Issue 20: `drivers` listed only the built-ins, though `-m <id>` loads installed third-party ones.
describe('pagemig drivers: third-party migrators installed in the project', () => {
  it('lists pagemig-migrator-* packages and packages with the pagemig-migrator keyword, broken ones too', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'node_modules'));
    // The workspace's own example third-party migrator, installed as an application would.
    symlinkSync(
      path.resolve(cliDir, '../../examples/pagemig-migrator-yielding'),
      path.join(dir, 'node_modules', 'pagemig-migrator-yielding'),
    );
    installPackage(dir, '@acme/copier', { keywords: ['pagemig', 'pagemig-migrator'] }, plainMigrator('acme'));
    installPackage(
      dir,
      'pagemig-migrator-broken',
      {},
      'export function createMigrator() { throw new Error("no device"); }\n',
    );
    installPackage(dir, 'left-pad', { keywords: ['pad'] }, 'export default 1;\n');

    expect(
      discoverMigratorPackages(dir)
        .map((p) => p.name)
        .sort(),
    ).toEqual(['@acme/copier', 'pagemig-migrator-broken', 'pagemig-migrator-yielding']);
    const r = await run(['drivers', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const drivers: { id: string; error?: string }[] = JSON.parse(r.stdout).drivers;
    const byId = (id: string) => drivers.find((d) => d.id === id);
    expect(byId('yielding')).toMatchObject({
      package: 'pagemig-migrator-yielding',
      installed: true,
      version: '0.1.0',
      source: 'third-party',
      capabilities: { offloadsCpu: false },
    });
    expect(byId('@acme/copier')).toMatchObject({
      package: '@acme/copier',
      installed: true,
      version: '2.0.0',
      capabilities: { channels: 3 },
    });
    expect(byId('broken')).toMatchObject({
      package: 'pagemig-migrator-broken',
      installed: true,
      capabilities: null,
    });
    expect(byId('broken')?.error).toContain('no device');
    expect(byId('left-pad')).toBeUndefined();

    const text = await run(['drivers'], { cwd: dir });
    expect(text.stdout).toMatch(
      /│ yielding +│ pagemig-migrator-yielding +│ 0\.1\.0 +│ no +│ +1 │ +- │ installed +│/,
    );
    expect(text.stdout).toMatch(/│ broken +│ pagemig-migrator-broken +│ 2\.0\.0 .+│ broken: .*no device/);
    // What drivers lists, -m loads.
    const m = await run(['migrate', '--total', '4MiB', '-m', 'yielding', '--json'], { cwd: dir });
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout).offload).toMatchObject({ migrator: 'yielding', foliosCopied: 2 });
  });
});
