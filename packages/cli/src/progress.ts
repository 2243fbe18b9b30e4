import cliProgress from 'cli-progress';
import type { Io } from './io.js';

export interface Progress {
  /** One step done; `label` names the next. */
  tick(label?: string): void;
  stop(): void;
}

const silent: Progress = { tick() {}, stop() {} };

/** Bars only for a person watching: stderr is a TTY, not under CI, not with --json. */
export function progressEnabled(io: Io, json: boolean): boolean {
  return !json && io.stderr.isTTY === true && !io.env.CI;
}

/** A bar on stderr over `total` steps (cursor restored on SIGINT/SIGTERM), or nothing. */
export function createProgress(io: Io, json: boolean, total: number, title: string): Progress {
  if (!progressEnabled(io, json) || total <= 0) return silent;
  const bar = new cliProgress.SingleBar(
    {
      stream: io.stderr as NodeJS.WritableStream,
      format: `${title} [{bar}] {value}/{total} {step}`,
      hideCursor: true,
      clearOnComplete: true,
      gracefulExit: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { step: '' });
  return {
    tick(label = '') {
      bar.increment(1, { step: label });
    },
    stop() {
      bar.stop();
    },
  };
}
