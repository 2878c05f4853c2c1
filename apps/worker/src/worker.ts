import { hostname } from 'node:os';
import { openStorage } from '@chronos/storage';
import { createContextWriter, type ContextWriter } from './run-context-writer.ts';
import type { Config } from '@chronos/config';
import type { JobTypeName, Service } from '@chronos/core';
import { createDb, type Db } from '@chronos/db';
import { cancelChannel } from '@chronos/engine';
import { createSecretBox, keyIdOf, parseEncryptionKey } from '@chronos/core';
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
import { RunCancelled, runProcessor, type ExecutorFn } from './run-processor.ts';

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
  let db: Db | undefined;
  let redis: Redis | undefined;
  let subscriber: Redis | undefined;
  let queues: QueueSet | undefined;
  let contexts: ContextWriter | undefined;
  let stopStorage: (() => Promise<void>) | undefined;
  const inFlight = new Map<string, AbortController>();
  const breakers = new CircuitBreakers();
  const registry = createExecutorRegistry(config);
  const secretBox = config.encryptionKey
    ? (() => {
        const key = parseEncryptionKey(config.encryptionKey);
        return createSecretBox({ current: { id: keyIdOf(key), key } });
      })()
    : undefined;
  let workers = new Map<JobTypeName, Worker>();

  return {
    workerId,
    get workers() {
      return workers;
    },
    async start() {
      db = createDb(config.databaseUrl);
      await db.$queryRaw`SELECT 1`;
      redis = createRedis(config.redis.url, { name: `chronos-worker-${workerId}` });
      await pingRedis(redis, config.redis.url);
      queues = createQueues({ connection: redis, prefix: config.redis.prefix, types: config.worker.types });
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
            runProcessor(type, {
              db: db as Db,
              contexts,
              redis: redis as Redis,
              queues: queues as QueueSet,
              prefix: config.redis.prefix,
              workerId,
              log,
              misfireThresholdSeconds: config.scheduler.misfireThresholdSeconds,
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
            }) as Processor),
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
    },
    async stop() {
      const all = [...workers.values()];
      const graceful = Promise.all(all.map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.worker.shutdownGraceMs);
      });
      if ((await Promise.race([graceful.then(() => 'done' as const), deadline])) === 'timeout') {
        // BullMQ's close() keeps waiting for the runs; abort them and stop waiting. The process
        // exits next, and BullMQ hands what was still running to another worker after the stall
        // interval, as a new attempt.
        log.warn({ graceMs: config.worker.shutdownGraceMs }, 'grace period over: aborting runs in flight');
        for (const w of all) w.cancelAllJobs('worker shutting down');
      }
      clearTimeout(timer);
      subscriber?.disconnect();
      if (queues) await closeQueues(queues);
      await registry.close();
      await contexts?.flush();
      await stopStorage?.();
      redis?.disconnect();
      await db?.$disconnect();
    },
  };
}
