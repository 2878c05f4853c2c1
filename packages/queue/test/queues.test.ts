import { newId, queueName } from '@chronos/core';
import { QueueEvents } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { closeQueues, createQueues, createRedis, createTypeWorkers, pingRedis } from '../src/index.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

function redis() {
  const r = createRedis('redis://127.0.0.1:6379');
  cleanups.push(() => r.disconnect());
  return r;
}

describe('queues', () => {
  it('one per type, under the given prefix, and nothing else', async () => {
    const connection = redis();
    const prefix = `test-queue-${newId()}`;
    const queues = createQueues({ connection, prefix, types: ['HTTP', 'DB_TO_KAFKA'] });
    cleanups.push(async () => {
      for (const q of queues.values()) await q.obliterate({ force: true });
      await closeQueues(queues);
    });
    expect([...queues.keys()]).toEqual(['HTTP', 'DB_TO_KAFKA']);
    await queues.get('HTTP')?.add('x', {}, { jobId: 'job-1' });
    const keys = await connection.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    const ours = [`${prefix}:${queueName('HTTP')}:`, `${prefix}:${queueName('DB_TO_KAFKA')}:`];
    expect(keys.filter((k) => !ours.some((p) => k.startsWith(p)))).toEqual([]);
    expect(keys).toContain(`${prefix}:${queueName('HTTP')}:job-1`);
  });

  it('type workers process their own queue only', async () => {
    const connection = redis();
    const prefix = `test-queue-${newId()}`;
    const queues = createQueues({ connection, prefix, types: ['DUMMY', 'HTTP'] });
    const seen: string[] = [];
    const workers = createTypeWorkers({
      connection,
      prefix,
      types: ['DUMMY'],
      concurrency: 2,
      workerId: 'w1',
      processor: (type) => async (job) => {
        seen.push(`${type}:${job.id}`);
        return 'ok';
      },
    });
    const events = new QueueEvents(queueName('DUMMY'), { connection: connection.duplicate(), prefix });
    cleanups.push(async () => {
      await Promise.all([...workers.values()].map((w) => w.close()));
      await events.close();
      for (const q of queues.values()) await q.obliterate({ force: true });
      await closeQueues(queues);
    });
    for (const w of workers.values()) void w.run();
    await events.waitUntilReady();
    const job = await queues.get('DUMMY')!.add('x', {}, { jobId: 'd1' });
    await queues.get('HTTP')!.add('x', {}, { jobId: 'h1' });
    expect(await job.waitUntilFinished(events, 10_000)).toBe('ok');
    expect(seen).toEqual(['DUMMY:d1']);
    expect(await queues.get('HTTP')!.getJobState('h1')).toBe('waiting');
  });

  it('pingRedis names the URL it could not reach', async () => {
    const r = createRedis('redis://127.0.0.1:1', { failFast: true });
    r.on('error', () => {});
    cleanups.push(() => r.disconnect());
    await expect(pingRedis(r, 'redis://127.0.0.1:1')).rejects.toThrow(
      /^Redis at redis:\/\/127\.0\.0\.1:1 is not reachable/,
    );
  });
});
