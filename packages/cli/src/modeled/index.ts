import { listProfiles } from '@pagemig/core/timing';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { runModeledBench } from './bench.js';
import { runCalibrate } from './calibrate.js';
import { defaultIo, type ModeledIo } from './output.js';
import { type PredictOptions, runPredict, SCENARIOS } from './predict.js';

export { runModeledBench };

function int(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER
          ? `${name} must be an integer >= ${min}`
          : `${name} must be an integer from ${min} to ${max}`,
      );
    return n;
  };
}

/** Copy threads and DMA channels a prediction models: the model keeps per-thread state. */
const MAX_COPIERS = 1024;

const profiles = () => `${listProfiles().join(', ')}, or a profile .json file`;

/** Where the commands write and how they report their exit code (pagemig's CommandContext fits). */
export interface ModeledContext {
  io?: ModeledIo;
  exit?(code: number): void;
}

/** Adds `pagemig calibrate` and `pagemig predict` (modeled clock). Default: process streams and exitCode. */
export function registerModeledCommands(program: Command, ctx: ModeledContext = {}): void {
  const io = ctx.io ?? defaultIo();
  const exit =
    ctx.exit ??
    ((code: number) => {
      process.exitCode = code;
    });
  program
    .command('calibrate')
    .description(
      'fit a hardware profile to measurements (published or --data) and print the fit; modeled clock',
    )
    .requiredOption('--profile <name|file.json>', `required: the profile to start from: ${profiles()}`)
    .option(
      '--data <file.json>',
      'measurements (schemaVersion 1); default: the published tables of the profile (zen3-epyc-ptdma has them; other profiles need --data)',
    )
    .option('--free <paths>', "comma-separated parameters to fit, e.g. 'kernel.perFolioNs,cpu.ccdGBps'")
    .option('--out <file.json>', 'write the fitted profile')
    .option('--json', 'one JSON document', false)
    .addHelpText(
      'after',
      `\nExamples:\n  $ pagemig calibrate --profile zen3-epyc-ptdma\n  $ pagemig calibrate --profile dram-cxl --data measurements.json --free kernel.perFolioNs --out fitted.json\n`,
    )
    .action(async (o) => exit(await runCalibrate(o, io)));
  program
    .command('predict')
    .description('predict a migration nobody measured, with its assumptions; modeled clock')
    .addOption(new Option('--scenario <name>', 'a named prediction').choices(Object.keys(SCENARIOS)))
    .option('--profile <name|file.json>', `hardware profile: ${profiles()}`, 'zen3-epyc-ptdma')
    .option('--folio <size>', 'folio size: a multiple of 4KiB up to 2MiB', '2MiB')
    .option('--total <size>', 'bytes migrated (a positive multiple of the folio size)', '1GiB')
    .addOption(
      new Option('--copier <kind>', 'who copies').choices(['kernel', 'threads', 'dma']).default('dma'),
    )
    .option('--threads <n>', 'copy threads', int('--threads', 1, MAX_COPIERS), 8)
    .addOption(
      new Option('--placement <how>', 'thread placement').choices(['spread', 'packed']).default('spread'),
    )
    .option('--engine <name>', 'DMA engine of the profile (default: its first)')
    .option('--channels <n>', 'DMA channels / contexts', int('--channels', 1, MAX_COPIERS), 8)
    .option('--batch-pages <n>', 'NR_MAX_BATCHED_MIGRATION in base pages', int('--batch-pages', 1), 512)
    .option('--from <node>', "source node (a node of the profile's machine)", int('--from'), 0)
    .option('--to <node>', 'target node (another node of the profile)', int('--to'), 1)
    .option('--json', 'one JSON document', false)
    .addHelpText(
      'after',
      `\nExamples:\n  $ pagemig predict --scenario mthp-sdxi\n  $ pagemig predict --profile dram-cxl --folio 64KiB --total 256MiB --copier dma --channels 4 --from 1 --to 0\n`,
    )
    .action(async (o: PredictOptions) => exit(await runPredict(o, io)));
}
