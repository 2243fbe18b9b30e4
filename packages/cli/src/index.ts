export {
  BENCH_SCHEMA_VERSION,
  type BenchDocument,
  type CompactionRow,
  type CopyShareRow,
  type SweepRow,
} from './bench/schema.js';
export { configSchema, defineConfig, type PagemigConfig } from './config.js';
export { ExitCode, type ExitCodeValue } from './exit_codes.js';
export { type Io, JSON_SCHEMA_VERSION } from './io.js';
export { createProgram, type ProgramOptions, runCli } from './program.js';
export { renderReport } from './report/html.js';
