import {
  ValidationError,
  isRunnableJobType,
  newId,
  parsePayload,
  triggerInCode,
  validateSchedule,
  type FieldIssue,
  type JobTypeName,
  type ScheduleSpec,
} from '@chronos/core';
import type { Prisma } from '@chronos/db';
import { publishChange } from './changes.ts';
import { firstFireAt, replanJob, type EngineDeps, type ReplanResult } from './job-changes.ts';
import type { ScheduleRow } from './spec.ts';

/**
 * Work a caller adds to an engine change, inside the change's transaction and with its result (an
 * audit event, say): the change and that work commit together or not at all.
 */
export type WithinTransaction<T> = (tx: Prisma.TransactionClient, result: T) => Promise<void>;

/** The relations that make up a job's full definition. */
export const JOB_DEFINITION_INCLUDE = { schedule: true, payload: true, retryPolicy: true } as const;

/** A job row with its schedule, payload and retry policy: everything its definition holds. */
export type JobDefinitionRow = Prisma.JobGetPayload<{ include: typeof JOB_DEFINITION_INCLUDE }>;

/**
 * A payload as job_payloads columns: validated by the type's schema (defaults applied, field paths
 * under `pathPrefix`), with absent and null values left out so the columns take their defaults. A
 * code field (SCRIPT `scriptContent`, DATABASE `query`) may not insert a trigger's values
 * (`triggerInCode`). A type this version cannot run is refused.
 */
export function payloadColumns(
  type: JobTypeName,
  input: Record<string, unknown>,
  pathPrefix = 'payload',
): Record<string, unknown> {
  // A type without an executor could only fail: it cannot be defined (RUNNABLE_JOB_TYPES).
  if (!isRunnableJobType(type))
    throw new ValidationError(`${type} jobs cannot be defined in this version`, [
      { path: 'type', message: `${type} jobs cannot be defined in this version (no executor yet)` },
    ]);
  const parsed = parsePayload(type, input, pathPrefix, 'input') as Record<string, unknown>;
  const code = triggerInCode(type, parsed);
  if (code)
    throw new ValidationError(`${pathPrefix}.${code.field} ${code.message}`, [
      { path: `${pathPrefix}.${code.field}`, message: code.message },
    ]);
  return Object.fromEntries(Object.entries(parsed).filter(([, v]) => v !== null && v !== undefined));
}

/**
 * A job's definition read inside a transaction, one query at a time: an `include` makes Prisma
 * send the relation queries at once, which the transaction's one connection can only queue (pg
 * deprecates that).
 */
export async function readDefinition(tx: Prisma.TransactionClient, jobId: string): Promise<JobDefinitionRow> {
  const job = await tx.job.findUniqueOrThrow({ where: { id: jobId } });
  const schedule = await tx.jobSchedule.findUnique({ where: { jobId } });
  const payload = await tx.jobPayload.findUnique({ where: { jobId } });
  const retryPolicy = await tx.retryPolicy.findUnique({ where: { jobId } });
  return { ...job, schedule, payload, retryPolicy };
}

/** MISFIRE_THRESHOLD_SECONDS's default, for callers that pass no threshold. */
export const DEFAULT_MISFIRE_THRESHOLD_SECONDS = 60;

export const systemClock = (): Date => new Date();

/** A schedule as callers give it (the REST API maps its JSON onto this). */
export interface ScheduleInput {
  type: 'ONCE' | 'CRON' | 'INTERVAL';
  runAt?: Date | null;
  cronExpression?: string | null;
  intervalSeconds?: number | null;
  intervalMode?: 'FIXED_RATE' | 'FIXED_DELAY';
  anchorAt?: Date | null;
  /** IANA zone; the deployment's DEFAULT_TIMEZONE when absent. */
  timezone?: string | null;
  dstGapPolicy?: 'SKIP' | 'SHIFT';
  dstRepeatPolicy?: 'FIRST' | 'LAST' | 'BOTH';
  misfirePolicy?: 'FIRE_NOW' | 'IGNORE' | 'RESCHEDULE';
  misfireThresholdSeconds?: number | null;
  misfireMaxCatchUp?: number;
  resumePolicy?: 'SKIP_MISSED' | 'RUN_ONCE' | 'REPLAY';
  jitterSeconds?: number;
  startAt?: Date | null;
  endAt?: Date | null;
}

