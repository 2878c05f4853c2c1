import { randomUUID } from 'node:crypto';
import type { Db, Prisma } from '@chronos/db';
import type { Redis } from 'ioredis';
import { publishChange } from './changes.ts';

type Tx = Prisma.TransactionClient;

/** What a worker should do with a run it took from the queue. */
export type StartDecision =
  /** The run is RUNNING under this worker; finish it with `finishRun` and the lock token. */
  | {
      action: 'RUN';
      runId: string;
      jobId: string;
      attempt: number;
      lockToken: string;
      definitionVersion: number;
    }
  /** The slot will not run; the ledger says why. */
  | {
      action: 'SKIPPED';
      status: 'SKIPPED' | 'SKIPPED_PAUSED' | 'SKIPPED_MISFIRE' | 'SKIPPED_OVERLAP';
      reason: string;
    }
  /** Another run of the job is active and the overlap policy buffers this one: try again later. */
  | { action: 'DEFER'; reason: string; cancel: string[] }
  /** Nothing to do: the row is gone (job deleted) or was already taken (duplicate delivery). */
  | { action: 'GONE'; reason: string };

interface RunRow {
  id: string;
  job_id: string;
  status: string;
  trigger: string;
  attempt: number;
  scheduled_time: Date;
  due_at: Date | null;
  reason: string | null;
  job_status: string;
  job_version: number;
  overlap_policy: 'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'ALLOW_ALL';
  allow_scheduled: boolean;
  misfire_policy: 'FIRE_NOW' | 'IGNORE' | 'RESCHEDULE' | null;
  misfire_threshold_seconds: number | null;
  db_now: Date;
}

const BUFFERED = 'buffered behind';

async function setFate(tx: Tx, runId: string, status: string, reason: string): Promise<void> {
  await tx.$executeRaw`
    UPDATE job_runs SET status = ${status}::"RunStatus", reason = ${reason}, updated_at = now()
     WHERE id = ${runId}`;
}

/**
 * The worker's gate before running a slot, decided on Postgres (the truth) in one transaction:
 * a run that is no longer QUEUED is not run again; a job deleted or paused while the run waited is
 * skipped with the reason; a slot that waited longer than the misfire threshold for a free worker
 * follows the misfire policy (IGNORE skips it; FIRE_NOW runs only the latest of the job's late slots);
 * a slot that comes due while another run of the job is active follows the overlap policy (SKIP,
 * BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, ALLOW_ALL). Otherwise the run becomes RUNNING with a fresh
 * lock token that its finish must present.
 */
