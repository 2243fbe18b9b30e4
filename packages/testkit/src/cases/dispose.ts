import { createTestMachine, migrateRegion, populateRegion } from '../fixtures.js';
import { trackHandles } from '../leaks.js';
import type { Suite } from '../suite.js';

/** dispose/*: a migrator releases everything, however often it is disposed. */
export function disposeCases(s: Suite): void {
  const { expect, factory } = s;

  s.test(
    'dispose/idempotent',
    'dispose twice (and asyncDispose) without error; no handle leaked',
    async () => {
      const handles = trackHandles();
      try {
        const m = await createTestMachine();
        const mig = await factory();
        await m.offload.register(mig, 'all');
        const r = populateRegion(m, { bytes: 2 << 20, thp: '64KiB' });
        expect((await migrateRegion(m, r, 1)).ret).toBe(0);
        await m.offload.unregister(mig); // disposes
        await mig.dispose();
        if (mig[Symbol.asyncDispose]) await mig[Symbol.asyncDispose]!();
        await m.close();
        // Let terminated workers and cleared timers report their end.
        for (let i = 0; i < 20 && handles.leaked().length; i++) await handles.settle(10);
        expect(handles.leaked()).toEqual([]);
      } finally {
        handles.stop();
      }
    },
  );
}
