// The baseline's worker process: one BullMQ worker on a plain queue, a no-op processor, no Postgres.
// Started by raw-measure.ts with its settings in the environment (this file is a process entry).

import { queueName } from '@chronos/core';
import { createRedis, pingRedis } from '@chronos/queue';
import { Worker } from 'bullmq';

const env = process.env;
const redisUrl = env['RAW_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const prefix = env['RAW_PREFIX'];
const concurrency = Number(env['RAW_CONCURRENCY']);
if (!prefix || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('raw-worker: expects RAW_PREFIX and RAW_CONCURRENCY (a whole number ≥ 1)');
  process.exit(2);
}

const connection = createRedis(redisUrl, { name: `${prefix}-worker` });
await pingRedis(connection, redisUrl);
// The same options the Chronos worker gives BullMQ (apps/worker: lock and stall interval 30 s).
const worker = new Worker(queueName('DUMMY'), async () => null, {
  connection,
  prefix,
  concurrency,
  name: `${prefix}-worker`,
  lockDuration: 30_000,
  stalledInterval: 30_000,
});
worker.on('error', (err) => console.error(`raw-worker: ${err.message}`));
worker.on('failed', (_job, err) => console.error(`raw-worker: job failed: ${err.message}`));

async function stop(): Promise<void> {
  await worker.close();
  connection.disconnect();
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
await worker.waitUntilReady();
