import type { Db } from '@chronos/db';
import { readSchedulerSkews, type QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The API's Prometheus registry and its HTTP instrumentation. */
export interface Metrics {
  registry: Registry;
  /** Observes every request by method, route pattern (not the raw URL) and status. */
  http: RequestHandler;
  /** Requests counted against API_MAX_IN_FLIGHT now, and requests refused for it. */
  load: { inFlight: Gauge; shed: Counter };
}

/**
 * The matched route's pattern with its mount path (`/api/v1/jobs/:id`: bounded label cardinality,
 * unlike the raw URL). Captured at the moment the router sets `req.route`, because when an error
 * leaves a mounted router Express restores `req.baseUrl` to the parent's before the problem
 * response is written: read at 'finish', errors would be labelled `/jobs/:id`.
 */
function matchedRoute(req: Request): () => string | undefined {
  let route: Request['route'];
  let pattern: string | undefined;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set(value: Request['route']) {
      route = value;
      pattern = value ? `${req.baseUrl}${String(value.path)}` : undefined;
    },
  });
  return () => pattern;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chronos_api_' });
  const requests = new Histogram({
    name: 'chronos_http_request_duration_seconds',
    help: 'HTTP requests by method, route and status, with latency',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const http: RequestHandler = (req, res, next) => {
    const end = requests.startTimer();
    const route = matchedRoute(req);
    res.on('finish', () => {
      // A live log stream lasts as long as its run: it would only distort the latency buckets.
      if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) return;
      end({ method: req.method, route: route() ?? 'unmatched', status: String(res.statusCode) });
    });
    next();
  };
  const load = {
    inFlight: new Gauge({
      name: 'chronos_http_requests_in_flight',
      help: 'Requests being served, counted against API_MAX_IN_FLIGHT (probes and open log streams are not)',
      registers: [registry],
    }),
    shed: new Counter({
      name: 'chronos_http_requests_shed_total',
      help: 'Requests answered 503 at once because API_MAX_IN_FLIGHT requests were being served',
      registers: [registry],
    }),
  };
  return { registry, http, load };
}

/** What the scrape-time collectors read. */
export interface JobMetricsSource {
  db: Db;
  queues: QueueSet;
  log: Logger;
  /** Where schedulers share their clock skew (see @chronos/queue `reportSchedulerSkew`). */
  redis: Redis;
  prefix: string;
}

/** Fire lateness covers runs that started within this window… */
export const LATENESS_WINDOW_MINUTES = 5;
/** …and whose slot is at most this old (bounds the scan through the scheduled_time index). */
const LATENESS_SLOT_HORIZON_MINUTES = 60;

/** BullMQ states reported per queue; `wait` + `prioritized` is the backlog workers have not taken. */
const QUEUE_STATES = [
  'wait',
  'prioritized',
  'active',
  'delayed',
  'waiting-children',
  'paused',
  'failed',
] as const;

interface TypeStats {
  type: string;
  total: number;
  success: number;
  failure: number;
  durationMs: number;
}

/** Totals per job type from job_stats: one row per job, so the cost follows the number of jobs, not runs. */
async function statsByType(db: Db): Promise<TypeStats[]> {
  return db.$queryRaw<TypeStats[]>`
    SELECT j.type::text AS type,
           SUM(s.total_executions)::float8 AS total,
           SUM(s.successful_executions)::float8 AS success,
           SUM(s.failed_executions)::float8 AS failure,
           SUM(s.total_duration_ms)::float8 AS "durationMs"
      FROM job_stats s JOIN jobs j ON j.id = s.job_id
     GROUP BY j.type`;
}

interface Lateness {
  runs: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
}

/**
 * How late runs started: start_time − due_at (the slot plus any intended jitter or retry backoff;
 * the slot itself when due_at is unset), over runs started in the last few minutes.
 */
async function fireLateness(db: Db): Promise<Lateness> {
  const [row] = await db.$queryRaw<Lateness[]>`
    SELECT COUNT(*)::int AS runs,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY late) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY late) AS p95,
           MAX(late) AS max
      FROM (SELECT EXTRACT(EPOCH FROM (start_time - COALESCE(due_at, scheduled_time)))::float8 AS late
              FROM job_runs
             WHERE scheduled_time >= now() - make_interval(mins => ${LATENESS_SLOT_HORIZON_MINUTES})
               AND start_time >= now() - make_interval(mins => ${LATENESS_WINDOW_MINUTES})) x`;
  return row ?? { runs: 0, p50: null, p95: null, max: null };
}

/** PostgreSQL's clock minus this process's, read at the midpoint of the round trip. */
async function databaseClockSkewMs(db: Db): Promise<number> {
  const t0 = Date.now();
  const [row] = await db.$queryRaw<{ now: Date }[]>`SELECT clock_timestamp() AS now`;
  const t1 = Date.now();
  return (row?.now.getTime() ?? t1) - (t0 + t1) / 2;
}

/**
 * One query per scrape for collectors that share it: a scrape starts every collector in the same
 * tick, so they join the query in flight; the next scrape starts a fresh one.
 */
