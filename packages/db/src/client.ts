import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient, type Prisma } from './generated/prisma/client.ts';

export interface CreatePoolOptions {
  /**
   * Most connections the pool opens.
   * @defaultValue 10 (pg's default)
   */
  maxConnections?: number;
  /**
   * `application_name` of the connections, shown in `pg_stat_activity`.
   * @defaultValue none
   */
  applicationName?: string;
  /**
   * Server settings of every connection of the pool (sent at connect, like libpq's `options`), e.g.
   * `{ plan_cache_mode: 'force_generic_plan' }`.
   * @defaultValue none
   */
  settings?: Readonly<Record<string, string>>;
  /**
   * An idle connection of the pool failed — PostgreSQL restarted, failed over or cut it. The pool
   * has already dropped it and opens a new one for the next query; this only tells (log it).
   * Without a listener such an error would be thrown as an unhandled 'error' event and end the
   * process, so the pool always has one.
   * @defaultValue ignore
   */
  onConnectionError?: (err: Error) => void;
}

export interface CreateDbOptions extends CreatePoolOptions {
  /**
   * Prisma log levels emitted on stdout.
   * @defaultValue none
   */
  log?: Prisma.LogLevel[];
}

/** The Prisma client of Chronos. */
export type Db = PrismaClient;

/** A `pg` pool, for hot paths that send their own (prepared) statements. */
export type Pool = pg.Pool;

/** A `pg` pool for `url`. Nothing connects until the first query; `pool.end()` closes it. */
export function createPool(url: string, options: CreatePoolOptions = {}): Pool {
  const settings = Object.entries(options.settings ?? {});
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections,
    application_name: options.applicationName,
    // A PostgreSQL that stops answering without refusing (a network cut) would otherwise hold callers
    // without end; they get an error isDatabaseUnavailable classifies.
    connectionTimeoutMillis: 10_000,
    // TCP keepalive: a connection whose peer vanished is noticed and dropped.
    keepAlive: true,
    // libpq's `options`: space-separated, a space or backslash inside a value escaped with "\\".
    ...(settings.length > 0
      ? { options: settings.map(([k, v]) => `-c ${k}=${v.replace(/[\\ ]/g, '\\$&')}`).join(' ') }
      : {}),
  });
  const onError = options.onConnectionError ?? (() => {});
  pool.on('error', (err) => onError(err));
  return pool;
}

/**
 * A Prisma client over `@prisma/adapter-pg` for `url`. Nothing connects until the first query;
 * `db.$disconnect()` closes the pool.
 */
export function createDb(url: string, options: CreateDbOptions = {}): Db {
  const adapter = new PrismaPg(createPool(url, options), { disposeExternalPool: true });
  return new PrismaClient({ adapter, log: options.log ?? [] });
}
