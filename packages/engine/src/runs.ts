import { randomUUID } from 'node:crypto';
import type { Db, Prisma } from '@chronos/db';
import type { Redis } from 'ioredis';
import { isJobType, newId, type JobTypeName } from '@chronos/core';
import type { QueueSet } from '@chronos/queue';
import { publishChange } from './changes.ts';
import { enqueueRuns } from './enqueue.ts';
import { retryDelayMs, shouldRetry } from './retry.ts';
import { SCHEDULE_COLUMNS, isSlotOf, type ScheduleRow } from './spec.ts';

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
      /** Set when this run took over from a worker that stopped responding (the previous attempt's id). */
      tookOverFrom?: string;
    }
  /** The slot will not run; the ledger says why. */
  | {
      action: 'SKIPPED';
      status: 'SKIPPED' | 'SKIPPED_PAUSED' | 'SKIPPED_MISFIRE' | 'SKIPPED_OVERLAP';
      reason: string;
    }
  /**
   * Not now: the run is not due yet by the database's clock (`delayMs` until it is), or another run of
   * the job is active and the overlap policy buffers this one. Try again later.
   */
  | { action: 'DEFER'; reason: string; cancel: string[]; delayMs?: number }
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
  /** The job's version the slot was planned under. */
  definition_version: number | null;
  job_status: string;
  job_version: number;
  overlap_policy: 'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'ALLOW_ALL';
  allow_scheduled: boolean;
  misfire_policy: 'FIRE_NOW' | 'IGNORE' | 'RESCHEDULE' | null;
  misfire_threshold_seconds: number | null;
  db_now: Date;
}

/** Start of the reason of a run that waits for an active run of its job (overlap policy). */
export const BUFFERED = 'buffered behind';

/**
 * The reason of a run outside the schedule (MANUAL, WEBHOOK, BACKFILL, RETRY, REPLAY) that a pause
 * kept from starting. Unlike a scheduled slot the pause skipped ('job paused'), resuming does not
 * bring it back: the resume policy is about the schedule's slots; such a run is triggered again.
 */
export const PAUSED_BEFORE_START = 'job paused before the run started';

async function setFate(
  tx: Tx,
  run: { id: string; job_id: string },
  status: string,
  reason: string,
): Promise<void> {
  await tx.$executeRaw`
    UPDATE job_runs SET status = ${status}::"RunStatus", reason = ${reason}, updated_at = now()
     WHERE id = ${run.id}`;
  await settleOnceJob(tx, run.job_id, 'PENDING');
}

/**
 * A ONCE job follows its runs: once none of them waits or runs and its schedule plans nothing more,
 * its status says how it ended without a run of its own finishing — CANCELLED after a cancel,
 * PENDING (nothing planned: it waits for triggers) after a skip. A paused job stays paused.
 */
export async function settleOnceJob(tx: Tx, jobId: string, status: 'CANCELLED' | 'PENDING'): Promise<void> {
  await tx.$executeRaw`
    UPDATE jobs j SET status = ${status}::"JobStatus"
      FROM job_schedules s
     WHERE j.id = ${jobId} AND s.job_id = j.id AND s.schedule_type = 'ONCE' AND s.next_fire_at IS NULL
       AND j.status <> 'PAUSED'
       AND NOT EXISTS (SELECT 1 FROM job_runs x WHERE x.job_id = j.id AND x.status IN ('QUEUED', 'RUNNING'))`;
}

/**
 * The worker's gate before running a slot, decided on Postgres (the truth) in one transaction:
 * a run that is no longer QUEUED is not run again; a scheduled slot that is not due yet by the
 * database's clock (its BullMQ job was promoted a little early: the promoter's timers run on the
 * process clock corrected by an estimated skew) is deferred until it is, so a slot never starts
 * before its time; a job deleted while the run waited is skipped, and every run of a paused job
 * (scheduled or not: manual, webhook, backfill, retry, replay) is recorded SKIPPED_PAUSED; a slot
 * that waited longer than the misfire threshold for a free worker follows the misfire policy (IGNORE
 * skips it; FIRE_NOW runs only the latest of the job's late slots); a slot that comes due while
 * another run of the job is active follows the overlap policy (SKIP, BUFFER_ONE, BUFFER_ALL,
 * CANCEL_OTHER, ALLOW_ALL) — except a retry attempt, which continues a run that already started:
 * it waits for the active run under every policy but ALLOW_ALL, and is never skipped. Otherwise
 * the run becomes RUNNING with a fresh lock token that its finish must present.
 *
 * This is the complete, transactional gate. A worker normally goes through `createRunRecorder`,
 * whose batched statement decides the common cases itself and hands every other one to this.
 */
