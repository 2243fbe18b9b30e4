#!/usr/bin/env node
import { runCli } from './program.js';

// Exit explicitly: a driver's worker or a timer left behind must not keep the command alive
// (stdout to files and pipes is synchronous on Linux, so nothing written is lost).
runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`pagemig: internal error: ${(e as Error)?.stack ?? e}\n`);
    process.exit(1);
  },
);
