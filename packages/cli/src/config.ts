import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  formatSize,
  migrateReasonNames,
  parseReasonMask,
  parseSize,
  type Size,
  zoneNames,
} from '@pagemig/core';
import { createJiti } from 'jiti';
import { z } from 'zod';
import { CliError, ExitCode } from './exit_codes.js';

const MiB2 = 2 << 20;

/** How a bad value is quoted in a message: `64`, `"fast"`, `true`. */
export function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    const s = JSON.stringify(v);
    return s.length > 40 ? `${s.slice(0, 37)}...` : s;
  } catch {
    return String(v);
  }
}

/** A memory size: a string such as "64MiB" (or a byte count) that is a positive multiple of 2MiB. */
const blockSize = z.unknown().superRefine((v, ctx) => {
  const expected =
    v === undefined
      ? 'is required: a size string like "64MiB"'
      : `expected a size string like "64MiB", got ${shown(v)}`;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v <= 0 || v % MiB2) ctx.addIssue({ code: 'custom', message: expected });
    return;
  }
  if (typeof v !== 'string') {
    ctx.addIssue({ code: 'custom', message: expected });
    return;
  }
  let bytes: number;
  try {
    bytes = parseSize(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: expected });
    return;
  }
  if (bytes === 0 || bytes % MiB2)
    ctx.addIssue({
      code: 'custom',
      message: `${shown(v)} is not a positive multiple of 2MiB (one pageblock)`,
    });
}) as z.ZodType<Size>;

/** core's sparsemem section: a power of two from 4MiB to 1GiB. */
const sectionSize = z.unknown().superRefine((v, ctx) => {
  let bytes = Number.NaN;
  try {
    if (typeof v === 'number' || typeof v === 'string') bytes = parseSize(v);
  } catch {
    // reported below
  }
  if (!(bytes >= 4 << 20 && bytes <= 1 << 30 && (bytes & (bytes - 1)) === 0))
    ctx.addIssue({
      code: 'custom',
      message: `expected a power of two from "4MiB" to "1GiB", got ${shown(v)}`,
    });
}) as z.ZodType<Size>;

/** What the DMA drivers' `timing.bandwidth` accepts (dmaengine's parseBandwidth). */
const RATE = /^\s*([\d.]+)\s*([kmgt]i?)?b(?:\/s|ps)\s*$/i;
const bandwidth = z.unknown().superRefine((v, ctx) => {
  const ok =
    typeof v === 'number'
      ? Number.isFinite(v) && v > 0
      : typeof v === 'string' && RATE.test(v) && Number(RATE.exec(v)![1]) > 0;
  if (!ok)
    ctx.addIssue({
      code: 'custom',
      message: `expected a rate like "4GB/s", "800MB/s" or "2GiB/s" (or bytes per second), got ${shown(v)}`,
    });
}) as z.ZodType<number | string>;

const migratorSpec = z
  .object({
    id: z.string().min(1, 'must be a migrator id or package name'),
    options: z.record(z.string(), z.unknown()).optional(),
    /** A key of `timingProfiles`: throttles an emulated DMA engine (ptdma, sdxi) to that device. */
    timing: z.string().min(1).optional(),
  })
  .strict();

/** A node's memory: a block size, or 0 for a memory-less node. */
const nodeMemory = z.unknown().superRefine((v, ctx) => {
  if (v === 0 || v === '0') return;
  const r = blockSize.safeParse(v);
  if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', message: i.message });
}) as z.ZodType<Size>;

