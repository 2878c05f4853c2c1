// POST /jobs/{id}/pause|resume|trigger|backfill: operations on a job. They change what runs, not
// the definition, so the version stays; each is audited.
import { NotFoundError, ValidationError } from '@chronos/core';
import { backfillJob, pauseJob, resumeJob, triggerRun } from '@chronos/engine';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, isoDate } from '../http/schemas.ts';
import { findOwnedJob, JOB_ID } from '../auth/owned-job.ts';
import { MAX_SPAN_SECONDS } from './schemas.ts';

const statusChange = z
  .object({
    id: z.string(),
    status: z.string(),
    nextFireAt: z.iso.datetime().nullable(),
    skippedSlots: z.int().optional().describe('pause: queued future slots taken off the queue'),
    skippedRuns: z
      .int()
      .optional()
      .describe(
        'pause: waiting runs outside the schedule (manual, webhook, backfill, retry, replay) taken off the queue; they stay skipped after resume',
      ),
    missed: z.int().optional().describe('resume: slots that came due while paused'),
    replayed: z.int().optional().describe('resume: of those, queued to run now by the resume policy'),
  })
  .meta({ id: 'JobStatusChange' });

const triggerResult = z
  .object({ runId: z.string(), status: z.string(), created: z.boolean() })
  .meta({ id: 'TriggerResult' });

const backfillBody = z
  .strictObject({
    from: isoDate,
    to: isoDate.describe('Inclusive; later than now counts as now'),
    limit: z.int().min(1).max(1000).default(1000).describe('Most slots queued by this call'),
  })
  .superRefine((b, ctx) => {
    if (b.to <= b.from) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
    else if (b.to.getTime() - b.from.getTime() > MAX_SPAN_SECONDS * 1000)
      ctx.addIssue({ code: 'custom', path: ['from'], message: 'the range may span at most 366 days' });
  });

/** `Idempotency-Key`: printable ASCII, at most 255 characters. */
function idempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\x21-\x7e][\x20-\x7e]{0,254}$/.test(value))
    throw new ValidationError('invalid Idempotency-Key', [
      { path: 'Idempotency-Key', message: 'must be 1–255 printable ASCII characters' },
    ]);
  return value;
}

async function nextFireOf(deps: ApiDeps, jobId: string) {
  const job = await deps.db.job.findUnique({
    where: { id: jobId },
    select: { status: true, schedule: { select: { nextFireAt: true } } },
  });
  if (!job) throw new NotFoundError('job', jobId);
  return { status: job.status, nextFireAt: job.schedule?.nextFireAt?.toISOString() ?? null };
}

