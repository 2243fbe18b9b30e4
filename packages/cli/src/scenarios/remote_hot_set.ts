import {
  type Machine,
  PAGE_SIZE,
  type PatternResult,
  type Process,
  type UserThread,
  verifyPattern,
} from '@pagemig/core';
import { CliError, ExitCode } from '../exit_codes.js';

/** Pages of each kind on node 0 and node 1 (-1: a page under migration). */
export interface Placement {
  hot: [node0: number, node1: number];
  cold: [node0: number, node1: number];
}

export interface RemoteHotSet {
  p: Process;
  thread: UserThread<PatternResult>;
  hotPages: number;
  coldPages: number;
  /** Where the hot and the cold pages are now. */
  placement(): Placement;
  /** Stops the thread and checks every byte (the thread's last writes, the cold pages' bytes). */
  stopAndVerify(): Promise<void>;
}

/** Distinct bytes per cold page (no zero byte), so a page copied to the wrong place never matches. */
function coldBytes(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PAGE_SIZE);
  const w = new Uint32Array(b.buffer);
  for (let j = 0; j < pages; j++)
    w.fill((Math.imul(j + 1, 0x9e3779b1) | 0x01010101) >>> 0, j * 1024, (j + 1) * 1024);
  return b;
}

function verifyError(what: string): CliError {
  return new CliError(`verification failed: ${what}`, ExitCode.FAILURE, 'ERR_VERIFY');
}

/**
 * The NUMA balancing scenario: process `app` runs on node 0, so the `hotPages + coldPages` pages it
 * maps (in folios of `folioPages`) are allocated there; one user thread of it runs on node 1 and
 * writes the hot pages again and again (a pattern writer whose every word is checked). The cold
 * pages hold known bytes and are never touched.
 */
export function startRemoteHotSet(
  m: Machine,
  opts: { hotPages: number; coldPages: number; folioPages: number },
): RemoteHotSet {
  const { hotPages, coldPages } = opts;
  const p = m.spawn({ comm: 'app', node: 0 });
  const addr = p.mmap((hotPages + coldPages) * PAGE_SIZE, { thp: opts.folioPages > 1 ? 'always' : 'never' });
  const cold = addr + hotPages * PAGE_SIZE;
  // The hot pages start zeroed: the writer checks every word it finds.
  p.touch(addr, hotPages * PAGE_SIZE, 'write');
  const bytes = coldBytes(coldPages);
  p.write(cold, bytes);
  const workload = { kind: 'pattern' as const, addr, bytes: hotPages * PAGE_SIZE, lanes: 1, lane: 0 };
  const thread = p.spawnThread<PatternResult>({ workload, node: 1 });
  const count = (from: number, pages: number): [number, number] => {
    const c: [number, number] = [0, 0];
    for (let i = 0; i < pages; i++) {
      const node = p.pageInfo(from + i * PAGE_SIZE)?.node;
      if (node === 0 || node === 1) c[node]++;
    }
    return c;
  };
  return {
    p,
    thread,
    hotPages,
    coldPages,
    placement: () => ({ hot: count(addr, hotPages), cold: count(cold, coldPages) }),
    async stopAndVerify() {
      thread.stop();
      const r = await thread.join();
      if (r.errors)
        throw verifyError(
          `the thread saw ${r.errors} bad words (first: ${JSON.stringify(r.firstErrors[0])})`,
        );
      const check = verifyPattern((a, n) => p.read(a, n), workload, [r]);
      if (check.mismatches || !check.checked)
        throw verifyError(
          `${check.mismatches} of ${check.checked} words of the hot pages lost their last write`,
        );
      if (Buffer.compare(p.read(cold, coldPages * PAGE_SIZE), bytes) !== 0)
        throw verifyError('a cold page lost its bytes');
    },
  };
}
