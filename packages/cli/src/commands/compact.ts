import { writeFileSync } from 'node:fs';
import { PAGE_SIZE } from '@pagemig/core';
import { attachKcompactd, renderZoneMapsSvg, zoneMap, zoneMapCounts, zoneMapText } from '@pagemig/kcompactd';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { type CommandContext, examples, machineCommandOptions } from '../context.js';
import { usageError } from '../exit_codes.js';
import { emitJson } from '../io.js';
import {
  describeMachine,
  intFlag,
  machineConfig,
  migratorChoice,
  openMachine,
  wireMigrators,
} from '../machine.js';
import { addMachineFlags, addMigratorFlags, type MachineOpts, machineFlags } from '../machine_flags.js';
import { checkWritable } from '../output_paths.js';
import { createProgress } from '../progress.js';
import { runCommand } from '../run_command.js';
import { fragmentNode } from '../scenarios/fragment.js';
import { Reference } from '../scenarios/migration.js';
import { gbps, renderTable } from '../table.js';
import { addTimelineFlag, checkTimelineFlag, timelineLine, withTimeline } from '../timeline.js';

interface CompactOpts extends MachineOpts {
  node: string;
  chunkPages: string;
  fill: string;
  svg?: string;
  columns: string;
  json?: boolean;
  config?: string;
  timeline?: string;
}

const COUNTERS = [
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_isolated',
  'pgmigrate_success',
  'pgmigrate_fail',
] as const;

export function registerCompactCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('compact')
    .description(
      'fragment a zone (map it, unmap every other chunk), compact it, and show the zone before and after',
    )
    .option('--node <nid>', 'node to fragment and compact', '0')
    .option('--chunk-pages <n>', 'pages per chunk of the fragmentation', '16')
    .option('--fill <share>', 'share of the free memory mapped before every other chunk is unmapped', '0.9')
    .option('--svg <file>', 'also write the before/after zone map as an SVG file')
    .option('--columns <n>', 'pageblocks per line of the text map', '64');
  addMachineFlags(cmd);
  addMigratorFlags(cmd, 'the compaction copies (registered for the compaction reason)');
  addTimelineFlag(cmd);
  machineCommandOptions(cmd);
  examples(cmd, [
    'pagemig compact',
    'pagemig compact --node-memory 512MiB --migrator ptdma --svg zone.svg',
    'pagemig compact --json',
    'pagemig compact --migrator ptdma --timeline compact.json',
  ]);
  cmd.action(async (o: CompactOpts) => {
    ctx.exit(await runCommand(ctx.io, 'compact', !!o.json, () => compact(ctx, o)));
  });
}