export function registerJobActionRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'post',
    path: '/jobs/:id/pause',
    tag: 'jobs',
    summary: 'Pause a job',
    description:
      'Nothing of the job starts until it is resumed. Queued future slots leave the queue (recorded SKIPPED_PAUSED) and nothing is planned; on resume the schedule’s resume policy decides which of its slots run. Runs waiting outside the schedule — manual, webhook, backfill, a retry waiting for its backoff, a DLQ replay — leave the queue too (SKIPPED_PAUSED, reason `job paused before the run started`) and stay skipped after resume: trigger the job again to run it. A run already running goes on. While paused, trigger, backfill and DLQ replay answer 409. Pausing a paused job changes nothing.',
    permission: 'job:execute',
    params: idParams,
    responses: { 200: { description: 'Paused', schema: statusChange } },
    handler: async ({ params, principal, req }) => {
      const { id } = await findOwnedJob(deps.db, principal, params.id, JOB_ID);
      const out = await pauseJob(deps.engine, id, {
        withinTransaction: (tx, { removed, skippedRuns }) =>
          audit(tx, req, {
            entityType: 'job',
            entityId: id,
            action: 'PAUSED',
            details: { skippedSlots: removed.length, skippedRuns: skippedRuns.length },
          }),
      });
      if (!out) throw new NotFoundError('job', id);
      return {
        id,
        ...(await nextFireOf(deps, id)),
        skippedSlots: out.removed.length,
        skippedRuns: out.skippedRuns.length,
      };
    },
  });

  api.add({
    method: 'post',
    path: '/jobs/:id/resume',
    tag: 'jobs',
    summary: 'Resume a paused job',
    description:
      'Slots missed while paused follow the schedule’s resume policy, or `policy` when given. Resuming a job that is not paused changes nothing.',
    permission: 'job:execute',
    params: idParams,
    body: z.strictObject({ policy: z.enum(['SKIP_MISSED', 'RUN_ONCE', 'REPLAY']).optional() }),
    responses: { 200: { description: 'Resumed', schema: statusChange } },
    handler: async ({ params, body, principal, req }) => {
      const { id } = await findOwnedJob(deps.db, principal, params.id, JOB_ID);
      const out = await resumeJob(deps.engine, id, body.policy, {
        withinTransaction: (tx, { missed, replayed }) =>
          audit(tx, req, {
            entityType: 'job',
            entityId: id,
            action: 'RESUMED',
            details: { missed, replayed, ...(body.policy && { policy: body.policy }) },
          }),
      });
      if (!out) throw new NotFoundError('job', id);
      return { id, ...(await nextFireOf(deps, id)), missed: out.missed, replayed: out.replayed };
    },
  });

  api.add({
    method: 'post',
    path: '/jobs/:id/trigger',
    tag: 'jobs',
    summary: 'Run a job now',
    description:
      'Queues a MANUAL run outside the schedule; `parameters` reach it as `{{trigger.body…}}`. With an `Idempotency-Key` header the same key returns the same run (200) instead of a new one (202). A paused job, or one that does not allow manual triggers, answers 409.',
    permission: 'job:execute',
    params: idParams,
    body: z.strictObject({
      parameters: z.unknown().optional().describe('Passed to the run as its trigger body'),
    }),
    responses: {
      202: { description: 'A new run was queued', schema: triggerResult },
      200: { description: 'The run this Idempotency-Key created before', schema: triggerResult },
      409: { description: 'Paused, cancelled, or manual triggers not allowed' },
    },
    handler: async ({ params, body, principal, req, res }) => {
      const { id } = await findOwnedJob(deps.db, principal, params.id, JOB_ID);
      const key = idempotencyKey(req.get('idempotency-key'));
      const out = await triggerRun(
        deps.engine,
        {
          jobId: id,
          trigger: 'MANUAL',
          idempotencyKey: key,
          payload: body.parameters === undefined ? undefined : { body: body.parameters },
          reason: `manual trigger by ${principal.email}`,
        },
        {
          withinTransaction: (tx, { runId }) =>
            audit(tx, req, { entityType: 'job', entityId: id, action: 'TRIGGERED', details: { runId } }),
        },
      );
      res.location(`/api/v1/runs/${out.runId}`);
      res
        .status(out.created ? 202 : 200)
        .json({ runId: out.runId, status: out.status, created: out.created });
      return undefined;
    },
  });

  api.add({
    method: 'post',
    path: '/jobs/:id/backfill',
    tag: 'jobs',
    summary: 'Run the slots of a past time range',
    description:
      'Every slot of the schedule in [from, to] (at most `limit`, range at most 366 days) is queued now with the idempotency key of the slot: a slot that already ran or waits is not run again; one that was skipped runs. A paused job answers 409.',
    permission: 'job:execute',
    params: idParams,
    body: backfillBody,
    status: 202,
    responses: {
      202: {
        description: 'Queued',
        schema: z
          .object({ enqueued: z.int(), deduplicated: z.int(), truncated: z.boolean() })
          .meta({ id: 'BackfillResult' }),
      },
      409: { description: 'The job is paused' },
    },
    handler: async ({ params, body, principal, req }) => {
      const { id } = await findOwnedJob(deps.db, principal, params.id, JOB_ID);
      const out = await backfillJob(deps.engine, id, { from: body.from, to: body.to }, body.limit, {
        withinTransaction: (tx, result) =>
          audit(tx, req, {
            entityType: 'job',
            entityId: id,
            action: 'BACKFILLED',
            details: { from: body.from.toISOString(), to: body.to.toISOString(), ...result },
          }),
      });
      if (!out) throw new NotFoundError('job', id);
      return out;
    },
  });
}
