export interface DmaOffloadBenchOptions {
  /** Results go to bench-results/<name>.json. */
  name: string;
  /** What the table sets against CPU copy: 'ptdma', 'sdxi and ptdma'. */
  title: string;
  /** @pagemig/core's (the harness does not depend on core). */
  createMachine(opts: { nodes: { memory: string }[]; migrationBatchPages?: number }): Promise<unknown>;
  /** createMigrator of @pagemig/migrator-cpu-serial: the 'cpu-serial' row. */
  cpuSerial: () => object;
  /** `() => import('@pagemig/migrator-cpu-multithreaded')`: a 'cpu-multithreaded' row when it loads. */
  cpuMultithreaded?: () => Promise<{ createMigrator: () => object }>;
  /** The offloading migrators, in row order. */
  offloads: { label: string; make: () => object }[];
  /** Seconds a migrator's emulated devices spent moving bytes (0 for one without devices). */
  deviceSeconds(migrator: object): number;
  /** Rows also get the engine's own cpuSeconds, its batch-copy phase and folio counts. */
  engineDetail?: boolean;
  /** Then sweep the idle spins of the device threads and of the driver of this migrator. */
  spin?: { label: string; make: (deviceSpinUs: number, driverSpinUs: number) => object };
  /**
   * Then check this offload at 2 MiB folios against its issue's targets: ≥ 0.8x the throughput of
   * the fastest CPU migrator, ≤ 10% of cpu-serial's copy-phase engine CPU.
   */
  target?: string;
}

/**
 * The dmaengine drivers' offload benchmark: cpu-serial (and cpu-multithreaded), the offloads and a
 * mark-only calibration over 4 KiB, 64 KiB and 2 MiB folios at two batch sizes; prints the tables
 * and writes bench-results/<name>.json.
 */
export declare function dmaOffloadBench(opts: DmaOffloadBenchOptions): Promise<void>;
