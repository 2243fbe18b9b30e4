import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageJson {
  name?: string;
  version?: string;
  main?: string;
  exports?: unknown;
}

/** Where a package was found. */
export interface ResolvedPackage {
  /** The file to import; null: import the bare specifier (Node's own ESM resolution). */
  entry: string | null;
  /** The package's directory, when found. */
  dir: string | null;
  packageJson: PackageJson | null;
  /** Set when the package is there but its entry point cannot be resolved (not built, bad exports). */
  broken?: string;
}

/** The registry's own directory: the fallback base, i.e. what a plain `import(pkg)` here would see. */
const selfDir = path.dirname(fileURLToPath(import.meta.url));

function isBare(specifier: string): boolean {
  return !specifier.startsWith('.') && !path.isAbsolute(specifier) && !specifier.startsWith('file:');
}

function readJson(file: string): PackageJson | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null ? (v as PackageJson) : null;
  } catch {
    return null;
  }
}

/** `<dir>/node_modules/<pkg>` for the nearest dir at or above `base` that has it (Node's lookup). */
function findPackageDir(base: string, pkg: string): string | null {
  let dir = base;
  for (;;) {
    const candidate = path.join(dir, 'node_modules', pkg);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** The package.json named `pkg` at or above the resolved entry file. */
function findOwnPackageJson(entry: string, pkg: string): { dir: string; json: PackageJson } | null {
  if (!isBare(pkg)) return null;
  let dir = path.dirname(entry);
  for (;;) {
    const json = readJson(path.join(dir, 'package.json'));
    if (json?.name === pkg) return { dir, json };
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

const CONDITIONS = ['node', 'import', 'default'];

function exportsTarget(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = exportsTarget(v);
      if (t) return t;
    }
    return null;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      if (!CONDITIONS.includes(key)) continue;
      const t = exportsTarget(v);
      if (t) return t;
    }
  }
  return null;
}

/**
 * The ESM entry of a package whose `exports` only has `import`-side conditions (which
 * `require.resolve` refuses): `exports` ("." or conditions) with node/import/default, then `main`.
 */
function esmEntry(dir: string, json: PackageJson): string | null {
  let exp = json.exports;
  if (typeof exp === 'object' && exp !== null && !Array.isArray(exp) && '.' in exp) {
    exp = (exp as Record<string, unknown>)['.'];
  }
  const target = exp === undefined ? (json.main ?? 'index.js') : exportsTarget(exp);
  if (!target) return null;
  const file = path.resolve(dir, target);
  return existsSync(file) ? file : null;
}

function resolveFrom(base: string, pkg: string): ResolvedPackage | null {
  const require = createRequire(path.join(base, 'noop.js'));
  try {
    const entry = require.resolve(pkg);
    const own = findOwnPackageJson(entry, pkg);
    return { entry, dir: own?.dir ?? null, packageJson: own?.json ?? null };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const dir = isBare(pkg) ? findPackageDir(base, pkg) : null;
    const json = dir ? readJson(path.join(dir, 'package.json')) : null;
    if (code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' && dir && json) {
      // ESM-only exports (an `import` condition and no `default`): find the entry ourselves, or let
      // a plain import() resolve it.
      return { entry: esmEntry(dir, json), dir, packageJson: json };
    }
    if (dir) return { entry: null, dir, packageJson: json, broken: (e as Error).message };
    if (code === 'MODULE_NOT_FOUND') return null;
    return { entry: null, dir: null, packageJson: null, broken: (e as Error).message };
  }
}

/**
 * Resolves a package the way the application would: from `root` first (a `createRequire` anchored
 * there, no `import.meta.resolve`, so it works on Node 20), then from the registry's own location,
 * which is what a plain `import(pkg)` inside the registry sees (drivers are its optional peers).
 * Returns null when the package is not installed.
 */
export function resolvePackage(pkg: string, root: string): ResolvedPackage | null {
  return resolveFrom(root, pkg) ?? (isBare(pkg) ? resolveFrom(selfDir, pkg) : null);
}
