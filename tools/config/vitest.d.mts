import type { ViteUserConfig } from 'vitest/config';
export function packageTestConfig(opts: { name: string; dir: string; timeout?: number }): ViteUserConfig;
