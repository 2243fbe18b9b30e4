import {
  type AccessResult,
  type AccessTrace,
  type AccessWorkload,
  accessWord,
  compileAccessTrace,
  PAGE_SIZE,
  type Process,
  type ReplayWorkload,
  type UserThread,
  verifyAccess,
} from '@pagemig/core';
import { CliError, ExitCode } from '../exit_codes.js';
import { PATTERN_PIECE, PatternStream } from '../scenarios/pattern.js';
import type { HotSetMove } from './sampler.js';

/** The workload of a tiering run: a generator of core's access workloads, or a recorded trace. */
export type TierWorkloadSpec = {
  bytes: number;
  seed: number;
  durationMs: number;
  writeShare: number;
} & (
  | {
      kind: 'access';
      pattern: AccessWorkload['pattern'];
      zipfS?: number;
      hotBytes?: number;
      moveEveryMs?: number;
    }
  | { kind: 'replay'; trace: AccessTrace; file: string; format: 'damo' | 'csv' }
);

export interface TierWorkload {
  thread: UserThread<AccessResult>;
  /**
   * Waits for the thread, then checks every byte of the region: the words the workload wrote hold
   * their last write, every other word the bytes written before it started. Returns the hot-set
   * moves (ms since `epoch0`), the thread's run time and what the workload did.
   */
  finish(): Promise<{ moves: HotSetMove[]; seconds: number; summary: Record<string, unknown> }>;
}

function verifyError(what: string): CliError {
  return new CliError(`verification failed: ${what}`, ExitCode.FAILURE, 'ERR_VERIFY');
}

/** Fills the region with the seed's byte stream: this is its first touch. */
export function fillRegion(p: Process, addr: number, bytes: number, seed: number): void {
  const stream = new PatternStream(seed);
  const buf = new Uint8Array(Math.min(PATTERN_PIECE, bytes));
  for (let off = 0; off < bytes; off += buf.length) p.write(addr + off, stream.next(buf.length, buf));
}

/** Compares the region with the seed's stream, word 0 of each written page patched to its last write. */
function verifyRegion(p: Process, addr: number, bytes: number, seed: number, r: AccessResult): void {
  const stream = new PatternStream(seed);
  const piece = Math.min(PATTERN_PIECE, bytes);
  const want = new Uint8Array(piece);
  const words = new Int32Array(want.buffer);
  for (let off = 0; off < bytes; off += piece) {
    stream.next(piece, want);
    const first = off / PAGE_SIZE;
    for (let i = 0; i < piece / PAGE_SIZE; i++) {
      const gen = r.generations[first + i]!;
      if (gen) words[i * (PAGE_SIZE / 4)] = accessWord(first + i, gen);
    }
    const got = p.read(addr + off, piece);
    if (Buffer.compare(got, want) !== 0) {
      let b = 0;
      while (got[b] === want[b]) b++;
      throw verifyError(`the byte at offset ${off + b} of the region is ${got[b]}, expected ${want[b]}`);
    }
  }
}

/**
 * Starts the workload's user thread on node 0 over the region at `addr`; hot-set moves are given
 * in ms since `epoch0` (ms since the epoch, as `epochNow()`).
 */
export function startTierWorkload(
  p: Process,
  addr: number,
  spec: TierWorkloadSpec,
  epoch0: number,
): TierWorkload {
  const common = {
    addr,
    bytes: spec.bytes,
    seed: spec.seed,
    durationMs: spec.durationMs,
    writeShare: spec.writeShare,
  };
  const workload: AccessWorkload | ReplayWorkload =
    spec.kind === 'replay'
      ? { ...common, kind: 'replay', trace: compileAccessTrace(spec.trace, spec.bytes), loop: true }
      : {
          ...common,
          kind: 'access',
          pattern: spec.pattern,
          ...(spec.zipfS !== undefined ? { zipfS: spec.zipfS } : {}),
          ...(spec.hotBytes !== undefined ? { hotBytes: spec.hotBytes } : {}),
          ...(spec.moveEveryMs !== undefined ? { moveEveryMs: spec.moveEveryMs } : {}),
        };
  const thread = p.spawnThread<AccessResult>({ workload, node: 0 });
  return {
    thread,
    async finish() {
      const r = await thread.join();
      if (r.errors)
        throw verifyError(
          `the workload saw ${r.errors} lost writes (first: ${JSON.stringify(r.firstErrors[0])})`,
        );
      const check = verifyAccess((a, n) => p.read(a, n), workload, [r]);
      if (check.mismatches)
        throw verifyError(`${check.mismatches} of ${check.checked} written pages lost their last write`);
      verifyRegion(p, addr, spec.bytes, spec.seed, r);
      const moves = r.hotRanges.map((h) => ({
        atMs: h.epochMs - epoch0,
        firstPage: (h.addr - addr) / PAGE_SIZE,
        pages: h.bytes / PAGE_SIZE,
      }));
      return {
        moves,
        seconds: r.seconds,
        summary: {
          pattern: r.pattern,
          ops: r.ops,
          reads: r.reads,
          writes: r.writes,
          passes: r.passes,
          skipped: r.skipped,
          seconds: r.seconds,
          faults: r.faults,
          migrationWaits: r.migrationWaits,
          pagesWritten: check.checked,
        },
      };
    },
  };
}
