import { type Machine, type MigrationPhases, modeledAccessTime, PAGE_SIZE } from '@pagemig/core';
import { attachKswapd } from '@pagemig/kswapd';
import { attachNumaBalancing } from '@pagemig/numa-balancing';
import type { Drivers } from '../drivers.js';
import { openMachine, wireMigrators } from '../machine.js';
import { TIER_REASONS, type TierMigrators, type TierReason } from './migrators.js';
import { epochNow, hotSetArrivals, type TierCounter, type TierSample, TierSampler } from './sampler.js';
import { fillRegion, startTierWorkload, type TierWorkloadSpec } from './workload.js';

/** What one `pagemig tier` run is: the machine, the workload and the daemons' pace. */
export interface TierRunSpec {
  dramBytes: number;
  cxlBytes: number;
  workload: TierWorkloadSpec;
  /** How often the placement is sampled (ms). */
  sampleMs: number;
  /** numa-balancing's scanner for the run. */
  scan: { scanDelayMs: number; scanPeriodMs: number; scanSizeMb: number };
}

/** One run's outcome, as the JSON result carries it. */
export interface TierRun {
  migrator: { label: string; routes: Record<string, string> };
  /** The workload's wall time (ms), as its thread measured it. */
  wallMs: number;
  /** Region pages on [DRAM, CXL] before the workload started and after it ended. */
  placement: { before: [number, number]; after: [number, number] };
  counters: Record<TierCounter, number>;
  pagesPromoted: number;
  pagesDemoted: number;
  /** Each hot-set move and the time until 90% of the new hot set was on DRAM (null: not in time). */
  moves: { atMs: number; firstPage: number; pages: number; arrivedMs: number | null }[];
  /**
   * Promotions' engine: its phases summed over the misplaced migrations; `cpuSeconds` is the
   * kernel (main) thread's schedstat CPU while misplaced migrations were in flight (nb.stats()),
   * `computeSeconds` the compute phases alone; `cpuPerPageSeconds` = cpuSeconds per promoted page.
   */
  promotion: {
    migrator: string | null;
    migrations: number;
    phases: MigrationPhases;
    engineSeconds: number;
    cpuSeconds: number;
    computeSeconds: number;
    cpuPerPageSeconds: number | null;
  };
  /** kswapd's side: wakes, direct reclaims, why reclaim failed (if it did), its demotions' engine. */
  reclaim: {
    wakes: number;
    directReclaims: number;
    reclaimFailed: string | null;
    demotion: { migrator: string | null; runs: number; engineSeconds: number; cpuSeconds: number };
  };
  /** The user thread's accesses priced by tier (timing profile dram-cxl), next to wall time. */
  modeled: ReturnType<typeof modeledAccessTime> & { accesses: number; nsPerAccess: number };
  workload: Record<string, unknown>;
  samples: TierSample[];
  verified: true;
  invariants: true;
}

/** The engine's time in its phases (seconds), as `pagemig numa` reports it. */
const engineSeconds = (ph: MigrationPhases) => ph.unmap + ph.flush + ph.batchCopy + ph.fallbackCopy + ph.move;

/** Sleeps `ms`, or less if `until` settles first (the timer is cleared either way). */
async function sleepUnless(ms: number, until: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([new Promise((r) => (timer = setTimeout(r, ms))), until]);
  clearTimeout(timer);
}

/**
 * Routes each tiering reason to its migrator through the registry, as the other commands do;
 * returns the migrator names and whether each reason's copies leave the migrating thread.
 */
async function wire(
  m: Machine,
  drivers: Drivers,
  mig: TierMigrators,
): Promise<{ routes: Record<TierReason, string>; offloadsCpu: Record<TierReason, boolean> }> {
  const routes = Object.fromEntries(
    TIER_REASONS.filter((r) => mig.routes[r] !== 'none').map((r) => [r, { id: mig.routes[r] }]),
  );
  const wired = await wireMigrators(m, drivers, { routes }, { id: 'none', options: {} });
  const per = <T>(f: (r: TierReason) => T) =>
    Object.fromEntries(TIER_REASONS.map((r) => [r, f(r)])) as Record<TierReason, T>;
  return {
    routes: per((r) => wired.routes[r] ?? 'none'),
    offloadsCpu: per((r) => wired.migrators[r]?.capabilities.offloadsCpu ?? false),
  };
}