async function compact(ctx: CommandContext, o: CompactOpts): Promise<void> {
  const { io } = ctx;
  const nid = intFlag('--node', o.node, 0, 63);
  const chunkPages = intFlag('--chunk-pages', o.chunkPages, 1, 512);
  const columns = intFlag('--columns', o.columns, 1, 1024);
  const fill = Number(o.fill);
  if (!(fill > 0 && fill <= 1))
    throw usageError(`--fill: expected a share in (0, 1], got ${JSON.stringify(o.fill)}`);
  // Every output path is checked before the run, so a long run never ends in a write error.
  const svgFile = o.svg === undefined ? null : checkWritable('--svg', o.svg, io.cwd);
  checkTimelineFlag(o.timeline, io.cwd);
  const { config, file, name } = await loadConfig(io.cwd, o.config);
  const choice = migratorChoice(config, o);
  const flags = machineFlags(o);
  const mc = machineConfig(config, flags, { nodes: 1, nodeMemory: 128 << 20 });
  if (flags.batchPages !== undefined) mc.migrationBatchPages = flags.batchPages;
  if (nid >= mc.nodes.length)
    throw usageError(`--node ${nid} does not exist: the machine has ${mc.nodes.length} node(s)`);

  const bar = createProgress(io, !!o.json, 3, 'compact');
  const m = await openMachine(mc, { configName: name, flags });
  const kd = attachKcompactd(m, { proactiveness: 0 });
  try {
    const wired = await wireMigrators(
      m,
      ctx.drivers(),
      config,
      { ...choice, reasons: choice.reasons ?? 'compaction' },
      name,
    );
    const frag = fragmentNode(m, nid, { chunkPages, fill });
    bar.tick('compacting');
    const before = zoneMap(m, nid);
    const v0 = m.vmstat();
    const {
      value: { zones },
      timeline,
    } = await withTimeline(m, o.timeline, io.cwd, () => kd.compactNode(nid));
    bar.tick('verifying');
    frag.verify();
    m.checkInvariants();
    const after = zoneMap(m, nid);
    const v1 = m.vmstat();
    const counters = Object.fromEntries(COUNTERS.map((k) => [k, v1[k] - v0[k]]));
    const pages = zones.reduce((s, z) => s + z.pagesMigrated, 0);
    const wall = zones.reduce((s, z) => s + z.wallSeconds, 0);
    const cpu = zones.reduce((s, z) => s + z.cpuSeconds, 0);
    const bytesPerSec = wall > 0 ? (pages * PAGE_SIZE) / wall : 0;
    const rawBytesPerSec = pages > 0 ? new Reference().pass(pages * PAGE_SIZE, PAGE_SIZE) : 0;
    if (svgFile) {
      writeFileSync(
        svgFile,
        renderZoneMapsSvg([before, after], { titles: ['before compaction', 'after compaction'] }),
      );
    }
    const maps = {
      before: {
        text: zoneMapText(before, columns),
        blocks: zoneMapCounts(before),
        freeHugeBlocks: before.freeHugeBlocks,
      },
      after: {
        text: zoneMapText(after, columns),
        blocks: zoneMapCounts(after),
        freeHugeBlocks: after.freeHugeBlocks,
      },
    };
    frag.release();
    bar.tick();
    bar.stop();
    const summary = {
      machine: describeMachine(mc).json,
      config: file,
      migrator: { id: choice.id, options: choice.options, routes: wired.routes },
      // What each wired migrator did: with two instances of one driver, which one copied.
      offload: m.offload.status().map((st) => ({
        name: st.name,
        reasons: st.reasons,
        isDefault: st.isDefault,
        batches: st.batches,
        foliosOffered: st.foliosOffered,
        foliosCopied: st.foliosCopied,
        failures: st.failures,
      })),
      node: nid,
      zones: zones.map((z) => ({
        zone: z.zone,
        status: z.status,
        pagesMigrated: z.pagesMigrated,
        pagesFailed: z.pagesFailed,
        wallSeconds: z.wallSeconds,
        cpuSeconds: z.cpuSeconds,
        batchCopySeconds: z.batchCopySeconds,
      })),
      pagesMigrated: pages,
      wallSeconds: wall,
      cpuSeconds: cpu,
      bytesPerSec,
      rawBytesPerSec,
      ratio: rawBytesPerSec > 0 ? bytesPerSec / rawBytesPerSec : 0,
      counters,
      maps,
      verified: true,
      svg: svgFile,
    };
    if (o.json) {
      emitJson(io, 'compact', { ok: true, ...summary, ...(timeline ? { timeline } : {}) });
      return;
    }
    const mapLegend = "'.' free, 'm' movable, 'U' unmovable, 'x' mixed; one character per 2MiB pageblock";
    io.stdout.write(`node ${nid} before compaction (${mapLegend}):\n${maps.before.text}`);
    io.stdout.write(`after:\n${maps.after.text}`);
    io.stdout.write(
      renderTable(
        [
          'zone',
          'status',
          { header: 'pages migrated', align: 'right' },
          { header: 'wall ms', align: 'right' },
          { header: 'engine CPU ms', align: 'right' },
          { header: 'GB/s', align: 'right' },
          { header: 'raw copy GB/s', align: 'right' },
          { header: 'x raw', align: 'right' },
        ],
        zones.map((z) => [
          z.zone,
          z.status,
          z.pagesMigrated,
          (z.wallSeconds * 1000).toFixed(1),
          (z.cpuSeconds * 1000).toFixed(1),
          gbps(bytesPerSec),
          gbps(rawBytesPerSec),
          summary.ratio.toFixed(2),
        ]),
      ),
    );
    io.stdout.write(
      renderTable(
        ['', 'free blocks', 'movable', 'unmovable', 'mixed', 'free order-9 blocks'].map((h, i) => ({
          header: h,
          align: i ? ('right' as const) : ('left' as const),
        })),
        [
          [
            'before',
            maps.before.blocks.free,
            maps.before.blocks.movable,
            maps.before.blocks.unmovable,
            maps.before.blocks.mixed,
            maps.before.freeHugeBlocks,
          ],
          [
            'after',
            maps.after.blocks.free,
            maps.after.blocks.movable,
            maps.after.blocks.unmovable,
            maps.after.blocks.mixed,
            maps.after.freeHugeBlocks,
          ],
        ],
      ),
    );
    io.stdout.write(renderTable(['counter', { header: 'delta', align: 'right' }], Object.entries(counters)));
    io.stdout.write(`every kept page verified${svgFile ? `; zone map written to ${svgFile}` : ''}\n`);
    if (timeline) io.stdout.write(timelineLine(timeline));
  } finally {
    bar.stop();
    await kd.stop();
    await m.close();
  }
}
