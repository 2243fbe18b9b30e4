import { describe, expect, it } from 'vitest';
import { run, tempDir } from './helpers.js';

const config = (defaultChannels: number, routeChannels: number) =>
  tempDir({
    'pagemig.config.json': JSON.stringify({
      migrator: { id: 'ptdma', options: { channels: defaultChannels } },
      routes: { compaction: { id: 'ptdma', options: { channels: routeChannels } } },
    }),
  });

// Issue 20: a default and a route naming the same driver failed with EBUSY ("another migrator
// named ptdma is already in use"): the registry's configure loads each (id, options) once.
describe('routing config: one driver for two reasons', () => {
  it('same id and options: one shared instance, for migrate and compact', async () => {
    const dir = config(2, 2);
    const m = await run(['migrate', '--total', '4MiB', '--json'], { cwd: dir });
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({
      verified: true,
      migrator: { id: 'ptdma', options: { channels: 2 }, routes: { compaction: 'ptdma' } },
      offload: { migrator: 'ptdma', foliosCopied: 2 },
    });
    const c = await run(['compact', '--node-memory', '32MiB', '--json'], { cwd: dir });
    expect(c.code).toBe(0);
    const doc = JSON.parse(c.stdout);
    expect(doc).toMatchObject({ verified: true, migrator: { routes: { compaction: 'ptdma' } } });
    expect(doc.pagesMigrated).toBeGreaterThan(0);
  });

  it('different options (2 vs 4 channels): two instances, the route as ptdma#2, and compaction goes there', async () => {
    const dir = config(2, 4);
    const c = await run(['compact', '--node-memory', '32MiB', '--json'], { cwd: dir });
    expect(c.code).toBe(0);
    const doc = JSON.parse(c.stdout);
    expect(doc).toMatchObject({ verified: true, migrator: { routes: { compaction: 'ptdma#2' } } });
    // Compaction's batches went to the routed instance (4 channels), none to the default.
    const byName = (n: string) => doc.offload.find((s: { name: string }) => s.name === n);
    expect(byName('ptdma#2').foliosCopied).toBeGreaterThan(0);
    expect(byName('ptdma')).toMatchObject({ isDefault: true, foliosCopied: 0 });
    const m = await run(['migrate', '--total', '4MiB', '--json'], { cwd: dir });
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({
      migrator: { routes: { compaction: 'ptdma#2' } },
      offload: { migrator: 'ptdma', foliosCopied: 2 },
    });
  });
});
