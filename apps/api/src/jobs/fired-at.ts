import type { Db, JobSchedule } from '@chronos/db';

/**
 * Rows with their schedule's `lastFireAt` as a reader means it: the latest scheduled slot whose
 * time has come (by the database clock). The engine's job_schedules.last_fire_at is its planning
 * state, the last slot it recorded, and the scheduler records every slot inside its horizon ahead
 * of time, so it may lie up to SCHEDULER_HORIZON_SECONDS in the future. One query for all rows.
 */
export async function withFiredAt<T extends { id: string; schedule: JobSchedule | null }>(
  db: Db,
  rows: T[],
): Promise<T[]> {
  const ids = rows.filter((r) => r.schedule?.lastFireAt).map((r) => r.id);
  if (ids.length === 0) return rows;
  const fired = await db.$queryRaw<{ job_id: string; fired: Date | null }[]>`
    SELECT s.job_id,
           CASE WHEN s.last_fire_at <= now() THEN s.last_fire_at
                ELSE (SELECT max(r.scheduled_time) FROM job_runs r
                       WHERE r.job_id = s.job_id AND r.trigger = 'SCHEDULED' AND r.scheduled_time <= now())
           END AS fired
      FROM job_schedules s
     WHERE s.job_id = ANY(${ids}::text[])`;
  const byJob = new Map(fired.map((f) => [f.job_id, f.fired]));
  return rows.map((r) =>
    r.schedule && byJob.has(r.id)
      ? { ...r, schedule: { ...r.schedule, lastFireAt: byJob.get(r.id) ?? null } }
      : r,
  );
}
