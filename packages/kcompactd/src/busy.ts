import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Machine, PAGE_SIZE, PagemigError, type UserThread } from '@pagemig/core';
import type { BusyWorkerResult } from './busy_worker.js';
import type { CompactRun, Kcompactd } from './kcompactd.js';

export type { BusyWorkerData, BusyWorkerResult } from './busy_worker.js';

export interface BusyScenarioOptions {
  /** Node to fragment and compact. Default 0. */
  nid?: number;
  /** User threads running the workload. Default 1. */
  threads?: number;
  /** Share of the node's free pages mapped before every other chunk is unmapped. Default 0.96. */
  fill?: number;
  /** Pages per chunk of the interleaving. Default 16 (64 KiB). */
  chunkPages?: number;
  /** How long the workload runs alone first, to measure its undisturbed throughput. Default 300 ms. */
  baselineMs?: number;
  /** Extra 32-bit loads per page a thread makes on each visit. Default 16. */
  readWords?: number;
  /** vm.compaction_proactiveness for the pass (written, which wakes kcompactd). Default 100. */
  proactiveness?: number;
}

export interface BusyScenarioResult {
  /** Pages of the workload region (half of the filled memory, interleaved with what was freed). */
  workloadPages: number;
  threads: number;
  /** Workload page visits per second with nothing else running. */
  baselinePagesPerSec: number;
  /** Workload page visits per second while kcompactd compacted the node. */
  duringPagesPerSec: number;
  /** during / baseline. */
  ratio: number;
  /** The proactive compaction kcompactd ran meanwhile. */
  compaction: CompactRun;
  /** What each thread saw: visits, lost writes, sleeps on migration entries, shootdowns. */
  workload: BusyWorkerResult[];
  /** Pages whose bytes were checked after the run (every page of the region). */
  pagesVerified: number;
}

let workerUrl: URL | undefined;
/** dist/busy-worker.js next to the bundle, or (running from src under a test runner) ../dist. */
export function busyWorkerUrl(): URL {
  if (workerUrl) return workerUrl;
  for (const rel of ['./busy-worker.js', '../dist/busy-worker.js']) {
    const u = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(u))) return (workerUrl = u);
  }
  throw new PagemigError(
    'ERR_NO_WORKER_BUILD',
    'the busy-system workload runs the built dist/busy-worker.js of @pagemig/kcompactd; build the package first (pnpm build)',
  );
}

/** The read-only content of page `i` of the workload region (words 16..1023; 0..15 are the threads'). */
function fillPage(words: Int32Array, at: number, i: number): void {
  const v = Math.imul(i + 1, 0x9e3779b1);
  words.fill(v, at + 16, at + 1024);
  words[at + 16] = i;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The busy-system scenario: user threads run a memory-touching workload over a region that is
 * spread, 64 KiB by 64 KiB, across a fragmented node, while kcompactd compacts that node (a
 * proactive pass, MIGRATE_SYNC_LIGHT, migrating the very pages the threads touch). Reports the
 * workload's throughput alone and during compaction, the compaction itself (pages migrated,
 * engine CPU, time waiting on the routed migrator), and checks every byte of the region and that
 * no thread lost a write. Register the migrator to compare (for `compaction`) before calling it.
 */