export interface CreateJobInput {
  ownerId: string;
  name: string;
  description?: string | null;
  type: JobTypeName;
  priority?: 'LOW' | 'MEDIUM' | 'HIGH';
  overlapPolicy?: 'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'ALLOW_ALL';
  timeoutSeconds?: number | null;
  /** Consecutive failures that raise one alert. @defaultValue 3 */
  alertThreshold?: number;
  /** Which triggers may start a run. @defaultValue scheduled and manual, not webhook */
  allowScheduled?: boolean;
  allowManual?: boolean;
  allowWebhook?: boolean;
  /** Channels and targets for failure / recovery / success notices (stored as given). */
  notificationSettings?: Prisma.InputJsonValue | null;
  /**
   * When the scheduler starts it. Absent (or null): the job has no schedule and runs only when
   * triggered (manual, webhook); it has no job_schedules row, so no scheduler ever claims it, and
   * `allowScheduled` has nothing to allow until a schedule is added.
   */
  schedule?: ScheduleInput | null;
  /** The payload of the job's type (validated by `createJob` with the type's schema). */
  payload?: Record<string, unknown>;
  retryPolicy?: Omit<Prisma.RetryPolicyCreateWithoutJobInput, 'job'>;
}

/**
 * The stored form of a schedule input, with defaults applied, validated with field paths, and its
 * spec for the schedule math (previews).
 */
export function normalizeSchedule(input: ScheduleInput, defaults: { timezone: string; now: Date }) {
  const data = {
    scheduleType: input.type,
    runAt: input.runAt ?? null,
    cronExpression: input.cronExpression ?? null,
    intervalSeconds: input.intervalSeconds ?? null,
    intervalMode: input.intervalMode ?? 'FIXED_RATE',
    // A recurring interval counts from its creation unless told otherwise.
    anchorAt:
      input.type === 'INTERVAL'
        ? (input.anchorAt ?? input.startAt ?? defaults.now)
        : (input.anchorAt ?? null),
    timezone: input.timezone ?? defaults.timezone,
    dstGapPolicy: input.dstGapPolicy ?? 'SHIFT',
    dstRepeatPolicy: input.dstRepeatPolicy ?? 'FIRST',
    misfirePolicy: input.misfirePolicy ?? 'FIRE_NOW',
    misfireThresholdSeconds: input.misfireThresholdSeconds ?? null,
    misfireMaxCatchUp: input.misfireMaxCatchUp ?? 100,
    resumePolicy: input.resumePolicy ?? 'SKIP_MISSED',
    jitterSeconds: input.jitterSeconds ?? 0,
    startAt: input.startAt ?? null,
    endAt: input.endAt ?? null,
  } as const;
  const spec: ScheduleSpec =
    data.scheduleType === 'ONCE'
      ? { type: 'ONCE', runAt: data.runAt as Date }
      : data.scheduleType === 'CRON'
        ? {
            type: 'CRON',
            cronExpression: data.cronExpression as string,
            timezone: data.timezone,
            dstGapPolicy: data.dstGapPolicy,
            dstRepeatPolicy: data.dstRepeatPolicy,
            startAt: data.startAt,
            endAt: data.endAt,
          }
        : {
            type: 'INTERVAL',
            intervalSeconds: data.intervalSeconds as number,
            intervalMode: data.intervalMode,
            anchorAt: data.anchorAt,
            startAt: data.startAt,
            endAt: data.endAt,
          };
  validateSchedule(spec, 'schedule');
  const row: ScheduleRow = {
    schedule_type: data.scheduleType,
    run_at: data.runAt,
    cron_expression: data.cronExpression,
    interval_seconds: data.intervalSeconds,
    interval_mode: data.intervalMode,
    anchor_at: data.anchorAt,
    timezone: data.timezone,
    dst_gap_policy: data.dstGapPolicy,
    dst_repeat_policy: data.dstRepeatPolicy,
    start_at: data.startAt,
    end_at: data.endAt,
    created_at: defaults.now,
    next_fire_at: null,
  };
  return { data, spec, nextFireAt: firstFireAt(row, defaults.now) };
}

