import { createRegistry } from '@pagemig/registry';
import { describe, expect, it } from 'vitest';
import { runCustomMigrator } from '../src/main.js';

describe('custom-migrator example', () => {
  it('loads pagemig-migrator-yielding by id and routes only numa_misplaced to it', async () => {
    const r = await runCustomMigrator();
    expect(r.listed).toEqual({
      id: 'yielding',
      package: 'pagemig-migrator-yielding',
      installed: true,
      version: '0.1.0',
    });
    expect(r.typoError).toMatch(
      /unknown option "sliceByte" for migrator yielding; did you mean "sliceBytes"\?/,
    );

    const [numa, syscall] = r.migrations;
    // 16 MiB of 4 KiB folios: every one copied by the migrator, bytes intact on node 1.
    expect(numa).toEqual({
      reason: 'numa_misplaced',
      copiedBy: 'yielding',
      foliosOffered: 4096,
      foliosCopied: 4096,
      node: 1,
      verified: true,
    });
    // Not routed to it: the kernel's CPU copy moved everything back.
    expect(syscall).toMatchObject({ foliosCopied: 0, foliosOffered: 0, node: 0, verified: true });
    // 256 KiB slices: 8 batches of 512 rows, a yield every 64 rows but after the last.
    expect(r.stats).toMatchObject({ batches: 8, rowsCopied: 4096, yields: 8 * 7 });
  });

  it('resolves the id from the application directory, as createRegistry() does by default', async () => {
    // vitest runs in this package's directory, like `pnpm --filter ... start`.
    const mig = await createRegistry().load('yielding');
    expect(mig).toMatchObject({ name: 'yielding', apiVersion: 'pagemig.migrator/v1' });
  });
});