export async function startRun(
  db: Db,
  opts: {
    runId: string;
    workerId: string;
    misfireThresholdSeconds: number;
    /**
     * The queue delivered this run again after its worker stopped renewing the lock (BullMQ's
     * stall detection): a RUNNING row is then taken over as a new attempt with the same key.
     */
    takeover?: boolean;
  },
): Promise<StartDecision> {
  return db.$transaction(async (tx) => {
    const [run] = await tx.$queryRaw<RunRow[]>`
      SELECT r.id, r.job_id, r.status::text AS status, r.trigger::text AS trigger, r.attempt, r.scheduled_time,
             r.due_at, r.reason, r.definition_version, j.status::text AS job_status, j.version AS job_version,
             j.overlap_policy::text AS overlap_policy, j.allow_scheduled,
             s.misfire_policy::text AS misfire_policy, s.misfire_threshold_seconds, now() AS db_now
        FROM job_runs r JOIN jobs j ON j.id = r.job_id LEFT JOIN job_schedules s ON s.job_id = j.id
       WHERE r.id = ${opts.runId}
         FOR UPDATE OF r, j`;
    if (!run) return { action: 'GONE', reason: 'run not found (job deleted)' };
    if (run.status === 'RUNNING' && opts.takeover) return takeOver(tx, run, opts.workerId);
    if (run.status !== 'QUEUED') return { action: 'GONE', reason: `run is ${run.status}, not QUEUED` };
    const scheduled = run.trigger === 'SCHEDULED';
    const dueInMs = (run.due_at ?? run.scheduled_time).getTime() - run.db_now.getTime();
    if (scheduled && dueInMs > 0)
      return {
        action: 'DEFER',
        reason: `slot not due for another ${dueInMs} ms`,
        cancel: [],
        delayMs: dueInMs,
      };

    // Whatever its trigger: pauseJob records the runs waiting then; this catches the rest (a run
    // whose queue job a worker had already taken, a trigger that raced the pause).
    if (run.job_status === 'PAUSED') {
      const reason = scheduled ? 'job paused while the run waited' : PAUSED_BEFORE_START;
      await setFate(tx, run, 'SKIPPED_PAUSED', reason);
      return { action: 'SKIPPED', status: 'SKIPPED_PAUSED', reason };
    }
    if ((run.job_status === 'CANCELLED' || !run.allow_scheduled) && scheduled) {
      const reason =
        run.job_status === 'CANCELLED' ? 'job cancelled' : 'scheduled runs are disabled for the job';
      await setFate(tx, run, 'SKIPPED', reason);
      return { action: 'SKIPPED', status: 'SKIPPED', reason };
    }
    // The schedule changed while the slot waited (re-planning skips the slots still ahead; this one
    // was due): it runs only if the schedule as it is now has it too.
    if (scheduled && run.definition_version !== null && run.definition_version !== run.job_version) {
      const [schedule] = await tx.$queryRawUnsafe<ScheduleRow[]>(
        `SELECT ${SCHEDULE_COLUMNS.join(', ')} FROM job_schedules WHERE job_id = $1`,
        run.job_id,
      );
      if (schedule && !isSlotOf(schedule, run.scheduled_time)) {
        const reason = `job changed while the run waited (version ${run.definition_version} → ${run.job_version}): the slot is not in its schedule any more`;
        await setFate(tx, run, 'SKIPPED', reason);
        return { action: 'SKIPPED', status: 'SKIPPED', reason };
      }
    }

    const buffered = run.reason?.startsWith(BUFFERED) ?? false;
    const now = run.db_now;
    const thresholdMs = (run.misfire_threshold_seconds ?? opts.misfireThresholdSeconds) * 1000;
    const lateMs = now.getTime() - (run.due_at ?? run.scheduled_time).getTime();
    if (scheduled && !buffered && lateMs > thresholdMs && run.misfire_policy) {
      const lateBy = `${Math.round(lateMs / 1000)} s late`;
      if (run.misfire_policy === 'IGNORE') {
        const reason = `misfire (${lateBy} waiting for a worker): policy IGNORE`;
        await setFate(tx, run, 'SKIPPED_MISFIRE', reason);
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
          await setFate(tx, run, 'SKIPPED_MISFIRE', reason);
          return { action: 'SKIPPED', status: 'SKIPPED_MISFIRE', reason };
        }
      }
    }

    if (run.overlap_policy !== 'ALLOW_ALL') {
      const active = await tx.$queryRaw<{ id: string; reason: string | null }[]>`
        SELECT id, reason FROM job_runs WHERE job_id = ${run.job_id} AND status = 'RUNNING' AND id <> ${run.id}`;
      if (active.length > 0) {
        const ids = active.map((a) => a.id);
        // A retry attempt continues a run that already started (its chain must end in a success, a
        // DLQ entry or a recorded cancel): whatever the policy, it waits for the active run — never
        // skipped (SKIP, BUFFER_ONE), and it does not cancel a newer run (CANCEL_OTHER).
        if (run.trigger === 'RETRY') {
          const reason = `${BUFFERED} ${ids.join(', ')} (a retry attempt waits; policy ${run.overlap_policy})`;
          await tx.$executeRaw`UPDATE job_runs SET reason = ${reason}, updated_at = now() WHERE id = ${run.id}`;
          return { action: 'DEFER', reason, cancel: [] };
        }
        switch (run.overlap_policy) {
          case 'SKIP': {
            const reason = `overlap: run ${ids.join(', ')} still active (policy SKIP)`;
            await setFate(tx, run, 'SKIPPED_OVERLAP', reason);
            return { action: 'SKIPPED', status: 'SKIPPED_OVERLAP', reason };
          }
          case 'BUFFER_ONE': {
            if (!buffered) {
              const [other] = await tx.$queryRaw<{ id: string }[]>`
                SELECT id FROM job_runs WHERE job_id = ${run.job_id} AND status = 'QUEUED' AND id <> ${run.id}
                   AND reason LIKE ${BUFFERED + '%'} LIMIT 1`;
              if (other) {
                const reason = `overlap: run ${ids.join(', ')} active and run ${other.id} already buffered (policy BUFFER_ONE)`;
                await setFate(tx, run, 'SKIPPED_OVERLAP', reason);
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
    // The job's status follows its runs (updated_at dates changes to the job itself, not its runs).
    await tx.$executeRaw`UPDATE jobs SET status = 'RUNNING' WHERE id = ${run.job_id} AND status <> 'PAUSED'`;
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

/**
 * The worker of `run` stopped responding mid-run (killed, or its lock expired): its attempt is
 * closed as FAILURE (WORKER_LOST) — so its lock token no longer finishes anything — and a new
 * attempt with the same idempotency key starts RUNNING under this worker.
 */
async function takeOver(tx: Tx, run: RunRow, workerId: string): Promise<StartDecision> {
  const [lost] = await tx.$queryRaw<
    { worker_id: string | null; idempotency_key: string; definition_version: number | null }[]
  >`
    UPDATE job_runs
       SET status = 'FAILURE', end_time = now(), error_code = 'WORKER_LOST',
           duration_ms = GREATEST(0, (EXTRACT(EPOCH FROM (now() - start_time)) * 1000)::int),
           error_message = 'worker ' || coalesce(worker_id, '?') || ' stopped responding; the run was taken over by ' || ${workerId},
           lock_token = NULL, updated_at = now()
     WHERE id = ${run.id}
    RETURNING worker_id, idempotency_key, definition_version`;
  const [{ next } = { next: run.attempt + 1 }] = await tx.$queryRaw<{ next: number }[]>`
    SELECT max(attempt) + 1 AS next FROM job_runs WHERE idempotency_key = ${lost!.idempotency_key}`;
  const id = newId();
  const lockToken = randomUUID();
  await tx.$executeRaw`
    INSERT INTO job_runs (id, job_id, idempotency_key, attempt, status, trigger, scheduled_time, due_at, start_time,
                          worker_id, lock_token, retry_of_id, definition_version, reason, updated_at)
    VALUES (${id}, ${run.job_id}, ${lost!.idempotency_key}, ${next}, 'RUNNING', ${run.trigger}::"TriggerSource",
            ${run.scheduled_time}, ${run.due_at}, now(), ${workerId}, ${lockToken}, ${run.id}, ${run.job_version},
            ${`took over from worker ${lost!.worker_id ?? '?'} (attempt ${run.attempt} lost)`}, now())`;
  return {
    action: 'RUN',
    runId: id,
    jobId: run.job_id,
    attempt: next,
    lockToken,
    definitionVersion: run.job_version,
    tookOverFrom: run.id,
  };
}

export interface FinishInput {
  runId: string;
  lockToken: string;
  status: 'SUCCESS' | 'FAILURE' | 'TIMEOUT' | 'CANCELLED';
  errorMessage?: string | null;
  /** Classified failure code (TIMEOUT, NETWORK, HTTP_5XX, …) matched against retry_on. */
  errorCode?: string | null;
  exitCode?: number | null;
  httpStatus?: number | null;
  /**
   * The failure's class (see `classifyFailure`): transient failures are retried while attempts are
   * left, permanent ones go to the DLQ at once — unless the job's retry_on lists conditions, which
   * then decide alone. Absent: the code's default class (`TRANSIENT_CODES`).
   */
  retryable?: boolean | null;
  /** The least wait the target asked for before another attempt (HTTP Retry-After): a floor on the backoff. */
  retryAfterMs?: number | null;
  output?: Prisma.InputJsonValue | null;
}

export interface FinishResult {
  /** False when the lock token is not the run's current one (a stale worker): nothing was written. */
  accepted: boolean;
  /** The next attempt, when the failure matched the retry policy. */
  retry?: { runId: string; attempt: number; dueAt: Date };
  /** The DLQ entry, when the last attempt failed. */
  dlqEventId?: string;
}

export interface FinishDeps {
  /** Announces fixed-delay re-plans to schedulers. */
  redis?: Redis;
  prefix?: string;
  /** Enqueues the next attempt of a retried run. */
  queues?: QueueSet;
  random?: () => number;
}

interface FinishedRow {
  job_id: string;
  idempotency_key: string;
  attempt: number;
  trigger: string;
  scheduled_time: Date;
  end_time: Date;
  duration_ms: number | null;
  definition_version: number | null;
}

interface JobRow {
  owner_id: string;
  owner_email: string;
  name: string;
  type: string;
  status: string;
  alert_threshold: number;
  allow_scheduled: boolean;
  schedule_id: number | null;
  schedule_type: string | null;
  interval_mode: string | null;
  interval_seconds: number | null;
  end_at: Date | null;
  max_attempts: number | null;
  backoff_strategy: 'FIXED' | 'EXPONENTIAL' | null;
  backoff_seconds: number | null;
  retry_on: string[] | null;
  jitter: boolean | null;
}

async function notify(
  tx: Tx,
  job: JobRow,
  jobId: string,
  runId: string,
  template: 'JOB_FAILING' | 'JOB_RECOVERED' | 'RUN_DEAD_LETTERED',
  payload: Record<string, unknown>,
): Promise<void> {
  await tx.notification.create({
    data: {
      userId: job.owner_id,
      jobId,
      runId,
      channel: 'EMAIL',
      target: job.owner_email,
      templateCode: template,
      payload: { jobName: job.name, ...payload } as Prisma.InputJsonValue,
    },
  });
}

/**
 * Records a run's end, in one transaction with everything that follows from it:
 * - fenced: only the holder of the current lock token of a RUNNING run can finish it, so a late
 *   finish from a worker that lost the run never overwrites a newer attempt;
 * - job_stats (totals, successes, failures, last times, consecutive failures, average duration),
 *   serialised on the job's row so concurrent finishes lose no update; one JOB_FAILING notification
 *   when consecutive failures reach the job's alert threshold, one JOB_RECOVERED at the next success;
 * - a failure the retry policy retries (`shouldRetry`: its class — transient or permanent — or the
 *   job's retry_on list when it has one) queues the next attempt while attempts are left (same
 *   idempotency key, trigger RETRY, after the backoff, never sooner than the target's Retry-After)
 *   — of a paused job, records it SKIPPED_PAUSED instead; the last or a permanent failed
 *   attempt goes to the DLQ with a notification to the job's owner; a CANCELLED run is neither
 *   retried nor dead-lettered;
 * - the job's status (ONCE jobs end SUCCEEDED / FAILED) and, for fixed-delay schedules, the next slot.
 */
export async function finishRun(db: Db, input: FinishInput, deps: FinishDeps = {}): Promise<FinishResult> {
  const out = await db.$transaction(async (tx) => {
    const [row] = await tx.$queryRaw<FinishedRow[]>`
      UPDATE job_runs
         SET status = ${input.status}::"RunStatus", end_time = now(),
             duration_ms = GREATEST(0, (EXTRACT(EPOCH FROM (now() - start_time)) * 1000)::int),
             error_message = ${input.errorMessage ?? null}, error_code = ${input.errorCode ?? null},
             exit_code = ${input.exitCode ?? null},
             output = ${input.output === undefined || input.output === null ? null : JSON.stringify(input.output)}::jsonb,
             updated_at = now()
       WHERE id = ${input.runId} AND status = 'RUNNING' AND lock_token = ${input.lockToken}
      RETURNING job_id, idempotency_key, attempt, trigger::text AS trigger, scheduled_time, end_time, duration_ms,
                definition_version`;
    if (!row) return null;
    const jobId = row.job_id;
    const [job] = await tx.$queryRaw<JobRow[]>`
      SELECT j.owner_id, u.email AS owner_email, j.name, j.type::text AS type, j.status::text AS status,
             j.alert_threshold, j.allow_scheduled, s.id AS schedule_id, s.schedule_type::text AS schedule_type,
             s.interval_mode::text AS interval_mode, s.interval_seconds, s.end_at,
             p.max_attempts, p.backoff_strategy::text AS backoff_strategy, p.backoff_seconds, p.retry_on, p.jitter
        FROM jobs j JOIN users u ON u.id = j.owner_id
        LEFT JOIN job_schedules s ON s.job_id = j.id LEFT JOIN retry_policies p ON p.job_id = j.id
       WHERE j.id = ${jobId}
         FOR UPDATE OF j`;
    if (!job) return null;
    const success = input.status === 'SUCCESS';
    const failed = input.status === 'FAILURE' || input.status === 'TIMEOUT';

    // Statistics, serialised by the job row lock taken above.
    await tx.$executeRaw`INSERT INTO job_stats (job_id) VALUES (${jobId}) ON CONFLICT (job_id) DO NOTHING`;
    const [stats] = await tx.$queryRaw<{ consecutive_failures: number; alert_open: boolean }[]>`
      SELECT consecutive_failures, alert_open FROM job_stats WHERE job_id = ${jobId} FOR UPDATE`;
    const consecutive = success
      ? 0
      : failed
        ? (stats?.consecutive_failures ?? 0) + 1
        : (stats?.consecutive_failures ?? 0);
    const wasOpen = stats?.alert_open ?? false;
    const alertNow = failed && !wasOpen && consecutive >= job.alert_threshold;
    const recovered = success && wasOpen;
    const duration = row.duration_ms ?? 0;
    await tx.$executeRaw`
      UPDATE job_stats
         SET total_executions = total_executions + 1,
             successful_executions = successful_executions + ${success ? 1 : 0},
             failed_executions = failed_executions + ${failed ? 1 : 0},
             total_duration_ms = total_duration_ms + ${duration},
             avg_duration_ms = (total_duration_ms + ${duration})::float8 / (total_executions + 1),
             last_execution_at = ${row.end_time},
             last_success_at = CASE WHEN ${success} THEN ${row.end_time}::timestamptz ELSE last_success_at END,
             last_failure_at = CASE WHEN ${failed} THEN ${row.end_time}::timestamptz ELSE last_failure_at END,
             consecutive_failures = ${consecutive},
             alert_open = ${alertNow || (wasOpen && !recovered)},
             updated_at = now()
       WHERE job_id = ${jobId}`;
    if (alertNow)
      await notify(tx, job, jobId, input.runId, 'JOB_FAILING', {
        consecutiveFailures: consecutive,
        threshold: job.alert_threshold,
        error: input.errorMessage ?? null,
      });
    if (recovered) await notify(tx, job, jobId, input.runId, 'JOB_RECOVERED', {});

    // Retry or dead-letter.
    let retry: { runId: string; attempt: number; dueAt: Date } | undefined;
    let dlqEventId: string | undefined;
    if (failed) {
      const maxAttempts = job.max_attempts ?? 1;
      const transient = shouldRetry(job.retry_on ?? [], {
        code: input.errorCode ?? input.status,
        exitCode: input.exitCode ?? null,
        httpStatus: input.httpStatus ?? null,
        retryable: input.retryable ?? null,
      });
      if (row.attempt < maxAttempts && transient) {
        const delay = retryDelayMs(
          {
            backoffStrategy: job.backoff_strategy ?? 'FIXED',
            backoffSeconds: job.backoff_seconds ?? 60,
            jitter: job.jitter ?? true,
          },
          row.attempt,
          deps.random,
          input.retryAfterMs,
        );
        const dueAt = new Date(row.end_time.getTime() + delay);
        const id = newId();
        // A paused job starts nothing: the attempt is recorded as the gate would record it when due
        // (SKIPPED_PAUSED, neither run nor dead-lettered) and is not queued.
        const paused = job.status === 'PAUSED';
        const reason = `retry ${row.attempt + 1}/${maxAttempts} after ${input.errorCode ?? input.status}`;
        await tx.$executeRaw`
          INSERT INTO job_runs (id, job_id, idempotency_key, attempt, status, trigger, scheduled_time, due_at,
                                retry_of_id, definition_version, reason, updated_at)
          VALUES (${id}, ${jobId}, ${row.idempotency_key}, ${row.attempt + 1},
                  ${paused ? 'SKIPPED_PAUSED' : 'QUEUED'}::"RunStatus", 'RETRY', ${row.scheduled_time},
                  ${dueAt}, ${input.runId}, ${row.definition_version},
                  ${paused ? `${PAUSED_BEFORE_START} (${reason})` : reason}, now())`;
        if (!paused) retry = { runId: id, attempt: row.attempt + 1, dueAt };
      } else {
        dlqEventId = newId();
        const reason =
          `${input.status}${input.errorCode && input.errorCode !== input.status ? ` (${input.errorCode})` : ''}: ` +
          `${input.errorMessage ?? 'no message'}` +
          (row.attempt > 1 ? ` — after ${row.attempt} attempts` : '') +
          (row.attempt < maxAttempts ? ' — not retried: a permanent failure for this job' : '');
        await tx.dlqEvent.create({
          data: { id: dlqEventId, jobId, runId: input.runId, failureReason: reason },
        });
        await notify(tx, job, jobId, input.runId, 'RUN_DEAD_LETTERED', { dlqEventId, reason });
      }
    }

    // The job's status follows its runs; a fixed-delay schedule plans from this finish.
    const stillRunning = await tx.jobRun.count({ where: { jobId, status: 'RUNNING' } });
    let next: Date | null = null;
    if (job.status !== 'PAUSED') {
      // SCHEDULED while a schedule plans its runs, PENDING when nothing does (no schedule, or
      // scheduled runs off) — the batched finish's `settle` applies the same rule.
      let status =
        stillRunning > 0
          ? 'RUNNING'
          : job.schedule_id !== null && job.allow_scheduled
            ? 'SCHEDULED'
            : 'PENDING';
      if (job.schedule_type === 'ONCE' && stillRunning === 0 && !retry)
        status = success ? 'SUCCEEDED' : input.status === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
      await tx.$executeRaw`UPDATE jobs SET status = ${status}::"JobStatus" WHERE id = ${jobId}`;
      if (
        job.schedule_type === 'INTERVAL' &&
        job.interval_mode === 'FIXED_DELAY' &&
        job.interval_seconds &&
        job.schedule_id &&
        !retry
      ) {
        next = new Date(row.end_time.getTime() + job.interval_seconds * 1000);
        if (job.end_at && next > job.end_at) next = null;
        await tx.$executeRaw`UPDATE job_schedules SET next_fire_at = ${next}, updated_at = now() WHERE id = ${job.schedule_id}`;
      }
    }
    return {
      jobId,
      jobName: job.name,
      type: job.type,
      key: row.idempotency_key,
      scheduledTime: row.scheduled_time,
      next,
      retry,
      dlqEventId,
    };
  });
  if (!out) return { accepted: false };
  if (out.retry && deps.queues && isJobType(out.type))
    await enqueueRuns(
      deps.queues,
      [
        {
          type: out.type as JobTypeName,
          runId: out.retry.runId,
          jobId: out.jobId,
          jobName: out.jobName,
          key: out.key,
          attempt: out.retry.attempt,
          scheduledTime: out.scheduledTime,
          dueAt: out.retry.dueAt,
        },
      ],
      Date.now(),
    );
  if (out.next && deps.redis && deps.prefix) await publishChange(deps.redis, deps.prefix, out.jobId);
  return {
    accepted: true,
    ...(out.retry ? { retry: out.retry } : {}),
    ...(out.dlqEventId ? { dlqEventId: out.dlqEventId } : {}),
  };
}