/**
 * The engine's compute phases (seconds): unmap (allocation included), the CPU copies and move.
 * The TLB flush awaits the user threads' acknowledgements, and a batch copy by a migrator that
 * offloads the CPU awaits its workers or device: waits, left out (a driver's polling is not).
 */
const engineComputeSeconds = (ph: MigrationPhases, offloadsCpu: boolean) =>
  ph.unmap + ph.fallbackCopy + ph.move + (offloadsCpu ? 0 : ph.batchCopy);

/**
 * One tiering run: DRAM node 0 (the CPUs) and a CPU-less CXL node 1; kswapd with demotion and
 * NUMA balancing in mode 2 (NUMA_BALANCING_MEMORY_TIERING) with the migrators routed per reason; a
 * process on node 0 first touches a region larger than DRAM, then its thread runs the workload
 * while the placement is sampled. Ends with the workload's verify and the model's invariants.
 */
export async function runTier(drivers: Drivers, spec: TierRunSpec, mig: TierMigrators): Promise<TierRun> {
  const m = await openMachine({
    nodes: [
      { memory: spec.dramBytes, tier: 'dram' },
      { memory: spec.cxlBytes, tier: 'cxl', cpus: 0 },
    ],
  });
  const ks = attachKswapd(m, { demotion: true });
  const nb = attachNumaBalancing(m, spec.scan);
  try {
    const { routes, offloadsCpu } = await wire(m, drivers, mig);
    const bytes = spec.workload.bytes;
    const p = m.spawn({ comm: 'tier', node: 0 });
    const addr = p.mmap(bytes, { thp: 'never' });
    // First touch: DRAM fills, kswapd demotes what is cold, the rest falls back to CXL.
    fillRegion(p, addr, bytes, spec.workload.seed);
    await ks.settled();
    const sampler = new TierSampler(m, p, addr, bytes / PAGE_SIZE);
    const before = await sampler.placement();
    m.sysctl.write('kernel.numa_balancing', '2');
    sampler.epoch0 = epochNow();
    const w = startTierWorkload(p, addr, spec.workload, sampler.epoch0);
    await sampler.sample();
    // The last sample comes when the workload ends, not up to --sample-ms later.
    const exited = w.thread.done.then(
      () => undefined,
      () => undefined,
    );
    while (w.thread.state !== 'exited') {
      await sleepUnless(spec.sampleMs, exited);
      await sampler.sample();
    }
    await nb.settled();
    await ks.settled();
    const done = await w.finish();
    const after = await sampler.placement();
    const counters = sampler.counters();
    const st = nb.stats();
    const kst = ks.stats();
    await nb.stop();
    await ks.stop();
    m.checkInvariants();
    const modeled = modeledAccessTime(m, w.thread.stats());
    const accesses = Object.values(modeled.byTier).reduce((s, t) => s + t.accesses, 0);
    const ph = st.phases;
    const arrivals = hotSetArrivals(done.moves, sampler.samples, sampler.nodes);
    return {
      migrator: { label: mig.label, routes },
      wallMs: done.seconds * 1000,
      placement: { before, after },
      counters,
      pagesPromoted: counters.pgpromote_success,
      pagesDemoted: counters.pgdemote_kswapd + counters.pgdemote_direct,
      moves: done.moves.map((mv, i) => ({ ...mv, arrivedMs: arrivals[i]! })),
      promotion: {
        migrator: st.migrator,
        migrations: st.migrations,
        phases: ph,
        engineSeconds: engineSeconds(ph),
        cpuSeconds: st.cpuSeconds,
        computeSeconds: engineComputeSeconds(ph, offloadsCpu.numa_misplaced),
        cpuPerPageSeconds: counters.pgpromote_success > 0 ? st.cpuSeconds / counters.pgpromote_success : null,
      },
      reclaim: {
        wakes: kst.wakes,
        directReclaims: kst.directReclaims,
        reclaimFailed: kst.reclaimFailed,
        demotion: {
          migrator: kst.demotion.migrator,
          runs: kst.demotion.runs,
          engineSeconds: engineSeconds(kst.demotion.phases),
          cpuSeconds: kst.demotion.cpuSeconds,
        },
      },
      modeled: { ...modeled, accesses, nsPerAccess: accesses > 0 ? modeled.totalNs / accesses : 0 },
      workload: done.summary,
      samples: sampler.samples,
      verified: true,
      invariants: true,
    };
  } finally {
    await nb.stop();
    await ks.stop();
    await m.close();
  }
}
