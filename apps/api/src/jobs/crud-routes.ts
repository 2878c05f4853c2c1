// POST/GET /jobs, GET/PUT/PATCH/DELETE /jobs/{id}: job definitions. Every change bumps the version
// by one, is audited, and is stored as a document in object storage.
import { JOB_TYPES, NotFoundError, type JobTypeName } from '@chronos/core';
import { JobPriority, JobStatus, type Prisma } from '@chronos/db';
import {
  StaleVersionError,
  createJob,
  deleteJob,
  updateJob,
  type JobDefinitionRow,
  type JobUpdate,
} from '@chronos/engine';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Principal } from '../auth/principal.ts';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import { pageOf, pageQuery, paginate, type PageArgs } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, isoDate } from '../http/schemas.ts';
import { findOwnedJob } from '../auth/owned-job.ts';
import { JOB_DEFINITION, toJobDto, toJobSummary } from './definition.ts';
import { withFiredAt } from './fired-at.ts';
import {
  createInput,
  etagOf,
  expectedVersion,
  ownerOf,
  patchUpdate,
  preconditionFailed,
  replacement,
} from './input.ts';
import { jobDefinitionBody, jobPatchBody, jobSchema, jobSummarySchema, type JobDto } from './schemas.ts';
import { assertMayDefine } from './type-permission.ts';
import { removeVersions, saveVersion } from './versions.ts';

const SORTS = [
  'createdAt',
  '-createdAt',
  'updatedAt',
  '-updatedAt',
  'name',
  '-name',
  'nextFireAt',
  '-nextFireAt',
  'priority',
  '-priority',
] as const;
type Sort = (typeof SORTS)[number];

const listQuery = pageQuery.extend({
  type: z.enum(JOB_TYPES).optional(),
  status: z.enum(JobStatus).optional(),
  priority: z.enum(JobPriority).optional(),
  name: z.string().min(1).max(255).optional().describe('Name contains this (case-insensitive)'),
  ownerId: z.string().min(1).max(64).optional().describe('Administrators only; others always see their own'),
  nextRunFrom: isoDate.optional().describe('Next fire time at or after'),
  nextRunTo: isoDate.optional().describe('Next fire time at or before'),
  sort: z
    .enum(SORTS)
    .default('-createdAt')
    .describe('Field, `-` for descending; ties broken by id. `priority` ascends LOW → HIGH'),
});

/** Prisma order of a sort; the id comes last so the order is total (the cursor needs that). */
function orderOf(sort: Sort): Prisma.JobOrderByWithRelationInput[] {
  const dir = sort.startsWith('-') ? 'desc' : 'asc';
  const field = sort.replace(/^-/, '') as 'createdAt' | 'updatedAt' | 'name' | 'nextFireAt' | 'priority';
  const first: Prisma.JobOrderByWithRelationInput =
    field === 'nextFireAt' ? { schedule: { nextFireAt: { sort: dir, nulls: 'last' } } } : { [field]: dir };
  return [first, { id: 'desc' }];
}

function listWhere(q: z.output<typeof listQuery>, principal: Principal): Prisma.JobWhereInput {
  const nextFire =
    q.nextRunFrom || q.nextRunTo
      ? {
          schedule: {
            is: {
              nextFireAt: {
                ...(q.nextRunFrom && { gte: q.nextRunFrom }),
                ...(q.nextRunTo && { lte: q.nextRunTo }),
              },
            },
          },
        }
      : {};
  return {
    ownerId: principal.isAdmin ? q.ownerId : principal.userId,
    ...(q.type && { type: q.type }),
    ...(q.status && { status: q.status }),
    ...(q.priority && { priority: q.priority }),
    ...(q.name && { name: { contains: q.name, mode: 'insensitive' as const } }),
    ...nextFire,
  };
}

/** Answers with a job document: its ETag, and stores it as that version's document. */
async function committed(deps: ApiDeps, res: Response, job: JobDefinitionRow): Promise<JobDto> {
  const [shown] = await withFiredAt(deps.db, [job]);
  const dto = toJobDto(shown ?? job);
  await saveVersion(deps, dto);
  res.setHeader('ETag', etagOf(dto.version));
  return dto;
}

