import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient, type Prisma } from './generated/prisma/client.ts';

export interface CreateDbOptions {
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
   * Prisma log levels emitted on stdout.
   * @defaultValue none
   */
  log?: Prisma.LogLevel[];
}

/** The Prisma client of Chronos. */
export type Db = PrismaClient;

/**
 * A Prisma client over `@prisma/adapter-pg` for `url`. Nothing connects until the first query;
 * `db.$disconnect()` closes the pool.
 */
export function createDb(url: string, options: CreateDbOptions = {}): Db {
  const adapter = new PrismaPg({
    connectionString: url,
    max: options.maxConnections,
    application_name: options.applicationName,
  });
  return new PrismaClient({ adapter, log: options.log ?? [] });
}
