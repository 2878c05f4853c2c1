import { ConflictError, NotFoundError } from '@chronos/core';
import { DlqStatus, RunStatus, type Prisma } from '@chronos/db';
import { ignoreDlqEvent, replayDlqEvent, resolveDlqEvent } from '@chronos/engine';
import type { Request } from 'express';
import { z } from 'zod';
import type { Principal } from '../auth/principal.ts';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import { pageOf, pageQuery, paginate } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, timestamp } from '../http/schemas.ts';
import { findOwnedDlqEvent, throughOwnedJob } from '../runs/access.ts';
import { mapBounded } from '../runs/map-bounded.ts';
import {
  dlqEventSchema,
  dlqEventSelect,
  toDlqEvent,
  type DlqEventOut,
  type DlqEventRow,
} from '../runs/schemas.ts';

/** Most entries one `POST /dlq/replay-all` replays; the answer says when more were left. */
export const MAX_REPLAY_ALL = 1000;

/** Replays of one `replay-all` in flight at once (each holds a pool connection for its transaction). */
const REPLAY_CONCURRENCY = 4;

const dlqFilters = z.object({
  jobId: z.string().min(1).max(64).optional(),
  reason: z.string().min(1).max(500).optional().describe('Failure reason contains (case-insensitive)'),
});

type DlqFilters = z.output<typeof dlqFilters> & { status?: DlqStatus | undefined };

/** The entries of the caller's jobs that match the filters. */
function dlqWhere(p: Principal, f: DlqFilters): Prisma.DlqEventWhereInput {
  return {
    ...throughOwnedJob(p),
    ...(f.status ? { status: f.status } : {}),
    ...(f.jobId ? { jobId: f.jobId } : {}),
    ...(f.reason ? { failureReason: { contains: f.reason, mode: 'insensitive' } } : {}),
  };
}

const dlqDetail = dlqEventSchema
  .extend({
    replays: z
      .array(z.object({ id: z.string(), status: z.enum(RunStatus), createdAt: timestamp }))
      .describe('Runs started by replaying this entry, newest first (at most 50)'),
  })
  .meta({ id: 'DlqEventDetail' });

const notesBody = z.strictObject({ notes: z.string().max(4000).optional() });

const replayAllResult = z
  .object({
    replayed: z.array(z.string()).describe('Ids of the new runs'),
    count: z.number().int(),
    truncated: z
      .boolean()
      .describe(`More entries matched than one call replays (${MAX_REPLAY_ALL}): call again for the rest`),
  })
  .meta({ id: 'DlqReplayAllResult' });

