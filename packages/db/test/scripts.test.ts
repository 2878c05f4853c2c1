import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { dropTestDatabase } from '../src/testing.ts';
import { freshDatabase, MIGRATIONS_DIR, withClient } from './helpers.ts';

const exec = promisify(execFile);
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a package script with tsx; resolves when the process exits by itself (the timeout fails it). */
async function script(file: string, args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', file, ...args], {
      cwd: PACKAGE_DIR,
      env: { ...process.env, ...env },
      timeout: 8_000, // the engine once held finished processes open for 10 s
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout: string; stderr: string; killed?: boolean };
    if (failed.killed === true) throw new Error(`${file} did not exit by itself`);
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      stdout: failed.stdout,
      stderr: failed.stderr,
    };
  }
}

describe('pnpm db:migrate', () => {
  const target = freshDatabase('cli');

  afterAll(async () => {
    await dropTestDatabase(target.name);
  });

  it('creates and migrates DATABASE_URL, prints what it applied and exits by itself', async () => {
    const first = await script('scripts/migrate.ts', [], { DATABASE_URL: target.url });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /^migrating .*\ncreated database \S+\napplying \d{14}_init\n(applying \d{14}_\w+\n)*applied \d+ migration\(s\): \d{14}_init(, \d{14}_\w+)*\n$/,
    );

    const second = await script('scripts/migrate.ts', [], { DATABASE_URL: target.url });
    expect(second.code).toBe(0);
    expect(second.stdout.split('\n').slice(1)).toEqual(['no pending migrations', '']);

    const count = await withClient(target.url, (client) =>
      client.query('SELECT count(*)::int AS n FROM _prisma_migrations'),
    );
    const migrations = (await readdir(MIGRATIONS_DIR)).filter((name) => /^\d{14}_/.test(name));
    expect(count.rows).toEqual([{ n: migrations.length }]);
  });

  it('fails with one line and a non-zero exit code when the server cannot be reached', async () => {
    const outcome = await script('scripts/migrate.ts', [], {
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/chronos',
    });
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toBe(
      'db:migrate failed: cannot prepare database chronos: connect ECONNREFUSED 127.0.0.1:1\n',
    );
  });
});

describe('pnpm db:migration', () => {
  it('refuses a bad name before looking at anything, with a non-zero exit code', async () => {
    const outcome = await script('scripts/new-migration.ts', ['Add-Tags']);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/^db:migration: bad migration name "Add-Tags": use snake_case/);
  });

  it('prints its usage when no name is given', async () => {
    const outcome = await script('scripts/new-migration.ts', []);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain('usage: pnpm db:migration <name> [--empty]');
  });
});
