// Leaving the shared PostgreSQL and Redis as they were: other work uses both while this runs.

import type { Redis } from 'ioredis';
import pg from 'pg';

/** `url` with its database replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Drops a benchmark database, ending sessions still connected to it. */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Deletes every key under `<prefix>:` with SCAN + UNLINK (never FLUSHALL); returns how many. */
export async function deleteKeysByPrefix(redis: Redis, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new Error(`refusing to delete keys of prefix "${prefix}"`);
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
