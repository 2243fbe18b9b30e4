export {
  BENCH_SCHEMA_VERSION,
  type BenchDocument,
  type CompactionRow,
  type CopyShareRow,
  type SweepModel,
  type SweepRow,
} from './bench/schema.js';
export { configSchema, defineConfig, type PagemigConfig } from './config.js';
export { ExitCode, type ExitCodeValue } from './exit_codes.js';
export { type Io, JSON_SCHEMA_VERSION } from './io.js';
export type { ModeledBenchDocument } from './modeled/document.js';
export { createProgram, type ProgramOptions, runCli } from './program.js';
export { renderReport } from './report/html.js';
export type { TierRun } from './tier/run.js';
export type { TierSample } from './tier/sampler.js';
export type { TierDocument } from './tier/text.js';
