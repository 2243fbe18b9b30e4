// SDXI offload benchmark (issue 6): PTDMA's table, with sdxi beside it in the same run. A region
// (256 MiB by default) is migrated between two nodes in 4 KiB, 64 KiB and 2 MiB folios with sdxi
// on 1, 2 and 4 contexts and ptdma on 1, 2 and 4 engines, next to cpu-serial and this run's raw
// copy of the same bytes in the same pieces, at the engine's default batch and at one batch per
// migration: throughput, and the engine thread's CPU time per GiB for the whole migration and for
// the copy phase alone. How it measures: tools/bench/src/dma-offload-bench.mjs.
//
//   pnpm --filter @pagemig/migrator-sdxi bench        (node --expose-gc bench/run.mjs)
//   PAGEMIG_BENCH_REGION_MIB=256 region size, PAGEMIG_BENCH_REPS=5 timed migrations per round and
//   PAGEMIG_BENCH_ROUNDS=3 rounds.

import { createMachine } from '@pagemig/core';
import { createMigrator as cpuSerial } from '@pagemig/migrator-cpu-serial';
import { createMigrator as ptdma } from '@pagemig/migrator-ptdma';
import { dmaOffloadBench } from '@pagemig-tools/bench/dma-offload';
import { createMigrator as sdxi } from '../dist/index.js';

await dmaOffloadBench({
  name: 'migrator-sdxi',
  title: 'sdxi and ptdma',
  createMachine,
  cpuSerial,
  offloads: [
    ...[1, 2, 4].map((n) => ({ label: `sdxi ${n}cxt`, make: () => sdxi({ channels: n }) })),
    ...[1, 2, 4].map((n) => ({ label: `ptdma ${n}ch`, make: () => ptdma({ channels: n }) })),
  ],
  // One SDXI function (null outside init..dispose) for sdxi, ptdma's engines for ptdma.
  deviceSeconds: (mig) => {
    if (mig.function !== undefined) return mig.function?.deviceCounters().copySeconds ?? 0;
    return mig.devices?.reduce((s, d) => s + d.deviceCounters().copySeconds, 0) ?? 0;
  },
});
