// The databases of a benchmark run: one template migrated with `migrate()` and holding the DUMMY
// jobs (made with `createJob`, as the API makes them), cloned into a fresh database per measurement.

import { createDb, migrate } from '@chronos/db';
import { newId } from '@chronos/core';
import { createJob } from '@chronos/engine';
import { closeQueues, createQueues } from '@chronos/queue';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { dropDatabase, withDatabase } from '../scheduler/cleanup.ts';

export interface BenchDatabase {
  name: string;
  url: string;
  /** Drops it, ending sessions still connected. */
  drop(): Promise<void>;
}

export interface Template extends BenchDatabase {
  /** The jobs in the template (and so in every clone), oldest first. */
  jobIds: string[];
  /**
   * A new database `chronos_bench_tp_<label>` copied from the template (`CREATE DATABASE …
   * TEMPLATE`: a file copy, about a second, instead of migrating and seeding again).
   */
  clone(label: string): Promise<BenchDatabase>;
}

export interface TemplateOptions {
  /** A URL of the PostgreSQL server (its `postgres` database creates and drops ours). */
  serverUrl: string;
  /** Unique per benchmark run: names the databases. */
  tag: string;
  jobs: number;
  /** For `createJob`'s change announcement (pub/sub only: it writes no key). */
  redis: Redis;
  log: (line: string) => void;
}

/** createJob calls in flight while seeding. */
const SEED_PARALLEL = 8;

async function admin<T>(serverUrl: string, f: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await client.connect();
  try {
    return await f(client);
  } finally {
    await client.end();
  }
}

/**
 * A migrated database with one owner and `jobs` DUMMY jobs, overlap policy ALLOW_ALL (the overlap
 * gate would otherwise defer or skip a job's concurrent runs: that is policy, not throughput) and a
 * yearly cron schedule that never fires during the benchmark (no scheduler runs anyway).
 */
export async function createTemplate(opts: TemplateOptions): Promise<Template> {
  const name = `chronos_bench_tp_${opts.tag}_tpl`;
  const url = withDatabase(opts.serverUrl, name);
  const started = Date.now();
  await migrate(url);
  const db = createDb(url, { maxConnections: SEED_PARALLEL, applicationName: 'chronos-bench-tp-seed' });
  const prefix = `chronos-bench-tp-${opts.tag}-seed`;
  const queues = createQueues({ connection: opts.redis, prefix, types: ['DUMMY'] });
  const jobIds: string[] = [];
  try {
    const ownerId = newId();
    await db.$executeRaw`
      INSERT INTO users (id, email, password_hash, display_name, updated_at)
      VALUES (${ownerId}, 'bench@chronos.invalid', 'not-a-hash', 'benchmark', now())`;
    let next = 0;
    const ids: (string | undefined)[] = new Array<string | undefined>(opts.jobs);
    await Promise.all(
      Array.from({ length: SEED_PARALLEL }, async () => {
        for (let i = next++; i < opts.jobs; i = next++) {
          const { id } = await createJob(
            { db, queues, redis: opts.redis, prefix },
            {
              ownerId,
              name: `throughput-${i}`,
              type: 'DUMMY',
              overlapPolicy: 'ALLOW_ALL',
              schedule: { type: 'CRON', cronExpression: '0 0 1 1 *', timezone: 'UTC' },
            },
          );
          ids[i] = id;
        }
      }),
    );
    jobIds.push(...ids.map((id) => id as string));
    await db.$executeRaw`ANALYZE`;
  } finally {
    await closeQueues(queues).catch(() => undefined);
    await db.$disconnect();
  }
  opts.log(
    `template ${name}: migrated, ${opts.jobs} DUMMY jobs created in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  const drop = () => dropDatabase(opts.serverUrl, name);
  return {
    name,
    url,
    jobIds,
    drop,
    async clone(label) {
      const cloneName = `chronos_bench_tp_${label.replace(/-/g, '_')}`;
      await admin(opts.serverUrl, (c) =>
        c.query(`CREATE DATABASE ${pg.escapeIdentifier(cloneName)} TEMPLATE ${pg.escapeIdentifier(name)}`),
      );
      return {
        name: cloneName,
        url: withDatabase(opts.serverUrl, cloneName),
        drop: () => dropDatabase(opts.serverUrl, cloneName),
      };
    },
  };
}
