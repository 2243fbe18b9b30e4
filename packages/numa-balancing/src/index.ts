export {
  attachNumaBalancing,
  NUMA_COUNTERS,
  NumaBalancing,
  type NumaBalancingOptions,
  type NumaBalancingStats,
} from './numa_balancing.js';
export {
  mmRss,
  type ScanKnobs,
  type TaskScan,
  taskNumaPlacement,
  taskNumaWork,
  taskScanMax,
  taskScanMin,
  updateTaskScanPeriod,
} from './task_numa_work.js';

/** This package's version. */
export const NUMA_BALANCING_VERSION: string = __PACKAGE_VERSION__;
