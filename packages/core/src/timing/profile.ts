import { z } from 'zod';
import dramCxl from '../../profiles/dram-cxl.json' with { type: 'json' };
import zen3 from '../../profiles/zen3-epyc-ptdma.json' with { type: 'json' };
import { PagemigError } from '../errno.js';

/** Hardware profile format version; bump on an incompatible change. */
export const PROFILE_SCHEMA_VERSION = 1;

const positive = z.number().positive().finite();
const nonNegative = z.number().nonnegative().finite();
const count = z.number().int().positive();

/** A DMA engine: channels (PTDMA devices, SDXI contexts) feeding one fabric. */
const dmaEngineSchema = z
  .object({
    socket: z.number().int().nonnegative(),
    maxChannels: count,
    channelGBps: positive,
    perDescriptorNs: nonNegative,
    perMappingNs: nonNegative,
    batchSetupUs: nonNegative,
    completionUs: nonNegative,
    aggregateGBps: positive.optional(),
  })
  .strict();

/**
 * A memory tier's performance (the kernel's access_coordinate of HMAT/CDAT): load and store
 * latency from a CPU of the node's socket, and read and write bandwidth. `source` says where the
 * numbers come from; without it they are assumptions.
 */
const memoryPerfSchema = z
  .object({
    readLatencyNs: positive,
    writeLatencyNs: positive,
    readGBps: positive,
    writeGBps: positive,
    source: z.string().optional(),
  })
  .strict();

export const profileSchema = z
  .object({
    schemaVersion: z.literal(PROFILE_SCHEMA_VERSION),
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase letters, digits and dashes'),
    description: z.string(),
    topology: z
      .object({
        sockets: count,
        ccdsPerSocket: count,
        coresPerCcd: count,
        threadsPerCore: count,
      })
      .strict(),
    nodes: z
      .array(
        z
          .object({ socket: z.number().int().nonnegative(), link: z.string().optional(), tier: z.string() })
          .strict(),
      )
      .min(1),
    links: z.record(z.string(), z.object({ GBps: positive }).strict()),
    socketLink: z.string().optional(),
    kernel: z
      .object({
        callUs: nonNegative,
        perFolioNs: nonNegative,
        perPteNs: nonNegative,
        tlbFlushUs: nonNegative,
        unmapShare: z.number().min(0).max(1),
      })
      .strict(),
    cpu: z
      .object({
        threadGBps: positive,
        ccdGBps: positive,
        socketGBps: positive,
        writeLinkFactor: z.number().min(1).max(4),
        copyStartNs: nonNegative,
        dispatchUs: nonNegative,
      })
      .strict(),
    contention: z.object({ sharpness: z.number().min(1).max(32) }).strict(),
    dma: z.record(z.string(), dmaEngineSchema),
    /** Per memory tier label ('dram', 'cxl', 'pmem'): access cost and the tier's abstract distance. */
    memory: z.record(z.string(), memoryPerfSchema).optional(),
    calibration: z
      .object({
        fittedTo: z.string(),
        free: z.array(z.string()),
        fixed: z.record(z.string(), z.string()),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const known = new Set(Object.keys(p.links));
    if (p.socketLink !== undefined && !known.has(p.socketLink))
      ctx.addIssue({ code: 'custom', path: ['socketLink'], message: `no link named ${p.socketLink}` });
    if (p.topology.sockets > 1 && p.socketLink === undefined)
      ctx.addIssue({ code: 'custom', path: ['socketLink'], message: 'required with more than one socket' });
    p.nodes.forEach((n, i) => {
      if (n.socket >= p.topology.sockets)
        ctx.addIssue({
          code: 'custom',
          path: ['nodes', i, 'socket'],
          message: `socket ${n.socket} >= sockets`,
        });
      if (n.link !== undefined && !known.has(n.link))
        ctx.addIssue({ code: 'custom', path: ['nodes', i, 'link'], message: `no link named ${n.link}` });
    });
    for (const [name, e] of Object.entries(p.dma)) {
      if (e.socket >= p.topology.sockets)
        ctx.addIssue({
          code: 'custom',
          path: ['dma', name, 'socket'],
          message: `socket ${e.socket} >= sockets`,
        });
    }
  });

/** A validated hardware profile (see profiles/README.md for every field). */
export type HardwareProfile = z.infer<typeof profileSchema>;
export type DmaEngineProfile = z.infer<typeof dmaEngineSchema>;
export type MemoryPerf = z.infer<typeof memoryPerfSchema>;

const bundled: Readonly<Record<string, unknown>> = { 'zen3-epyc-ptdma': zen3, 'dram-cxl': dramCxl };

/**
 * Validates a profile object; throws ERR_INVALID_PROFILE listing every problem as `path: message`.
 * `origin` names the source (a file, a bundled name) in the message.
 */
export function parseProfile(input: unknown, origin = 'profile'): HardwareProfile {
  const r = profileSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new PagemigError('ERR_INVALID_PROFILE', `${origin}: invalid hardware profile\n${lines.join('\n')}`);
}

/** Parses profile JSON text (a file's content) with the same errors as parseProfile. */
export function parseProfileJson(text: string, origin = 'profile'): HardwareProfile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new PagemigError('ERR_INVALID_PROFILE', `${origin}: not JSON (${(e as Error).message})`);
  }
  return parseProfile(data, origin);
}

/** Names of the profiles shipped with core. */
export function listProfiles(): string[] {
  return Object.keys(bundled).sort();
}

/** A shipped profile by name, validated. */
export function loadProfile(name: string): HardwareProfile {
  const data = bundled[name];
  if (data === undefined) {
    throw new PagemigError(
      'ERR_UNKNOWN_PROFILE',
      `no hardware profile named ${JSON.stringify(name)}; shipped: ${listProfiles().join(', ')}`,
    );
  }
  return parseProfile(data, `profile ${name}`);
}
