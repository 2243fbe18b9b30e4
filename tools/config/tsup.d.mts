import type { Options } from 'tsup';
export function libraryConfig(opts: { entry?: Record<string, string>; dir: string }): Options;
