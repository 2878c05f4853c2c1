import type { JobTypeName } from '@chronos/core';
import type { QueueSet } from '@chronos/queue';

/** What a BullMQ job of Chronos carries: enough to find the run row; the rest is in Postgres. */
export interface RunJobData {
  runId: string;
  jobId: string;
  idempotencyKey: string;
  /** Nominal slot time, ISO-8601. */
  scheduledTime: string;
}

export interface EnqueueItem {
  type: JobTypeName;
  runId: string;
  jobId: string;
  key: string;
  /** Attempt number of the run (1 when absent). */
  attempt?: number;
  scheduledTime: Date;
  dueAt: Date;
}

/**
 * The BullMQ job id of a run: the slot's idempotency key for the first attempt, `<key>-a<n>` for
 * attempt n > 1 (each attempt is its own BullMQ job; ids may not contain ':').
 */
export function bullJobId(key: string, attempt = 1): string {
  return attempt <= 1 ? key : `${key}-a${attempt}`;
}

/** Finished BullMQ jobs are kept a while for the dashboard; Postgres keeps the record. */
export const JOB_RETENTION = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

/**
 * Adds one delayed BullMQ job per run, the idempotency key as job id (BullMQ ignores an id that
 * already exists). `nowMs` is the database clock's estimate: delays are relative to it.
 */
export async function enqueueRuns(
  queues: QueueSet,
  items: readonly EnqueueItem[],
  nowMs: number,
): Promise<void> {
  const byType = new Map<JobTypeName, EnqueueItem[]>();
  for (const it of items) {
    const list = byType.get(it.type) ?? [];
    list.push(it);
    byType.set(it.type, list);
  }
  await Promise.all(
    [...byType].map(async ([type, list]) => {
      const queue = queues.get(type);
      if (!queue) throw new Error(`no queue for job type ${type}`);
      await queue.addBulk(
        list.map((it) => ({
          name: 'run',
          data: {
            runId: it.runId,
            jobId: it.jobId,
            idempotencyKey: it.key,
            scheduledTime: it.scheduledTime.toISOString(),
          } satisfies RunJobData,
          opts: {
            jobId: bullJobId(it.key, it.attempt),
            delay: Math.max(0, it.dueAt.getTime() - nowMs),
            attempts: 1,
            ...JOB_RETENTION,
          },
        })),
      );
    }),
  );
}
