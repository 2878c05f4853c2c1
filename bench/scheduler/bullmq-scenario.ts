// The baseline: the same slots as delayed jobs added straight to a BullMQ queue (no Postgres, no
// scheduler, no promoter), picked up by the same worker with a no-op processor.

import { randomBytes } from 'node:crypto';
import { JOB_RETENTION, type RunJobData } from '@chronos/engine';
import { closeQueues, createQueues, createRedis } from '@chronos/queue';
import { deleteKeysByPrefix } from './cleanup.ts';
import { loopDelayText } from './loop-delay.ts';
import { measureWindow } from './measure.ts';
import { keepAllEvents, lateBreakdown, readJobEvents } from './queue-events.ts';
import {
  firstSlotAfter,
  sleepUntil,
  steadyWindow,
  waitForWindow,
  type ScenarioOptions,
  type ScenarioOutcome,
} from './scenario.ts';
import { startWorkerProcess, type WorkerHandle } from './worker-handle.ts';
import { expectedKeys, layoutSchedules, slotTimeline } from './workload.ts';

/** Jobs are added this far ahead of their due time, like the scheduler's default horizon. */
const HORIZON_MS = 60_000;
const ADD_CHUNK = 1_000;

export async function runBullmq(opts: ScenarioOptions): Promise<ScenarioOutcome> {
  const tag = randomBytes(4).toString('hex');
  const prefix = `chronos-bench-raw-${tag}`;
  const redis = createRedis(opts.redisUrl, { name: `chronos-bench-raw-${tag}` });
  const queues = createQueues({ connection: redis, prefix, types: ['DUMMY'] });
  const queue = queues.get('DUMMY');
  if (!queue) throw new Error('no DUMMY queue');
  let worker: WorkerHandle | undefined;
  try {
    await keepAllEvents(queue, redis);
    worker = await startWorkerProcess({
      mode: 'noop',
      redisUrl: opts.redisUrl,
      prefix,
      concurrency: opts.concurrency,
      workerId: `chronos-bench-raw-worker-${tag}`,
    });
    const schedules = layoutSchedules(
      Array.from({ length: opts.size }, (_, i) => `raw${i}`),
      opts.cronShare,
    );
    const t0 = firstSlotAfter(opts.leadMs);
    const window = steadyWindow(t0, opts);
    const timeline = slotTimeline(schedules, t0, t0, window.to + 1000);

    // Adds what comes due within the horizon, once a second, soonest first (as the scheduler does).
    let added = 0;
    const feed = (async () => {
      while (added < timeline.length) {
        const until = Date.now() + HORIZON_MS;
        while (added < timeline.length && (timeline[added] as { at: number }).at <= until) {
          const chunk = timeline.slice(added, added + ADD_CHUNK).filter((s) => s.at <= until);
          const now = Date.now();
          await queue.addBulk(
            chunk.map((s) => {
              const key = `${s.id}-${s.at}`;
              return {
                name: 'run',
                data: {
                  runId: key,
                  jobId: s.id,
                  idempotencyKey: key,
                  scheduledTime: new Date(s.at).toISOString(),
                } satisfies RunJobData,
                opts: { jobId: key, delay: Math.max(0, s.at - now), attempts: 1, ...JOB_RETENTION },
              };
            }),
          );
          added += chunk.length;
        }
        if (added < timeline.length) await sleepUntil(Date.now() + 1000, opts.signal);
      }
    })();
    // Awaited below; this only keeps an abort during the wait from being an unhandled rejection.
    feed.catch(() => undefined);
    const expected = expectedKeys(schedules, t0, window.from, window.to);
    const { load1, loopDelay } = await waitForWindow(worker, window, expected.size, opts.signal);
    await feed;
    const result = await worker.stop();
    worker = undefined;
    const events = await readJobEvents(queue, redis);
    const notes = [
      `${opts.size} / raw BullMQ: ${lateBreakdown(result.pickups, expected, events)}; event-loop delay of the producer ${loopDelayText(loopDelay)}, ` +
        `of the worker ${loopDelayText(result.loopDelay)}; worker ${result.failed} failed jobs` +
        (result.errors.length > 0 ? ` (${result.errors.slice(0, 3).join(' | ')})` : ''),
    ];
    return {
      rows: [
        {
          size: opts.size,
          system: 'raw BullMQ',
          measure: 'pickup',
          window: measureWindow(result.pickups, expected, window),
          load1,
        },
      ],
      notes,
    };
  } finally {
    worker?.kill();
    await closeQueues(queues).catch(() => undefined);
    redis.disconnect();
    const n = await deleteKeysByPrefix(opts.admin, prefix);
    opts.log(`  raw BullMQ: deleted ${n} Redis keys under ${prefix}:`);
  }
}
