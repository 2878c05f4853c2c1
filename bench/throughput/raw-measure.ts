// The baseline: the same number of jobs, added by the same `enqueueRuns` to a plain BullMQ queue
// (no ledger rows behind them), drained by one worker process with a no-op processor.

import { loadavg } from 'node:os';
import { newId } from '@chronos/core';
import { enqueueRuns, type EnqueueItem } from '@chronos/engine';
import { closeQueues, createQueues, createRedis } from '@chronos/queue';
import { deleteKeysByPrefix } from '../scheduler/cleanup.ts';
import { startChild, type Child } from './child.ts';
import { processCpuSeconds, redisCpuSeconds } from './cpu.ts';
import { drainRate, timeDrain, type Sample } from './drain.ts';
import type { Measurement, MeasureOptions } from './measurement.ts';

/** Jobs per addBulk. */
const CHUNK = 5_000;
const UNFINISHED = ['waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children'] as const;

export async function measureRaw(opts: MeasureOptions): Promise<Measurement> {
  const prefix = `chronos-bench-tp-${opts.label}`;
  const redis = createRedis(opts.redisUrl, { name: `chronos-bench-tp-producer-${opts.label}` });
  const queues = createQueues({ connection: redis, prefix, types: ['DUMMY'] });
  const queue = queues.get('DUMMY');
  if (!queue) throw new Error('no DUMMY queue');
  let worker: Child | undefined;
  try {
    const now = new Date();
    const jobId = newId();
    const items: EnqueueItem[] = Array.from({ length: opts.backlog }, (_, i) => ({
      type: 'DUMMY',
      runId: newId(),
      jobId,
      jobName: 'throughput',
      key: `tp-${i}`,
      scheduledTime: now,
      dueAt: now,
    }));
    const enqueueStart = Date.now();
    for (let i = 0; i < items.length; i += CHUNK)
      await enqueueRuns(queues, items.slice(i, i + CHUNK), Date.now());
    const enqueueMs = Date.now() - enqueueStart;

    worker = startChild(
      {
        label: `raw worker c=${opts.concurrency}`,
        entry: 'bench/throughput/raw-worker.ts',
        env: { RAW_REDIS_URL: opts.redisUrl, RAW_PREFIX: prefix, RAW_CONCURRENCY: String(opts.concurrency) },
      },
      opts.log,
    );
    const child = worker;
    const read = async (): Promise<Sample> => {
      const counts = await queue.getJobCounts(...UNFINISHED, 'failed');
      const t = Date.now();
      const left = UNFINISHED.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
      const [w, r] = await Promise.all([processCpuSeconds(child.pid), redisCpuSeconds(opts.admin)]);
      return {
        t,
        done: opts.backlog - left,
        failed: counts['failed'] ?? 0,
        cpu: { worker: w, postgres: 0, redis: r },
      };
    };
    const drain = await timeDrain(read, {
      total: opts.backlog,
      warmupMs: opts.warmupMs,
      ...(opts.stopAfterMs === undefined ? {} : { stopAfterMs: opts.stopAfterMs }),
      aborted: () =>
        child.exited
          ? `the raw worker exited: ${child.tail().slice(-5).join(' | ') || 'no output'}`
          : undefined,
      signal: opts.signal,
    });
    const load1 = loadavg()[0] ?? Number.NaN;
    await worker.stop();
    worker = undefined;
    return {
      system: 'raw BullMQ',
      concurrency: opts.concurrency,
      jobs: null,
      backlog: opts.backlog,
      drain,
      rate: drainRate(drain),
      enqueueMs,
      failed: drain.end.failed,
      load1,
    };
  } finally {
    await worker?.stop(5_000);
    await closeQueues(queues).catch(() => undefined);
    redis.disconnect();
    const n = await deleteKeysByPrefix(opts.admin, prefix);
    opts.log(`    deleted ${n} Redis keys under ${prefix}:`);
  }
}
