// pnpm db:migration <name> [--empty] — writes prisma/migrations/<timestamp>_<name>/migration.sql
// from the difference between prisma/schema.prisma at git HEAD and the working file.

import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newMigration } from '../src/new-migration.ts';

const USAGE = 'usage: pnpm db:migration <name> [--empty]   (name in snake_case, e.g. add_job_tags)';
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

function fail(message: string): void {
  console.error(`db:migration: ${message}`);
  process.exitCode = 1;
}

const args = process.argv.slice(2).filter((arg) => arg !== '--');
const flags = args.filter((arg) => arg.startsWith('-'));
const names = args.filter((arg) => !arg.startsWith('-'));
const unknown = flags.filter((flag) => flag !== '--empty');

if (unknown.length > 0) fail(`unknown option ${unknown.join(' ')}\n${USAGE}`);
else if (names.length !== 1 || names[0] === undefined) fail(`expected one migration name\n${USAGE}`);
else {
  try {
    const written = await newMigration({ repoRoot, name: names[0], allowEmpty: flags.includes('--empty') });
    console.log(`wrote ${relative(repoRoot, written.path)}`);
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
}
