import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// docs/writing-a-migrator.md shows the files of pagemig-migrator-yielding and of this example,
// each block titled with its path under examples/ (```ts title="path"). A whole file must equal
// that file, the package.json block's fields must be the example's (as pnpm packs them), and an
// excerpt ("path (excerpt)") must appear in its file line by line, in order (`// ...` marks an
// omission): the guide cannot drift from the code that runs.
const root = join(import.meta.dirname, '../../..');
const guide = readFileSync(join(root, 'docs/writing-a-migrator.md'), 'utf8');
const blocks = [...guide.matchAll(/^```\w+ title="([^"]+)"\n([\s\S]*?)^```$/gm)].map(([, title, body]) => ({
  file: title!.replace(/ \(excerpt\)$/, ''),
  excerpt: title!.endsWith(' (excerpt)'),
  body: body!,
}));
const read = (file: string) => readFileSync(join(root, 'examples', file), 'utf8');
const PACKAGE_JSON = 'pagemig-migrator-yielding/package.json';

describe('docs/writing-a-migrator.md', () => {
  it('shows every file of the migrator and the application whole', () => {
    expect(blocks.filter((b) => !b.excerpt).map((b) => b.file)).toEqual([
      PACKAGE_JSON,
      'pagemig-migrator-yielding/tsconfig.json',
      'pagemig-migrator-yielding/tsup.config.ts',
      'pagemig-migrator-yielding/src/index.ts',
      'pagemig-migrator-yielding/test/conformance.test.ts',
      'custom-migrator/src/main.ts',
    ]);
  });

  it('sets the package.json fields of the example, with the range pnpm packs for workspace:^', () => {
    const core = JSON.parse(readFileSync(join(root, 'packages/core/package.json'), 'utf8')).version;
    const packed = JSON.parse(read(PACKAGE_JSON).replaceAll('"workspace:^"', `"^${core}"`));
    const fields = JSON.parse(blocks.find((b) => b.file === PACKAGE_JSON && !b.excerpt)!.body);
    for (const [key, value] of Object.entries(fields)) expect(packed[key], key).toEqual(value);
  });

  it.each(blocks.filter((b) => !b.excerpt && b.file !== PACKAGE_JSON).map((b) => [b.file, b] as const))(
    '%s is the whole file',
    (file, block) => {
      expect(block.body).toBe(read(file));
    },
  );

  it.each(blocks.filter((b) => b.excerpt).map((b, i) => [`${i + 1}: ${b.file}`, b] as const))(
    'excerpt %s matches its file',
    (_, block) => {
      const source = read(block.file)
        .split('\n')
        .map((l) => l.trim());
      let at = 0;
      for (const line of block.body.split('\n').map((l) => l.trim())) {
        if (line === '' || line === '// ...') continue;
        const found = source.indexOf(line, at);
        expect(found, `not in ${block.file} (in this order): ${line}`).toBeGreaterThanOrEqual(0);
        at = found + 1;
      }
    },
  );
});
