import { NotFoundError, isJobType, type JobTypeName } from '@chronos/core';
import type { Db } from '@chronos/db';
import { requestCancel } from './changes.ts';
import { finishRun, settleOnceJob, type FinishDeps } from './runs.ts';
import { bullJobId } from './enqueue.ts';
import type { EngineDeps } from './job-changes.ts';
import type { WithinTransaction } from './jobs.ts';

export type CancelOutcome =
  /** It was waiting: it is CANCELLED and will never start. */
  | 'CANCELLED'
  /** It is running: its worker was asked to abort it; it ends CANCELLED. */
  | 'CANCEL_REQUESTED'
  /** It had already ended (or was skipped): nothing to do. */
  | 'ALREADY_FINISHED';

/**
 * Cancels a run. A queued run is marked CANCELLED in Postgres (the worker's start check then refuses
 * it) and removed from Redis; a running run's worker is told to abort it (outcome CANCELLED).
 * Cancelled runs are neither retried nor dead-lettered.
 */
export async function cancelRun(
  deps: EngineDeps,
  runId: string,
  opts: { by?: string; withinTransaction?: WithinTransaction<CancelOutcome> } = {},
): Promise<CancelOutcome> {
  const row = await deps.db.$transaction(async (tx) => {
    const [r] = await tx.$queryRaw<
      { status: string; job_id: string; idempotency_key: string; attempt: number; type: string }[]
    >`
      SELECT r.status::text AS status, r.job_id, r.idempotency_key, r.attempt, j.type::text AS type
        FROM job_runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ${runId} FOR UPDATE OF r`;
    if (!r) throw new NotFoundError('run', runId);
    if (r.status === 'QUEUED') {
      await tx.$executeRaw`
        UPDATE job_runs SET status = 'CANCELLED', end_time = now(), updated_at = now(),
               reason = ${`cancelled before it started${opts.by ? ` by ${opts.by}` : ''}`}
         WHERE id = ${runId}`;
      // With nothing left to run, a ONCE job ended cancelled (as when its running run is cancelled).
      await settleOnceJob(tx, r.job_id, 'CANCELLED');
    }
    await opts.withinTransaction?.(tx, outcomeOf(r.status));
    return r;
  });
  const outcome = outcomeOf(row.status);
  if (outcome === 'CANCELLED') {
    if (isJobType(row.type))
      await deps.queues
        .get(row.type as JobTypeName)
        ?.remove(bullJobId(row.idempotency_key, row.attempt))
        .catch(() => 0);
  } else if (outcome === 'CANCEL_REQUESTED') await requestCancel(deps.redis, deps.prefix, runId);
  return outcome;
}

/**
 * Closes a RUNNING run whose cancel was requested but whose worker was lost before it could abort
 * it: CANCELLED, fenced by the run's lock token as it stands (a worker that finishes it meanwhile
 * wins). Not retried, not dead-lettered. Returns false when the run is not RUNNING.
 */
export async function closeCancelledLostRun(db: Db, runId: string, deps: FinishDeps = {}): Promise<boolean> {
  const run = await db.jobRun.findUnique({ where: { id: runId }, select: { status: true, lockToken: true } });
  if (run?.status !== 'RUNNING' || !run.lockToken) return false;
  return finishCancelled(
    db,
    { runId, lockToken: run.lockToken },
    'cancelled: its worker was lost before it could abort the run, which is not run again',
    deps,
  );
}

/**
 * Records a RUNNING run CANCELLED under `lockToken` (not retried, not dead-lettered) for one that no
 * worker will abort any more; false when the token is no longer the run's.
 */
export async function finishCancelled(
  db: Db,
  run: { runId: string; lockToken: string },
  message: string,
  deps: FinishDeps = {},
): Promise<boolean> {
  const out = await finishRun(
    db,
    { ...run, status: 'CANCELLED', errorCode: 'CANCELLED', errorMessage: message },
    deps,
  );
  return out.accepted;
}

function outcomeOf(status: string): CancelOutcome {
  return status === 'QUEUED' ? 'CANCELLED' : status === 'RUNNING' ? 'CANCEL_REQUESTED' : 'ALREADY_FINISHED';
}
