import type { Machine, MigrationRunInfo, Migrator } from '@pagemig/core';
import { checkRegion, createTestMachine, migrateRegion, populateRegion } from '../fixtures.js';
import type { Suite } from '../suite.js';

/** What the spies saw, in order: a run's start and end (with its info object) and each batch. */
type RunEvent = { kind: 'start' | 'end'; info: MigrationRunInfo } | { kind: 'batch' };

/**
 * Wraps the migrator's runStart, runEnd and copyBatch (before it is registered) to record the order
 * of the calls the engine makes.
 */
function spyOnRuns(mig: Migrator): RunEvent[] {
  const events: RunEvent[] = [];
  const { runStart, runEnd, copyBatch } = mig;
  const o = mig as { -readonly [K in keyof Migrator]: Migrator[K] };
  o.runStart = (info) => {
    events.push({ kind: 'start', info });
    runStart?.call(mig, info);
  };
  o.runEnd = (info) => {
    events.push({ kind: 'end', info });
    runEnd?.call(mig, info);
  };
  o.copyBatch = (batch, opts) => {
    events.push({ kind: 'batch' });
    return copyBatch.call(mig, batch, opts);
  };
  return events;
}

/**
 * Problems with the pairing: every runStart has exactly one runEnd with the same info object, no
 * end comes before its start, and every batch falls inside a run that has started and not ended.
 */
function pairingProblems(events: readonly RunEvent[]): string[] {
  const problems: string[] = [];
  const open = new Set<MigrationRunInfo>();
  events.forEach((e, i) => {
    if (e.kind === 'start') {
      if (open.has(e.info)) problems.push(`event ${i}: runStart twice with one info object`);
      open.add(e.info);
    } else if (e.kind === 'end') {
      if (!open.delete(e.info)) problems.push(`event ${i}: runEnd without its runStart`);
    } else if (open.size === 0) problems.push(`event ${i}: copyBatch outside any run`);
  });
  if (open.size) problems.push(`${open.size} runStart without runEnd`);
  return problems;
}

const starts = (events: readonly RunEvent[]) => events.flatMap((e) => (e.kind === 'start' ? [e.info] : []));

/** run/*: runStart and runEnd (optional in pagemig.migrator/v1), for a migrator that has them. */
export function runCases(s: Suite): void {
  const { expect, factory } = s;

  /** A machine with a fresh migrator, spied on, registered for every reason; null if it has no hooks. */
  async function withSpiedMachine(fn: (m: Machine, events: RunEvent[]) => Promise<void>): Promise<void> {
    const mig = await factory();
    if (!mig.runStart && !mig.runEnd) {
      // An async factory's migrator is only known here: one without the hooks has nothing to check.
      await mig.dispose();
      return;
    }
    const events = spyOnRuns(mig);
    const m = await createTestMachine();
    try {
      await m.offload.register(mig, 'all');
      await fn(m, events);
      m.checkInvariants();
    } finally {
      m.injectFaults(null);
      await m.close();
    }
  }
  const pruned = s.hooks === false;

  s.test(
    'run/paired',
    'each migration is one run: runStart (with its node and size) before its batches, runEnd after; the next run copies too',
    () =>
      withSpiedMachine(async (m, events) => {
        const r = populateRegion(m, { bytes: 4 << 20, thp: 'always' });
        // There and back: the migrator must copy as well in the run after a runEnd.
        for (const node of [1, 0]) {
          const res = await migrateRegion(m, r, node);
          expect(res.ret).toBe(0);
          expect(res.offload.failures).toBe(0);
          expect(res.offload.foliosCopied).toBe(res.offload.foliosOffered);
          expect(checkRegion(m, r)).toEqual([]);
        }
        expect(pairingProblems(events)).toEqual([]);
        const runs = starts(events);
        expect(runs.map((i) => ({ node: i.node, folios: i.folios, pages: i.pages }))).toEqual([
          { node: 1, folios: 2, pages: 1024 },
          { node: 0, folios: 2, pages: 1024 },
        ]);
      }),
    pruned,
  );

  s.test(
    'run/failed-batch',
    'a run whose batches fail still ends with runEnd; the CPU copies the data',
    () =>
      withSpiedMachine(async (m, events) => {
        const r = populateRegion(m, { bytes: 4 << 20, thp: 'always', seed: 2 });
        m.injectFaults([{ site: 'migrator_call', action: 'throw' }]);
        const res = await migrateRegion(m, r, 1);
        expect(res.ret).toBe(0);
        // The rule fires once: the first batch the migrator's gate accepted failed.
        expect(res.offload.failures).toBe(Math.min(1, res.offload.batches));
        expect(checkRegion(m, r)).toEqual([]);
        expect(pairingProblems(events)).toEqual([]);
        expect(starts(events).length).toBe(1);
      }),
    pruned,
  );

  s.test(
    'run/aborted-batch',
    'a run whose batch the engine aborts (copy timeout) still ends with runEnd; the data arrives',
    () =>
      withSpiedMachine(async (m, events) => {
        const r = populateRegion(m, { bytes: 4 << 20, thp: 'always', seed: 3 });
        const res = await migrateRegion(m, r, 1, { copyTimeoutMs: 1 });
        expect(res.ret).toBe(0);
        expect(checkRegion(m, r)).toEqual([]);
        expect(pairingProblems(events)).toEqual([]);
        expect(starts(events).length).toBe(1);
      }),
    pruned,
  );

  s.test(
    'run/overlap',
    'concurrent migrations are overlapping runs, each ended with its own info object',
    () =>
      withSpiedMachine(async (m, events) => {
        const a = populateRegion(m, { bytes: 2 << 20, thp: 'always', seed: 4 });
        const b = populateRegion(m, { bytes: 2 << 20, thp: 'never', seed: 5 });
        const [ra, rb] = await Promise.all([migrateRegion(m, a, 1), migrateRegion(m, b, 1)]);
        expect([ra.ret, rb.ret]).toEqual([0, 0]);
        expect([...checkRegion(m, a), ...checkRegion(m, b)]).toEqual([]);
        expect(pairingProblems(events)).toEqual([]);
        expect(starts(events).length).toBe(2);
      }),
    pruned,
  );
}
