// Shared tsup preset: ESM only, types, sourcemaps. Anything listed in a package's dependencies or
// peerDependencies stays external (so piscina and @pagemig/core are never bundled).
import { readFileSync } from 'node:fs';

/** @param {{ entry?: Record<string, string>, dir: string }} opts */
export function libraryConfig({ entry = { index: 'src/index.ts' }, dir }) {
  const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${dir}/`), 'utf8'));
  // The core a package is built and tested against: what its migrators declare in engines.core.
  const core = JSON.parse(readFileSync(new URL('../../packages/core/package.json', import.meta.url), 'utf8'));
  const coreRange = `^${core.version}`;
  return {
    entry,
    format: ['esm'],
    target: 'node20',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: true,
    treeshake: true,
    define: { __PACKAGE_VERSION__: JSON.stringify(pkg.version), __CORE_RANGE__: JSON.stringify(coreRange) },
  };
}
