// Request and response schemas of /jobs: one definition shape for POST and PUT, the same fields all
// optional for PATCH, and the Job document every answer (and every stored version) uses.
import { JOB_TYPES } from '@chronos/core';
import {
  BackoffStrategy,
  DstGapPolicy,
  DstRepeatPolicy,
  IntervalMode,
  JobPriority,
  JobStatus,
  MisfirePolicy,
  NotificationChannel,
  OverlapPolicy,
  ResumePolicy,
  ScheduleType,
} from '@chronos/db';
import { isRetryCondition } from '@chronos/engine';
import { z } from 'zod';
import { isoDate, timestamp } from '../http/schemas.ts';

/** One year: the longest interval, and the widest backfill range. */
export const MAX_SPAN_SECONDS = 366 * 24 * 3600;

/**
 * A schedule. Fields of other schedule types are ignored; the schedule math checks the rest
 * (cron syntax, zone, start/end) with paths `schedule.…`. Request bodies are strict objects: an
 * unknown field is a 400 naming it (`schedule.cronExpresion`), never dropped.
 */
export const scheduleBody = z
  .strictObject({
    type: z.enum(ScheduleType),
    cronExpression: z.string().max(255).nullish().describe('CRON: 5 or 6 fields (seconds first)'),
    runAt: isoDate
      .nullish()
      .describe(
        'ONCE: when. Saved, at most the misfire threshold before now (400 otherwise; to run a job now, trigger it)',
      ),
    intervalSeconds: z.int().min(1).max(MAX_SPAN_SECONDS).nullish().describe('INTERVAL: every N seconds'),
    intervalMode: z.enum(IntervalMode).optional().describe('INTERVAL; default FIXED_RATE'),
    anchorAt: isoDate
      .nullish()
      .describe('FIXED_RATE phase: fires at anchorAt + k·interval; default startAt, else the time of saving'),
    timezone: z
      .string()
      .min(1)
      .max(64)
      .nullish()
      .describe('IANA zone of CRON wall times; default DEFAULT_TIMEZONE'),
    dstGapPolicy: z
      .enum(DstGapPolicy)
      .optional()
      .describe('A wall time a spring-forward skips; default SHIFT'),
    dstRepeatPolicy: z
      .enum(DstRepeatPolicy)
      .optional()
      .describe('A wall time a fall-back repeats; default FIRST'),
    misfirePolicy: z.enum(MisfirePolicy).optional().describe('A slot found late; default FIRE_NOW'),
    misfireThresholdSeconds: z
      .int()
      .min(0)
      .max(604_800)
      .nullish()
      .describe(
        'A slot later than this follows misfirePolicy (and a ONCE runAt may lie this far back); default MISFIRE_THRESHOLD_SECONDS',
      ),
    misfireMaxCatchUp: z.int().min(0).max(10_000).optional(),
    resumePolicy: z.enum(ResumePolicy).optional().describe('Slots missed while paused; default SKIP_MISSED'),
    jitterSeconds: z.int().min(0).max(3600).optional(),
    startAt: isoDate.nullish(),
    endAt: isoDate.nullish(),
  })
  .meta({ id: 'ScheduleInput' });
export type ScheduleBody = z.output<typeof scheduleBody>;

export const retryPolicyBody = z
  .strictObject({
    maxAttempts: z.int().min(1).max(10).optional().describe('Attempts in all (1 = no retry); default 1'),
    backoffStrategy: z.enum(BackoffStrategy).optional(),
    backoffSeconds: z.int().min(0).max(3600).optional(),
    retryOn: z
      .array(
        z
          .string()
          .max(64)
          .refine(
            isRetryCondition,
            'must be TIMEOUT, NETWORK, HTTP_5XX, HTTP_429, HTTP_4XX, CIRCUIT_OPEN, EXIT_CODE:n or ERROR_CODE:x',
          ),
      )
      .max(50)
      .optional()
      .describe(
        'Failure conditions that are retried, replacing the default; absent or empty: every transient failure (timeout, network, 5xx, 429, open circuit, a retryable error) is retried and no permanent one (4xx, bad payload)',
      ),
    jitter: z.boolean().optional(),
  })
  .meta({ id: 'RetryPolicyInput' });

