import { MigrateReason } from '@pagemig/core';
import { describe, expect, it } from 'vitest';
import { runMigratorConformance } from '../src/index.js';
import { atLeast64KiB, gatedMigrator } from './gated.js';

// Declining costs time, not data: a migrator whose gate declines part of what the suite builds
// passes every case, without `skip`. Cases that need copies use batches the gate accepts; those
// whose every batch it declines check the decline and the engine's CPU copy instead.
describe('a migrator that declines folios smaller than 64 KiB', () => {
  runMigratorConformance({ describe, it, expect, factory: () => gatedMigrator('from-64k', atLeast64KiB) });
});

describe('a migrator that declines the reason syscall_or_cpuset', () => {
  runMigratorConformance({
    describe,
    it,
    expect,
    factory: () => gatedMigrator('no-syscall', (_, reason) => reason !== MigrateReason.MR_SYSCALL),
  });
});

describe('a migrator that declines every batch', () => {
  runMigratorConformance({ describe, it, expect, factory: () => gatedMigrator('never', () => false) });
});