const nodeSchema = z
  .object({
    memory: nodeMemory,
    tier: z.string().min(1).optional(),
    /** CPUs on the node; 0 for a CPU-less (CXL-style) node. */
    cpus: z.number().int().min(0).optional(),
    zones: z
      .array(z.object({ type: z.enum(zoneNames), memory: blockSize }).strict())
      .min(1)
      .optional(),
  })
  .strict();

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    /** Passed to core's createMachine; checked here too, so errors name this file. */
    machine: z
      .object({
        nodes: z.array(nodeSchema).min(1).max(64).optional(),
        /** nodes x nodes: 10 on the diagonal, 11..254 elsewhere (node_distance). */
        distances: z.array(z.array(z.number().int())).optional(),
        sectionSize: sectionSize.optional(),
        prefault: z.boolean().optional(),
        migrationBatchPages: z
          .number()
          .int()
          .min(1)
          .max(1 << 20)
          .optional(),
      })
      .strict()
      .optional(),
    /** Named device speeds for emulated DMA engines (a driver's `timing` option). */
    timingProfiles: z
      .record(
        z.string().regex(/^[A-Za-z0-9._-]+$/, 'profile names are letters, digits, ".", "_" and "-"'),
        z
          .object({
            bandwidth: bandwidth.optional(),
            latencyUs: z.number().min(0).max(4e6).optional(),
          })
          .strict(),
      )
      .optional(),
    /** The default migrator and the reasons it takes (a kernel reason mask, default 'all'). */
    migrator: migratorSpec
      .extend({ reasons: z.union([z.string(), z.array(z.string())]).optional() })
      .strict()
      .optional(),
    /** Migrate reason → migrator (reason routing, e.g. `compaction` to a DMA engine). */
    routes: z.record(z.string(), migratorSpec).optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const m = cfg.machine;
    if (m?.distances) {
      const n = m.nodes?.length;
      if (n === undefined)
        issue(['machine', 'distances'], 'needs machine.nodes (the matrix is nodes x nodes)');
      else if (m.distances.length !== n || m.distances.some((row) => row.length !== n))
        issue(
          ['machine', 'distances'],
          `expected a ${n}x${n} matrix (a row and a column per node), got ${m.distances.length} row(s) of ${m.distances.map((r) => r.length).join('/')}`,
        );
      else
        m.distances.forEach((row, i) => {
          row.forEach((d, j) => {
            if (i === j ? d !== 10 : d <= 10 || d > 254)
              issue(
                ['machine', 'distances', i, j],
                i === j ? `the local distance is 10, got ${d}` : `expected 11..254, got ${d}`,
              );
          });
        });
    }
    m?.nodes?.forEach((node, i) => {
      if (!node.zones) return;
      const order = node.zones.map((zn) => zoneNames.indexOf(zn.type));
      if (order.some((o, j) => j > 0 && o <= order[j - 1]!))
        issue(
          ['machine', 'nodes', i, 'zones'],
          `zones must be distinct and in the order ${zoneNames.join(', ')}`,
        );
      try {
        const sum = node.zones.reduce((s, zn) => s + parseSize(zn.memory), 0);
        const total = parseSize(node.memory);
        if (sum !== total)
          issue(
            ['machine', 'nodes', i, 'zones'],
            `zone sizes add up to ${formatSize(sum)}, the node has ${formatSize(total)}`,
          );
      } catch {
        // a bad size is reported on its own field
      }
    });
    if (cfg.migrator?.reasons !== undefined) {
      try {
        parseReasonMask(cfg.migrator.reasons);
      } catch (e) {
        issue(['migrator', 'reasons'], (e as Error).message.replace(/^EINVAL: /, ''));
      }
    }
    for (const reason of Object.keys(cfg.routes ?? {})) {
      if ((migrateReasonNames as readonly string[]).includes(reason)) continue;
      const hint = closest(reason, migrateReasonNames);
      issue(
        ['routes', reason],
        `unknown migrate reason ${shown(reason)}${hint ? `; did you mean ${shown(hint)}?` : ''} (a route is for one of ${migrateReasonNames.join(', ')})`,
      );
    }
    const profiles = Object.keys(cfg.timingProfiles ?? {});
    const specs: [PropertyKey[], { timing?: string | undefined } | undefined][] = [
      [['migrator'], cfg.migrator],
      ...Object.entries(cfg.routes ?? {}).map(([r, sp]): [PropertyKey[], MigratorSpec] => [
        ['routes', r],
        sp,
      ]),
    ];
    for (const [where, sp] of specs) {
      if (sp?.timing !== undefined && !profiles.includes(sp.timing))
        issue(
          [...where, 'timing'],
          `unknown timing profile ${shown(sp.timing)}; ${profiles.length ? `known: ${profiles.join(', ')}` : 'timingProfiles is empty'}`,
        );
    }
  });

