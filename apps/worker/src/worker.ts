import { hostname } from 'node:os';
import { openStorage } from '@chronos/storage';
import { createContextWriter, type ContextWriter } from './run-context-writer.ts';
import type { Config } from '@chronos/config';
import type { JobTypeName, Service } from '@chronos/core';
import { createDb, type Db, type Pool } from '@chronos/db';
import {
  cancelChannel,
  cancelsRequestedAmong,
  createRunRecorder,
  createRunRecorderPool,
  type RunRecorder,
} from '@chronos/engine';
import { createSecretBox, keyIdOf, parseEncryptionKey, settleWithin } from '@chronos/core';
import { CircuitBreakers } from '@chronos/executors';
import {
  closeQueues,
  createQueues,
  createRedis,
  createTypeWorkers,
  pingRedis,
  type QueueSet,
} from '@chronos/queue';
import type { Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createExecutorRegistry } from './executors.ts';
import { withFinishedRunLine } from './finished-run-line.ts';
import { ABORT_SETTLE_MS, RunCancelled, runProcessor, type ExecutorFn } from './run-processor.ts';

export interface WorkerService extends Service {
  readonly workerId: string;
  /** The BullMQ workers, one per served type (empty before start). */
  readonly workers: ReadonlyMap<JobTypeName, Worker>;
}

export interface WorkerServiceOptions {
  /** Replaces the run processor entirely (tests of the process plumbing). */
  processor?: (type: JobTypeName) => Processor;
  /** Replaces the executors (tests). */
  executor?: (type: JobTypeName) => ExecutorFn | undefined;
}

/** Runs in flight per connection of the transactional pool. */
const RUNS_PER_CONNECTION = 10;
/** Connections of that pool besides: reads of variables and of runs started the transactional way. */
const BASE_CONNECTIONS = 4;
/** The most a worker opens there unless WORKER_DB_POOL_SIZE says otherwise. */
const MAX_DERIVED_CONNECTIONS = 20;

/**
 * The size of a worker's Prisma pool: WORKER_DB_POOL_SIZE, else derived from the runs it may have
 * in flight (the sum of its types' concurrency). It serves what goes the transactional way
 * (failures, skips, deferrals, takeovers) and variable lookups; successful starts and finishes go
 * through the run recorder's own small pool, many runs per statement.
 */
export function workerPoolSize(config: Config): number {
  if (config.worker.dbPoolSize !== undefined) return config.worker.dbPoolSize;
  const { types, concurrency } = config.worker;
  const total = types.reduce((sum, t) => sum + (concurrency.perType[t] ?? concurrency.default), 0);
  return Math.min(MAX_DERIVED_CONNECTIONS, BASE_CONNECTIONS + Math.ceil(total / RUNS_PER_CONNECTION));
}

/**
 * A worker process: serves the queue of every type in WORKER_TYPES with WORKER_CONCURRENCY each.
 * `stop()` lets in-flight jobs finish for up to SHUTDOWN_GRACE_SECONDS, then aborts them and returns
 * so the process can exit (BullMQ hands unfinished jobs to another worker after the stall interval).
 */
