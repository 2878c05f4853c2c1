import { nextFireTimes, type ScheduleSpec } from '@chronos/core';

/** The schedule columns the engine reads (job_schedules, snake_case as raw SQL returns them). */
export interface ScheduleRow {
  schedule_type: 'ONCE' | 'CRON' | 'INTERVAL';
  run_at: Date | null;
  cron_expression: string | null;
  interval_seconds: number | null;
  interval_mode: 'FIXED_RATE' | 'FIXED_DELAY';
  anchor_at: Date | null;
  timezone: string;
  dst_gap_policy: 'SKIP' | 'SHIFT';
  dst_repeat_policy: 'FIRST' | 'LAST' | 'BOTH';
  start_at: Date | null;
  end_at: Date | null;
  created_at: Date;
  next_fire_at: Date | null;
}

/** The SQL column list matching `ScheduleRow` (prefix with the table alias). */
export const SCHEDULE_COLUMNS = [
  'schedule_type',
  'run_at',
  'cron_expression',
  'interval_seconds',
  'interval_mode',
  'anchor_at',
  'timezone',
  'dst_gap_policy',
  'dst_repeat_policy',
  'start_at',
  'end_at',
  'created_at',
  'next_fire_at',
] as const;

/** Turns a stored schedule into the pure schedule math's spec. */
export function specOf(row: ScheduleRow): ScheduleSpec {
  switch (row.schedule_type) {
    case 'ONCE':
      return { type: 'ONCE', runAt: row.run_at as Date };
    case 'CRON':
      return {
        type: 'CRON',
        cronExpression: row.cron_expression as string,
        timezone: row.timezone,
        dstGapPolicy: row.dst_gap_policy,
        dstRepeatPolicy: row.dst_repeat_policy,
        startAt: row.start_at,
        endAt: row.end_at,
      };
    case 'INTERVAL':
      return row.interval_mode === 'FIXED_DELAY'
        ? {
            type: 'INTERVAL',
            intervalSeconds: row.interval_seconds as number,
            intervalMode: 'FIXED_DELAY',
            // The worker stores "previous finish + N" as next_fire_at; that is the next slot.
            anchorAt: row.next_fire_at ?? row.anchor_at ?? row.start_at ?? row.created_at,
            startAt: row.start_at,
            endAt: row.end_at,
          }
        : {
            type: 'INTERVAL',
            intervalSeconds: row.interval_seconds as number,
            intervalMode: 'FIXED_RATE',
            anchorAt: row.anchor_at ?? row.start_at ?? row.created_at,
            startAt: row.start_at,
            endAt: row.end_at,
          };
  }
}

/**
 * Whether `time` is a slot of the schedule `row` describes now. A fixed-delay schedule plans each
 * slot from the previous finish, not on a grid: every time counts as one of its slots.
 */
export function isSlotOf(row: ScheduleRow, time: Date): boolean {
  if (row.schedule_type === 'INTERVAL' && row.interval_mode === 'FIXED_DELAY') return true;
  return nextFireTimes(specOf(row), new Date(time.getTime() - 1), 1)[0]?.getTime() === time.getTime();
}
