// "Install only the drivers you need": @pagemig/core and one driver are packed as pnpm would
// publish them, installed with npm (tarballs, plus their npm dependencies from the registry) into
// a scratch project outside the workspace, and a plain Node script migrates memory there.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const packages = join(import.meta.dirname, '../../../packages');
const scratch = mkdtempSync(join(tmpdir(), 'pagemig-pack-test-'));

const script = `
import { createMachine } from '@pagemig/core';
import { createMigrator } from '@pagemig/migrator-cpu-serial';

const m = await createMachine({ nodes: [{ memory: '64MiB' }, { memory: '64MiB' }] });
await m.offload.register(createMigrator(), 'all');
const p = m.spawn();
const len = 8 << 20;
const a = p.mmap(len, { thp: 'always', node: 0 });
const data = new Uint8Array(len).map((_, i) => (i * 7 + (i >>> 16)) & 255);
p.write(a, data);
const pfns = [];
for (let off = 0; off < len; off += 2 << 20) pfns.push(p.pageInfo(a + off).headPfn);
const r = await m.migrateFolios(pfns, { node: 1 });
m.checkInvariants();
console.log(JSON.stringify({
  ret: r.ret,
  migrator: r.offload.migrator,
  foliosCopied: r.offload.foliosCopied,
  node: p.pageInfo(a).node,
  lastNode: p.pageInfo(a + len - 4096).node,
  verified: Buffer.compare(p.read(a, len), data) === 0,
  thpMigrated: m.vmstat().thp_migration_success,
}));
await m.close();
`;

async function pack(dir: string): Promise<string> {
  const { stdout } = await run('pnpm', ['pack', '--pack-destination', scratch], { cwd: join(packages, dir) });
  return basename(stdout.trim().split('\n').at(-1)!.trim());
}

beforeAll(async () => {
  const core = await pack('core');
  const driver = await pack('migrator-cpu-serial');
  writeFileSync(
    join(scratch, 'package.json'),
    JSON.stringify({
      name: 'scratch',
      private: true,
      type: 'module',
      dependencies: {
        '@pagemig/core': `file:./${core}`,
        '@pagemig/migrator-cpu-serial': `file:./${driver}`,
      },
    }),
  );
  writeFileSync(join(scratch, 'migrate.mjs'), script);
  // A cache of its own: the test must not depend on (or fill) the user's npm cache state.
  await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--cache', join(scratch, '.npm')],
    {
      cwd: scratch,
    },
  );
}, 90_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('core + cpu-serial installed from their tarballs with npm', () => {
  it('installs nothing of pagemig but the two packages', () => {
    expect(readdirSync(join(scratch, 'node_modules/@pagemig')).sort()).toEqual([
      'core',
      'migrator-cpu-serial',
    ]);
    const driver = JSON.parse(
      readFileSync(join(scratch, 'node_modules/@pagemig/migrator-cpu-serial/package.json'), 'utf8'),
    );
    // pnpm pack turned workspace:^ into a real range that the packed core satisfies.
    expect(driver.peerDependencies['@pagemig/core']).toBe('^0.1.0');
    // core's own dependencies came from the npm registry.
    for (const dep of ['zod', 'semver']) expect(existsSync(join(scratch, 'node_modules', dep))).toBe(true);
  });

  it('migrates 8 MiB of THPs with the driver and verifies every byte', async () => {
    const { stdout } = await run('node', ['migrate.mjs'], { cwd: scratch });
    expect(JSON.parse(stdout)).toEqual({
      ret: 0,
      migrator: 'cpu-serial',
      foliosCopied: 4,
      node: 1,
      lastNode: 1,
      verified: true,
      thpMigrated: 4,
    });
  });

  it('loads from CommonJS too (require(esm), Node >= 20.19)', async () => {
    const { stdout } = await run(
      'node',
      [
        '-e',
        "const c = require('@pagemig/core'); console.log(typeof c.createMachine, c.MIGRATOR_API_VERSION)",
      ],
      { cwd: scratch },
    );
    expect(stdout.trim()).toBe('function pagemig.migrator/v1');
  });
});
