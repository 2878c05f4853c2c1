import { ConflictError, NotFoundError, isJobType, newId, type JobTypeName } from '@chronos/core';
import { enqueueRuns } from './enqueue.ts';
import type { EngineDeps } from './job-changes.ts';
import type { WithinTransaction } from './jobs.ts';

/**
 * Replays a dead-lettered run: a new run (trigger REPLAY, linked to the DLQ entry) with its own
 * idempotency key `<jobId>-replay-<dlqId>-<n>`, queued now. The entry stays PENDING until resolved.
 * A paused job's entry is refused (ConflictError), as a trigger of the job is.
 */
export async function replayDlqEvent(
  deps: EngineDeps,
  dlqEventId: string,
  opts: { withinTransaction?: WithinTransaction<{ runId: string; jobId: string }> } = {},
): Promise<{ runId: string }> {
  const out = await deps.db.$transaction(async (tx) => {
    const [ev] = await tx.$queryRaw<
      {
        id: string;
        job_id: string;
        status: string;
        replay_count: number;
        type: string;
        job_name: string;
        version: number;
        job_status: string;
      }[]
    >`
      SELECT d.id, d.job_id, d.status::text AS status, d.replay_count, j.type::text AS type, j.name AS job_name,
             j.version, j.status::text AS job_status
        FROM dlq_events d JOIN jobs j ON j.id = d.job_id WHERE d.id = ${dlqEventId} FOR UPDATE OF d`;
    if (!ev) throw new NotFoundError('DLQ event', dlqEventId);
    // As a trigger is: a paused job starts nothing (a replay that raced a pause is skipped by the gate).
    if (ev.job_status === 'PAUSED') throw new ConflictError(`job ${ev.job_id} is paused; resume it first`);
    if (ev.status !== 'PENDING')
      throw new ConflictError(
        `DLQ event ${dlqEventId} is ${ev.status}; only PENDING entries can be replayed`,
      );
    const n = ev.replay_count + 1;
    const runId = newId();
    const key = `${ev.job_id}-replay-${ev.id}-${n}`;
    const now = new Date();
    await tx.jobRun.create({
      data: {
        id: runId,
        jobId: ev.job_id,
        idempotencyKey: key,
        status: 'QUEUED',
        trigger: 'REPLAY',
        scheduledTime: now,
        dueAt: now,
        dlqEventId: ev.id,
        definitionVersion: ev.version,
        reason: `replay ${n} of DLQ entry ${ev.id}`,
      },
    });
    await tx.dlqEvent.update({ where: { id: ev.id }, data: { replayCount: n } });
    await opts.withinTransaction?.(tx, { runId, jobId: ev.job_id });
    return { runId, jobId: ev.job_id, jobName: ev.job_name, key, type: ev.type, now };
  });
  if (isJobType(out.type))
    await enqueueRuns(
      deps.queues,
      [
        {
          type: out.type as JobTypeName,
          runId: out.runId,
          jobId: out.jobId,
          jobName: out.jobName,
          key: out.key,
          scheduledTime: out.now,
          dueAt: out.now,
        },
      ],
      Date.now(),
    );
  return { runId: out.runId };
}

export interface CloseDlqOptions {
  notes?: string | null;
  by?: string | null;
  withinTransaction?: WithinTransaction<void>;
}

async function closeDlqEvent(
  deps: Pick<EngineDeps, 'db'>,
  dlqEventId: string,
  status: 'RESOLVED' | 'IGNORED',
  opts: CloseDlqOptions,
): Promise<void> {
  await deps.db.$transaction(async (tx) => {
    const [ev] = await tx.$queryRaw<{ status: string }[]>`
      SELECT status::text AS status FROM dlq_events WHERE id = ${dlqEventId} FOR UPDATE`;
    if (!ev) throw new NotFoundError('DLQ event', dlqEventId);
    if (ev.status !== 'PENDING') throw new ConflictError(`DLQ event ${dlqEventId} is already ${ev.status}`);
    await tx.dlqEvent.update({
      where: { id: dlqEventId },
      data: {
        status,
        resolvedAt: new Date(),
        resolutionNotes: opts.notes ?? null,
        resolvedBy: opts.by ?? null,
      },
    });
    await opts.withinTransaction?.(tx, undefined);
  });
}

/** Marks a DLQ entry RESOLVED (the problem was fixed), with notes, who, and when. */
export function resolveDlqEvent(deps: Pick<EngineDeps, 'db'>, id: string, opts: CloseDlqOptions = {}) {
  return closeDlqEvent(deps, id, 'RESOLVED', opts);
}

/** Marks a DLQ entry IGNORED (accepted as is), with notes, who, and when. */
export function ignoreDlqEvent(deps: Pick<EngineDeps, 'db'>, id: string, opts: CloseDlqOptions = {}) {
  return closeDlqEvent(deps, id, 'IGNORED', opts);
}
