// Request bodies of /jobs turned into engine inputs: POST → CreateJobInput, PUT / PATCH → JobUpdate
// (PATCH merged onto the stored definition first), with the API's rules on ownership and secrets.
import { RUNNABLE_JOB_TYPES, ValidationError, isRunnableJobType, type JobTypeName } from '@chronos/core';
import type { Db, Prisma } from '@chronos/db';
import {
  type CreateJobInput,
  type JobDefinitionRow,
  type JobUpdate,
  type RetryPolicyInput,
  type ScheduleInput,
} from '@chronos/engine';
import type { Principal } from '../auth/principal.ts';
import { HttpError } from '../http/errors.ts';
import { retryFields, scheduleFields, storedPayload } from './definition.ts';
import type { JobDefinitionBody, JobPatchBody, ScheduleBody } from './schemas.ts';
import { restoreMasked } from './secrets.ts';

/** Refuses types this version cannot run (no payload schema, no executor): they could only fail. */
function assertDefinableType(type: JobTypeName): void {
  if (!isRunnableJobType(type))
    throw new ValidationError(`${type} jobs cannot be defined in this version`, [
      {
        path: 'type',
        message: `${type} jobs cannot be defined in this version (no executor yet); types that run: ${RUNNABLE_JOB_TYPES.join(', ')}`,
      },
    ]);
}

/**
 * The owner a change names: only administrators may name one (anyone else's `ownerId` is ignored),
 * and it must be an existing user.
 */
export async function ownerOf(
  db: Db,
  principal: Principal,
  ownerId: string | undefined,
): Promise<string | undefined> {
  if (!principal.isAdmin || ownerId === undefined) return undefined;
  const user = await db.user.findUnique({ where: { id: ownerId }, select: { id: true } });
  if (!user) throw new ValidationError('unknown owner', [{ path: 'ownerId', message: 'is not a user' }]);
  return user.id;
}

/** The fields POST and PUT set alike from a whole definition. */
function definitionFields(body: JobDefinitionBody) {
  return {
    name: body.name,
    description: body.description ?? null,
    priority: body.priority,
    overlapPolicy: body.overlapPolicy,
    timeoutSeconds: body.timeoutSeconds,
    alertThreshold: body.alertThreshold,
    allowScheduled: body.triggers.scheduled,
    allowManual: body.triggers.manual,
    allowWebhook: body.triggers.webhook,
    notificationSettings: body.notificationSettings,
    // None: the job runs only when triggered (a PUT without one removes the stored one).
    schedule: body.schedule,
  };
}

/**
 * POST /jobs → the engine's input (`createJob` validates the payload and the schedule together,
 * so one answer names every bad field).
 */
export function createInput(body: JobDefinitionBody, ownerId: string): CreateJobInput {
  assertDefinableType(body.type);
  return {
    ...definitionFields(body),
    ownerId,
    type: body.type,
    payload: body.payload,
    ...(body.retryPolicy ? { retryPolicy: body.retryPolicy } : {}),
  };
}

function sameType(current: JobTypeName, given: JobTypeName | undefined): void {
  if (given !== undefined && given !== current)
    throw new ValidationError('the type of a job cannot change', [
      { path: 'type', message: `is ${current} and cannot change; create a new job instead` },
    ]);
}

/** PUT /jobs/{id}: the whole definition replaces the stored one; masked secrets sent back are kept. */
export function replacement(
  current: JobDefinitionRow,
  body: JobDefinitionBody,
  ownerId: string | undefined,
): JobUpdate {
  sameType(current.type, body.type);
  return {
    ...definitionFields(body),
    payload: restoreMasked(body.payload, storedPayload(current.type, current.payload)),
    retryPolicy: body.retryPolicy,
    ...(ownerId ? { ownerId } : {}),
  };
}

/** A schedule change: merged onto the stored schedule, or a new one when the type changes. */
function mergedSchedule(job: JobDefinitionRow, patch: Partial<ScheduleBody>): ScheduleInput {
  const stored = job.schedule && scheduleFields(job.schedule);
  if (stored && (patch.type === undefined || patch.type === stored.type)) return { ...stored, ...patch };
  if (patch.type === undefined)
    throw new ValidationError('schedule.type is required', [
      { path: 'schedule.type', message: 'is required' },
    ]);
  return { ...patch, type: patch.type };
}

function mergedRetryPolicy(job: JobDefinitionRow, patch: RetryPolicyInput | null): RetryPolicyInput | null {
  if (patch === null) return null;
  return { ...(job.retryPolicy && retryFields(job.retryPolicy)), ...patch };
}

/** PATCH /jobs/{id}: only the given fields change; objects merge onto the stored ones. */
export function patchUpdate(
  current: JobDefinitionRow,
  patch: JobPatchBody,
  ownerId: string | undefined,
): JobUpdate {
  sameType(current.type, patch.type);
  const update: JobUpdate = {};
  const simple = ['name', 'priority', 'overlapPolicy', 'timeoutSeconds', 'alertThreshold'] as const;
  for (const k of simple) if (patch[k] !== undefined) (update as Record<string, unknown>)[k] = patch[k];
  if (patch.description !== undefined) update.description = patch.description;
  if (patch.notificationSettings !== undefined)
    update.notificationSettings = patch.notificationSettings as Prisma.InputJsonValue | null;
  if (patch.triggers) {
    const t = patch.triggers;
    if (t.scheduled !== undefined) update.allowScheduled = t.scheduled;
    if (t.manual !== undefined) update.allowManual = t.manual;
    if (t.webhook !== undefined) update.allowWebhook = t.webhook;
  }
  if (patch.schedule) update.schedule = mergedSchedule(current, patch.schedule);
  else if (patch.schedule === null) update.schedule = null;
  if (patch.payload) {
    const stored = storedPayload(current.type, current.payload);
    update.payload = restoreMasked({ ...stored, ...patch.payload }, stored);
  }
  if (patch.retryPolicy !== undefined) update.retryPolicy = mergedRetryPolicy(current, patch.retryPolicy);
  if (ownerId) update.ownerId = ownerId;
  return update;
}

/**
 * `If-Match: "<version>"` → the version the caller expects; undefined without the header or for
 * `*`. A value that is no version of ours can never match: 412.
 */
export function expectedVersion(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(header);
  if (!m) throw preconditionFailed(`If-Match ${JSON.stringify(header)} is not a version of this job`);
  return Number(m[1]);
}

export const preconditionFailed = (detail: string) => new HttpError(412, 'Precondition Failed', detail);

/** The ETag of a job: its definition version. */
export const etagOf = (version: number) => `"${version}"`;