function sharedPerScrape<T>(load: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () =>
    (inFlight ??= load().finally(() => {
      inFlight = undefined;
    }));
}

/**
 * Gauges computed at scrape time from PostgreSQL and BullMQ: runs by type and outcome, average run
 * duration, queue depth per type, fire lateness, DLQ size and the database clock skew. A collector
 * that fails leaves its gauge empty (not stale), counts the failure and logs it; the scrape goes on.
 * Registering twice on one registry is a no-op.
 */
export function registerJobMetrics(registry: Registry, src: JobMetricsSource): void {
  if (registry.getSingleMetric('chronos_runs_finished')) return;
  const { db, queues, log, redis, prefix } = src;
  const registers = [registry];
  const errors = new Counter({
    name: 'chronos_api_metrics_collect_errors_total',
    help: 'Scrape-time collectors that failed (their gauges are left empty for that scrape)',
    labelNames: ['collector'] as const,
    registers,
  });
  const guarded = (name: string, work: (gauge: Gauge) => Promise<void>) =>
    async function (this: Gauge) {
      this.reset();
      try {
        await work(this);
      } catch (err) {
        this.reset();
        errors.inc({ collector: name });
        log.warn({ err, collector: name }, 'metrics collector failed');
      }
    };
  const byType = sharedPerScrape(() => statsByType(db));
  const lateness = sharedPerScrape(() => fireLateness(db));

  new Gauge({
    name: 'chronos_runs_finished',
    help: 'Finished runs by job type and outcome (success, failure = failed or timed out, other = cancelled), over existing jobs',
    labelNames: ['type', 'outcome'] as const,
    registers,
    collect: guarded('runs', async (g) => {
      for (const s of await byType()) {
        g.set({ type: s.type, outcome: 'success' }, s.success);
        g.set({ type: s.type, outcome: 'failure' }, s.failure);
        g.set({ type: s.type, outcome: 'other' }, s.total - s.success - s.failure);
      }
    }),
  });

  new Gauge({
    name: 'chronos_run_duration_avg_seconds',
    help: 'Average duration of finished runs by job type',
    labelNames: ['type'] as const,
    registers,
    collect: guarded('run_duration', async (g) => {
      for (const s of await byType()) if (s.total > 0) g.set({ type: s.type }, s.durationMs / s.total / 1000);
    }),
  });

  new Gauge({
    name: 'chronos_queue_jobs',
    help: 'BullMQ jobs per job type queue and state (wait + prioritized = backlog; failed = runs that ended FAILURE or TIMEOUT, kept 7 days)',
    labelNames: ['type', 'state'] as const,
    registers,
    collect: guarded('queues', async (g) => {
      const counts = await Promise.all(
        [...queues].map(async ([type, queue]) => [type, await queue.getJobCounts(...QUEUE_STATES)] as const),
      );
      for (const [type, byState] of counts)
        for (const state of QUEUE_STATES) g.set({ type, state }, byState[state] ?? 0);
    }),
  });

  new Gauge({
    name: 'chronos_fire_lateness_seconds',
    help: `Start time minus due time of runs started in the last ${LATENESS_WINDOW_MINUTES} minutes (quantile 1 = max)`,
    labelNames: ['quantile'] as const,
    registers,
    collect: guarded('fire_lateness', async (g) => {
      const l = await lateness();
      for (const [quantile, value] of [
        ['0.5', l.p50],
        ['0.95', l.p95],
        ['1', l.max],
      ] as const)
        if (value !== null) g.set({ quantile }, value);
    }),
  });

  new Gauge({
    name: 'chronos_fire_lateness_runs',
    help: `Runs started in the last ${LATENESS_WINDOW_MINUTES} minutes (the sample of chronos_fire_lateness_seconds)`,
    registers,
    collect: guarded('fire_lateness_runs', async (g) => {
      g.set((await lateness()).runs);
    }),
  });

  new Gauge({
    name: 'chronos_dlq_pending',
    help: 'Dead-letter entries waiting for a decision (status PENDING)',
    registers,
    collect: guarded('dlq', async (g) => {
      g.set(await db.dlqEvent.count({ where: { status: 'PENDING' } }));
    }),
  });

  new Gauge({
    name: 'chronos_api_clock_skew_seconds',
    help: 'PostgreSQL clock minus this API process’s clock (the scheduler exports chronos_scheduler_clock_skew_ms on its own metrics port)',
    registers,
    collect: guarded('clock_skew', async (g) => {
      g.set((await databaseClockSkewMs(db)) / 1000);
    }),
  });

  new Gauge({
    // Not the scheduler's own metric name (each scheduler exports chronos_scheduler_clock_skew_ms on its
    // port), and not an `instance` label (Prometheus sets that one to the scraped target).
    name: 'chronos_scheduler_reported_clock_skew_ms',
    help: 'Database clock minus each scheduler’s clock in ms, as last reported by the scheduler (within a minute)',
    labelNames: ['scheduler'] as const,
    registers,
    collect: guarded('scheduler_skew', async (g) => {
      for (const [scheduler, ms] of await readSchedulerSkews(redis, prefix)) g.set({ scheduler }, ms);
    }),
  });
}
