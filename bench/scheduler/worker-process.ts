// The benchmark's worker: a separate process, as in production (the scheduler's event loop must not
// delay pickups, nor the other way round). Started by worker-handle.ts with its config as argv[2].

import { createDb, type Db, type Pool } from '@chronos/db';
import { createRunRecorder, createRunRecorderPool, type RunJobData, type RunRecorder } from '@chronos/engine';
import { closeQueues, createQueues, createRedis, createTypeWorkers, type QueueSet } from '@chronos/queue';
import { DelayedError, type Job } from 'bullmq';
import { loopDelayMonitor } from './loop-delay.ts';
import type { FromWorker, ToWorker, WorkerProcessConfig } from './protocol.ts';

/** The deployment default misfire threshold (MISFIRE_THRESHOLD_SECONDS). */
const MISFIRE_THRESHOLD_SECONDS = 60;
/** How often `pickup` mode marks picked-up runs done in Postgres. */
const FLUSH_MS = 200;
const MAX_ERRORS_KEPT = 20;

function send(msg: FromWorker): Promise<void> {
  return new Promise((resolve, reject) =>
    process.send ? process.send(msg, undefined, {}, (err) => (err ? reject(err) : resolve())) : resolve(),
  );
}

async function main(config: WorkerProcessConfig): Promise<void> {
  const keys: string[] = [];
  const scheduled: number[] = [];
  const picked: number[] = [];
  const errors: string[] = [];
  let failed = 0;
  const loop = loopDelayMonitor();
  const keepError = (msg: string) => {
    if (errors.length < MAX_ERRORS_KEPT) errors.push(msg);
  };

  const redis = createRedis(config.redisUrl, { name: `${config.workerId}` });
  const db: Db | undefined =
    config.mode === 'noop' || !config.databaseUrl
      ? undefined
      : createDb(config.databaseUrl, { applicationName: config.workerId });
  // `e2e` mode: the run lifecycle as apps/worker records it (apps/worker/src/worker.ts).
  let recorderPool: Pool | undefined;
  let queues: QueueSet | undefined;
  let runs: RunRecorder | undefined;
  if (config.mode === 'e2e' && db && config.databaseUrl) {
    recorderPool = createRunRecorderPool(config.databaseUrl, { applicationName: `${config.workerId}-runs` });
    queues = createQueues({ connection: redis, prefix: config.prefix, types: ['DUMMY'] });
    runs = createRunRecorder({
      db,
      pool: recorderPool,
      workerId: config.workerId,
      misfireThresholdSeconds: MISFIRE_THRESHOLD_SECONDS,
      finishDeps: { redis, prefix: config.prefix, queues },
      onBatchError: (err, kind) => keepError(`${kind} batch: ${(err as Error).message}`),
    });
  }

  // `pickup` mode: runs to mark done, flushed in batches off the pickup path.
  let pending: { runId: string; at: Date }[] = [];
  async function flush(): Promise<void> {
    if (!db || pending.length === 0) return;
    const batch = pending;
    pending = [];
    await db.$executeRaw`
      UPDATE job_runs r
         SET status = 'SUCCESS', start_time = v.at, end_time = v.at, worker_id = ${config.workerId},
             updated_at = now()
        FROM unnest(${batch.map((b) => b.runId)}::text[], ${batch.map((b) => b.at)}::timestamptz[]) AS v(id, at)
       WHERE r.id = v.id AND r.status = 'QUEUED'`;
  }
  const flusher =
    config.mode === 'pickup'
      ? setInterval(() => {
          flush().catch((err: unknown) => keepError(`flush: ${(err as Error).message}`));
        }, FLUSH_MS)
      : undefined;

  async function processor(job: Job<RunJobData>, token?: string): Promise<unknown> {
    const now = Date.now();
    const recordPickup = () => {
      keys.push(job.id as string);
      scheduled.push(Date.parse(job.data.scheduledTime));
      picked.push(now);
    };
    // A deferred run is picked up when it comes back due, not now (e2e records after the gate).
    if (config.mode !== 'e2e') recordPickup();
    if (config.mode === 'noop') return null;
    if (config.mode === 'pickup') {
      pending.push({ runId: job.data.runId, at: new Date(now) });
      return null;
    }
    // As apps/worker/src/run-processor.ts: a redelivered job is a takeover; a deferred run waits in
    // BullMQ's delayed set until it is due (a slot promoted early must not start early).
    const recorder = runs as RunRecorder;
    const takeover = (job.attemptsStarted ?? 0) > 1 || (job.stalledCounter ?? 0) > 0;
    const decision = await recorder.start(job.data.runId, { jobId: job.data.jobId, takeover });
    if (decision.action === 'DEFER') {
      await job.moveToDelayed(Date.now() + (decision.delayMs ?? 500), token);
      throw new DelayedError();
    }
    recordPickup();
    if (decision.action !== 'RUN') return { started: false, decision: decision.action };
    await recorder.finish(
      {
        runId: decision.runId,
        jobId: decision.jobId,
        lockToken: decision.lockToken,
        status: 'SUCCESS',
        output: { ok: true },
      },
      [],
    );
    return { started: true };
  }

  const workers = createTypeWorkers({
    connection: redis,
    prefix: config.prefix,
    types: ['DUMMY'],
    concurrency: config.concurrency,
    workerId: config.workerId,
    processor: () => processor,
  });
  for (const w of workers.values()) {
    w.on('error', (err) => keepError(`worker: ${err.message}`));
    w.on('failed', (_job, err) => {
      failed++;
      keepError(`job: ${err.message}`);
    });
    void w.run().catch((err: unknown) => keepError(`run: ${(err as Error).message}`));
  }
  await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));

  process.on('message', (msg: ToWorker) => {
    if (msg.type === 'count') {
      const seen = new Set<string>();
      for (let i = 0; i < keys.length; i++) {
        const t = scheduled[i] as number;
        if (t >= msg.from && t < msg.to) seen.add(keys[i] as string);
      }
      void send({ type: 'count', picked: seen.size });
      return;
    }
    if (msg.type === 'window') {
      if (msg.phase === 'open') loop.open();
      else loop.close();
      return;
    }
    void (async () => {
      await Promise.all([...workers.values()].map((w) => w.close()));
      clearInterval(flusher);
      await flush().catch((err: unknown) => keepError(`flush: ${(err as Error).message}`));
      await runs?.drain();
      await recorderPool?.end();
      if (queues) await closeQueues(queues);
      redis.disconnect();
      await db?.$disconnect();
      await send({ type: 'result', keys, scheduled, picked, failed, errors, loopDelay: loop.result() });
      // Delivered (send's callback ran): nothing left to wait for.
      process.exit(0);
    })();
  });
  await send({ type: 'ready' });
}

const arg = process.argv[2];
if (!arg) {
  console.error('worker-process: expects its JSON config as the first argument');
  process.exit(2);
}
main(JSON.parse(arg) as WorkerProcessConfig).catch((err: unknown) => {
  console.error('worker-process failed:', err);
  process.exit(1);
});
