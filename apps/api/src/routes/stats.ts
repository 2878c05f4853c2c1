import { JobPriority, JobStatus, JobType, Prisma, RunStatus, ScheduleType, type Db } from '@chronos/db';
import { z } from 'zod';
import { ownedBy, type Principal } from '../auth/principal.ts';
import type { ApiDeps } from '../deps.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { timestamp } from '../http/schemas.ts';

const TAG = 'stats';
const DAY_MS = 86_400_000;
/** Longest range of /stats/executions: a year of days × types × outcomes stays a modest answer. */
export const MAX_STATS_DAYS = 366;
const DEFAULT_STATS_DAYS = 30;

export const jobSummarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    type: z.enum(JobType),
    status: z.enum(JobStatus),
    priority: z.enum(JobPriority),
    ownerId: z.string(),
    ownerEmail: z.string().nullable(),
    scheduleType: z.enum(ScheduleType).nullable(),
    runAt: timestamp.nullable(),
    cronExpression: z.string().nullable(),
    nextFireAt: timestamp.nullable(),
    totalRuns: z.number().int().describe('Finished runs (success, failure, timeout, cancelled)'),
    lastRunTime: timestamp.nullable().describe('End of the latest finished run'),
    avgDurationMs: z.number().nullable(),
  })
  .meta({ id: 'JobSummary' });

type SummaryRow = Prisma.JobSummaryGetPayload<object>;

const iso = (d: Date | null) => d?.toISOString() ?? null;

const toSummary = (row: SummaryRow): z.input<typeof jobSummarySchema> => ({
  ...row,
  runAt: iso(row.runAt),
  nextFireAt: iso(row.nextFireAt),
  lastRunTime: iso(row.lastRunTime),
  totalRuns: Number(row.totalRuns),
});

export const executionStatSchema = z
  .object({
    date: z.iso.date().describe('UTC day of the runs’ slots'),
    jobType: z.enum(JobType),
    outcome: z.enum(RunStatus),
    executionCount: z.number().int(),
    avgDurationMs: z.number().nullable(),
    minDurationMs: z.number().int().nullable(),
    maxDurationMs: z.number().int().nullable(),
  })
  .meta({ id: 'ExecutionStat' });

const executionStatsSchema = z
  .object({ from: z.iso.date(), to: z.iso.date(), items: z.array(executionStatSchema) })
  .meta({ id: 'ExecutionStats' });

/** A row of execution_stats (or of its owner-filtered twin below), in the view's Prisma shape. */
type StatRow = Prisma.ExecutionStatGetPayload<object>;

const toStat = (row: StatRow): z.input<typeof executionStatSchema> => ({
  date: row.executionDate.toISOString().slice(0, 10),
  jobType: row.jobType,
  outcome: row.outcome,
  executionCount: Number(row.executionCount),
  avgDurationMs: row.avgDurationMs,
  minDurationMs: row.minDurationMs,
  maxDurationMs: row.maxDurationMs,
});

const day = z.iso.date('must be a date, e.g. 2026-01-31').transform((s) => new Date(`${s}T00:00:00Z`));

const executionsQuery = z
  .object({
    from: day.optional().describe(`First UTC day (default: ${DEFAULT_STATS_DAYS} days before to)`),
    to: day.optional().describe('Last UTC day, inclusive (default: today)'),
    jobType: z.enum(JobType).optional(),
  })
  .transform((q) => {
    const to = q.to ?? new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS);
    const from = q.from ?? new Date(to.getTime() - (DEFAULT_STATS_DAYS - 1) * DAY_MS);
    return { ...q, from, to };
  })
  .refine((q) => q.from <= q.to, { path: ['to'], message: 'must not be before from' })
  .refine((q) => q.to.getTime() - q.from.getTime() < MAX_STATS_DAYS * DAY_MS, {
    path: ['from'],
    message: `the range may span at most ${MAX_STATS_DAYS} days`,
  });

