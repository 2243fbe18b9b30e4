import { DRIVER_FAULT_SITES, MIGRATOR_API_VERSION, validateMigrator } from '@pagemig/core';
import { createTestMachine } from '../fixtures.js';
import type { Suite } from '../suite.js';

/** contract/*: the object's shape and its life on a machine. */
export function contractCases(s: Suite): void {
  const { expect, factory } = s;

  s.test('contract/shape', 'a structurally valid, serialisable pagemig.migrator/v1 object', async () => {
    const mig = await factory();
    validateMigrator(mig);
    expect(mig.apiVersion).toBe(MIGRATOR_API_VERSION);
    expect(typeof mig.name === 'string' && mig.name.length > 0).toBe(true);
    expect(typeof mig.version).toBe('string');
    expect(typeof mig.engines?.core).toBe('string');
    const caps = mig.capabilities;
    expect(JSON.parse(JSON.stringify(caps))).toEqual(caps);
    expect(typeof caps.offloadsCpu).toBe('boolean');
    expect(Number.isInteger(caps.channels) && caps.channels >= 1).toBe(true);
    expect(Number.isInteger(caps.maxInFlightBatches) && caps.maxInFlightBatches >= 1).toBe(true);
    const unknownSites = (caps.faultSites ?? []).filter(
      (site) => !(DRIVER_FAULT_SITES as readonly string[]).includes(site),
    );
    expect(unknownSites).toEqual([]);
    for (const method of ['init', 'copyBatch', 'dispose'] as const)
      expect(typeof mig[method]).toBe('function');
    // A fresh migrator is safe to dispose without init.
    await mig.dispose();
  });

  s.test(
    'contract/register',
    'registers, serves every reason, unregisters; the factory gives fresh objects',
    async () => {
      const a = await factory();
      const b = await factory();
      expect(a === b).toBe(false);
      const m = await createTestMachine();
      try {
        await m.offload.register(a, 'all');
        expect(m.offload.active === a).toBe(true);
        const st = m.offload.status();
        expect(st.map((x) => x.name)).toEqual([a.name]);
        await m.offload.unregister(a);
        expect(m.offload.active).toBe(null);
      } finally {
        await m.close();
      }
    },
  );
}
