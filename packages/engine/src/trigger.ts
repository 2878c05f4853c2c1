import { createHash } from 'node:crypto';
import { ConflictError, NotFoundError, isJobType, newId, type JobTypeName } from '@chronos/core';
import { enqueueRuns } from './enqueue.ts';
import type { EngineDeps } from './job-changes.ts';
import type { WithinTransaction } from './jobs.ts';

/** What a manual or webhook trigger passes to the run as `{{trigger.…}}`. */
export interface TriggerPayload {
  body?: unknown;
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

export interface TriggerInput {
  jobId: string;
  trigger: 'MANUAL' | 'WEBHOOK';
  /**
   * The caller's idempotency key (`Idempotency-Key` header, webhook delivery id): the same key for
   * the same job and trigger returns the run it created the first time instead of a new one.
   */
  idempotencyKey?: string | undefined;
  payload?: TriggerPayload | undefined;
  /** Why, for the ledger (`manual trigger by a@b.c`). */
  reason?: string | undefined;
}

export interface TriggerResult {
  runId: string;
  /** False when the idempotency key had already created this run. */
  created: boolean;
  status: string;
}

/**
 * Starts a run now, outside the schedule: a ledger row (trigger MANUAL or WEBHOOK, attempt 1) and its
 * BullMQ job. A paused or finished job, or one whose definition does not allow this trigger, is
 * refused (ConflictError) and nothing is written. With an idempotency key the ledger row's key is
 * derived from it (`<jobId>-m-<hash>` / `-w-`), so a repeat returns the same run; the unique
 * (idempotency_key, attempt) constraint decides races between replicas.
 */
export async function triggerRun(
  deps: EngineDeps,
  input: TriggerInput,
  opts: { withinTransaction?: WithinTransaction<{ runId: string }> } = {},
): Promise<TriggerResult> {
  const job = await deps.db.job.findUnique({
    where: { id: input.jobId },
    select: {
      id: true,
      name: true,
      type: true,
      status: true,
      version: true,
      allowManual: true,
      allowWebhook: true,
    },
  });
  if (!job) throw new NotFoundError('job', input.jobId);
  const tag = input.trigger === 'MANUAL' ? 'm' : 'w';
  const key = input.idempotencyKey
    ? `${job.id}-${tag}-${createHash('sha256').update(input.idempotencyKey).digest('hex').slice(0, 32)}`
    : `${job.id}-${tag}-${newId()}`;
  if (input.idempotencyKey) {
    const existing = await deps.db.jobRun.findUnique({
      where: { idempotencyKey_attempt: { idempotencyKey: key, attempt: 1 } },
      select: { id: true, status: true },
    });
    if (existing) return { runId: existing.id, created: false, status: existing.status };
  }
  if (input.trigger === 'MANUAL' && !job.allowManual)
    throw new ConflictError(`job ${job.id} does not allow manual triggers`);
  if (input.trigger === 'WEBHOOK' && !job.allowWebhook)
    throw new ConflictError(`job ${job.id} does not allow webhook triggers`);
  if (job.status === 'PAUSED') throw new ConflictError(`job ${job.id} is paused; resume it first`);
  if (job.status === 'CANCELLED') throw new ConflictError(`job ${job.id} is cancelled`);

  const runId = newId();
  const now = new Date();
  const inserted = await deps.db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ id: string }[]>`
    INSERT INTO job_runs (id, job_id, idempotency_key, attempt, status, trigger, scheduled_time, due_at,
                          reason, definition_version, trigger_payload, updated_at)
    VALUES (${runId}, ${job.id}, ${key}, 1, 'QUEUED', ${input.trigger}::"TriggerSource", ${now}, ${now},
            ${input.reason ?? null}, ${job.version},
            ${input.payload ? JSON.stringify(input.payload) : null}::jsonb, now())
    ON CONFLICT (idempotency_key, attempt) DO NOTHING
    RETURNING id`;
    // Only a run this call created is announced (a repeat of the key changes nothing).
    if (rows.length > 0) await opts.withinTransaction?.(tx, { runId });
    return rows;
  });
  if (inserted.length === 0) {
    // Another replica won the race for the same key: answer with its run.
    const winner = await deps.db.jobRun.findUniqueOrThrow({
      where: { idempotencyKey_attempt: { idempotencyKey: key, attempt: 1 } },
      select: { id: true, status: true },
    });
    return { runId: winner.id, created: false, status: winner.status };
  }
  if (isJobType(job.type))
    await enqueueRuns(
      deps.queues,
      [
        {
          type: job.type as JobTypeName,
          runId,
          jobId: job.id,
          jobName: job.name,
          key,
          scheduledTime: now,
          dueAt: now,
        },
      ],
      now.getTime(),
    );
  return { runId, created: true, status: 'QUEUED' };
}
