// Applies prisma/migrations like `prisma migrate deploy`, through the WebAssembly schema engine
// (no native engine can be downloaded here), and diffs schema texts for new migrations.

import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiffTarget, MigrationList } from '@prisma/schema-engine-wasm/schema_engine_bg';
import pg from 'pg';
import { migrationAdapterFactory, offlineAdapterFactory } from './engine-adapters.ts';
import { NO_FILTERS, withSchemaEngine, type EngineLogEvent } from './schema-engine.ts';

/** The repository's `prisma/migrations`. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));

const LOCKFILE = 'migration_lock.toml';
const MIGRATION_FILE = 'migration.sql';

/** A migration could not be applied (or the database could not be prepared for it). */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  /** Prisma error code when the engine gave one (e.g. P3009: failed migrations in the database). */
  readonly code: string | undefined;

  constructor(message: string, options: { code?: string | undefined; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code;
  }
}

export interface MigrateOptions {
  /**
   * Folder of `<timestamp>_<name>/migration.sql` plus `migration_lock.toml`.
   * @defaultValue the repository's `prisma/migrations`
   */
  migrationsDir?: string;
  /** Receives progress lines: database created, each migration applied, engine warnings, summary. */
  log?: (line: string) => void;
}

export interface MigrateResult {
  /** Names of the migrations applied by this call, oldest first; empty when up to date. */
  applied: string[];
}

function databaseUrl(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function databaseName(url: string): string {
  const parsed = new URL(url);
  const name = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  return name === '' ? decodeURIComponent(parsed.username) : name;
}

/** A connection refused on every address of a host is an AggregateError with an empty message. */
function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.message === '' && error instanceof AggregateError) {
    return error.errors.map((inner: unknown) => errorMessage(inner)).join('; ');
  }
  return error.message;
}

function pgCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Creates the database named in `url` when it does not exist, through the `postgres` maintenance
 * database of the same server. Returns whether it created it.
 */
export async function ensureDatabase(url: string): Promise<boolean> {
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    return false;
  } catch (error) {
    if (pgCode(error) !== '3D000') throw error; // 3D000: invalid_catalog_name
  } finally {
    await probe.end().catch(() => undefined);
  }

  const admin = new pg.Client({ connectionString: databaseUrl(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(databaseName(url))}`);
    return true;
  } catch (error) {
    // Another process created it between the probe and here.
    if (pgCode(error) === '42P04' || pgCode(error) === '23505') return false;
    throw error;
  } finally {
    await admin.end();
  }
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (pgCode(error) === 'ENOENT') return null;
    throw error;
  }
}

/** Reads a migrations folder the way the Prisma CLI does before it calls the engine. */
export async function readMigrations(migrationsDir: string): Promise<MigrationList> {
  const baseDir = resolve(migrationsDir);
  let entries;
  try {
    entries = await readdir(baseDir, { withFileTypes: true });
  } catch (error) {
    throw new MigrationError(`no migrations folder at ${baseDir}`, { cause: error });
  }
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const migrationDirectories = await Promise.all(
    names.map(async (name) => {
      const path = join(baseDir, name, MIGRATION_FILE);
      const content = await readOptional(path);
      return {
        path: name,
        migrationFile: {
          path: MIGRATION_FILE,
          content:
            content === null
              ? { tag: 'error' as const, value: `${path} does not exist` }
              : { tag: 'ok' as const, value: content },
        },
      };
    }),
  );
  return {
    baseDir,
    lockfile: { path: LOCKFILE, content: await readOptional(join(baseDir, LOCKFILE)) },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/** The engine's errors carry a span trace after the message; keep the message, on one line. */
function engineError(error: unknown): MigrationError {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text.split('\n');
  const traceStart = lines.findIndex((line) => /^\s+\d+: /.test(line));
  const message = (traceStart === -1 ? lines : lines.slice(0, traceStart))
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'external connector error')
    .join(' ');
  const migration = /migration_name="([^"]+)"/.exec(text)?.[1];
  const code = (error as { code?: unknown } | null)?.code;
  return new MigrationError(migration === undefined ? message : `${migration}: ${message}`, {
    code: typeof code === 'string' ? code : undefined,
    cause: error,
  });
}

/** The engine's progress worth a line: which migration it applies, and warnings and errors. */
function engineLogLine(event: EngineLogEvent): string | undefined {
  const applying = /^Applying `(.+)`$/.exec(event.message);
  if (applying !== null) return `applying ${applying[1] ?? ''}`;
  if (event.level === 'WARN' || event.level === 'ERROR')
    return `schema engine ${event.level.toLowerCase()}: ${event.message}`;
  return undefined;
}

/**
 * Applies the migrations of `migrationsDir` that the database has not applied yet, recording them in
 * `_prisma_migrations` exactly like `prisma migrate deploy` (same engine, same table, same
 * checksums). Creates the database first when it does not exist. Safe to call on every start:
 * an up-to-date database is left untouched, and concurrent callers are serialised by the
 * engine's advisory lock.
 */
export async function migrate(url: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const log = options.log ?? (() => undefined);
  if (!URL.canParse(url) || !/^postgres(ql)?:$/.test(new URL(url).protocol)) {
    // The URL itself stays out of the message: it may hold a password.
    throw new MigrationError('the database URL is not a postgresql://user@host:port/database URL');
  }
  const migrations = await readMigrations(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);

  try {
    if (await ensureDatabase(url)) log(`created database ${databaseName(url)}`);
  } catch (error) {
    throw new MigrationError(`cannot prepare database ${databaseName(url)}: ${errorMessage(error)}`, {
      cause: error,
    });
  }

  // One connection: the engine's advisory lock, the scripts and the bookkeeping share a session,
  // as with the native engine, and closing the pool releases the lock.
  const pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'chronos-migrate' });
  pool.on('error', () => undefined); // an idle client's error surfaces on the next query
  try {
    const { appliedMigrationNames } = await withSchemaEngine(
      {
        adapterFactory: migrationAdapterFactory(pool),
        onLog: (event) => {
          const line = engineLogLine(event);
          if (line !== undefined) log(line);
        },
      },
      (engine) => engine.applyMigrations({ migrationsList: migrations, filters: NO_FILTERS }),
    ).catch((error: unknown) => {
      throw engineError(error);
    });
    log(
      appliedMigrationNames.length === 0
        ? 'no pending migrations'
        : `applied ${appliedMigrationNames.length} migration(s): ${appliedMigrationNames.join(', ')}`,
    );
    return { applied: appliedMigrationNames };
  } finally {
    await pool.end();
  }
}

function datamodel(schemaText: string): DiffTarget {
  return { tag: 'schemaDatamodel', files: [{ path: 'schema.prisma', content: schemaText }] };
}

/**
 * The SQL that turns a database of schema `from` (`null`: an empty database) into one of schema
 * `to`, or `''` when they describe the same database. Pure: both sides are Prisma schema texts and
 * no database is read. Views, CHECK constraints and partial indexes live in migration SQL, not in
 * the schema language, so they never appear here.
 */
export async function diffSchemas(from: string | null, to: string): Promise<string> {
  const result = await withSchemaEngine({ adapterFactory: offlineAdapterFactory() }, (engine) =>
    engine.diff({
      from: from === null ? { tag: 'empty' } : datamodel(from),
      to: datamodel(to),
      script: true,
      exitCode: true,
      filters: NO_FILTERS,
    }),
  );
  // With exitCode requested, the engine answers 2 for a non-empty diff and 0 for an empty one.
  return result.exitCode === 2 ? (result.stdout ?? '') : '';
}