/** The closest name within a third of the input's length in edits, for "did you mean". */
function closest(input: string, names: readonly string[]): string | undefined {
  const dist = (a: string, b: string) => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const cur = [i];
      for (let j = 1; j <= b.length; j++)
        cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
    return prev[b.length]!;
  };
  const max = Math.max(1, Math.floor(input.length / 3));
  let best: string | undefined;
  let bestD = max + 1;
  for (const n of names) {
    const d = dist(input, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best;
}

/** A JSON path as people write it: `machine.nodes[0].memory`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else {
      const key = String(k);
      out += /^[A-Za-z_$][\w$]*$/.test(key) ? `${out ? '.' : ''}${key}` : `[${JSON.stringify(key)}]`;
    }
  }
  return out || '(top level)';
}

/** One line per zod issue: the field's path and what is wrong with it. */
function issueText(issue: z.core.$ZodIssue): string {
  const where = jsonPath(issue.path);
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys':
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => shown(k)).join(', ')}`;
    case 'invalid_type':
      return `${where}: ${input === undefined ? `is required (${issue.expected})` : `expected ${issue.expected}, got ${shown(input)}`}`;
    case 'invalid_value':
      return `${where}: expected one of ${issue.values.map((v) => shown(v)).join(', ')}, got ${shown(input)}`;
    case 'custom':
      return `${where}: ${issue.message}`;
    default:
      return `${where}: ${issue.message}${input !== undefined ? `, got ${shown(input)}` : ''}`;
  }
}

export type PagemigConfig = z.infer<typeof configSchema>;
export type MigratorSpec = z.infer<typeof migratorSpec>;

/** Typed identity for `pagemig.config.ts`. */
export function defineConfig(config: PagemigConfig): PagemigConfig {
  return config;
}

export const CONFIG_FILES = ['pagemig.config.ts', 'pagemig.config.mts', 'pagemig.config.json'] as const;

export interface LoadedConfig {
  /** The file read (absolute), or null when there is none (defaults and flags only). */
  file: string | null;
  /** How messages name the file: relative to the working directory when it is inside it. */
  name?: string;
  config: PagemigConfig;
}

/** Exit 4: the config file is missing, unreadable or invalid; the message names the file. */
export const configError = (message: string) => new CliError(message, ExitCode.CONFIG, 'ERR_CONFIG');

/** `pagemig.config.json` for a file in `cwd`, the absolute path for one elsewhere. */
export function displayName(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

async function readConfigFile(file: string, name: string): Promise<unknown> {
  if (file.endsWith('.json')) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw configError(`${name}: cannot read it: ${(e as Error).message}`);
    }
    try {
      // An editor's byte-order mark is not part of the JSON text.
      return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
    } catch (e) {
      throw configError(`${name}: not valid JSON: ${(e as Error).message}`);
    }
  }
  // jiti strips the types and resolves the file's own imports from its directory.
  const jiti = createJiti(import.meta.url, { moduleCache: false, fsCache: false });
  let mod: unknown;
  try {
    mod = await jiti.import(file);
  } catch (e) {
    throw configError(`${name}: loading failed: ${(e as Error).message}`);
  }
  if (typeof mod !== 'object' || mod === null || !('default' in mod))
    throw configError(`${name}: has no default export; end it with export default defineConfig({ ... })`);
  return (mod as { default: unknown }).default;
}

/** Checks a config object; the error names the file and the JSON path of every bad field. */
export function validateConfig(input: unknown, file: string): PagemigConfig {
  const parsed = configSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    const lines = [...new Set(parsed.error.issues.map(issueText))];
    throw configError(`${file}: ${lines.join(`; ${file}: `)}`);
  }
  return parsed.data;
}

/** `--config <file>`, else the first of CONFIG_FILES in `cwd`, else an empty config. */
export async function loadConfig(cwd: string, explicit?: string): Promise<LoadedConfig> {
  let file: string | null = null;
  if (explicit !== undefined) {
    file = path.resolve(cwd, explicit);
    if (!existsSync(file)) throw configError(`config file ${displayName(file, cwd)} does not exist`);
  } else {
    const found = CONFIG_FILES.map((f) => path.join(cwd, f)).filter((f) => existsSync(f));
    if (found.length > 1) {
      throw configError(
        `found ${found.map((f) => path.basename(f)).join(' and ')} in ${cwd}: keep one, or pass --config`,
      );
    }
    file = found[0] ?? null;
  }
  if (!file) return { file: null, config: {} };
  const name = displayName(file, cwd);
  return { file, name, config: validateConfig(await readConfigFile(file, name), name) };
}

/** The `timing` option a spec's profile name stands for, merged into its options. */
export function specOptions(cfg: PagemigConfig, spec: MigratorSpec): Record<string, unknown> {
  const options = { ...spec.options };
  if (spec.timing !== undefined) options.timing = cfg.timingProfiles?.[spec.timing];
  return options;
}
