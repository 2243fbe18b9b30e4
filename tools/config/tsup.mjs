// Shared tsup preset: ESM only, types, sourcemaps. Anything listed in a package's dependencies or
// peerDependencies stays external (so piscina and @pagemig/core are never bundled).
import { readFileSync } from 'node:fs';

/** @param {{ entry?: Record<string, string>, dir: string }} opts */
export function libraryConfig({ entry = { index: 'src/index.ts' }, dir }) {
  const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${dir}/`), 'utf8'));
  return {
    entry,
    format: ['esm'],
    target: 'node20',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: true,
    treeshake: true,
    define: { __PACKAGE_VERSION__: JSON.stringify(pkg.version) },
  };
}