/** `/dlq`: dead-lettered runs: list, inspect, replay, resolve, ignore. */
export function registerDlqRoutes(api: ApiRouter, deps: ApiDeps): void {
  /** Replays one entry (ownership checked by the caller), audited; a closed entry throws 409. */
  async function replay(req: Request, id: string): Promise<string> {
    const { runId } = await replayDlqEvent(deps.engine, id, {
      withinTransaction: (tx, replayed) =>
        audit(tx, req, {
          entityType: 'dlq',
          entityId: id,
          action: 'REPLAYED',
          details: { runId: replayed.runId },
        }),
    });
    return runId;
  }

  api.add({
    method: 'get',
    path: '/dlq',
    tag: 'dlq',
    summary: 'Dead-lettered runs, newest first',
    permission: 'execution:read',
    query: pageQuery.extend({ status: z.enum(DlqStatus).optional(), ...dlqFilters.shape }),
    responses: { 200: { description: 'A page of DLQ entries', schema: pageOf(dlqEventSchema) } },
    handler: ({ query, principal }) =>
      paginate<DlqEventRow, string, DlqEventOut>(
        query,
        (args) =>
          deps.db.dlqEvent.findMany({
            ...args,
            where: dlqWhere(principal, query),
            orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
            select: dlqEventSelect,
          }),
        toDlqEvent,
      ),
  });

  api.add({
    method: 'get',
    path: '/dlq/:id',
    tag: 'dlq',
    summary: 'One DLQ entry, with its replays',
    permission: 'execution:read',
    params: idParams,
    responses: { 200: { description: 'The entry', schema: dlqDetail } },
    handler: async ({ params, principal }) => {
      const ev = await findOwnedDlqEvent(deps.db, principal, params.id);
      const replays = await deps.db.jobRun.findMany({
        where: { dlqEventId: ev.id },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: 50,
        select: { id: true, status: true, createdAt: true },
      });
      return { ...toDlqEvent(ev), replays };
    },
  });

  api.add({
    method: 'post',
    path: '/dlq/:id/replay',
    tag: 'dlq',
    summary: 'Replay a DLQ entry: a new run (trigger REPLAY) is queued now',
    description:
      'The entry stays PENDING (resolve it once the replay succeeded); 409 unless it is PENDING, or while its job is paused.',
    permission: 'dlq:manage',
    params: idParams,
    status: 202,
    responses: {
      202: { description: 'Queued', schema: z.object({ runId: z.string() }) },
      409: { description: 'The entry is RESOLVED or IGNORED, or its job is paused' },
    },
    handler: async ({ req, params, principal }) => {
      await findOwnedDlqEvent(deps.db, principal, params.id);
      return { runId: await replay(req, params.id) };
    },
  });

  for (const [verb, close, action] of [
    ['resolve', resolveDlqEvent, 'RESOLVED'],
    ['ignore', ignoreDlqEvent, 'IGNORED'],
  ] as const) {
    api.add({
      method: 'post',
      path: `/dlq/:id/${verb}`,
      tag: 'dlq',
      summary:
        verb === 'resolve'
          ? 'Mark a DLQ entry RESOLVED (the problem was fixed)'
          : 'Mark a DLQ entry IGNORED (accepted as it is)',
      description: 'Records the notes, the caller’s e-mail and the time; 409 unless the entry is PENDING.',
      permission: 'dlq:manage',
      params: idParams,
      body: notesBody,
      responses: {
        200: { description: `The entry, now ${action}`, schema: dlqEventSchema },
        409: { description: 'The entry is no longer PENDING' },
      },
      handler: async ({ req, params, body, principal }) => {
        await findOwnedDlqEvent(deps.db, principal, params.id);
        await close(deps.engine, params.id, {
          notes: body.notes ?? null,
          by: principal.email,
          withinTransaction: (tx) =>
            audit(tx, req, {
              entityType: 'dlq',
              entityId: params.id,
              action,
              details: { notes: body.notes ?? null },
            }),
        });
        return toDlqEvent(await findOwnedDlqEvent(deps.db, principal, params.id));
      },
    });
  }

  api.add({
    method: 'post',
    path: '/dlq/replay-all',
    tag: 'dlq',
    summary: 'Replay every PENDING entry matching the filters (oldest first)',
    description:
      `Skips entries whose last replay is still queued or running. At most ${MAX_REPLAY_ALL} entries ` +
      'per call: `truncated` says more are left (call again). Only the caller’s jobs’ entries (all for ' +
      'ADMIN). Entries of paused jobs, and entries closed meanwhile, are skipped.',
    permission: 'dlq:manage',
    body: z.strictObject({
      ...dlqFilters.shape,
      limit: z
        .int()
        .min(1)
        .default(MAX_REPLAY_ALL)
        .transform((n) => Math.min(n, MAX_REPLAY_ALL))
        .describe(`Most entries to replay, 1–${MAX_REPLAY_ALL} (larger values are capped)`),
    }),
    responses: { 200: { description: 'What was replayed', schema: replayAllResult } },
    handler: async ({ req, body: { limit, ...filters }, principal }) => {
      const matching = await deps.db.dlqEvent.findMany({
        where: {
          AND: [
            dlqWhere(principal, { ...filters, status: 'PENDING' }),
            // A paused job starts nothing: its entries wait for its resume (and hold back no others).
            { job: { status: { not: 'PAUSED' } } },
          ],
          // A replay still in flight is not doubled (and a truncated call's next call takes the rest).
          replays: { none: { status: { in: ['QUEUED', 'RUNNING'] } } },
        },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: limit + 1,
        select: { id: true },
      });
      const batch = matching.slice(0, limit);
      const runIds = await mapBounded(batch, REPLAY_CONCURRENCY, async ({ id }) => {
        try {
          return await replay(req, id);
        } catch (err) {
          // Resolved, ignored or deleted since it was listed, or its job paused since: skipped.
          if (err instanceof ConflictError || err instanceof NotFoundError) return undefined;
          throw err;
        }
      });
      const replayed = runIds.filter((id): id is string => id !== undefined);
      return { replayed, count: replayed.length, truncated: matching.length > limit };
    },
  });
}
