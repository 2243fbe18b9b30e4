import { describe, expect, it } from 'vitest';
import { EINVAL } from '../src/errno.js';
import { PAGE_SIZE } from '../src/mmzone.js';
import { expectErrno, machinesCheckedAfterEach } from './helpers.js';

const machine = machinesCheckedAfterEach();

describe('a misspelt option is refused (EINVAL naming it), never ignored', () => {
  it('mmap, spawn and migrateFolios name the key, the closest known one, and change nothing', async () => {
    const m = await machine();
    const p = m.spawn();
    const vmas = p.mm.vmas.size;
    const e = expectErrno(() => p.mmap(PAGE_SIZE, { shard: true } as never), EINVAL);
    expect(e.message).toBe(
      'EINVAL: mmap: unknown option "shard"; did you mean "shared"? (known options: shared, thp, node, policy, mlock, migratable, hugetlb)',
    );
    expect(p.mm.vmas.size).toBe(vmas);
    // A length beyond the address space is named as such, not as "not a positive integer".
    expect(expectErrno(() => p.munmap(0x10000000, 2 ** 60), EINVAL).message).toBe(
      `EINVAL: munmap length ${2 ** 60} is larger than the 256GiB user address space`,
    );
    expect(expectErrno(() => p.mmap(PAGE_SIZE, { bogus: 1 } as never), EINVAL).message).toBe(
      'EINVAL: mmap: unknown option "bogus"; known options: shared, thp, node, policy, mlock, migratable, hugetlb',
    );
    const procs = m.kernel.processes.size;
    expect(expectErrno(() => m.spawn({ privilged: true } as never), EINVAL).message).toMatch(
      /^EINVAL: spawn: unknown option "privilged"; did you mean "privileged"\?/,
    );
    expect(m.kernel.processes.size).toBe(procs);
    const a = p.mmap(PAGE_SIZE);
    p.touch(a, PAGE_SIZE, 'write');
    const pfn = p.pageInfo(a)!.pfn;
    await expect(m.migrateFolios([pfn], { node: 1, nod: 0 } as never)).rejects.toMatchObject({
      errno: EINVAL,
      message: expect.stringMatching(/^EINVAL: migrateFolios: unknown option "nod"; did you mean "node"\?/),
    });
    // Nothing was isolated: the folio still migrates.
    expect(p.pageInfo(a)!.node).toBe(0);
    expect((await m.migrateFolios([pfn], { node: 1 })).nrSucceeded).toBe(1);
    expect(p.pageInfo(a)!.node).toBe(1);
  });
});