/** 412 unless If-Match (when given) names the job's version. */
function checkIfMatch(ifMatch: number | undefined, job: { id: string; version: number }): void {
  if (ifMatch !== undefined && ifMatch !== job.version)
    throw preconditionFailed(`job ${job.id} is at version ${job.version}, not ${ifMatch}`);
}

/**
 * Reads the caller's job, builds the change from it and commits it against the version read
 * (If-Match's when given: 412 when stale). Without If-Match a change that lost a race with another
 * is rebuilt on the newer definition, so a PATCH never merges onto a stale one.
 */
async function changeJob(
  deps: ApiDeps,
  req: Request,
  principal: Principal,
  id: string,
  build: (current: JobDefinitionRow) => JobUpdate,
): Promise<JobDefinitionRow> {
  const ifMatch = expectedVersion(req.get('if-match'));
  for (let attempt = 1; ; attempt++) {
    const current = await findOwnedJob(deps.db, principal, id, JOB_DEFINITION);
    checkIfMatch(ifMatch, current);
    const update = build(current);
    // Nothing to change (an empty PATCH): no new version.
    if (Object.keys(update).length === 0) return current;
    try {
      const out = await updateJob(deps.engine, id, update, {
        defaultTimezone: deps.config.scheduler.defaultTimezone,
        misfireThresholdSeconds: deps.config.scheduler.misfireThresholdSeconds,
        scriptEnabled: deps.config.worker.scriptEnabled,
        expectedVersion: current.version,
        withinTransaction: (tx, job) =>
          audit(tx, req, {
            entityType: 'job',
            entityId: id,
            action: 'UPDATED',
            details: { version: job.version, changed: Object.keys(update).sort() },
          }),
      });
      if (!out) throw new NotFoundError('job', id);
      return out.job;
    } catch (err) {
      if (!(err instanceof StaleVersionError)) throw err;
      if (ifMatch !== undefined) throw preconditionFailed(err.message);
      if (attempt >= 3) throw err;
    }
  }
}

/** PUT or PATCH /jobs/{id}: the same flow, a different body and way to build the change. */
function addChangeRoute<
  B extends z.ZodType<{ ownerId?: string | undefined; type?: JobTypeName | undefined }>,
>(
  api: ApiRouter,
  deps: ApiDeps,
  spec: {
    method: 'put' | 'patch';
    summary: string;
    description: string;
    body: B;
    build: (current: JobDefinitionRow, body: z.output<B>, ownerId: string | undefined) => JobUpdate;
  },
): void {
  api.add({
    method: spec.method,
    path: '/jobs/:id',
    tag: 'jobs',
    summary: spec.summary,
    description: spec.description,
    permission: 'job:write',
    params: idParams,
    body: spec.body,
    responses: {
      200: { description: 'The new version', schema: jobSchema },
      409: { description: 'The owner already has a job of that name' },
      412: { description: 'If-Match names an older version' },
    },
    handler: async ({ params, body, principal, req, res }) => {
      const ownerId = await ownerOf(deps.db, principal, body.ownerId);
      const job = await changeJob(deps, req, principal, params.id, (current) => {
        // The stored type (a SCRIPT job stays one) and any type the body names.
        assertMayDefine(principal, current.type, body.type);
        return spec.build(current, body, ownerId);
      });
      return committed(deps, res, job);
    },
  });
}