export async function startRun(
  db: Db,
  opts: { runId: string; workerId: string; misfireThresholdSeconds: number },
): Promise<StartDecision> {
  return db.$transaction(async (tx) => {
    const [run] = await tx.$queryRaw<RunRow[]>`
      SELECT r.id, r.job_id, r.status::text AS status, r.trigger::text AS trigger, r.attempt, r.scheduled_time,
             r.due_at, r.reason, j.status::text AS job_status, j.version AS job_version,
             j.overlap_policy::text AS overlap_policy, j.allow_scheduled,
             s.misfire_policy::text AS misfire_policy, s.misfire_threshold_seconds, now() AS db_now
        FROM job_runs r JOIN jobs j ON j.id = r.job_id LEFT JOIN job_schedules s ON s.job_id = j.id
       WHERE r.id = ${opts.runId}
         FOR UPDATE OF r, j`;
    if (!run) return { action: 'GONE', reason: 'run not found (job deleted)' };
    if (run.status !== 'QUEUED') return { action: 'GONE', reason: `run is ${run.status}, not QUEUED` };
    const scheduled = run.trigger === 'SCHEDULED';

    if (run.job_status === 'PAUSED' && scheduled) {
      const reason = 'job paused while the run waited';
      await setFate(tx, run.id, 'SKIPPED_PAUSED', reason);
      return { action: 'SKIPPED', status: 'SKIPPED_PAUSED', reason };
    }
    if ((run.job_status === 'CANCELLED' || !run.allow_scheduled) && scheduled) {
      const reason =
        run.job_status === 'CANCELLED' ? 'job cancelled' : 'scheduled runs are disabled for the job';
      await setFate(tx, run.id, 'SKIPPED', reason);
      return { action: 'SKIPPED', status: 'SKIPPED', reason };
    }

    const buffered = run.reason?.startsWith(BUFFERED) ?? false;
    const now = run.db_now;
    const thresholdMs = (run.misfire_threshold_seconds ?? opts.misfireThresholdSeconds) * 1000;
    const lateMs = now.getTime() - (run.due_at ?? run.scheduled_time).getTime();
    if (scheduled && !buffered && lateMs > thresholdMs && run.misfire_policy) {
      const lateBy = `${Math.round(lateMs / 1000)} s late`;
      if (run.misfire_policy === 'IGNORE') {
        const reason = `misfire (${lateBy} waiting for a worker): policy IGNORE`;
        await setFate(tx, run.id, 'SKIPPED_MISFIRE', reason);
        return { action: 'SKIPPED', status: 'SKIPPED_MISFIRE', reason };
      }
      if (run.misfire_policy === 'FIRE_NOW') {
        const [newer] = await tx.$queryRaw<{ id: string }[]>`
          SELECT id FROM job_runs
           WHERE job_id = ${run.job_id} AND status = 'QUEUED' AND trigger = 'SCHEDULED'
             AND scheduled_time > ${run.scheduled_time} AND coalesce(due_at, scheduled_time) <= now()
           LIMIT 1`;
        if (newer) {
          const reason = `misfire (${lateBy} waiting for a worker): collapsed into the latest late slot (FIRE_NOW)`;
          await setFate(tx, run.id, 'SKIPPED_MISFIRE', reason);
          return { action: 'SKIPPED', status: 'SKIPPED_MISFIRE', reason };
        }
      }
    }

    if (run.overlap_policy !== 'ALLOW_ALL') {
      const active = await tx.$queryRaw<{ id: string; reason: string | null }[]>`
        SELECT id, reason FROM job_runs WHERE job_id = ${run.job_id} AND status = 'RUNNING' AND id <> ${run.id}`;
      if (active.length > 0) {
        const ids = active.map((a) => a.id);
        switch (run.overlap_policy) {
          case 'SKIP': {
            const reason = `overlap: run ${ids.join(', ')} still active (policy SKIP)`;
            await setFate(tx, run.id, 'SKIPPED_OVERLAP', reason);
            return { action: 'SKIPPED', status: 'SKIPPED_OVERLAP', reason };
          }
          case 'BUFFER_ONE': {
            if (!buffered) {
              const [other] = await tx.$queryRaw<{ id: string }[]>`
                SELECT id FROM job_runs WHERE job_id = ${run.job_id} AND status = 'QUEUED' AND id <> ${run.id}
                   AND reason LIKE ${BUFFERED + '%'} LIMIT 1`;
              if (other) {
                const reason = `overlap: run ${ids.join(', ')} active and run ${other.id} already buffered (policy BUFFER_ONE)`;
                await setFate(tx, run.id, 'SKIPPED_OVERLAP', reason);
                return { action: 'SKIPPED', status: 'SKIPPED_OVERLAP', reason };
              }
            }
            break;
          }
          case 'CANCEL_OTHER': {
            const reason = `${BUFFERED} ${ids.join(', ')}, which it cancels (policy CANCEL_OTHER)`;
            await tx.$executeRaw`UPDATE job_runs SET reason = ${reason}, updated_at = now() WHERE id = ${run.id}`;
            return { action: 'DEFER', reason, cancel: ids };
          }
        }
        const reason = `${BUFFERED} ${ids.join(', ')} (policy ${run.overlap_policy})`;
        await tx.$executeRaw`UPDATE job_runs SET reason = ${reason}, updated_at = now() WHERE id = ${run.id}`;
        return { action: 'DEFER', reason, cancel: [] };
      }
    }

    const lockToken = randomUUID();
    await tx.$executeRaw`
      UPDATE job_runs
         SET status = 'RUNNING', start_time = now(), worker_id = ${opts.workerId}, lock_token = ${lockToken},
             definition_version = ${run.job_version}, updated_at = now()
       WHERE id = ${run.id}`;
    await tx.$executeRaw`UPDATE jobs SET status = 'RUNNING', updated_at = now() WHERE id = ${run.job_id} AND status <> 'PAUSED'`;
    return {
      action: 'RUN',
      runId: run.id,
      jobId: run.job_id,
      attempt: run.attempt,
      lockToken,
      definitionVersion: run.job_version,
    };
  });
}

