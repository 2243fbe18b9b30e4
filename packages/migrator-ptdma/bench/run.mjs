// PTDMA offload benchmark (issue 5): 256 MiB migrated between two nodes in 4 KiB, 64 KiB and 2 MiB
// folios with ptdma on 1, 2 and 4 channels, next to cpu-serial, cpu-multithreaded and this run's
// raw copy of the same bytes in the same pieces, at the engine's default batch and at one batch per
// migration: throughput, and the engine thread's CPU time per GiB for the whole migration and for
// the copy phase alone. Then a spin sweep: how long an idle device thread spins before it sleeps,
// and the driver on the engine thread; and the targets for ptdma 2ch. How it measures:
// tools/bench/src/dma-offload-bench.mjs.
//
//   pnpm --filter @pagemig/migrator-ptdma bench        (node --expose-gc bench/run.mjs)
//   PAGEMIG_BENCH_REGION_MIB=256 region size, PAGEMIG_BENCH_REPS=5 timed migrations per round and
//   PAGEMIG_BENCH_ROUNDS=3 rounds.

import { createMachine } from '@pagemig/core';
import { createMigrator as cpuSerial } from '@pagemig/migrator-cpu-serial';
import { dmaOffloadBench } from '@pagemig-tools/bench/dma-offload';
import { createMigrator as ptdma } from '../dist/index.js';

await dmaOffloadBench({
  name: 'migrator-ptdma',
  title: 'ptdma',
  createMachine,
  cpuSerial,
  cpuMultithreaded: () => import('@pagemig/migrator-cpu-multithreaded'),
  offloads: [1, 2, 4].map((n) => ({ label: `ptdma ${n}ch`, make: () => ptdma({ channels: n }) })),
  deviceSeconds: (mig) => mig.devices?.reduce((s, d) => s + d.deviceCounters().copySeconds, 0) ?? 0,
  engineDetail: true,
  spin: {
    label: 'ptdma 2ch',
    make: (deviceSpinUs, driverSpinUs) => ptdma({ channels: 2, deviceSpinUs, driverSpinUs }),
  },
  target: 'ptdma 2ch',
});
