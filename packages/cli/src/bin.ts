#!/usr/bin/env node

/**
 * The `pagemig` bin. Ctrl-C is caught before the commands load (that takes a while), so under
 * --json the one document comes whenever it is pressed. It exits explicitly: a driver's worker or
 * a timer left behind must not keep the command alive (stdout to files and pipes is synchronous on
 * Linux, so nothing written is lost).
 */
function main(): void {
  const args = process.argv.slice(2);
  const program = import('./program.js');
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      void program.then(({ interrupted }) => process.exit(interrupted(args, signal)));
    });
  program
    .then(({ runCli }) => runCli(args))
    .then(
      (code) => process.exit(code),
      (e: unknown) => {
        process.stderr.write(`pagemig: internal error: ${(e as Error)?.stack ?? e}\n`);
        process.exit(1);
      },
    );
}

main();
