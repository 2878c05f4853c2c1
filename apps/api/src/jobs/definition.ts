// A job row (with schedule, payload, retry policy) as the API shows it: the Job document of every
// answer and of every stored definition version.
import { payloadSchemas, type JobTypeName } from '@chronos/core';
import type { JobPayload, JobSchedule, RetryPolicy } from '@chronos/db';
import { JOB_DEFINITION_INCLUDE, type JobDefinitionRow } from '@chronos/engine';
import type { JobDto, JobSummaryDto } from './schemas.ts';
import { maskSecrets } from './secrets.ts';

const iso = (d: Date | null | undefined): string | null => d?.toISOString() ?? null;

/** Row bookkeeping, not payload. */
const NOT_PAYLOAD = new Set(['id', 'jobId', 'type']);

/**
 * The payload as stored, unmasked: the fields of the type's schema that are set (columns of other
 * types stay out, so a DUMMY job shows no `httpFollowRedirects`). Types without a schema show every
 * set column.
 */
export function storedPayload(type: JobTypeName, row: JobPayload | null): Record<string, unknown> {
  if (!row) return {};
  const schema = (payloadSchemas as Partial<Record<JobTypeName, { shape: Record<string, unknown> }>>)[type];
  const fields = schema ? Object.keys(schema.shape) : Object.keys(row).filter((k) => !NOT_PAYLOAD.has(k));
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = (row as unknown as Record<string, unknown>)[f];
    if (v !== null && v !== undefined) out[f] = v;
  }
  return out;
}

/** A stored schedule in the fields of a schedule input (a PATCH merges onto these). */
export function scheduleFields(s: JobSchedule) {
  return {
    type: s.scheduleType,
    cronExpression: s.cronExpression,
    runAt: s.runAt,
    intervalSeconds: s.intervalSeconds,
    intervalMode: s.intervalMode,
    anchorAt: s.anchorAt,
    timezone: s.timezone,
    dstGapPolicy: s.dstGapPolicy,
    dstRepeatPolicy: s.dstRepeatPolicy,
    misfirePolicy: s.misfirePolicy,
    misfireThresholdSeconds: s.misfireThresholdSeconds,
    misfireMaxCatchUp: s.misfireMaxCatchUp,
    resumePolicy: s.resumePolicy,
    jitterSeconds: s.jitterSeconds,
    startAt: s.startAt,
    endAt: s.endAt,
  };
}

/** A stored retry policy in the fields of a retry policy input. */
export function retryFields(r: RetryPolicy) {
  return {
    maxAttempts: r.maxAttempts,
    backoffStrategy: r.backoffStrategy,
    backoffSeconds: r.backoffSeconds,
    retryOn: r.retryOn,
    jitter: r.jitter,
  };
}

/** A job without its payload, as lists show it. */
export function toJobSummary(job: Omit<JobDefinitionRow, 'payload'>): JobSummaryDto {
  const s = job.schedule;
  return {
    id: job.id,
    ownerId: job.ownerId,
    name: job.name,
    description: job.description,
    type: job.type,
    status: job.status,
    priority: job.priority,
    version: job.version,
    overlapPolicy: job.overlapPolicy,
    timeoutSeconds: job.timeoutSeconds,
    alertThreshold: job.alertThreshold,
    notificationSettings: maskSecrets(job.notificationSettings as Record<string, unknown> | null),
    triggers: { scheduled: job.allowScheduled, manual: job.allowManual, webhook: job.allowWebhook },
    schedule: s && {
      ...scheduleFields(s),
      runAt: iso(s.runAt),
      anchorAt: iso(s.anchorAt),
      startAt: iso(s.startAt),
      endAt: iso(s.endAt),
    },
    nextFireAt: iso(s?.nextFireAt),
    lastFireAt: iso(s?.lastFireAt),
    retryPolicy: job.retryPolicy && retryFields(job.retryPolicy),
    pausedAt: iso(job.pausedAt),
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
  };
}

/** A job's whole definition, for `findOwnedJob`. */
export const JOB_DEFINITION = { include: JOB_DEFINITION_INCLUDE } as const;

/** The full Job document, literal secrets masked. */
export function toJobDto(job: JobDefinitionRow): JobDto {
  return { ...toJobSummary(job), payload: maskSecrets(storedPayload(job.type, job.payload)) };
}
