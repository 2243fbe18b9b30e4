import { checkMarks, directBatch, within } from '../direct_batch.js';
import { checkRegion, migrateRegion, populateRegion } from '../fixtures.js';
import type { Suite } from '../suite.js';

/** Rejecting an aborted batch is allowed; hanging is not. */
async function settlesAfterAbort(run: () => unknown, what: string): Promise<void> {
  try {
    await within(Promise.resolve(run()), 2000, what);
  } catch (e) {
    if (e instanceof Error && /did not settle/.test(e.message)) throw e;
  }
}

/** abort/*: the signal ends a batch soon, and leaves only real copies marked. */
export function abortCases(s: Suite): void {
  const { expect } = s;

  s.test('abort/before', 'a signal aborted before the call: settles at once, marks only real copies', () =>
    s.withMachine(async (m, mig) => {
      const d = directBatch(
        m,
        Array.from({ length: 64 }, () => 0),
      );
      try {
        const ac = new AbortController();
        ac.abort(new Error('aborted by the conformance suite'));
        await settlesAfterAbort(() => mig.copyBatch(d.batch, { signal: ac.signal }), 'copyBatch');
        expect(checkMarks(m, d).problems).toEqual([]);
      } finally {
        d.release();
      }
    }),
  );

  s.test('abort/during', 'a signal aborted during a large batch: settles soon, marks only real copies', () =>
    s.withMachine(async (m, mig) => {
      const d = directBatch(m, [...Array.from({ length: 1500 }, () => 0), 9, 9]);
      try {
        const ac = new AbortController();
        const run = Promise.resolve(mig.copyBatch(d.batch, { signal: ac.signal }));
        setImmediate(() => ac.abort(new Error('aborted by the conformance suite')));
        await settlesAfterAbort(() => run, 'copyBatch after abort');
        expect(checkMarks(m, d).problems).toEqual([]);
      } finally {
        d.release();
      }
    }),
  );

  s.test('abort/engine-timeout', 'the engine aborts a slow batch; the data still arrives', () =>
    s.withMachine(async (m) => {
      const r = populateRegion(m, { bytes: 4 << 20, thp: 'always' });
      const res = await migrateRegion(m, r, 1, { copyTimeoutMs: 1 });
      expect(res.ret).toBe(0);
      expect(checkRegion(m, r)).toEqual([]);
    }),
  );
}