export function createWorkerService(
  config: Config,
  log: Logger,
  opts: WorkerServiceOptions = {},
): WorkerService {
  const workerId = config.worker.id ?? `${hostname()}-${process.pid}`;
  let recorderPool: Pool | undefined;
  let db: Db | undefined;
  let runs: RunRecorder | undefined;
  let redis: Redis | undefined;
  let subscriber: Redis | undefined;
  let queues: QueueSet | undefined;
  let contexts: ContextWriter | undefined;
  let stopStorage: (() => Promise<void>) | undefined;
  const inFlight = new Map<string, AbortController>();
  // One set per process; the HTTP executor scopes each breaker to its job and target host.
  const breakers = new CircuitBreakers({
    onStateChange: (target, from, to, jobId) =>
      log[to === 'open' ? 'warn' : 'info']({ jobId, target, from, to }, `circuit breaker ${from} → ${to}`),
  });
  const registry = createExecutorRegistry(config);
  const secretBox = config.encryptionKey
    ? (() => {
        const key = parseEncryptionKey(config.encryptionKey);
        return createSecretBox({ current: { id: keyIdOf(key), key } });
      })()
    : undefined;
  let workers = new Map<JobTypeName, Worker>();
  const onDbConnectionError = (err: Error) =>
    log.warn(
      { err: { message: err.message, code: (err as { code?: unknown }).code } },
      'database connection lost',
    );

  return {
    workerId,
    get workers() {
      return workers;
    },
    async start() {
      db = createDb(config.databaseUrl, {
        maxConnections: workerPoolSize(config),
        applicationName: `chronos-worker-${workerId}`,
        onConnectionError: onDbConnectionError,
      });
      await db.$queryRaw`SELECT 1`;
      recorderPool = createRunRecorderPool(config.databaseUrl, {
        applicationName: `chronos-worker-${workerId}-runs`,
        onConnectionError: onDbConnectionError,
      });
      redis = createRedis(config.redis.url, { name: `chronos-worker-${workerId}` });
      redis.on('error', (err) => log.warn({ err }, 'redis error'));
      await pingRedis(redis, config.redis.url);
      queues = createQueues({ connection: redis, prefix: config.redis.prefix, types: config.worker.types });
      runs = createRunRecorder({
        db,
        pool: recorderPool,
        workerId,
        misfireThresholdSeconds: config.scheduler.misfireThresholdSeconds,
        finishDeps: { redis, prefix: config.redis.prefix, queues },
        onBatchError: (err, kind) =>
          log.warn({ err, kind }, 'batched statement failed: its runs go one by one'),
        onLogError: (err, runId) => log.warn({ err, runId }, 'run log write failed'),
        onDatabaseUnavailable: (err, runId, retryInMs) =>
          log.warn(
            { runId, retryInMs, error: (err as Error).message },
            'database unreachable: the run has ended and its outcome is recorded once it is back',
          ),
      });
      // Run context documents go to object storage behind the runs; without it, runs still run.
      try {
        const opened = await openStorage(config);
        stopStorage = opened.stop;
        contexts = createContextWriter(opened.storage, log);
      } catch (err) {
        log.warn({ err }, 'object storage is unavailable: run context documents will not be kept');
      }
      // Cancellation requests reach whichever worker runs the run.
      subscriber = redis.duplicate();
      subscriber.on('error', (err) => log.warn({ err }, 'cancel subscriber error'));
      await subscriber.subscribe(cancelChannel(config.redis.prefix));
      subscriber.on('message', (_channel, runId: string) => inFlight.get(runId)?.abort(new RunCancelled()));
      // Messages sent while the subscriber was reconnecting are lost; the requests are kept, so
      // the runs in flight are checked against them once it is back.
      subscriber.on('ready', () => {
        cancelsRequestedAmong(redis as Redis, config.redis.prefix, [...inFlight.keys()])
          .then((ids) => {
            for (const id of ids) inFlight.get(id)?.abort(new RunCancelled());
          })
          .catch((err: unknown) => log.warn({ err }, 'checking cancel requests after a reconnect failed'));
      });
      workers = createTypeWorkers({
        connection: redis,
        prefix: config.redis.prefix,
        types: config.worker.types,
        concurrency: (t) => config.worker.concurrency.perType[t] ?? config.worker.concurrency.default,
        workerOptions: {
          lockDuration: config.worker.lockDurationMs,
          stalledInterval: config.worker.stalledIntervalMs,
        },
        workerId,
        processor:
          opts.processor ??
          ((type) =>
            withFinishedRunLine(
              runProcessor(type, {
                db: db as Db,
                runs: runs as RunRecorder,
                contexts,
                redis: redis as Redis,
                prefix: config.redis.prefix,
                workerId,
                log,
                defaultTimeoutSeconds: config.worker.defaultRunTimeoutSeconds,
                runLog: { maxLines: config.worker.runLogMaxLines, maxBytes: config.worker.runLogMaxBytes },
                outbound: {
                  allowHosts: config.worker.httpAllowHosts,
                  allowCidrs: config.worker.httpAllowCidrs,
                },
                breakers,
                secretBox,
                inFlight,
                executor: opts.executor ?? registry.executorFor,
              }),
              log,
            ) as Processor),
      });
      for (const [type, w] of workers) {
        w.on('error', (err) => log.error({ err, type }, 'worker error'));
        void w.run().catch((err: unknown) => log.error({ err, type }, 'worker stopped with an error'));
      }
      await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));
      log.info(
        { workerId, types: [...workers.keys()], concurrency: config.worker.concurrency },
        'worker ready',
      );
      for (const [type, problem] of Object.entries(await registry.problems([...workers.keys()])))
        log.warn({ type, problem }, `every ${type} run will fail on this worker: ${problem}`);
    },
    async stop() {
      const all = [...workers.values()];
      const graceful = Promise.all(all.map((w) => w.close()));
      const drained = graceful.then(
        () => 'done' as const,
        (err: unknown) => {
          log.warn({ err }, 'closing a queue worker failed');
          return 'done' as const;
        },
      );
      if ((await settleWithin(drained, config.worker.shutdownGraceMs, 'timeout' as const)) === 'timeout') {
        // Abort the runs still going: each goes back to its queue, still RUNNING, and another worker
        // takes it over as a new attempt (see WorkerShutdown). A run whose executor does not stop in
        // time is left to BullMQ's stall check, which hands it over the same way once this process
        // is gone.
        log.warn(
          { graceMs: config.worker.shutdownGraceMs },
          'grace period over: handing runs in flight over',
        );
        for (const w of all) w.cancelAllJobs('worker shutting down');
        await settleWithin(graceful, ABORT_SETTLE_MS + 2000, undefined);
      }
      await runs?.drain();
      subscriber?.disconnect();
      if (queues) await closeQueues(queues);
      await registry.close();
      await contexts?.flush();
      await stopStorage?.();
      redis?.disconnect();
      await db?.$disconnect();
      // stop() may be called again (a signal after a failed start): pg's end() may not.
      const ending = recorderPool;
      recorderPool = undefined;
      await ending?.end();
    },
  };
}
