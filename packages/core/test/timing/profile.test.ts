import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PagemigError } from '../../src/errno.js';
import {
  listProfiles,
  loadProfile,
  parseProfile,
  parseProfileJson,
  profileSchema,
} from '../../src/timing/profile.js';
import { catchPagemig } from '../helpers.js';

const valid = () => structuredClone(loadProfile('zen3-epyc-ptdma')) as unknown as Record<string, unknown>;

/** Sets a dotted path of a plain object (test-only). */
function setAt(o: Record<string, unknown>, path: string[], v: unknown): void {
  let cur = o;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  cur[path.at(-1)!] = v;
}

// Leaf paths of the shipped profile that hold numbers.
const numericPaths: string[][] = [];
(function walk(o: unknown, path: string[]) {
  if (typeof o === 'number') numericPaths.push(path);
  else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) walk(v, [...path, k]);
})(valid(), []);

describe('hardware profiles', () => {
  it('ships zen3-epyc-ptdma and dram-cxl, each valid against the schema', () => {
    expect(listProfiles()).toEqual(['dram-cxl', 'zen3-epyc-ptdma']);
    for (const name of listProfiles()) expect(profileSchema.safeParse(loadProfile(name)).success).toBe(true);
  });

  it('an unknown name lists the shipped profiles', () => {
    const e = catchPagemig(() => loadProfile('zen4'));
    expect(e.code).toBe('ERR_UNKNOWN_PROFILE');
    expect(e.message).toContain('dram-cxl, zen3-epyc-ptdma');
  });

  it('names every broken field with its path, not just the first', () => {
    const p = valid();
    setAt(p, ['kernel', 'perFolioNs'], -1);
    setAt(p, ['cpu', 'ccdGBps'], 'fast');
    const e = catchPagemig(() => parseProfile(p, 'my.json'));
    expect(e.code).toBe('ERR_INVALID_PROFILE');
    expect(e.message).toMatch(/^my\.json: invalid hardware profile/);
    expect(e.message).toContain('  kernel.perFolioNs: ');
    expect(e.message).toContain('  cpu.ccdGBps: ');
  });

  it('checks references between fields: sockets, links, DMA engine placement', () => {
    const p = valid();
    setAt(p, ['nodes'], [{ socket: 5, tier: 'dram', link: 'nowhere' }]);
    setAt(p, ['socketLink'], 'qpi');
    setAt(p, ['dma', 'ptdma', 'socket'], 2);
    const msg = catchPagemig(() => parseProfile(p)).message;
    expect(msg).toContain('  nodes.0.socket: socket 5 >= sockets');
    expect(msg).toContain('  nodes.0.link: no link named nowhere');
    expect(msg).toContain('  socketLink: no link named qpi');
    expect(msg).toContain('  dma.ptdma.socket: socket 2 >= sockets');
  });

  it('property: a negative or non-numeric value in any numeric field is rejected, naming that field', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...numericPaths),
        fc.oneof(fc.constant(-1), fc.constant(Number.NaN), fc.string(), fc.constant(null)),
        (path, bad) => {
          const p = valid();
          setAt(p, path, bad);
          const r = profileSchema.safeParse(p);
          expect(r.success).toBe(false);
          expect(catchPagemig(() => parseProfile(p)).message).toContain(`  ${path.join('.')}: `);
        },
      ),
    );
  });

  it('property: unknown fields are rejected with their location', () => {
    fc.assert(
      fc.property(
        fc.constantFrom([], ['kernel'], ['cpu'], ['topology'], ['dma', 'ptdma']),
        fc
          .string({ minLength: 1 })
          .filter((k) => !/^(kernel|cpu|topology|socket|name)$/.test(k) && !k.includes('.')),
        (path, key) => {
          const p = valid();
          let o = p;
          for (const k of path) o = o[k] as Record<string, unknown>;
          if (key in o) return;
          o[key] = 1;
          expect(catchPagemig(() => parseProfile(p)).message).toMatch(/unrecognized key/i);
        },
      ),
    );
  });

  it('property: arbitrary JSON text is either a valid profile or a coded PagemigError, never another error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (text) => {
        try {
          parseProfileJson(text, 'fuzz');
        } catch (e) {
          expect(PagemigError.isInstance(e)).toBe(true);
          expect((e as PagemigError).message.startsWith('fuzz: ')).toBe(true);
        }
      }),
    );
  });

  it('round-trips through JSON text', () => {
    const p = loadProfile('dram-cxl');
    expect(parseProfileJson(JSON.stringify(p))).toEqual(p);
  });
});
