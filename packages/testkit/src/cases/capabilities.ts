import { PAGE_SIZE } from '@pagemig/core';
import { createTestMachine, migrateRegion, regionNodes, type TestRegion } from '../fixtures.js';
import type { Suite } from '../suite.js';

/** capabilities/*: what the manifest declares holds on a machine. */
export function capabilitiesCases(s: Suite): void {
  const { expect, factory } = s;

  s.test('capabilities/backing', 'needsSharedMemory is honoured on a machine without bytes', async () => {
    const m = await createTestMachine({ backing: 'none' });
    try {
      const mig = await factory();
      if (mig.capabilities.needsSharedMemory) {
        let refused = false;
        try {
          await m.offload.register(mig, 'all');
        } catch (e) {
          refused = (e as { errno?: number }).errno === 95;
        }
        expect(refused).toBe(true);
        await mig.dispose();
        return;
      }
      await m.offload.register(mig, 'all');
      const p = m.spawn();
      const a = p.mmap(64 * PAGE_SIZE, { node: 0 });
      p.touch(a, 64 * PAGE_SIZE, 'write');
      const r: TestRegion = { p, addr: a, bytes: 64 * PAGE_SIZE, data: new Uint8Array(0), heads: [] };
      const res = await migrateRegion(m, r, 1);
      expect(res.ret).toBe(0);
      expect(regionNodes(r)).toEqual([1]);
      m.checkInvariants();
    } finally {
      await m.close();
    }
  });
}