export const notificationSettingsSchema = z
  .strictObject({
    onFailure: z.boolean().default(true).describe('When consecutive failures reach alertThreshold'),
    onRecovery: z.boolean().default(true),
    onSuccess: z.boolean().default(false),
    channels: z
      .array(z.strictObject({ channel: z.enum(NotificationChannel), target: z.string().min(1).max(2048) }))
      .max(20)
      .default([])
      .describe('Besides the owner’s e-mail'),
  })
  .meta({ id: 'NotificationSettings' });

const triggersFields = {
  scheduled: z.boolean().describe('The schedule fires it'),
  manual: z.boolean().describe('POST /jobs/{id}/trigger may start it'),
  webhook: z.boolean().describe('Its signed webhook may start it'),
};

/** A job's payload: the fields of its type's schema (HTTP, DATABASE, …), checked per type. */
const payloadBody = z
  .record(z.string(), z.unknown())
  .describe(
    'The fields of the job type’s payload (e.g. httpUrl, httpMethod for HTTP); checked by the type’s schema',
  );

/** The definition fields; `ownerId` is honoured for administrators only. */
const definitionFields = {
  name: z.string().trim().min(1).max(255),
  description: z.string().max(10_000).nullish(),
  type: z.enum(JOB_TYPES),
  priority: z.enum(JobPriority),
  schedule: scheduleBody
    .nullable()
    .describe(
      'When the scheduler starts it. Left out or null: the job has no schedule and runs only when triggered (manual, webhook)',
    ),
  payload: payloadBody,
  retryPolicy: retryPolicyBody.nullable(),
  overlapPolicy: z.enum(OverlapPolicy).describe('A slot due while a run is active'),
  timeoutSeconds: z.int().min(1).max(86_400).nullable(),
  alertThreshold: z.int().min(1).max(1000).describe('Consecutive failures that raise one alert'),
  notificationSettings: notificationSettingsSchema.nullable(),
  ownerId: z.string().min(1).max(64).describe('Administrators only: the owner (default: the caller)'),
};

/**
 * The Job document's read-only fields: a definition may carry them (a GET answer sent back, edited,
 * as a PUT) and they are ignored. Any other field a definition does not know is refused.
 */
const readOnlyFields = Object.fromEntries(
  ['id', 'status', 'version', 'nextFireAt', 'lastFireAt', 'pausedAt', 'createdAt', 'updatedAt'].map((k) => [
    k,
    z.unknown().optional().describe('Read-only: ignored'),
  ]),
) as Record<
  'id' | 'status' | 'version' | 'nextFireAt' | 'lastFireAt' | 'pausedAt' | 'createdAt' | 'updatedAt',
  z.ZodOptional<z.ZodUnknown>
>;

/** POST /jobs and PUT /jobs/{id}: the whole definition; what is left out takes its default. */
export const jobDefinitionBody = z
  .strictObject({
    ...readOnlyFields,
    ...definitionFields,
    schedule: definitionFields.schedule.default(null),
    priority: definitionFields.priority.default('MEDIUM'),
    payload: payloadBody.default({}),
    retryPolicy: definitionFields.retryPolicy.default(null),
    overlapPolicy: definitionFields.overlapPolicy.default('SKIP'),
    timeoutSeconds: definitionFields.timeoutSeconds.default(null),
    alertThreshold: definitionFields.alertThreshold.default(3),
    notificationSettings: definitionFields.notificationSettings.default(null),
    triggers: z
      .strictObject({
        scheduled: triggersFields.scheduled.default(true),
        manual: triggersFields.manual.default(true),
        webhook: triggersFields.webhook.default(false),
      })
      .default({ scheduled: true, manual: true, webhook: false }),
    ownerId: definitionFields.ownerId.optional(),
  })
  .meta({ id: 'JobDefinition' });
