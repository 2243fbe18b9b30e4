// docs/writing-a-migrator.md, followed word for word by a new user outside this repository: its
// shell commands run as written (only the tarball directory is this test's own), its files are
// written as the guide shows them, in an empty directory under the system's temp directory with
// an npm cache of its own. The packages come from the guide's `pnpm pack` (turbo has built them
// before this test); everything else comes from the npm registry.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '../../..');
const guide = readFileSync(join(root, 'docs/writing-a-migrator.md'), 'utf8');
/** Where the guide packs the tarballs; the test swaps in a directory of its own. */
const GUIDE_TARBALLS = '/tmp/pagemig-tarballs';
const scratch = mkdtempSync(join(tmpdir(), 'pagemig-guide-'));
const tarballs = join(scratch, 'tarballs');
const migratorDir = join(scratch, 'pagemig-migrator-yielding');
const appDir = join(scratch, 'custom-migrator');
// Nothing of the parent vitest, and an npm cache that goes away with the directory.
const env = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(VITEST|NODE_OPTIONS|NODE_ENV)/.test(k)),
  ),
  npm_config_cache: join(scratch, '.npm'),
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
  NO_COLOR: '1',
};

afterAll(() => rmSync(scratch, { recursive: true, force: true }), 120_000);

// Each step runs npm, tsc, tsup or vitest: about 1.5 min in all on an idle two-core host, several
// times that when other jobs share it.
const STEP_MS = 600_000;

/** The text of the guide's section that starts with `## <n>.`. */
function section(n: number): string {
  const parts = guide.split(/^(?=## )/m);
  const found = parts.find((p) => p.startsWith(`## ${n}.`));
  if (!found) throw new Error(`the guide has no section ${n}`);
  return found;
}

/** Fenced blocks of a language: their title (if any) and body. */
function blocks(text: string, lang: string): { title: string | undefined; body: string }[] {
  return [
    ...text.matchAll(new RegExp(`^\`\`\`${lang}(?: title="([^"]+)")?\\n([\\s\\S]*?)^\`\`\`$`, 'gm')),
  ].map(([, title, body]) => ({ title, body: body! }));
}

/** The one shell command of section `n` that starts with `start`, as written there. */
function command(n: number, start: string): string {
  const lines = blocks(section(n), 'sh')
    .flatMap((b) => b.body.split('\n'))
    .filter((l) => l.startsWith(start));
  if (lines.length !== 1)
    throw new Error(`section ${n} of the guide has ${lines.length} shell commands starting with "${start}"`);
  return lines[0]!.replaceAll(GUIDE_TARBALLS, tarballs);
}

/** Runs a command of the guide in `cwd`; returns what it printed on stdout. */
async function run(n: number, start: string, cwd: string): Promise<string> {
  const cmd = command(n, start);
  try {
    return (await exec('sh', ['-c', cmd], { cwd, env, maxBuffer: 64 << 20 })).stdout;
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    throw new Error(`\`${cmd}\` failed in ${cwd}:\n${stdout ?? ''}${stderr ?? ''}`.slice(-6000));
  }
}

/** The body of the guide's block titled `file` (a path under examples/). */
function shown(file: string): string {
  const found = blocks(guide, '\\w+').filter((b) => b.title === file);
  if (found.length !== 1) throw new Error(`the guide shows ${found.length} blocks titled ${file}`);
  return found[0]!.body;
}

/** Writes the guide's `file` where the guide's commands made its project: under the scratch directory. */
function writeShown(file: string): void {
  const to = join(scratch, file);
  mkdirSync(dirname(to), { recursive: true });
  writeFileSync(to, shown(file));
}

describe('docs/writing-a-migrator.md, followed outside the repository', { timeout: STEP_MS }, () => {
  it('0: packs core, testkit and registry', async () => {
    for (const p of ['core', 'testkit', 'registry'])
      expect(existsSync(join(root, 'packages', p, 'dist')), `packages/${p} is not built`).toBe(true);
    await run(0, 'pnpm --filter', root);
    for (const p of ['core', 'testkit', 'registry'])
      expect(existsSync(join(tarballs, `pagemig-${p}-0.1.0.tgz`)), p).toBe(true);
  });

  it('1: creates the package with the pinned tools', async () => {
    mkdirSync(migratorDir);
    await run(1, 'npm init -y', migratorDir);
    await run(1, 'npm i -D', migratorDir);
    // "Set these fields in the package.json that npm init wrote".
    const pkgFile = join(migratorDir, 'package.json');
    const fields = JSON.parse(shown('pagemig-migrator-yielding/package.json'));
    writeFileSync(
      pkgFile,
      JSON.stringify({ ...JSON.parse(readFileSync(pkgFile, 'utf8')), ...fields }, null, 2),
    );
    for (const file of ['tsconfig.json', 'tsup.config.ts', 'src/index.ts', 'test/conformance.test.ts'])
      writeShown(`pagemig-migrator-yielding/${file}`);
    const ts = JSON.parse(readFileSync(join(migratorDir, 'node_modules/typescript/package.json'), 'utf8'));
    expect(ts.version).toMatch(/^5\.9\./);
  });

  it('4: typechecks and passes the conformance suite', async () => {
    await run(4, 'npx tsc', migratorDir);
    const out = await run(4, 'npx vitest', migratorDir);
    // Every registered case passed (vitest lists failed and skipped ones in this line too).
    expect(out).toMatch(/Tests\s+\d+ passed \(\d+\)/);
  });

  it('5: builds and packs it', async () => {
    await run(5, 'npm run build', migratorDir);
    await run(5, 'npm pack', migratorDir);
    expect(existsSync(join(migratorDir, 'dist/index.d.ts'))).toBe(true);
    expect(existsSync(join(tarballs, 'pagemig-migrator-yielding-0.1.0.tgz'))).toBe(true);
  });

  it('6: an application loads it by id, routes numa_misplaced to it and migrates', async () => {
    mkdirSync(appDir);
    await run(6, 'npm init -y', appDir);
    await run(6, 'npm i /tmp', appDir);
    await run(6, 'npm i -D', appDir);
    await run(6, 'cp ', appDir);
    writeShown('custom-migrator/src/main.ts');
    await run(6, 'npx tsc', appDir);
    await run(6, 'npx tsup', appDir);
    const out = await run(6, 'node dist/main.js', appDir);
    // The output the guide shows, bytes verified after both migrations.
    expect(out.trim()).toBe(blocks(section(6), 'text')[0]!.body.trim());
  });
});
