// Every publishable package (packages/*/package.json without "private": true, found at run time)
// is packed with `pnpm pack` — the tarball `pnpm publish` would upload, with workspace: and catalog:
// ranges resolved — and that tarball must pass publint (strict: warnings fail too) and
// arethetypeswrong with the esm-only profile.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../../..');
const attwBin = join(import.meta.dirname, '../node_modules/.bin/attw');

interface Pkg {
  dir: string;
  name: string;
  json: Record<string, unknown>;
}

function publishablePackages(): Pkg[] {
  const base = join(root, 'packages');
  return readdirSync(base)
    .map((d) => join(base, d))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      return { dir, name: String(json.name), json };
    })
    .filter((p) => p.json.private !== true);
}

const packages = publishablePackages();
const out = mkdtempSync(join(tmpdir(), 'pagemig-hygiene-'));
const tarballs = new Map<string, string>();
const packErrors = new Map<string, string>();

beforeAll(async () => {
  // Two at a time: pnpm pack is mostly I/O, and the machine has two cores.
  const queue = [...packages];
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      if (!existsSync(join(p.dir, 'dist'))) continue; // reported by its test below
      try {
        const { stdout } = await run('pnpm', ['pack', '--pack-destination', out], { cwd: p.dir });
        tarballs.set(p.name, stdout.trim().split('\n').at(-1)!.trim());
      } catch (e) {
        packErrors.set(p.name, String((e as { stderr?: string }).stderr || e));
      }
    }
  };
  await Promise.all([worker(), worker()]);
}, 120_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

it('finds the publishable packages', () => {
  expect(packages.map((p) => p.name)).toContain('@pagemig/core');
});

describe.each(packages.map((p) => [p.name, p] as const))('%s', (name, pkg) => {
  it('is built and packed', () => {
    expect(existsSync(join(pkg.dir, 'dist')), `${name} has no dist/: run pnpm build first`).toBe(true);
    expect(packErrors.get(name)).toBeUndefined();
    expect(tarballs.get(name)).toMatch(/\.tgz$/);
  });

  const tarball = () => {
    const file = tarballs.get(name);
    if (!file) throw new Error(`${name} was not packed (see "is built and packed")`);
    return file;
  };

  it('passes publint (strict)', async () => {
    const bytes = readFileSync(tarball());
    const { messages, pkg: packed } = await publint({
      pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) },
      strict: true,
    });
    const problems = messages.map((m) => `${m.type}: ${formatMessage(m, packed, { color: false })}`);
    expect(problems).toEqual([]);
    // What pnpm publishes has no workspace: or catalog: ranges left.
    expect(JSON.stringify(packed)).not.toMatch(/"(workspace|catalog):/);
  });

  it('passes attw (esm-only profile)', async () => {
    // esm-only ignores the node10 and node16-from-CJS resolutions: the packages ship ESM only and
    // need Node >= 20.19, where require(esm) loads them (attw would flag CJSResolvesToESM there).
    const result = await run(attwBin, [tarball(), '--profile', 'esm-only', '--no-color', '--no-emoji'], {
      cwd: out,
    }).then(
      () => 'ok',
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
    expect(result).toBe('ok');
  });
});
