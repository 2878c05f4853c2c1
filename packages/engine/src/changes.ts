import type { Redis } from 'ioredis';

/** The pub/sub channel on which job changes are announced to schedulers. */
export function changesChannel(prefix: string): string {
  return `${prefix}:schedule-changes`;
}

/** Tells every scheduler that a job changed, so it plans at once (within a second at worst). */
export async function publishChange(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.publish(changesChannel(prefix), jobId);
}

/** The pub/sub channel on which run cancellations reach the worker running them. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel-run`;
}

/** Asks whichever worker runs `runId` to abort it. */
export async function requestCancel(redis: Redis, prefix: string, runId: string): Promise<void> {
  await redis.publish(cancelChannel(prefix), runId);
}
