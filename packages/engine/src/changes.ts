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

/** How long a cancel request is kept beside its message (for a worker that takes the run over later). */
const CANCEL_REQUEST_TTL_SECONDS = 7 * 24 * 3600;

/** Where a cancel request of `runId` is kept (see `requestCancel`). */
export const cancelRequestKey = (prefix: string, runId: string) => `${prefix}:cancel-requested:${runId}`;

/**
 * Asks whichever worker runs `runId` to abort it. The request is also kept: a worker that takes the
 * run over from a lost one closes it CANCELLED instead of running it again (`cancelRequested`).
 */
export async function requestCancel(redis: Redis, prefix: string, runId: string): Promise<void> {
  await redis
    .multi()
    .set(cancelRequestKey(prefix, runId), '1', 'EX', CANCEL_REQUEST_TTL_SECONDS)
    .publish(cancelChannel(prefix), runId)
    .exec();
}

/** Whether a cancel of `runId` was requested (see `requestCancel`). */
export async function cancelRequested(redis: Redis, prefix: string, runId: string): Promise<boolean> {
  return (await cancelsRequestedAmong(redis, prefix, [runId])).length > 0;
}

/** The runs among `runIds` whose cancel was requested (one round trip). */
export async function cancelsRequestedAmong(
  redis: Redis,
  prefix: string,
  runIds: readonly string[],
): Promise<string[]> {
  if (runIds.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of runIds) pipeline.exists(cancelRequestKey(prefix, id));
  const answers = (await pipeline.exec()) ?? [];
  return runIds.filter((_, i) => answers[i]?.[1] === 1);
}
