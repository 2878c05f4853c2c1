import { ConflictError, ValidationError, type JobTypeName } from '@chronos/core';
import { Prisma } from '@chronos/db';
import { publishChange } from './changes.ts';
import { replanJob, type EngineDeps, type ReplanResult } from './job-changes.ts';
import {
  DEFAULT_MISFIRE_THRESHOLD_SECONDS,
  assertRunAtNotPast,
  isPastRunAt,
  normalizeSchedule,
  payloadColumns,
  readDefinition,
  systemClock,
  validateAll,
  type CreateJobInput,
  type JobDefinitionRow,
  type WithinTransaction,
} from './jobs.ts';

/** A retry policy as callers give it; absent fields take the column defaults. */
export interface RetryPolicyInput {
  /** @defaultValue 1 (no retry) */
  maxAttempts?: number;
  /** @defaultValue 'FIXED' */
  backoffStrategy?: 'FIXED' | 'EXPONENTIAL';
  /** @defaultValue 60 */
  backoffSeconds?: number;
  /**
   * Failure conditions that are retried (see `isRetryCondition`), replacing the default; empty: every
   * transient failure is retried, no permanent one (see `shouldRetry`). @defaultValue []
   */
  retryOn?: string[];
  /** @defaultValue true */
  jitter?: boolean;
}

/** The job and schedule fields a change may set, as `createJob` takes them. */
type ChangeableFields =
  | 'name'
  | 'description'
  | 'priority'
  | 'overlapPolicy'
  | 'timeoutSeconds'
  | 'alertThreshold'
  | 'allowScheduled'
  | 'allowManual'
  | 'allowWebhook'
  | 'notificationSettings'
  | 'ownerId'
  | 'schedule';

/**
 * A change to a job's definition. Absent fields stay as they are; `schedule`, `payload` and
 * `retryPolicy` replace the stored ones whole (merging a partial change is the caller's business);
 * `schedule: null` removes the schedule (the job then runs only when triggered).
 * A new `ownerId` is for administrators only: the caller decides who may.
 */
export interface JobUpdate extends Partial<Pick<CreateJobInput, ChangeableFields>> {
  /** The whole payload of the job's type, validated by the type's schema (errors under `payload.`). */
  payload?: Record<string, unknown>;
  /** The whole retry policy; null removes it (one attempt, no retry). */
  retryPolicy?: RetryPolicyInput | null;
}

export interface UpdateJobOptions {
  /** IANA zone of schedules that name none. @defaultValue 'UTC' */
  defaultTimezone?: string;
  /**
   * The deployment's misfire threshold (MISFIRE_THRESHOLD_SECONDS): a new ONCE `runAt` further in
   * the past than this (or the schedule's own threshold) is refused. @defaultValue 60
   */
  misfireThresholdSeconds?: number;
  /** Now, for first fire times and the check of a one-shot's time. @defaultValue the system clock */
  clock?: () => Date;
  /** False refuses payload changes of SCRIPT jobs, as `createJob` refuses creating them. */
  scriptEnabled?: boolean;
  /** Optimistic concurrency: the version the caller last saw; a newer one refuses the change. */
  expectedVersion?: number;
  /** Runs inside the change's transaction with the changed job (an audit event, say): all or nothing. */
  withinTransaction?: WithinTransaction<JobDefinitionRow>;
}

export interface UpdateJobResult {
  /** The definition as committed (next_fire_at as re-planned). */
  job: JobDefinitionRow;
  /** Set when the change re-planned the schedule. */
  replan: ReplanResult | null;
}

/** The job changed since the caller read it (`If-Match` with an older version). */
export class StaleVersionError extends ConflictError {
  constructor(
    readonly jobId: string,
    readonly expectedVersion: number,
    readonly currentVersion: number,
  ) {
    super(`job ${jobId} is at version ${currentVersion}, not ${expectedVersion}: read it again`);
    this.name = 'StaleVersionError';
  }
}

/** A whole retry policy: what is not given takes the column default. */
function retryColumns(p: RetryPolicyInput) {
  return {
    maxAttempts: p.maxAttempts ?? 1,
    backoffStrategy: p.backoffStrategy ?? 'FIXED',
    backoffSeconds: p.backoffSeconds ?? 60,
    retryOn: p.retryOn ?? [],
    jitter: p.jitter ?? true,
  };
}

/** The job's scalar columns that an update sets (the version bump and status are added by the caller). */
function jobColumns(u: JobUpdate): Prisma.JobUncheckedUpdateInput {
  const data: Prisma.JobUncheckedUpdateInput = {};
  const keys = [
    'name',
    'description',
    'priority',
    'overlapPolicy',
    'timeoutSeconds',
    'alertThreshold',
    'allowScheduled',
    'allowManual',
    'allowWebhook',
    'ownerId',
  ] as const;
  for (const k of keys) if (u[k] !== undefined) (data as Record<string, unknown>)[k] = u[k];
  if (u.notificationSettings !== undefined)
    data.notificationSettings = u.notificationSettings ?? Prisma.DbNull;
  return data;
}

interface LockedRow {
  version: number;
  status: string;
  allow_scheduled: boolean;
}

