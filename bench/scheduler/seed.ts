// Bulk-loads the benchmark's DUMMY jobs straight into a migrated Chronos database (createJob one by
// one would take minutes at 100k) and arms them once everything is in place.

import { newId } from '@chronos/core';
import type pg from 'pg';
import { firstCronSlot, type BenchSchedule } from './workload.ts';

const CHUNK = 5_000;

/**
 * Inserts the owner, the jobs, their schedules and payloads in multi-row `unnest` INSERTs. Schedules
 * are stored unarmed (next_fire_at NULL: the scheduler ignores them), with each interval's offset
 * kept as an epoch-relative anchor until `armSchedules` gives them real times.
 */
export async function seedSchedules(client: pg.Client, schedules: readonly BenchSchedule[]): Promise<void> {
  const ownerId = newId();
  await client.query(
    `INSERT INTO users (id, email, password_hash, display_name, updated_at)
     VALUES ($1, 'bench@chronos.invalid', 'not-a-hash', 'benchmark', now())`,
    [ownerId],
  );
  for (let i = 0; i < schedules.length; i += CHUNK) {
    const chunk = schedules.slice(i, i + CHUNK);
    const ids = chunk.map((s) => s.id);
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO jobs (id, owner_id, name, type, status, overlap_policy, updated_at)
       SELECT id, $1, 'bench-' || id, 'DUMMY', 'SCHEDULED', 'SKIP', now() FROM unnest($2::text[]) AS t(id)`,
      [ownerId, ids],
    );
    await client.query(
      `INSERT INTO job_schedules (job_id, schedule_type, cron_expression, interval_seconds, interval_mode,
                                  anchor_at, timezone, next_fire_at, updated_at)
       SELECT v.id, v.kind::"ScheduleType",
              CASE WHEN v.kind = 'CRON' THEN '* * * * *' END,
              CASE WHEN v.kind = 'INTERVAL' THEN 60 END,
              'FIXED_RATE',
              CASE WHEN v.kind = 'INTERVAL' THEN to_timestamp(v.offset_ms / 1000.0) END,
              'UTC', NULL, now()
         FROM unnest($1::text[], $2::text[], $3::int[]) AS v(id, kind, offset_ms)`,
      [ids, chunk.map((s) => s.kind), chunk.map((s) => s.offsetMs)],
    );
    await client.query(
      `INSERT INTO job_payloads (job_id, type) SELECT id, 'DUMMY' FROM unnest($1::text[]) AS t(id)`,
      [ids],
    );
    await client.query('COMMIT');
  }
  await client.query('ANALYZE users, jobs, job_schedules, job_payloads');
}

/**
 * Gives every schedule its first slot from `t0` on (intervals at t0 + offset, crons at the next
 * minute boundary) in two statements, so the whole load goes live at once.
 */
export async function armSchedules(client: pg.Client, t0: number): Promise<void> {
  const at = new Date(t0).toISOString();
  await client.query(
    `UPDATE job_schedules
        SET anchor_at = $1::timestamptz + (anchor_at - to_timestamp(0)),
            next_fire_at = $1::timestamptz + (anchor_at - to_timestamp(0)), updated_at = now()
      WHERE schedule_type = 'INTERVAL'`,
    [at],
  );
  await client.query(
    `UPDATE job_schedules SET next_fire_at = $1::timestamptz, updated_at = now() WHERE schedule_type = 'CRON'`,
    [new Date(firstCronSlot(t0)).toISOString()],
  );
}
