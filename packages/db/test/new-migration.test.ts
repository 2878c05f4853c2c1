import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrationTimestamp, NewMigrationError, newMigration, writeMigration } from '../src/new-migration.ts';
import { rejection, SCHEMA_PATH } from './helpers.ts';

const run = promisify(execFile);
const schema = await readFile(SCHEMA_PATH, 'utf8');
const withTags = schema.replace(/^( {2}pausedAt .*\n)/m, '$1  tags String[] @default([])\n');
const ADD_TAGS_SQL =
  '-- AlterTable\nALTER TABLE "jobs" ADD COLUMN     "tags" TEXT[] DEFAULT ARRAY[]::TEXT[];\n';
const NOW = new Date('2026-11-21T09:08:07.654Z');

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chronos-new-migration-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeMigration', () => {
  it('writes <UTC timestamp>_<name>/migration.sql with the SQL for an added column, and the lock file', async () => {
    expect(withTags).not.toBe(schema);
    const migrationsDir = join(dir, 'migrations');

    const written = await writeMigration({
      name: 'add_job_tags',
      fromSchema: schema,
      toSchema: withTags,
      migrationsDir,
      now: NOW,
    });

    expect(written.name).toBe('20261121090807_add_job_tags');
    expect(written.path).toBe(join(migrationsDir, '20261121090807_add_job_tags', 'migration.sql'));
    expect(await readFile(written.path, 'utf8')).toBe(ADD_TAGS_SQL);
    expect(await readFile(join(migrationsDir, 'migration_lock.toml'), 'utf8')).toContain(
      'provider = "postgresql"',
    );
  });

  it('keeps an existing lock file as it is', async () => {
    await writeFile(join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
    await writeMigration({
      name: 'add_job_tags',
      fromSchema: schema,
      toSchema: withTags,
      migrationsDir: dir,
      now: NOW,
    });
    expect(await readFile(join(dir, 'migration_lock.toml'), 'utf8')).toBe('provider = "postgresql"\n');
  });

  it('refuses when the schema did not change, pointing at --empty for hand-written SQL', async () => {
    const error = await rejection(
      writeMigration({ name: 'nothing', fromSchema: schema, toSchema: schema, migrationsDir: dir, now: NOW }),
    );
    expect(error).toBeInstanceOf(NewMigrationError);
    expect(error.message).toMatch(/^schema\.prisma has no changes to migrate\..*--empty/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('writes a migration holding only a comment when an empty one is asked for', async () => {
    const written = await writeMigration({
      name: 'add_view_column',
      fromSchema: schema,
      toSchema: schema,
      migrationsDir: dir,
      now: NOW,
      allowEmpty: true,
    });
    const sql = await readFile(written.path, 'utf8');
    expect(sql.split('\n').filter((line) => line !== '' && !line.startsWith('--'))).toEqual([]);
  });

  it.each(['Add_Tags', 'add-tags', 'add tags', '', '_add', 'add__tags', '../escape', 'a'.repeat(101)])(
    'refuses the name %j',
    async (name) => {
      const error = await rejection(
        writeMigration({ name, fromSchema: schema, toSchema: withTags, migrationsDir: dir, now: NOW }),
      );
      expect(error).toBeInstanceOf(NewMigrationError);
      expect(error.message).toMatch(/^bad migration name .*snake_case/);
      expect(await readdir(dir)).toEqual([]);
    },
  );

  it('refuses a migration that would sort before an existing one, and never overwrites one', async () => {
    await mkdir(join(dir, '20261121090807_add_job_tags'));
    await mkdir(join(dir, '20991231000000_future'));
    for (const name of ['add_job_tags', 'later']) {
      const error = await rejection(
        writeMigration({ name, fromSchema: schema, toSchema: withTags, migrationsDir: dir, now: NOW }),
      );
      expect(error).toBeInstanceOf(NewMigrationError);
      expect(error.message).toContain('20991231000000_future');
    }
  });

  it('names folders by UTC time, whatever the local zone', () => {
    expect(migrationTimestamp(new Date('2026-01-02T03:04:05.999+09:00'))).toBe('20260101180405');
  });
});

describe('newMigration in a git repository', () => {
  const git = (...args: string[]) =>
    run('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], { cwd: dir });

  beforeEach(async () => {
    await git('init', '--quiet');
    await mkdir(join(dir, 'prisma', 'migrations'), { recursive: true });
  });

  it('diffs from an empty database while HEAD has no schema yet', async () => {
    await writeFile(join(dir, 'prisma', 'schema.prisma'), schema);
    const written = await newMigration({ repoRoot: dir, name: 'init', now: NOW });
    expect(await readFile(written.path, 'utf8')).toMatch(/^-- CreateSchema\n/);
  });

  it('diffs the working schema.prisma against the one committed at HEAD', async () => {
    await writeFile(join(dir, 'prisma', 'schema.prisma'), schema);
    await git('add', '.');
    await git('commit', '--quiet', '-m', 'schema');
    await writeFile(join(dir, 'prisma', 'schema.prisma'), withTags);

    const written = await newMigration({ repoRoot: dir, name: 'add_job_tags', now: NOW });

    expect(written.name).toBe('20261121090807_add_job_tags');
    expect(await readFile(written.path, 'utf8')).toBe(ADD_TAGS_SQL);
  });

  it('refuses while another migration is uncommitted, since HEAD does not include its changes', async () => {
    await writeFile(join(dir, 'prisma', 'schema.prisma'), schema);
    await git('add', '.');
    await git('commit', '--quiet', '-m', 'schema');
    await writeFile(join(dir, 'prisma', 'schema.prisma'), withTags);
    await newMigration({ repoRoot: dir, name: 'add_job_tags', now: NOW });

    const error = await rejection(
      newMigration({ repoRoot: dir, name: 'more', now: new Date('2026-11-22T00:00:00Z') }),
    );
    expect(error).toBeInstanceOf(NewMigrationError);
    expect(error.message).toMatch(/^uncommitted migration 20261121090807_add_job_tags: commit it/);
  });
});