/**
 * Changes a job's definition — job columns, schedule, payload and retry policy — in one
 * transaction with exactly one version bump, then re-plans when the schedule (or whether it may
 * fire) changed, so slots that no longer apply are skipped and removed from Redis. Everything is
 * validated first (field paths `schedule.…`, `payload.…`); nothing is written on a bad change.
 * A ONCE `runAt` the change sets is refused when it lies further in the past than the misfire
 * threshold (see `assertRunAtNotPast`); the `runAt` the job already has is not checked again.
 * A job whose schedule had ended (ONCE done, PENDING) is scheduled again by a new schedule.
 * Returns null when the job does not exist.
 * @throws StaleVersionError when `expectedVersion` is not the current version.
 */
export async function updateJob(
  deps: EngineDeps,
  jobId: string,
  update: JobUpdate,
  opts: UpdateJobOptions = {},
): Promise<UpdateJobResult | null> {
  const current = await deps.db.job.findUnique({
    where: { id: jobId },
    select: { type: true, schedule: { select: { scheduleType: true, runAt: true } } },
  });
  if (!current) return null;
  const type = current.type as JobTypeName;
  if (update.payload !== undefined && type === 'SCRIPT' && opts.scriptEnabled === false)
    throw new ValidationError('SCRIPT jobs are disabled on this deployment (SCRIPT_ENABLED=false)', [
      { path: 'type', message: 'SCRIPT jobs are disabled on this deployment' },
    ]);
  const now = (opts.clock ?? systemClock)();
  const check = {
    now,
    misfireThresholdSeconds: opts.misfireThresholdSeconds ?? DEFAULT_MISFIRE_THRESHOLD_SECONDS,
  };
  const removeSchedule = update.schedule === null && current.schedule !== null;
  const [schedule, payload] = validateAll(
    () => {
      if (!update.schedule) return undefined;
      const normalized = normalizeSchedule(update.schedule, { timezone: opts.defaultTimezone ?? 'UTC', now });
      assertRunAtNotPast(normalized.data, check, current.schedule);
      return normalized;
    },
    () => (update.payload !== undefined ? payloadColumns(type, update.payload) : undefined),
  );

  const keptPastRunAt = schedule !== undefined && isPastRunAt(schedule.data, check);
  const out = await deps.db.$transaction(async (tx) => {
    // The same locks, in the same statement, as the engine's other job changes: no deadlock with them.
    // A job without a schedule has its job row alone to lock (as lockJob does).
    const [locked] = current.schedule
      ? await tx.$queryRaw<LockedRow[]>`
      SELECT j.version, j.status::text AS status, j.allow_scheduled
        FROM jobs j JOIN job_schedules s ON s.job_id = j.id
       WHERE j.id = ${jobId}
         FOR UPDATE OF s, j`
      : await tx.$queryRaw<LockedRow[]>`
      SELECT j.version, j.status::text AS status, j.allow_scheduled
        FROM jobs j
       WHERE j.id = ${jobId} AND NOT EXISTS (SELECT 1 FROM job_schedules s WHERE s.job_id = j.id)
         FOR UPDATE OF j`;
    if (!locked) return null;
    if (opts.expectedVersion !== undefined && opts.expectedVersion !== locked.version)
      throw new StaleVersionError(jobId, opts.expectedVersion, locked.version);

    const data = jobColumns(update);
    data.version = { increment: 1 };
    // A new schedule brings an ended job back (as createJob would start it); paused and running
    // jobs keep their status. A one-shot long past that the change keeps (only a kept one passes
    // the check) does not: it has had its turn, or waits for a scheduler to record it.
    // A job the schedule may no longer fire waits for triggers (PENDING), as createJob leaves it.
    const allowScheduled = update.allowScheduled ?? locked.allow_scheduled;
    if (
      schedule &&
      !keptPastRunAt &&
      ['PENDING', 'SCHEDULED', 'SUCCEEDED', 'FAILED', 'CANCELLED'].includes(locked.status)
    )
      data.status = schedule.nextFireAt && allowScheduled ? 'SCHEDULED' : 'PENDING';
    else if ((!allowScheduled || removeSchedule) && locked.status === 'SCHEDULED') data.status = 'PENDING';
    await tx.job.update({ where: { id: jobId }, data });
    if (schedule)
      await tx.jobSchedule.upsert({
        where: { jobId },
        create: { ...schedule.data, jobId },
        update: schedule.data,
      });
    if (removeSchedule) await tx.jobSchedule.deleteMany({ where: { jobId } });
    if (payload) {
      await tx.jobPayload.deleteMany({ where: { jobId } });
      await tx.jobPayload.create({
        data: { ...(payload as Omit<Prisma.JobPayloadUncheckedCreateInput, 'jobId' | 'type'>), jobId, type },
      });
    }
    if (update.retryPolicy === null) await tx.retryPolicy.deleteMany({ where: { jobId } });
    else if (update.retryPolicy) {
      const policy = retryColumns(update.retryPolicy);
      await tx.retryPolicy.upsert({ where: { jobId }, create: { ...policy, jobId }, update: policy });
    }
    const job = await readDefinition(tx, jobId);
    await opts.withinTransaction?.(tx, job);
    return {
      job,
      replan: schedule !== undefined || removeSchedule || job.allowScheduled !== locked.allow_scheduled,
    };
  });
  if (!out) return null;
  if (!out.replan) {
    await publishChange(deps.redis, deps.prefix, jobId);
    return { job: out.job, replan: null };
  }
  const replan = await replanJob(deps, jobId, { keepNextFireAt: keptPastRunAt });
  if (replan && out.job.schedule) out.job.schedule.nextFireAt = replan.nextFireAt;
  return { job: out.job, replan };
}