/** What a check of a one-shot's time needs: the clock's now and the deployment's misfire threshold. */
export interface RunAtCheck {
  now: Date;
  /** MISFIRE_THRESHOLD_SECONDS: for a schedule that sets no threshold of its own. */
  misfireThresholdSeconds: number;
}

/** True for a ONCE schedule whose `runAt` is earlier than now minus the misfire threshold. */
export function isPastRunAt(
  data: { scheduleType: string; runAt: Date | null; misfireThresholdSeconds: number | null },
  check: RunAtCheck,
): boolean {
  if (data.scheduleType !== 'ONCE' || !data.runAt) return false;
  const threshold = data.misfireThresholdSeconds ?? check.misfireThresholdSeconds;
  return data.runAt.getTime() < check.now.getTime() - threshold * 1000;
}

/**
 * A ONCE schedule whose `runAt` is earlier than now minus the misfire threshold (the schedule's
 * own, else the deployment's) is a mistake, not a fire order: planned, it would fire at once (a
 * date typed wrong, a job copied from an old one). Refused with the field path `schedule.runAt`;
 * the way to run a job now is to trigger it. A `runAt` within the threshold is accepted and fires
 * as a slot that waited that long would.
 */
export function assertRunAtNotPast(
  data: { scheduleType: string; runAt: Date | null; misfireThresholdSeconds: number | null },
  check: RunAtCheck,
  /**
   * The job's stored schedule, for a change: a ONCE `runAt` it already has is not checked again,
   * so a job whose one-shot has fired can still be edited (renamed, say) with its schedule as is.
   */
  stored?: { scheduleType: string; runAt: Date | null } | null,
): void {
  if (!data.runAt || !isPastRunAt(data, check)) return;
  if (stored?.scheduleType === 'ONCE' && stored.runAt?.getTime() === data.runAt.getTime()) return;
  const threshold = data.misfireThresholdSeconds ?? check.misfireThresholdSeconds;
  const message =
    `is ${data.runAt.toISOString()}, more than the misfire threshold (${threshold} s) before now ` +
    `(${check.now.toISOString()}): a one-shot in the past is not run. To run the job now, trigger it ` +
    '(POST /jobs/{id}/trigger); to run it later, give a time ahead';
  throw new ValidationError(`schedule.runAt ${message}`, [{ path: 'schedule.runAt', message }]);
}

/**
 * Runs every check and returns their results, or throws one ValidationError with the issues of all
 * that failed (so a caller learns about the schedule and the payload in one answer).
 */
export function validateAll<T extends unknown[]>(...checks: { [K in keyof T]: () => T[K] }): T {
  const issues: FieldIssue[] = [];
  const messages: string[] = [];
  const results = checks.map((check) => {
    try {
      return check();
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      issues.push(...err.issues);
      messages.push(err.message);
      return undefined;
    }
  });
  if (issues.length > 0) throw new ValidationError(messages.join('; '), issues);
  return results as T;
}

export interface CreateJobOptions {
  /** IANA zone of a schedule that names none. @defaultValue 'UTC' */
  defaultTimezone?: string;
  /**
   * The deployment's misfire threshold (MISFIRE_THRESHOLD_SECONDS): a ONCE `runAt` further in the
   * past than this (or the schedule's own threshold) is refused. @defaultValue 60
   */
  misfireThresholdSeconds?: number;
  /** Now, for first fire times and the check of a one-shot's time. @defaultValue the system clock */
  clock?: () => Date;
  /** False refuses SCRIPT jobs (SCRIPT_ENABLED=false). */
  scriptEnabled?: boolean;
  /** Runs inside the creating transaction with the new job (an audit event, say): all or nothing. */
  withinTransaction?: WithinTransaction<JobDefinitionRow>;
}

/**
 * Creates a job with its schedule, payload and retry policy in one transaction, plans its first
 * slot and tells the schedulers, so it fires on time even when that is within the next second.
 * The payload (by its type's schema: defaults applied, field paths under `payload.`) and the
 * schedule (`schedule.…`, a ONCE `runAt` in the past included: see `assertRunAtNotPast`) are
 * validated first, every issue of both in one error; nothing is written on a bad definition.
 * Returns the definition as committed.
 */