export interface FinishInput {
  runId: string;
  lockToken: string;
  status: 'SUCCESS' | 'FAILURE' | 'TIMEOUT' | 'CANCELLED';
  errorMessage?: string | null;
  errorCode?: string | null;
  exitCode?: number | null;
  output?: Prisma.InputJsonValue | null;
}

/**
 * Records a run's end. Fenced: only the holder of the current lock token of a RUNNING run can finish
 * it, so a late finish from a worker that lost the run never overwrites a newer attempt. Updates the
 * job's status (ONCE jobs end SUCCEEDED / FAILED) and, for fixed-delay schedules, plans the next slot
 * from the finish time.
 */
export async function finishRun(
  db: Db,
  input: FinishInput,
  change?: { redis: Redis; prefix: string },
): Promise<{ accepted: boolean }> {
  const out = await db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ job_id: string; end_time: Date }[]>`
      UPDATE job_runs
         SET status = ${input.status}::"RunStatus", end_time = now(),
             duration_ms = GREATEST(0, (EXTRACT(EPOCH FROM (now() - start_time)) * 1000)::int),
             error_message = ${input.errorMessage ?? null}, error_code = ${input.errorCode ?? null},
             exit_code = ${input.exitCode ?? null}, output = ${input.output === undefined || input.output === null ? null : JSON.stringify(input.output)}::jsonb,
             updated_at = now()
       WHERE id = ${input.runId} AND status = 'RUNNING' AND lock_token = ${input.lockToken}
      RETURNING job_id, end_time`;
    const row = rows[0];
    if (!row) return null;
    const [sched] = await tx.$queryRaw<
      {
        id: number;
        schedule_type: string;
        interval_mode: string;
        interval_seconds: number | null;
        end_at: Date | null;
        job_status: string;
      }[]
    >`SELECT s.id, s.schedule_type::text AS schedule_type, s.interval_mode::text AS interval_mode, s.interval_seconds,
             s.end_at, j.status::text AS job_status
        FROM jobs j LEFT JOIN job_schedules s ON s.job_id = j.id WHERE j.id = ${row.job_id} FOR UPDATE OF j`;
    const stillRunning = await tx.jobRun.count({ where: { jobId: row.job_id, status: 'RUNNING' } });
    let next: Date | null = null;
    if (sched && sched.job_status !== 'PAUSED') {
      let status = stillRunning > 0 ? 'RUNNING' : 'SCHEDULED';
      if (sched.schedule_type === 'ONCE' && stillRunning === 0)
        status =
          input.status === 'SUCCESS' ? 'SUCCEEDED' : input.status === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
      await tx.$executeRaw`UPDATE jobs SET status = ${status}::"JobStatus", updated_at = now() WHERE id = ${row.job_id}`;
      if (
        sched.schedule_type === 'INTERVAL' &&
        sched.interval_mode === 'FIXED_DELAY' &&
        sched.interval_seconds
      ) {
        next = new Date(row.end_time.getTime() + sched.interval_seconds * 1000);
        if (sched.end_at && next > sched.end_at) next = null;
        await tx.$executeRaw`UPDATE job_schedules SET next_fire_at = ${next}, updated_at = now() WHERE id = ${sched.id}`;
      }
    }
    return { jobId: row.job_id, next };
  });
  if (!out) return { accepted: false };
  if (out.next && change) await publishChange(change.redis, change.prefix, out.jobId);
  return { accepted: true };
}
