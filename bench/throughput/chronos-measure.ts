// Chronos end to end: ledger rows QUEUED in a fresh database, enqueued with `enqueueRuns`, drained by
// one real worker process (apps/worker/src/main.ts) until Postgres shows them all finished.

import { loadavg } from 'node:os';
import { createDb, type Db } from '@chronos/db';
import { enqueueRuns, recordSlots, type EnqueueItem, type SlotRecord } from '@chronos/engine';
import { closeQueues, createQueues, createRedis } from '@chronos/queue';
import pg from 'pg';
import { deleteKeysByPrefix } from '../scheduler/cleanup.ts';
import { startChild, type Child } from './child.ts';
import { redisCpuSeconds, processCpuSeconds, sumCpuSeconds } from './cpu.ts';
import { drainRate, timeDrain, type Sample } from './drain.ts';
import type { Template } from './fixture.ts';
import type { Measurement, MeasureOptions } from './measurement.ts';

export interface ChronosMeasureOptions extends MeasureOptions {
  template: Template;
  /** The runs go round robin to the template's first `jobs` jobs (1: every run on one job). */
  jobs: number;
}

/** An S3 endpoint nothing listens on (port 9, discard). */
const NO_OBJECT_STORAGE = 'http://127.0.0.1:9';

/** Rows per recordSlots statement and jobs per addBulk. */
const CHUNK = 5_000;

async function queueBacklog(db: Db, jobIds: readonly string[], backlog: number): Promise<EnqueueItem[]> {
  const now = new Date();
  const items: EnqueueItem[] = [];
  for (let from = 0; from < backlog; from += CHUNK) {
    // MANUAL (a "run now"): a SCHEDULED run that waited over the misfire threshold in the backlog
    // would be collapsed by the misfire policy, which is correct behaviour but not throughput.
    const slots: SlotRecord[] = Array.from({ length: Math.min(CHUNK, backlog - from) }, (_, k) => ({
      jobId: jobIds[(from + k) % jobIds.length] as string,
      key: `tp-${from + k}`,
      status: 'QUEUED',
      trigger: 'MANUAL',
      scheduledTime: now,
      dueAt: now,
      reason: null,
      definitionVersion: 1,
    }));
    const rows = await db.$transaction((tx) => recordSlots(tx, slots));
    for (const r of rows)
      items.push({
        type: 'DUMMY',
        runId: r.id,
        jobId: r.job_id,
        jobName: 'throughput',
        key: r.idempotency_key,
        scheduledTime: r.scheduled_time,
        dueAt: r.due_at,
      });
  }
  if (items.length !== backlog) throw new Error(`recorded ${items.length} of ${backlog} runs`);
  return items;
}

export async function measureChronos(opts: ChronosMeasureOptions): Promise<Measurement> {
  const prefix = `chronos-bench-tp-${opts.label}`;
  const database = await opts.template.clone(opts.label);
  const redis = createRedis(opts.redisUrl, { name: `chronos-bench-tp-producer-${opts.label}` });
  const queues = createQueues({ connection: redis, prefix, types: ['DUMMY'] });
  const db = createDb(database.url, { maxConnections: 2, applicationName: 'chronos-bench-tp-seed' });
  let monitor: pg.Client | undefined;
  let worker: Child | undefined;
  try {
    const items = await queueBacklog(db, opts.template.jobIds.slice(0, opts.jobs), opts.backlog);
    await db.$disconnect();
    const enqueueStart = Date.now();
    for (let i = 0; i < items.length; i += CHUNK)
      await enqueueRuns(queues, items.slice(i, i + CHUNK), Date.now());
    const enqueueMs = Date.now() - enqueueStart;

    monitor = new pg.Client({ connectionString: database.url, application_name: 'chronos-bench-tp-monitor' });
    await monitor.connect();
    const client = monitor;
    worker = startChild(
      {
        label: `worker c=${opts.concurrency}`,
        entry: 'apps/worker/src/main.ts',
        env: {
          DATABASE_URL: database.url,
          REDIS_URL: opts.redisUrl,
          REDIS_PREFIX: prefix,
          WORKER_TYPES: 'DUMMY',
          WORKER_CONCURRENCY: String(opts.concurrency),
          WORKER_ID: `chronos-bench-tp-worker-${opts.label}`,
          LOG_LEVEL: 'warn',
          SHUTDOWN_GRACE_SECONDS: '5',
          // No object storage (a closed port): the worker then keeps no run context documents. Their
          // upload happens behind the run, and on this machine the S3 server would share its CPU;
          // what is measured here is the run's way through the queue and Postgres.
          S3_ENDPOINT: NO_OBJECT_STORAGE,
        },
      },
      opts.log,
    );
    const child = worker;
    const read = async (): Promise<Sample> => {
      // The partial indexes of QUEUED and of RUNNING runs answer this; it shrinks as the drain goes on.
      const { rows } = await client.query<{ left: number; pids: number[] | null }>(
        `SELECT ((SELECT count(*) FROM job_runs WHERE status = 'QUEUED')
                 + (SELECT count(*) FROM job_runs WHERE status = 'RUNNING'))::int AS left,
                (SELECT array_agg(pid) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()) AS pids`,
      );
      const t = Date.now();
      const [w, p, r] = await Promise.all([
        processCpuSeconds(child.pid),
        sumCpuSeconds(rows[0]?.pids ?? []),
        redisCpuSeconds(opts.admin),
      ]);
      return {
        t,
        done: opts.backlog - (rows[0]?.left ?? opts.backlog),
        failed: 0,
        cpu: { worker: w, postgres: p, redis: r },
      };
    };
    const drain = await timeDrain(read, {
      total: opts.backlog,
      warmupMs: opts.warmupMs,
      ...(opts.stopAfterMs === undefined ? {} : { stopAfterMs: opts.stopAfterMs }),
      aborted: () =>
        child.exited ? `the worker exited: ${child.tail().slice(-5).join(' | ') || 'no output'}` : undefined,
      signal: opts.signal,
    });
    const load1 = loadavg()[0] ?? Number.NaN;
    await worker.stop();
    worker = undefined;
    const { rows } = await client.query<{ failed: number }>(
      `SELECT count(*)::int AS failed FROM job_runs WHERE status NOT IN ('QUEUED', 'RUNNING', 'SUCCESS')`,
    );
    return {
      system: 'Chronos',
      concurrency: opts.concurrency,
      jobs: opts.jobs,
      backlog: opts.backlog,
      drain,
      rate: drainRate(drain),
      enqueueMs,
      failed: rows[0]?.failed ?? 0,
      load1,
    };
  } finally {
    await worker?.stop(5_000);
    await closeQueues(queues).catch(() => undefined);
    redis.disconnect();
    await monitor?.end().catch(() => undefined);
    await db.$disconnect().catch(() => undefined);
    await database.drop();
    const n = await deleteKeysByPrefix(opts.admin, prefix);
    opts.log(`    dropped ${database.name}, deleted ${n} Redis keys under ${prefix}:`);
  }
}
