import { ConflictError, NotFoundError, ValidationError } from '@chronos/core';
import { LogLevel, RunStatus, TriggerSource } from '@chronos/db';
import { cancelRun, type RunContext } from '@chronos/engine';
import { runContextKey } from '@chronos/storage';
import type { Request } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, isoDate } from '../http/schemas.ts';
import { findOwnedJob, JOB_ID } from '../auth/owned-job.ts';
import { findOwnedRun } from '../runs/access.ts';
import { assertMayOpenLogStream, streamRunLogs } from '../runs/log-stream.ts';
import {
  levelsFrom,
  runContextSchema,
  runLogSchema,
  runLogSelect,
  runSchema,
  runSelect,
  toRunLogLine,
  type RunLogLineOut,
  type RunRow,
} from '../runs/schemas.ts';

const runsQuery = pageQuery
  .extend({
    status: z.enum(RunStatus).optional(),
    trigger: z.enum(TriggerSource).optional(),
    from: isoDate.optional().describe('Slots at or after this time (scheduledTime)'),
    to: isoDate.optional().describe('Slots before this time (scheduledTime)'),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { path: ['to'], message: 'must be after from' });

const minLevel = z.enum(LogLevel).optional().describe('Minimum severity: WARN returns WARN and ERROR lines');

/** A line id as the SSE `id:` field carries it. */
const lineId = z.string().regex(/^\d{1,18}$/, 'must be a log line id');

const cancelResult = z
  .object({
    runId: z.string(),
    outcome: z
      .enum(['CANCELLED', 'CANCEL_REQUESTED'])
      .describe('CANCELLED: it had not started. CANCEL_REQUESTED: its worker was told to abort it'),
    run: runSchema,
  })
  .meta({ id: 'CancelResult' });

/** `Last-Event-ID` (sent by EventSource on reconnect) wins over `?lastEventId=`. */
function resumeAfter(req: Request, fromQuery: string | undefined): bigint {
  const header = req.get('last-event-id')?.trim();
  if (!header) return BigInt(fromQuery ?? 0);
  const parsed = lineId.safeParse(header);
  if (!parsed.success)
    throw new ValidationError('invalid Last-Event-ID header', [
      { path: 'Last-Event-ID', message: 'must be a log line id' },
    ]);
  return BigInt(parsed.data);
}

/** `/jobs/:id/runs`, `/runs/:id[...]`: run history, logs (paged and live), context, cancel. */
export function registerRunRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'get',
    path: '/jobs/:id/runs',
    tag: 'runs',
    summary: 'Runs of a job, newest slot first',
    permission: 'execution:read',
    params: idParams,
    query: runsQuery,
    responses: { 200: { description: 'A page of runs', schema: pageOf(runSchema) } },
    handler: async ({ params, query, principal }) => {
      await findOwnedJob(deps.db, principal, params.id, JOB_ID);
      const where = {
        jobId: params.id,
        ...(query.status ? { status: query.status } : {}),
        ...(query.trigger ? { trigger: query.trigger } : {}),
        ...(query.from || query.to
          ? {
              scheduledTime: {
                ...(query.from ? { gte: query.from } : {}),
                ...(query.to ? { lt: query.to } : {}),
              },
            }
          : {}),
      };
      return paginate<RunRow, string>(query, (args) =>
        deps.db.jobRun.findMany({
          ...args,
          where,
          orderBy: [{ scheduledTime: 'desc' }, { id: 'desc' }],
          select: runSelect,
        }),
      );
    },
  });

  api.add({
    method: 'get',
    path: '/runs/:id',
    tag: 'runs',
    summary: 'One run',
    permission: 'execution:read',
    params: idParams,
    responses: { 200: { description: 'The run', schema: runSchema } },
    handler: ({ params, principal }) => findOwnedRun(deps.db, principal, params.id),
  });

  api.add({
    method: 'get',
    path: '/runs/:id/logs',
    tag: 'runs',
    summary: 'A run’s log lines, oldest first',
    permission: 'execution:read',
    params: idParams,
    query: pageQuery.extend({ level: minLevel }),
    responses: { 200: { description: 'A page of log lines', schema: pageOf(runLogSchema) } },
    handler: async ({ params, query, principal }) => {
      await findOwnedRun(deps.db, principal, params.id);
      const levels = levelsFrom(query.level);
      return paginate<RunLogLineOut, number>(
        query,
        async ({ cursor, ...args }) =>
          (
            await deps.db.jobRunLog.findMany({
              ...args,
              ...(cursor ? { cursor: { id: BigInt(cursor.id) } } : {}),
              where: { runId: params.id, ...(levels ? { level: { in: levels } } : {}) },
              orderBy: { id: 'asc' },
              select: runLogSelect,
            })
          ).map(toRunLogLine),
        undefined,
        'bigint',
      );
    },
  });

  api.add({
    method: 'get',
    path: '/runs/:id/logs/stream',
    tag: 'runs',
    summary: 'A run’s log, live (Server-Sent Events)',
    description:
      'Sends the stored lines, then new ones as they are written, until the run has finished; then ' +
      '`event: end` with `{status, endTime, exitCode, errorMessage}` and the stream closes. Each line is ' +
      '`event: log` with `id:` = the line id and `data:` = a RunLogLine; reconnect with `Last-Event-ID` ' +
      '(or `?lastEventId=`) to resume after a line. Comments (`: keep-alive`) are sent while nothing ' +
      'happens. Works against any API replica (lines are read from PostgreSQL).',
    permission: 'execution:read',
    params: idParams,
    query: z.object({
      level: minLevel,
      lastEventId: lineId.optional().describe('Resume after this line id (the Last-Event-ID header wins)'),
    }),
    responses: {
      200: {
        description: '`event: log` per line, then one `event: end`',
        contentType: 'text/event-stream',
        schema: z.string(),
      },
    },
    handler: async ({ req, res, params, query, principal }) => {
      await findOwnedRun(deps.db, principal, params.id);
      assertMayOpenLogStream(principal.userId);
      const afterId = resumeAfter(req, query.lastEventId);
      await streamRunLogs(
        deps.db,
        res,
        { runId: params.id, userId: principal.userId, afterId, levels: levelsFrom(query.level) },
        deps.log,
      );
      return undefined;
    },
  });

  api.add({
    method: 'get',
    path: '/runs/:id/context',
    tag: 'runs',
    summary: 'A run’s execution context: resolved inputs (secrets masked) and output',
    description: 'Read from object storage (`runs/<id>/context.json`); 404 until the run has one.',
    permission: 'execution:read',
    params: idParams,
    responses: { 200: { description: 'The context document', schema: runContextSchema } },
    handler: async ({ params, principal }) => {
      const run = await findOwnedRun(deps.db, principal, params.id);
      const context = await deps.storage.getJson<RunContext>(runContextKey(run.id));
      if (!context) throw new NotFoundError('run context', run.id);
      return context;
    },
  });

  api.add({
    method: 'post',
    path: '/runs/:id/cancel',
    tag: 'runs',
    summary: 'Cancel a queued or running run',
    description:
      'A queued run becomes CANCELLED at once and leaves the queue; a running one is asked to abort ' +
      '(it ends CANCELLED shortly). A finished run answers 409.',
    permission: 'execution:stop',
    params: idParams,
    responses: {
      200: { description: 'Cancelled, or cancellation requested', schema: cancelResult },
      409: { description: 'The run has already finished' },
    },
    handler: async ({ req, params, principal }) => {
      const before = await findOwnedRun(deps.db, principal, params.id);
      const outcome = await cancelRun(deps.engine, before.id, {
        by: principal.email,
        withinTransaction: async (tx, result) => {
          if (result !== 'ALREADY_FINISHED')
            await audit(tx, req, {
              entityType: 'run',
              entityId: before.id,
              action: result,
              details: { jobId: before.jobId, statusBefore: before.status },
            });
        },
      });
      if (outcome === 'ALREADY_FINISHED') throw new ConflictError(`run ${before.id} has already finished`);
      return { runId: before.id, outcome, run: await findOwnedRun(deps.db, principal, before.id) };
    },
  });
}
