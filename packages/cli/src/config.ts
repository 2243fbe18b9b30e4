import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createJiti } from 'jiti';
import { z } from 'zod';
import { CliError, ExitCode } from './exit_codes.js';

const size = z.union([z.number().int().positive(), z.string().min(1)], {
  error: 'expected a size: a byte count or a string such as "256MiB"',
});

const migratorSpec = z
  .object({
    id: z.string().min(1, 'must be a migrator id or package name'),
    options: z.record(z.string(), z.unknown()).optional(),
    /** A key of `timingProfiles`: throttles an emulated DMA engine (ptdma, sdxi) to that device. */
    timing: z.string().min(1).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    /** Passed to core's createMachine (which checks sizes and distances). */
    machine: z
      .object({
        nodes: z
          .array(
            z
              .object({
                memory: size,
                tier: z.string().min(1).optional(),
                zones: z
                  .array(z.object({ type: z.string(), memory: size }).strict())
                  .min(1)
                  .optional(),
              })
              .strict(),
          )
          .min(1)
          .optional(),
        distances: z.array(z.array(z.number().int())).optional(),
        sectionSize: size.optional(),
        prefault: z.boolean().optional(),
        migrationBatchPages: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    /** Named device speeds for emulated DMA engines (a driver's `timing` option). */
    timingProfiles: z
      .record(
        z.string().regex(/^[A-Za-z0-9._-]+$/, 'profile names are letters, digits, ".", "_" and "-"'),
        z
          .object({
            bandwidth: z.union([z.number().positive(), z.string().min(1)]).optional(),
            latencyUs: z.number().nonnegative().optional(),
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
  .strict();

export type PagemigConfig = z.infer<typeof configSchema>;
export type MigratorSpec = z.infer<typeof migratorSpec>;

/** Typed identity for `pagemig.config.ts`. */
export function defineConfig(config: PagemigConfig): PagemigConfig {
  return config;
}

export const CONFIG_FILES = ['pagemig.config.ts', 'pagemig.config.mts', 'pagemig.config.json'] as const;

export interface LoadedConfig {
  /** The file read, or null when there is none (defaults and flags only). */
  file: string | null;
  config: PagemigConfig;
}

const configError = (message: string) => new CliError(message, ExitCode.CONFIG, 'ERR_CONFIG');

async function readConfigFile(file: string): Promise<unknown> {
  if (file.endsWith('.json')) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as unknown;
    } catch (e) {
      throw configError(`${file}: not valid JSON: ${(e as Error).message}`);
    }
  }
  // jiti strips the types and resolves the file's own imports from its directory.
  const jiti = createJiti(import.meta.url, { moduleCache: false, fsCache: false });
  try {
    return await jiti.import(file, { default: true });
  } catch (e) {
    throw configError(`${file}: loading failed: ${(e as Error).message}`);
  }
}

/** Checks a config object; errors name the file and the field. */
export function validateConfig(input: unknown, file: string): PagemigConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    throw configError(`${file}: ${where}: ${issue.message}`);
  }
  const cfg = parsed.data;
  const profiles = Object.keys(cfg.timingProfiles ?? {});
  const specs: [string, MigratorSpec | undefined][] = [
    ['migrator', cfg.migrator],
    ...Object.entries(cfg.routes ?? {}).map(([r, s]): [string, MigratorSpec] => [`routes.${r}`, s]),
  ];
  for (const [where, s] of specs) {
    if (s?.timing !== undefined && !profiles.includes(s.timing)) {
      throw configError(
        `${file}: ${where}.timing: unknown timing profile ${JSON.stringify(s.timing)}; ${profiles.length ? `known: ${profiles.join(', ')}` : 'timingProfiles is empty'}`,
      );
    }
  }
  return cfg;
}

/** `--config <file>`, else the first of CONFIG_FILES in `cwd`, else an empty config. */
export async function loadConfig(cwd: string, explicit?: string): Promise<LoadedConfig> {
  let file: string | null = null;
  if (explicit !== undefined) {
    file = path.resolve(cwd, explicit);
    if (!existsSync(file)) throw configError(`config file ${file} does not exist`);
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
  return { file, config: validateConfig(await readConfigFile(file), file) };
}

/** The `timing` option a spec's profile name stands for, merged into its options. */
export function specOptions(cfg: PagemigConfig, spec: MigratorSpec): Record<string, unknown> {
  const options = { ...spec.options };
  if (spec.timing !== undefined) options.timing = cfg.timingProfiles?.[spec.timing];
  return options;
}
