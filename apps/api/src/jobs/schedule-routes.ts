// Schedule previews (a saved job's, or a schedule not saved yet) and a job's ledger of occurrences.
import { nextFireTimes, type ScheduleSpec } from '@chronos/core';
import { RunStatus, TriggerSource, type JobSchedule, type Prisma } from '@chronos/db';
import { normalizeSchedule, specOf } from '@chronos/engine';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { pageOf, pageQuery, paginate, type PageArgs } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, isoDate } from '../http/schemas.ts';
import { runSchema, runSelect } from '../runs/schemas.ts';
import { findOwnedJob, JOB_ID } from '../auth/owned-job.ts';
import { fireTimesSchema, scheduleBody } from './schemas.ts';

const count = z.coerce.number().int().min(1).max(100).default(10).describe('How many fire times, 1–100');

/** The schedule math's spec of a stored schedule (DST policies, start/end included). */
function specOfStored(s: JobSchedule): ScheduleSpec {
  return specOf({
    schedule_type: s.scheduleType,
    run_at: s.runAt,
    cron_expression: s.cronExpression,
    interval_seconds: s.intervalSeconds,
    interval_mode: s.intervalMode,
    anchor_at: s.anchorAt,
    timezone: s.timezone,
    dst_gap_policy: s.dstGapPolicy,
    dst_repeat_policy: s.dstRepeatPolicy,
    start_at: s.startAt,
    end_at: s.endAt,
    created_at: s.createdAt,
    next_fire_at: s.nextFireAt,
  });
}

const fireTimes = (spec: ScheduleSpec, from: Date, n: number) => ({
  fireTimes: nextFireTimes(spec, from, n).map((t) => t.toISOString()),
});

export function registerJobScheduleRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'get',
    path: '/jobs/:id/schedule/preview',
    tag: 'jobs',
    summary: 'Next fire times of a job’s saved schedule',
    description:
      'UTC instants after `from` (default now), with the schedule’s time zone, DST policies and start/end applied. A paused job’s schedule is shown as saved.',
    permission: 'job:read',
    params: idParams,
    query: z.object({ count, from: isoDate.optional() }),
    responses: { 200: { description: 'Fire times', schema: fireTimesSchema } },
    handler: async ({ params, query, principal }) => {
      const job = await findOwnedJob(deps.db, principal, params.id, { select: { schedule: true } });
      if (!job.schedule) return { fireTimes: [] };
      return fireTimes(specOfStored(job.schedule), query.from ?? new Date(), query.count);
    },
  });

  api.add({
    method: 'post',
    path: '/schedules/preview',
    tag: 'jobs',
    summary: 'Try a schedule before saving it',
    description:
      'Validated as in a job definition (errors name `schedule.…`); answers its next fire times in UTC after `from` (default now).',
    permission: 'job:read',
    body: z.strictObject({
      schedule: scheduleBody,
      from: isoDate.optional(),
      count: z.int().min(1).max(100).default(10).describe('How many fire times, 1–100'),
    }),
    responses: { 200: { description: 'Fire times', schema: fireTimesSchema } },
    handler: async ({ body }) => {
      const from = body.from ?? new Date();
      const { spec } = normalizeSchedule(body.schedule, {
        timezone: deps.config.scheduler.defaultTimezone,
        now: from,
      });
      return fireTimes(spec, from, body.count);
    },
  });

  api.add({
    method: 'get',
    path: '/jobs/:id/occurrences',
    tag: 'jobs',
    summary: 'A job’s ledger: every recorded slot and run',
    description:
      'Newest scheduled time first: queued, run, skipped (misfire, pause, overlap, change) and deduplicated slots, manual, webhook, retry and backfill runs.',
    permission: 'job:read',
    params: idParams,
    query: pageQuery.extend({
      status: z.enum(RunStatus).optional(),
      trigger: z.enum(TriggerSource).optional(),
      from: isoDate.optional().describe('Scheduled at or after'),
      to: isoDate.optional().describe('Scheduled at or before'),
    }),
    responses: { 200: { description: 'A page of the ledger', schema: pageOf(runSchema) } },
    handler: async ({ params, query, principal }) => {
      const { id } = await findOwnedJob(deps.db, principal, params.id, JOB_ID);
      const where: Prisma.JobRunWhereInput = {
        jobId: id,
        ...(query.status && { status: query.status }),
        ...(query.trigger && { trigger: query.trigger }),
        ...((query.from || query.to) && {
          scheduledTime: { ...(query.from && { gte: query.from }), ...(query.to && { lte: query.to }) },
        }),
      };
      // The same run documents as /runs, in ledger order.
      return paginate(query, (args: PageArgs<string>) =>
        deps.db.jobRun.findMany({
          ...args,
          where,
          orderBy: [{ scheduledTime: 'desc' }, { id: 'desc' }],
          select: runSelect,
        }),
      );
    },
  });
}
