/**
 * The worker module, resolved next to the built package's entry (dist/copy_worker.js). Pass it
 * as `filename` when you build a pool to inject, or let `run` name it (this migrator always does).
 */
export const workerUrl: string = new URL('./copy_worker.js', import.meta.url).href;
