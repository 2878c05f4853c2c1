import { newId } from '@chronos/core';
import type { Prisma } from '@chronos/db';

/** A ledger row to record: one nominal slot (attempt 1) and its fate. */
export interface SlotRecord {
  jobId: string;
  key: string;
  status: 'QUEUED' | 'SKIPPED_MISFIRE' | 'SKIPPED_PAUSED' | 'SKIPPED';
  trigger: 'SCHEDULED' | 'BACKFILL' | 'MANUAL' | 'WEBHOOK';
  scheduledTime: Date;
  dueAt: Date;
  reason: string | null;
  definitionVersion: number | null;
}

/** A slot that now waits in the queue: the row to enqueue. */
export interface QueuedSlot {
  id: string;
  job_id: string;
  idempotency_key: string;
  scheduled_time: Date;
  due_at: Date;
  /** The fate as stored (QUEUED for what must be enqueued). */
  status: string;
}

type Tx = Prisma.TransactionClient;

/** Fates of a slot that never ran. */
export type NeverRanStatus = 'SKIPPED' | 'SKIPPED_MISFIRE' | 'SKIPPED_PAUSED' | 'SKIPPED_OVERLAP';

/**
 * Records slots in one statement. A key that is already in the ledger keeps its row (the slot was
 * accounted for: DEDUPLICATED), except a row whose status is in `requeue` and that never started:
 * a QUEUED record turns it back into a queued slot (a slot skipped by a schedule change that applies
 * again; a backfill of a skipped slot). Returns the rows now QUEUED by this call.
 */
export async function recordSlots(
  tx: Tx,
  slots: readonly SlotRecord[],
  requeue: readonly NeverRanStatus[] = ['SKIPPED'],
): Promise<QueuedSlot[]> {
  if (slots.length === 0) return [];
  const col = <T>(f: (s: SlotRecord) => T) => slots.map(f);
  return tx.$queryRaw<QueuedSlot[]>`
    INSERT INTO job_runs (id, job_id, idempotency_key, attempt, status, trigger, scheduled_time, due_at,
                          reason, definition_version, updated_at)
    SELECT v.id, v.job_id, v.key, 1, v.status::"RunStatus", v.trigger::"TriggerSource", v.scheduled_time,
           v.due_at, v.reason, v.version, now()
    FROM unnest(${col(() => newId())}::text[], ${col((s) => s.jobId)}::text[], ${col((s) => s.key)}::text[],
                ${col((s) => s.status)}::text[], ${col((s) => s.trigger)}::text[],
                ${col((s) => s.scheduledTime)}::timestamptz[], ${col((s) => s.dueAt)}::timestamptz[],
                ${col((s) => s.reason)}::text[], ${col((s) => s.definitionVersion)}::int[])
         AS v(id, job_id, key, status, trigger, scheduled_time, due_at, reason, version)
    ON CONFLICT (idempotency_key, attempt) DO UPDATE
       SET status = 'QUEUED', trigger = EXCLUDED.trigger, due_at = EXCLUDED.due_at,
           reason = 'was ' || job_runs.status::text || ': ' || coalesce(EXCLUDED.reason, 'queued again'),
           updated_at = now()
     WHERE job_runs.status::text = ANY(${[...requeue]}::text[]) AND job_runs.start_time IS NULL
       AND EXCLUDED.status = 'QUEUED'
    RETURNING id, job_id, idempotency_key, scheduled_time, due_at, status::text AS status`.then((rows) =>
    rows.filter((r) => r.status === 'QUEUED'),
  );
}
