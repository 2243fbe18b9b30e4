import type { Migrator } from '@pagemig/core';
import { abortCases } from './cases/abort.js';
import { capabilitiesCases } from './cases/capabilities.js';
import { concurrencyCases } from './cases/concurrency.js';
import { contractCases } from './cases/contract.js';
import { copyCases } from './cases/copy.js';
import { disposeCases } from './cases/dispose.js';
import { faultCases } from './cases/faults.js';
import { liveCases } from './cases/live.js';
import { markingCases } from './cases/marking.js';
import { runCases } from './cases/run.js';
import type { ExpectLike } from './expect.js';
import { createSuite } from './suite.js';

/** `it`/`test` of the runner: vitest, jest, node:test (`it(name, fn)`). */
export type ItLike = (name: string, fn: () => void | Promise<void>, timeout?: number) => unknown;

export interface ConformanceOptions {
  describe: (name: string, fn: () => void) => unknown;
  it: ItLike;
  /** vitest's or jest's expect; node:test users leave it out (node:assert is used). */
  expect?: ExpectLike;
  /** Returns a fresh, uninitialised migrator (the suite registers, uses and disposes it). */
  factory: () => Migrator | Promise<Migrator>;
  /** Cases to leave out (not registered): a case id ("copy/2MiB") or a pattern over the ids. */
  skip?: readonly (string | RegExp)[];
  /** Include the case with live user threads (worker threads). Default true. */
  liveThreads?: boolean;
  /** Per-case timeout passed to the runner (vitest, jest). Default 30 s. */
  timeoutMs?: number;
  /**
   * The capabilities used to prune cases when the suite is defined. Default: those of a migrator
   * the factory returns synchronously (an async factory prunes inside each case instead).
   */
  capabilities?: Migrator['capabilities'];
}

/**
 * The migrator conformance suite (abstract-level style): the runner is injected, `factory()`
 * returns a fresh migrator per case, and the suite builds its own machines. Each area's cases live
 * in cases/, registered here in report order. Cases are pruned by the declared capabilities
 * (needsSharedMemory, maxInFlightBatches, faultSites), and those that need the migrator to copy
 * build batches its `shouldOffload` accepts.
 */
export function runMigratorConformance(opts: ConformanceOptions): void {
  const suite = createSuite(opts);
  opts.describe('pagemig migrator conformance', () => {
    contractCases(suite);
    copyCases(suite);
    markingCases(suite);
    abortCases(suite);
    runCases(suite);
    concurrencyCases(suite);
    disposeCases(suite);
    faultCases(suite);
    capabilitiesCases(suite);
    liveCases(suite);
  });
}
