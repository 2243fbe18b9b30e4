import { createMachine, type Migrator } from '@pagemig/core';
import type { ItLike } from './conformance.js';
import { runUntilExit } from './exit.js';
import { assertExpect, type ExpectLike } from './expect.js';

/**
 * The check that a migrator's threads never hold a Node process open, in two halves: a child
 * script (`runLifetimeChild`) and the tests that run it (`runExitLifetimeSuite`).
 */

/** What the child needs from a migrator with threads of its own. */
export interface LifetimeProbe<M extends Migrator = Migrator> {
  /** A fresh, uninitialised migrator that starts its threads on init. */
  createMigrator(): M;
  /** The migrator's threads once it is registered; their `state` is read after close. */
  threads(migrator: M): readonly { readonly state: string }[];
}

/**
 * The body of a lifetime child script (`node child.mjs close|no-close`): migrates 4 MiB of
 * 2 MiB folios through the probe's migrator, closes the machine when argv[2] is 'close', prints
 * `{ ok, states }` and returns. The process must then exit on its own.
 */
export async function runLifetimeChild<M extends Migrator>(probe: LifetimeProbe<M>): Promise<void> {
  const m = await createMachine({ nodes: [{ memory: '32MiB' }, { memory: '32MiB' }], prefault: false });
  const mig = probe.createMigrator();
  await m.offload.register(mig, 'all');
  const p = m.spawn();
  const len = 4 << 20;
  const a = p.mmap(len, { thp: 'always', node: 0 });
  const data = new Uint8Array(len).map((_, i) => (i * 7) & 255);
  p.write(a, data);
  const pfns: number[] = [];
  for (let off = 0; off < len; off += 2 << 20) pfns.push(p.pageInfo(a + off)!.headPfn);
  const r = await m.migrateFolios(pfns, { node: 1 });
  const ok = r.ret === 0 && r.offload.foliosCopied === 2 && Buffer.compare(p.read(a, len), data) === 0;
  // Taken before close: a migrator may drop its threads when it is disposed.
  const threads = [...probe.threads(mig)];
  if (process.argv[2] === 'close') await m.close();
  console.log(JSON.stringify({ ok, states: threads.map((t) => t.state) }));
}

/** Options of `runExitLifetimeSuite`. */
export interface ExitLifetimeOptions {
  describe: (name: string, fn: () => void) => unknown;
  it: ItLike;
  /** vitest's or jest's expect; node:test users leave it out (node:assert is used). */
  expect?: ExpectLike;
  /** Path of the child script, which calls `runLifetimeChild`. */
  child: string;
  /** What the threads are called in the test names, e.g. 'device threads'. */
  threads: string;
  /** Each thread's `state` after `machine.close()`, and when the process ends without it. */
  states: { closed: readonly string[]; idle: readonly string[] };
  /** How long the child may take to exit on its own. Default 15 s. */
  timeoutMs?: number;
}

/**
 * Registers two tests that run the child script until it exits: once closing the machine, once
 * not. Each time the process must exit by itself with code 0, the migration must be correct and
 * the threads in the expected states; after close, nothing may be printed on stderr.
 */
export function runExitLifetimeSuite(opts: ExitLifetimeOptions): void {
  const expect = opts.expect ?? assertExpect;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const run = (mode: 'close' | 'no-close') =>
    runUntilExit(opts.child, [mode], { cwd: process.cwd(), timeoutMs });
  opts.describe(`${opts.threads} and process lifetime`, () => {
    opts.it(
      `machine.close() ends the ${opts.threads} and the process exits on its own`,
      async () => {
        const r = await run('close');
        expect(r.err).toBe('');
        expect(r.code).toBe(0);
        expect(JSON.parse(r.out)).toEqual({ ok: true, states: opts.states.closed });
      },
      timeoutMs + 5000,
    );
    opts.it(
      `the process exits on its own without close(), with idle ${opts.threads}`,
      async () => {
        const r = await run('no-close');
        expect(r.code).toBe(0);
        expect(JSON.parse(r.out)).toEqual({ ok: true, states: opts.states.idle });
      },
      timeoutMs + 5000,
    );
  });
}