export type JobDefinitionBody = z.output<typeof jobDefinitionBody>;

/**
 * PATCH /jobs/{id}: only the fields given change. `payload`, `schedule`, `retryPolicy` and
 * `triggers` merge onto the stored ones (a schedule of another type replaces it whole); `null`
 * clears a nullable field.
 */
export const jobPatchBody = z
  .strictObject({
    ...readOnlyFields,
    ...definitionFields,
    schedule: scheduleBody
      .partial()
      .nullable()
      .describe('Merged onto the stored schedule; null removes it (the job then runs only when triggered)'),
    retryPolicy: retryPolicyBody.nullable(),
    triggers: z.strictObject(triggersFields).partial(),
  })
  .partial()
  .meta({ id: 'JobPatch' });
export type JobPatchBody = z.output<typeof jobPatchBody>;

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

const nullableTimestamp = timestamp.nullable();

export const scheduleSchema = z
  .object({
    type: z.enum(ScheduleType),
    cronExpression: z.string().nullable(),
    runAt: nullableTimestamp,
    intervalSeconds: z.int().nullable(),
    intervalMode: z.enum(IntervalMode),
    anchorAt: nullableTimestamp,
    timezone: z.string(),
    dstGapPolicy: z.enum(DstGapPolicy),
    dstRepeatPolicy: z.enum(DstRepeatPolicy),
    misfirePolicy: z.enum(MisfirePolicy),
    misfireThresholdSeconds: z.int().nullable(),
    misfireMaxCatchUp: z.int(),
    resumePolicy: z.enum(ResumePolicy),
    jitterSeconds: z.int(),
    startAt: nullableTimestamp,
    endAt: nullableTimestamp,
  })
  .meta({ id: 'Schedule' });

export const retryPolicySchema = z
  .object({
    maxAttempts: z.int(),
    backoffStrategy: z.enum(BackoffStrategy),
    backoffSeconds: z.int(),
    retryOn: z.array(z.string()),
    jitter: z.boolean(),
  })
  .meta({ id: 'RetryPolicy' });

const jobSummaryFields = {
  id: z.string(),
  ownerId: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  type: z.enum(JOB_TYPES),
  status: z.enum(JobStatus),
  priority: z.enum(JobPriority),
  version: z.int().describe('Definition version; also the ETag'),
  overlapPolicy: z.enum(OverlapPolicy),
  timeoutSeconds: z.int().nullable(),
  alertThreshold: z.int(),
  notificationSettings: z.record(z.string(), z.unknown()).nullable(),
  triggers: z.object(triggersFields),
  schedule: scheduleSchema.nullable(),
  nextFireAt: nullableTimestamp.describe('Next slot the scheduler will record; null when none'),
  lastFireAt: nullableTimestamp,
  retryPolicy: retryPolicySchema.nullable(),
  pausedAt: nullableTimestamp,
  createdAt: timestamp,
  updatedAt: timestamp.describe(
    'Last change to the job itself (definition, pause, resume); its runs starting and ending do not move it',
  ),
};

/** A job in lists: everything but the payload. */
export const jobSummarySchema = z.object(jobSummaryFields).meta({ id: 'JobListItem' });

/** The full definition; secrets in the payload (passwords, tokens, URL passwords) read `***`. */
export const jobSchema = z
  .object({
    ...jobSummaryFields,
    payload: z.record(z.string(), z.unknown()).describe('The type’s payload; literal secrets masked as ***'),
  })
  .meta({ id: 'Job' });
export type JobDto = z.output<typeof jobSchema>;
export type JobSummaryDto = z.output<typeof jobSummarySchema>;

export const fireTimesSchema = z
  .object({ fireTimes: z.array(timestamp).describe('UTC, earliest first') })
  .meta({ id: 'FireTimes' });
