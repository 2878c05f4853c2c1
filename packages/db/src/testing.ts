// Test support for packages that need a real, migrated Chronos database (import
// `@chronos/db/testing` from tests only).

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, type Db } from './client.ts';
import { migrate } from './migrate.ts';

/**
 * The PostgreSQL server test databases are created on (its `postgres` database serves CREATE and
 * DROP): `CHRONOS_TEST_POSTGRES_URL`, else the local server.
 */
export function testServerUrl(): string {
  return process.env['CHRONOS_TEST_POSTGRES_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
}

export interface TestDatabase {
  /** `chronos_test_<label>_<random>` */
  name: string;
  url: string;
  /** A client over `url`, disconnected by `drop()`. */
  db: Db;
  /** Disconnects `db` and drops the database, ending any session still connected to it. */
  drop(): Promise<void>;
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Drops `name` on the test server, closing other sessions on it first. */
export async function dropTestDatabase(name: string, serverUrl = testServerUrl()): Promise<void> {
  const admin = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * A new database named after `label` (one per test file, so files can run in parallel), migrated
 * with the repository's migrations. Call `drop()` in `afterAll`.
 */
export async function createTestDatabase(
  label: string,
  options: { serverUrl?: string; migrationsDir?: string } = {},
): Promise<TestDatabase> {
  const serverUrl = options.serverUrl ?? testServerUrl();
  const slug = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30);
  const name = `chronos_test_${slug}_${randomBytes(4).toString('hex')}`;
  const url = withDatabase(serverUrl, name);
  await migrate(url, options.migrationsDir === undefined ? {} : { migrationsDir: options.migrationsDir });
  const db = createDb(url, { maxConnections: 5, applicationName: `chronos-test-${slug}` });
  return {
    name,
    url,
    db,
    async drop() {
      await db.$disconnect();
      await dropTestDatabase(name, serverUrl);
    },
  };
}
