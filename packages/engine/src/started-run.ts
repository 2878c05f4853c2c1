import { Prisma, type Db, type TriggerSource } from '@chronos/db';
import type { PayloadFields } from './inputs.ts';

/** What a worker needs to execute a run it started: the run, its job and the job's payload. */
export interface StartedRun {
  scheduledTime: Date;
  attempt: number;
  idempotencyKey: string;
  trigger: TriggerSource;
  /** Trigger input for `{{trigger.…}}` (webhook body, manual parameters). */
  triggerPayload: unknown;
  job: { id: string; name: string; ownerId: string; timeoutSeconds: number | null };
  /**
   * The job's payload row under Prisma's field names: the columns that are set (null ones, the
   * other types' columns, are left out, as executors ignore them), and not the ids.
   */
  payload: PayloadFields;
}

/** A started run's inputs, read with Prisma (after the transactional gate, `startRun`). */
export async function loadStartedRun(db: Db, runId: string): Promise<StartedRun> {
  const row = await db.jobRun.findUniqueOrThrow({
    where: { id: runId },
    select: {
      scheduledTime: true,
      attempt: true,
      idempotencyKey: true,
      trigger: true,
      triggerPayload: true,
      job: { select: { id: true, name: true, ownerId: true, timeoutSeconds: true, payload: true } },
    },
  });
  const { payload, ...job } = row.job;
  const { id: _id, jobId: _jobId, ...fields } = payload ?? ({} as Record<string, unknown>);
  return {
    scheduledTime: row.scheduledTime,
    attempt: row.attempt,
    idempotencyKey: row.idempotencyKey,
    trigger: row.trigger,
    triggerPayload: row.triggerPayload,
    job,
    payload: Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null)) as PayloadFields,
  };
}

const snakeCase = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Prisma's field of each job_payloads column, from the model's own field list (the schema maps
 * every field to its snake_case column). The ids are left out: they are not executor input.
 */
const PAYLOAD_FIELD_OF_COLUMN: ReadonlyMap<string, string> = new Map(
  Object.values(Prisma.JobPayloadScalarFieldEnum)
    .filter((f) => f !== 'id' && f !== 'jobId')
    .map((f) => [snakeCase(f), f]),
);

/**
 * A payload row read as `to_jsonb(job_payloads)` (columns as keys; the table has only text,
 * integer, boolean, enum and JSON columns, which JSON carries unchanged) as `loadStartedRun`
 * returns it: Prisma's field names, set columns only.
 */
export function payloadFromColumns(row: Record<string, unknown> | null): PayloadFields {
  const out: Record<string, unknown> = {};
  if (row)
    for (const [column, value] of Object.entries(row)) {
      const field = PAYLOAD_FIELD_OF_COLUMN.get(column);
      if (field && value !== null) out[field] = value;
    }
  return out as PayloadFields;
}
