import type { Machine, Migrator, MigratorCapabilities } from '@pagemig/core';
import type { ConformanceOptions } from './conformance.js';
import { assertExpect, type ExpectLike } from './expect.js';
import { createTestMachine, type TestMachineOptions } from './fixtures.js';

export type CaseFn = () => void | Promise<void>;

/** What every case file gets: the injected runner, the factory and the machine helper. */
export interface Suite {
  readonly describe: ConformanceOptions['describe'];
  readonly expect: ExpectLike;
  readonly factory: ConformanceOptions['factory'];
  /** The declared capabilities when known at definition time; cases are pruned by them. */
  readonly caps: MigratorCapabilities | undefined;
  /** Whether the migrator has runStart/runEnd, when known at definition time (run/* cases). */
  readonly hooks: boolean | undefined;
  readonly liveThreads: boolean;
  /** Registers case `id` unless `skip` leaves it out or the capabilities prune it. */
  test(id: string, title: string, fn: CaseFn, pruned?: boolean): void;
  /** A machine with a fresh migrator registered for every reason; closes both afterwards. */
  withMachine(
    fn: (m: Machine, mig: Migrator) => Promise<void>,
    machineOpts?: TestMachineOptions,
  ): Promise<void>;
}

export function createSuite(opts: ConformanceOptions): Suite {
  const { factory } = opts;
  const timeout = opts.timeoutMs ?? 30_000;
  const skipped = (id: string) =>
    (opts.skip ?? []).some((s) => (typeof s === 'string' ? s === id : s.test(id)));
  const probed = probe(factory);
  return {
    describe: opts.describe,
    expect: opts.expect ?? assertExpect,
    factory,
    caps: opts.capabilities ?? probed.caps,
    hooks: probed.hooks,
    liveThreads: opts.liveThreads !== false,
    // A case that does not apply is not registered at all: the runner reports only cases that ran.
    test(id, title, fn, pruned = false) {
      if (!skipped(id) && !pruned) opts.it(`${id}: ${title}`, fn, timeout);
    },
    async withMachine(fn, machineOpts = {}) {
      const m = await createTestMachine(machineOpts);
      try {
        const mig = await factory();
        await m.offload.register(mig, 'all');
        await fn(m, mig);
        m.checkInvariants();
      } finally {
        m.injectFaults(null);
        await m.close();
      }
    },
  };
}

/**
 * The capabilities of a migrator the factory returns synchronously, and whether it has the run hooks
 * (async factories prune per case).
 */
function probe(factory: ConformanceOptions['factory']): {
  caps: MigratorCapabilities | undefined;
  hooks: boolean | undefined;
} {
  let caps: MigratorCapabilities | undefined;
  let hooks: boolean | undefined;
  try {
    const probe = factory();
    if (probe instanceof Promise) void probe.then((p) => p.dispose()).catch(() => {});
    else {
      caps = probe.capabilities;
      hooks = typeof probe.runStart === 'function' || typeof probe.runEnd === 'function';
      void Promise.resolve(probe.dispose()).catch(() => {});
    }
  } catch {
    // A factory that throws fails every case, where the runner reports it.
  }
  return { caps, hooks };
}