/**
 * execution_stats restricted to one owner's jobs. The view has no owner column, so a non-admin gets
 * the same aggregation over its own jobs; the slot range is on scheduled_time itself, so the
 * (job_id, scheduled_time) index serves it.
 */
function ownExecutionStats(
  db: Db,
  ownerId: string,
  q: { from: Date; to: Date; jobType?: JobType | undefined },
): Promise<StatRow[]> {
  const end = new Date(q.to.getTime() + DAY_MS);
  const byType = q.jobType ? Prisma.sql`AND j.type = ${q.jobType}::"JobType"` : Prisma.empty;
  return db.$queryRaw<StatRow[]>`
    SELECT (r.scheduled_time AT TIME ZONE 'UTC')::date AS "executionDate",
           j.type AS "jobType", r.status AS "outcome",
           COUNT(*)::bigint AS "executionCount",
           AVG(r.duration_ms)::float8 AS "avgDurationMs",
           MIN(r.duration_ms) AS "minDurationMs",
           MAX(r.duration_ms) AS "maxDurationMs"
      FROM job_runs r JOIN jobs j ON j.id = r.job_id
     WHERE r.end_time IS NOT NULL AND j.owner_id = ${ownerId}
       AND r.scheduled_time >= ${q.from} AND r.scheduled_time < ${end} ${byType}
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3`;
}

function executionStats(
  db: Db,
  principal: Principal,
  q: { from: Date; to: Date; jobType?: JobType | undefined },
) {
  if (!principal.isAdmin) return ownExecutionStats(db, principal.userId, q);
  return db.executionStat.findMany({
    where: { executionDate: { gte: q.from, lte: q.to }, ...(q.jobType ? { jobType: q.jobType } : {}) },
    orderBy: [{ executionDate: 'asc' }, { jobType: 'asc' }, { outcome: 'asc' }],
  });
}

/** `/stats/*`: per-job summaries (job_summary view) and daily run statistics (execution_stats view). */
export function registerStatsRoutes(api: ApiRouter, deps: ApiDeps): void {
  const { db } = deps;

  api.add({
    method: 'get',
    path: '/stats/jobs',
    tag: TAG,
    summary: 'Per-job summary: schedule, next fire, finished runs, average duration',
    description: 'Administrators see every job (and may filter by owner); others only their own.',
    permission: 'job:read',
    query: pageQuery.extend({
      type: z.enum(JobType).optional(),
      status: z.enum(JobStatus).optional(),
      ownerId: z.string().max(64).optional().describe('Administrators only; ignored for others'),
    }),
    responses: { 200: { description: 'A page of job summaries', schema: pageOf(jobSummarySchema) } },
    handler: ({ query, principal }) => {
      const where: Prisma.JobSummaryWhereInput = {
        ...(query.type ? { type: query.type } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.ownerId ? { ownerId: query.ownerId } : {}),
        // Last, so a non-admin's own ownerId always wins over the query's.
        ...ownedBy(principal),
      };
      return paginate<SummaryRow, string, z.input<typeof jobSummarySchema>>(
        query,
        (args) => db.jobSummary.findMany({ ...args, where, orderBy: [{ id: 'desc' }] }),
        toSummary,
      );
    },
  });

  api.add({
    method: 'get',
    path: '/stats/executions',
    tag: TAG,
    summary: 'Finished runs per UTC day, job type and outcome',
    description: `Days of the runs’ slots, \`from\` to \`to\` inclusive, at most ${MAX_STATS_DAYS} days. Administrators see every job’s runs; others only their own jobs’.`,
    permission: 'execution:read',
    query: executionsQuery,
    responses: { 200: { description: 'Daily statistics', schema: executionStatsSchema } },
    handler: async ({ query, principal }) => ({
      from: query.from.toISOString().slice(0, 10),
      to: query.to.toISOString().slice(0, 10),
      items: (await executionStats(db, principal, query)).map(toStat),
    }),
  });
}
