// Every README example of a publishable package runs as written: each ```ts block that imports
// from @pagemig/* and builds a machine is transpiled (types stripped, nothing else changed) and
// run with node from its package's folder, against the built packages. A block that only shows a
// fragment must not import: then it is not an example and is not run.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../../..');

interface Example {
  pkg: string;
  dir: string;
  index: number;
  code: string;
}

function examples(): Example[] {
  const base = join(root, 'packages');
  const out: Example[] = [];
  for (const pkg of readdirSync(base)) {
    const readme = join(base, pkg, 'README.md');
    if (!existsSync(readme)) continue;
    const blocks = [...readFileSync(readme, 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    blocks.forEach((code, index) => {
      if (/from '@pagemig\//.test(code) && /createMachine\(/.test(code))
        out.push({ pkg, dir: join(base, pkg), index, code });
    });
  }
  return out;
}

const all = examples();

describe('README examples run unmodified', () => {
  it('finds the examples', () => {
    expect(all.length).toBeGreaterThanOrEqual(6);
  });

  it.each(all.map((e) => [`${e.pkg} #${e.index}`, e] as const))(
    '%s',
    async (_name, e) => {
      const js = ts.transpileModule(e.code, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      const file = join(e.dir, `.readme-example-${e.index}.mjs`);
      writeFileSync(file, js);
      try {
        const r = await run(process.execPath, [file], { cwd: e.dir, timeout: 120_000 });
        expect(r.stderr).not.toMatch(/Error/);
      } finally {
        rmSync(file, { force: true });
      }
    },
    150_000,
  );
});