export async function runBusyScenario(
  m: Machine,
  kd: Kcompactd,
  opts: BusyScenarioOptions = {},
): Promise<BusyScenarioResult> {
  const nid = opts.nid ?? 0;
  const nThreads = opts.threads ?? 1;
  const chunk = opts.chunkPages ?? 16;
  const fill = opts.fill ?? 0.96;
  if (!Number.isInteger(nThreads) || nThreads < 1 || nThreads > 16)
    throw new PagemigError('ERR_INVALID_ARGUMENT', `threads ${nThreads} must be an integer in 1..16`);
  const url = busyWorkerUrl();
  const k = m.kernel;
  const p = m.spawn({ comm: 'busy', node: nid, memsAllowed: [nid] });
  const threads: UserThread<BusyWorkerResult>[] = [];
  const prevProactiveness = k.vm.compaction_proactiveness;
  try {
    // Map the workload region and a ballast region, fault them in chunk by chunk alternately,
    // then drop the ballast: the region is half of the memory, in every other 64 KiB.
    const target = Math.floor((m.freePages(nid) * fill) / (2 * chunk)) * chunk;
    const bytes = target * PAGE_SIZE;
    const work = p.mmap(bytes, { node: nid, thp: 'never' });
    const ballast = p.mmap(bytes, { node: nid, thp: 'never' });
    const buf = new Uint8Array(chunk * PAGE_SIZE);
    const words = new Int32Array(buf.buffer);
    for (let c = 0; c < target; c += chunk) {
      for (let j = 0; j < chunk; j++) fillPage(words, j * 1024, c + j);
      p.write(work + c * PAGE_SIZE, buf);
      p.touch(ballast + c * PAGE_SIZE, chunk * PAGE_SIZE);
    }
    p.munmap(ballast, bytes);

    const counter = new Int32Array(new SharedArrayBuffer(4 * nThreads));
    for (let i = 0; i < nThreads; i++) {
      threads.push(
        p.spawnThread<BusyWorkerResult>({
          module: url,
          data: {
            addr: work,
            pages: target,
            counter: counter.buffer,
            slot: i,
            readWords: opts.readWords ?? 16,
          },
        }),
      );
    }
    const total = () => {
      let n = 0;
      for (let i = 0; i < nThreads; i++) n += Atomics.load(counter, i);
      return n;
    };
    // Wait until every thread runs its loop.
    const deadline = performance.now() + 10_000;
    while (counter.some((v) => v === 0)) {
      if (performance.now() > deadline)
        throw new PagemigError('ERR_BUSY_SCENARIO', 'busy scenario: the user threads did not start');
      await sleep(5);
    }
    const b0 = total();
    const tb = performance.now();
    await sleep(opts.baselineMs ?? 300);
    const baselinePagesPerSec = (total() - b0) / ((performance.now() - tb) / 1000);

    // kcompactd's proactive pass over the node, triggered the way an administrator would.
    let c0 = 0;
    let t0 = 0;
    const run = new Promise<{ run: CompactRun; visits: number; seconds: number }>((resolve) => {
      const off = kd.onRun((r) => {
        if (r.trigger !== 'proactive' || r.nid !== nid) return;
        off();
        resolve({ run: r, visits: total() - c0, seconds: (performance.now() - t0) / 1000 });
      });
    });
    c0 = total();
    t0 = performance.now();
    const err = m.sysctl.write('vm.compaction_proactiveness', opts.proactiveness ?? 100);
    if (err)
      throw new PagemigError(
        'ERR_INVALID_ARGUMENT',
        `proactiveness ${opts.proactiveness} was refused (errno ${err})`,
        {
          errno: err,
        },
      );
    const during = await run;

    for (const t of threads) t.stop();
    const workload = await Promise.all(threads.map((t) => t.join()));
    threads.length = 0;

    // Every page still holds its read-only words, wherever it was moved.
    const got = new Int32Array(p.read(work, bytes).buffer);
    const want = new Int32Array(1024);
    for (let i = 0; i < target; i++) {
      fillPage(want, 0, i);
      for (let w = 16; w < 1024; w++) {
        if (got[i * 1024 + w] !== want[w])
          throw new PagemigError(
            'ERR_DATA_LOST',
            `busy scenario: page ${i} of the workload region lost its bytes (word ${w})`,
          );
      }
    }
    const lost = workload.reduce((s, r) => s + r.errors, 0);
    if (lost)
      throw new PagemigError('ERR_DATA_LOST', `busy scenario: the user threads saw ${lost} lost writes`);
    return {
      workloadPages: target,
      threads: nThreads,
      baselinePagesPerSec,
      duringPagesPerSec: during.visits / during.seconds,
      ratio: during.visits / during.seconds / baselinePagesPerSec,
      compaction: during.run,
      workload,
      pagesVerified: target,
    };
  } finally {
    for (const t of threads) t.stop();
    await Promise.allSettled(threads.map((t) => t.join()));
    k.vm.compaction_proactiveness = prevProactiveness;
    p.exit();
  }
}