export function registerJobCrudRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'post',
    path: '/jobs',
    tag: 'jobs',
    summary: 'Define a job',
    description:
      'One definition: schedule, the payload of its type, retry policy, overlap policy, triggers. Validated with field paths (`schedule.cronExpression`, `payload.httpUrl`). A ONCE `runAt` earlier than now minus the misfire threshold (the schedule’s `misfireThresholdSeconds`, else MISFIRE_THRESHOLD_SECONDS) is refused (400, `schedule.runAt`): to run a job now, trigger it. A name is unique per owner (409). Version 1 is stored in object storage.',
    permission: 'job:write',
    body: jobDefinitionBody,
    status: 201,
    responses: {
      201: { description: 'Created; Location names it', schema: jobSchema },
      409: { description: 'The owner already has a job of that name' },
    },
    handler: async ({ body, principal, req, res }) => {
      assertMayDefine(principal, body.type);
      const ownerId = (await ownerOf(deps.db, principal, body.ownerId)) ?? principal.userId;
      const { id, job } = await createJob(deps.engine, createInput(body, ownerId), {
        defaultTimezone: deps.config.scheduler.defaultTimezone,
        misfireThresholdSeconds: deps.config.scheduler.misfireThresholdSeconds,
        scriptEnabled: deps.config.worker.scriptEnabled,
        withinTransaction: (tx, created) =>
          audit(tx, req, {
            entityType: 'job',
            entityId: created.id,
            action: 'CREATED',
            details: { name: body.name, type: body.type, ownerId, version: 1 },
          }),
      });
      res.location(`/api/v1/jobs/${id}`);
      return committed(deps, res, job);
    },
  });

  api.add({
    method: 'get',
    path: '/jobs',
    tag: 'jobs',
    summary: 'List jobs',
    description:
      'The caller’s jobs (an administrator’s: everyone’s, or one owner’s with `ownerId`), filtered and sorted, one page at a time.',
    permission: 'job:read',
    query: listQuery,
    responses: { 200: { description: 'A page of jobs', schema: pageOf(jobSummarySchema) } },
    handler: ({ query, principal }) =>
      paginate(
        query,
        (args: PageArgs<string>) =>
          deps.db.job
            .findMany({
              ...args,
              where: listWhere(query, principal),
              orderBy: orderOf(query.sort),
              include: { schedule: true, retryPolicy: true },
            })
            .then((rows) => withFiredAt(deps.db, rows)),
        toJobSummary,
      ),
  });

  api.add({
    method: 'get',
    path: '/jobs/:id',
    tag: 'jobs',
    summary: 'A job’s full definition',
    description: 'The ETag is the definition version (send it as If-Match when changing the job).',
    permission: 'job:read',
    params: idParams,
    responses: { 200: { description: 'The job', schema: jobSchema } },
    handler: async ({ params, principal, res }) => {
      const job = await findOwnedJob(deps.db, principal, params.id, JOB_DEFINITION);
      res.setHeader('ETag', etagOf(job.version));
      const [shown] = await withFiredAt(deps.db, [job]);
      return toJobDto(shown ?? job);
    },
  });

  addChangeRoute(api, deps, {
    method: 'put',
    summary: 'Replace a job’s definition',
    description:
      'The whole definition, validated as on creation; left-out fields take their defaults. The type cannot change. A payload secret sent back as `***` keeps its stored value. A ONCE `runAt` long past is refused as on creation unless it is the one the job already has (a job whose one-shot has fired stays editable; that time is not planned again). Optional If-Match: "<version>" (412 when stale). Schedule changes re-plan at once.',
    body: jobDefinitionBody,
    build: replacement,
  });

  addChangeRoute(api, deps, {
    method: 'patch',
    summary: 'Change some fields of a job',
    description:
      'Only the given fields change. `payload`, `schedule` (same type), `retryPolicy` and `triggers` merge onto the stored ones, then the whole definition is validated again (a new ONCE `runAt` long past is refused as on creation); `null` clears a nullable field. Optional If-Match (412 when stale).',
    body: jobPatchBody,
    build: patchUpdate,
  });

  api.add({
    method: 'delete',
    path: '/jobs/:id',
    tag: 'jobs',
    summary: 'Delete a job',
    description:
      'Its runs, ledger, variables, webhooks and stored definition versions go with it; waiting slots leave the queue. The audit trail keeps the deletion. Optional If-Match (412 when stale).',
    permission: 'job:delete',
    params: idParams,
    responses: { 204: { description: 'Deleted' }, 412: { description: 'If-Match names an older version' } },
    handler: async ({ params, principal, req }) => {
      const job = await findOwnedJob(deps.db, principal, params.id, {
        select: { id: true, name: true, type: true, ownerId: true, version: true },
      });
      const ifMatch = expectedVersion(req.get('if-match'));
      const deleted = await deleteJob(deps.engine, job.id, {
        // Checked on the locked row: a change committed since the read above is not deleted blind.
        withinTransaction: async (tx, { version }) => {
          checkIfMatch(ifMatch, { id: job.id, version });
          await audit(tx, req, {
            entityType: 'job',
            entityId: job.id,
            action: 'DELETED',
            details: { name: job.name, type: job.type, ownerId: job.ownerId, version },
          });
        },
      });
      if (!deleted) throw new NotFoundError('job', job.id);
      await removeVersions(deps, job.id);
      return null;
    },
  });
}
