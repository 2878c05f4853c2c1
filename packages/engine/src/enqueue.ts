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
  /** The Chronos job's name: the BullMQ job is named after it (see `bullJobName`). */
  jobName: string;
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

/** The longest BullMQ job name (in characters): enough to recognise a job in Bull Board's lists. */
export const BULL_JOB_NAME_MAX = 100;

/**
 * The BullMQ job name of a Chronos job's runs: the job's name — what Bull Board lists — with control
 * and format characters and runs of whitespace made one space, cut at `BULL_JOB_NAME_MAX`
 * characters. Only a label: the BullMQ job id (the run's idempotency key, which starts with the job
 * id) is the exact link to the run, and a renamed job's runs already queued keep the old name.
 */
export function bullJobName(jobName: string): string {
  const clean = jobName.replace(/[\p{Cc}\p{Cf}\s]+/gu, ' ').trim();
  const chars = [...clean];
  if (chars.length === 0) return 'run';
  return chars.length > BULL_JOB_NAME_MAX ? `${chars.slice(0, BULL_JOB_NAME_MAX - 1).join('')}…` : clean;
}

/**
 * Finished BullMQ jobs are kept a while for the dashboard; Postgres keeps the record. A run that
 * ended FAILURE or TIMEOUT leaves its BullMQ job `failed` (with the run's error): kept a week, at
 * most the newest 10,000 per queue (every failed run lands there now, so an unbounded week of a
 * failing high-frequency job would fill Redis; the runs and the DLQ in Postgres keep them all).
 */
export const JOB_RETENTION = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
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
          name: bullJobName(it.jobName),
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