export async function createJob(
  deps: EngineDeps,
  input: CreateJobInput,
  opts: CreateJobOptions = {},
): Promise<{ id: string; nextFireAt: Date | null; job: JobDefinitionRow }> {
  if (input.type === 'SCRIPT' && opts.scriptEnabled === false)
    throw new ValidationError('SCRIPT jobs are disabled on this deployment (SCRIPT_ENABLED=false)', [
      { path: 'type', message: 'SCRIPT jobs are disabled on this deployment' },
    ]);
  const id = newId();
  const now = (opts.clock ?? systemClock)();
  const [payload, { data, nextFireAt: firstFire }] = validateAll(
    () => payloadColumns(input.type, input.payload ?? {}),
    () => {
      if (!input.schedule) return { data: null, nextFireAt: null };
      const schedule = normalizeSchedule(input.schedule, { timezone: opts.defaultTimezone ?? 'UTC', now });
      assertRunAtNotPast(schedule.data, {
        now,
        misfireThresholdSeconds: opts.misfireThresholdSeconds ?? DEFAULT_MISFIRE_THRESHOLD_SECONDS,
      });
      return schedule;
    },
  );
  // A job that only runs when triggered plans no slot (the scheduler claims by next_fire_at).
  const nextFireAt = input.allowScheduled === false ? null : firstFire;
  const job = await deps.db.$transaction(async (tx) => {
    await tx.job.create({
      data: {
        id,
        ownerId: input.ownerId,
        name: input.name,
        description: input.description ?? null,
        type: input.type,
        priority: input.priority ?? 'MEDIUM',
        overlapPolicy: input.overlapPolicy ?? 'SKIP',
        timeoutSeconds: input.timeoutSeconds ?? null,
        alertThreshold: input.alertThreshold ?? 3,
        allowScheduled: input.allowScheduled ?? true,
        allowManual: input.allowManual ?? true,
        allowWebhook: input.allowWebhook ?? false,
        ...(input.notificationSettings != null ? { notificationSettings: input.notificationSettings } : {}),
        status: nextFireAt ? 'SCHEDULED' : 'PENDING',
        ...(data ? { schedule: { create: { ...data, nextFireAt } } } : {}),
        payload: { create: payload as Omit<Prisma.JobPayloadCreateWithoutJobInput, 'type'> },
        ...(input.retryPolicy ? { retryPolicy: { create: input.retryPolicy } } : {}),
      },
    });
    const created = await readDefinition(tx, id);
    await opts.withinTransaction?.(tx, created);
    return created;
  });
  await publishChange(deps.redis, deps.prefix, id);
  return { id, nextFireAt, job };
}

/**
 * Replaces a job's schedule (validated, a ONCE `runAt` as `updateJob` checks it), bumps its
 * definition version and re-plans: enqueued future
 * slots that no longer apply are removed from Redis and say why in the ledger.
 */
export async function updateSchedule(
  deps: EngineDeps,
  jobId: string,
  schedule: ScheduleInput,
  opts: Pick<CreateJobOptions, 'defaultTimezone' | 'misfireThresholdSeconds' | 'clock'> = {},
): Promise<ReplanResult | null> {
  const now = (opts.clock ?? systemClock)();
  const { data } = normalizeSchedule(schedule, { timezone: opts.defaultTimezone ?? 'UTC', now });
  const stored = await deps.db.jobSchedule.findUnique({
    where: { jobId },
    select: { scheduleType: true, runAt: true },
  });
  const check = {
    now,
    misfireThresholdSeconds: opts.misfireThresholdSeconds ?? DEFAULT_MISFIRE_THRESHOLD_SECONDS,
  };
  assertRunAtNotPast(data, check, stored);
  const updated = await deps.db.$transaction(async (tx) => {
    const job = await tx.job.findUnique({ where: { id: jobId }, select: { id: true } });
    if (!job) return false;
    // A job that had no schedule (it ran only when triggered) gets one.
    await tx.jobSchedule.upsert({ where: { jobId }, create: { ...data, jobId }, update: data });
    await tx.job.update({ where: { id: jobId }, data: { version: { increment: 1 } } });
    return true;
  });
  // Past the check, a one-shot long past is one the job already had: see updateJob.
  return updated ? replanJob(deps, jobId, { keepNextFireAt: isPastRunAt(data, check) }) : null;
}
