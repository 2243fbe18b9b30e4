import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// docs/writing-a-migrator.md quotes this example and pagemig-migrator-yielding; each quoted block
// names its file (```ts title="path"). Every line of a block must appear in that file, in order
// (`// ...` marks an omission), so the guide cannot drift from the code that runs.
const root = join(import.meta.dirname, '../../..');
const guide = readFileSync(join(root, 'docs/writing-a-migrator.md'), 'utf8');
const blocks = [...guide.matchAll(/^```\w+ title="([^"]+)"\n([\s\S]*?)^```$/gm)].map(([, file, body]) => ({
  file: file!,
  lines: body!
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== '// ...'),
}));

describe('docs/writing-a-migrator.md', () => {
  it('quotes code from the examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
  });

  it.each(blocks.map((b, i) => [`${i + 1}: ${b.file}`, b] as const))(
    'block %s matches its file',
    (_, block) => {
      const source = readFileSync(join(root, block.file), 'utf8')
        .split('\n')
        .map((l) => l.trim());
      let at = 0;
      for (const line of block.lines) {
        const found = source.indexOf(line, at);
        expect(found, `not in ${block.file} (in this order): ${line}`).toBeGreaterThanOrEqual(0);
        at = found + 1;
      }
    },
  );
});
