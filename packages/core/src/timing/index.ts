/** Modeled time: hardware profiles, the timing model, calibration and the series' published data. */
export { assumptionsOf } from './assumptions.js';
export {
  type CellComparison,
  type Comparison,
  compareToMeasurements,
  predictCase,
  shapeOf,
} from './benchmark.js';
export {
  calibrate,
  type FitOptions,
  type FitResult,
  type FittedParameter,
  NOISE_FLOOR,
} from './calibrate.js';
export {
  type ClockKind,
  type ClockOptions,
  type ModeledRun,
  type ProfileRef,
  resolveProfile,
} from './clock.js';
export { computeFindings, type Findings } from './findings.js';
export type { FolioGroup } from './kernel_overhead.js';
export { MEASUREMENTS_SCHEMA_VERSION, measurementsSchema, parseMeasurementsJson } from './measurements.js';
export {
  type DmaEngineProfile,
  type HardwareProfile,
  listProfiles,
  loadProfile,
  type MemoryPerf,
  PROFILE_SCHEMA_VERSION,
  parseProfile,
  parseProfileJson,
  profileSchema,
} from './profile.js';
export {
  type BenchCase,
  type Measurement,
  type PublishedTable,
  publishedData,
  zen3CopyShare,
  zen3Published,
  zen3Tables,
} from './published.js';
export {
  type Copier,
  type ModeledPhases,
  type ModeledTime,
  modeledRunTime,
  type RunShape,
} from './run_time.js';
export type { Placement } from './topology.js';
