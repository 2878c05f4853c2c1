import { ConflictError, NotFoundError, newId, type SecretBox } from '@chronos/core';
import type { Prisma, Webhook } from '@chronos/db';
import { updateJob } from '@chronos/engine';
import type { Request } from 'express';
import { z } from 'zod';
import { findOwnedJob } from '../auth/owned-job.ts';
import type { Principal } from '../auth/principal.ts';
import type { ApiDeps } from '../deps.ts';
import { audit } from '../http/audit.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams, timestamp } from '../http/schemas.ts';
import { toJobDto } from '../jobs/definition.ts';
import { saveVersion } from '../jobs/versions.ts';
import { API_BASE } from '../openapi.ts';
import { createWebhookDelivery } from '../webhooks/delivery.ts';
import { newWebhookSecret } from '../webhooks/signature.ts';

/** Longest rotation grace period: a week. */
const MAX_GRACE_SECONDS = 7 * 24 * 3600;

const webhookSchema = z
  .object({
    id: z.string(),
    jobId: z.string(),
    url: z.string().describe('Where the sender POSTs deliveries'),
    enabled: z.boolean(),
    rateLimitPerMinute: z.number().int(),
    forwardHeaders: z
      .array(z.string())
      .describe('Request headers (lowercased) the run sees as {{trigger.headers.…}}'),
    previousSecretExpiresAt: timestamp
      .nullable()
      .describe('Until then the secret before the last rotation is accepted too'),
    lastTriggeredAt: timestamp.nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Webhook' });

const webhookWithSecret = webhookSchema
  .extend({ secret: z.string().describe('The HMAC secret: shown in this answer only, store it now') })
  .meta({ id: 'WebhookWithSecret' });

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'must be an HTTP header name')
  .transform((name) => name.toLowerCase());

const webhookSettings = z.strictObject({
  enabled: z.boolean().optional(),
  rateLimitPerMinute: z
    .int()
    .min(1)
    .max(10_000)
    .optional()
    .describe('Accepted deliveries per minute (default 60)'),
  forwardHeaders: z
    .array(headerName)
    .max(50)
    .transform((names) => [...new Set(names)])
    .optional()
    .describe('Request headers passed to the run as {{trigger.headers.<name>}}'),
});

/** A deployment without ENCRYPTION_KEY cannot keep a webhook secret, so it has no webhooks. */
function requireSecretBox(deps: ApiDeps): SecretBox {
  if (!deps.secretBox)
    throw new ConflictError(
      'Webhooks need ENCRYPTION_KEY to be configured: their secrets are stored encrypted',
    );
  return deps.secretBox;
}

/** PUBLIC_URL when set, else the origin the caller used. */
function hookUrl(deps: ApiDeps, req: Request, id: string): string {
  const origin = deps.config.http.publicUrl?.replace(/\/+$/, '') ?? `${req.protocol}://${req.get('host')}`;
  return `${origin}${API_BASE}/hooks/${id}`;
}

function toDto(deps: ApiDeps, req: Request, hook: Webhook) {
  return {
    id: hook.id,
    jobId: hook.jobId,
    url: hookUrl(deps, req, hook.id),
    enabled: hook.enabled,
    rateLimitPerMinute: hook.rateLimitPerMinute,
    forwardHeaders: hook.forwardHeaders,
    previousSecretExpiresAt: hook.previousSecret ? hook.previousSecretExpiresAt : null,
    lastTriggeredAt: hook.lastTriggeredAt,
    createdAt: hook.createdAt,
    updatedAt: hook.updatedAt,
  };
}

/** The caller's job (another owner's answers 404). */
const ownedJob = (deps: ApiDeps, principal: Principal, jobId: string) =>
  findOwnedJob(deps.db, principal, jobId, { select: { id: true, allowWebhook: true } });

/** The webhook of the caller's job. */
async function ownedWebhook(deps: ApiDeps, principal: Principal, jobId: string): Promise<Webhook> {
  const job = await ownedJob(deps, principal, jobId);
  const hook = await deps.db.webhook.findFirst({ where: { jobId: job.id } });
  if (!hook) throw new NotFoundError('webhook of job', jobId);
  return hook;
}

/** Inserts the job's one webhook and audits it; the caller holds the job row's lock. */
async function insertWebhook(
  tx: Prisma.TransactionClient,
  req: Request,
  box: SecretBox,
  jobId: string,
  secret: string,
  settings: z.output<typeof webhookSettings>,
): Promise<Webhook> {
  if (await tx.webhook.findFirst({ where: { jobId }, select: { id: true } }))
    throw new ConflictError(`job ${jobId} already has a webhook: rotate its secret or delete it first`);
  const id = newId();
  const row = await tx.webhook.create({
    data: { id, jobId, secret: box.encrypt(secret, id), keyId: box.currentKeyId, ...settings },
  });
  await audit(tx, req, {
    entityType: 'webhook',
    entityId: id,
    action: 'CREATED',
    details: { jobId, ...settings },
  });
  return row;
}

/**
 * Creates the job's one webhook, under the job row's lock so two concurrent requests cannot both
 * create one. A job that does not yet allow webhook triggers is changed to allow them through the
 * engine's `updateJob` (a new definition version, audited and stored, in the same transaction).
 */
async function createWebhook(
  deps: ApiDeps,
  req: Request,
  job: { id: string; allowWebhook: boolean },
  settings: z.output<typeof webhookSettings>,
): Promise<{ hook: Webhook; secret: string }> {
  const box = requireSecretBox(deps);
  const secret = newWebhookSecret();
  if (job.allowWebhook) {
    const hook = await deps.db.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM jobs WHERE id = ${job.id} FOR UPDATE`;
      return insertWebhook(tx, req, box, job.id, secret, settings);
    });
    return { hook, secret };
  }
  let hook: Webhook | undefined;
  const out = await updateJob(
    deps.engine,
    job.id,
    { allowWebhook: true },
    {
      withinTransaction: async (tx, changed) => {
        hook = await insertWebhook(tx, req, box, job.id, secret, settings);
        await audit(tx, req, {
          entityType: 'job',
          entityId: job.id,
          action: 'UPDATED',
          details: { version: changed.version, changed: ['allowWebhook'], reason: 'webhook created' },
        });
      },
    },
  );
  if (!out || !hook) throw new NotFoundError('job', job.id);
  await saveVersion(deps, toJobDto(out.job));
  return { hook, secret };
}

/** A new secret; the current one becomes the previous one, accepted until the grace period ends. */
async function rotateSecret(
  deps: ApiDeps,
  req: Request,
  hook: Webhook,
  graceSeconds: number,
): Promise<{ hook: Webhook; secret: string }> {
  const box = requireSecretBox(deps);
  const secret = newWebhookSecret();
  const graceEnds = new Date(Date.now() + graceSeconds * 1000);
  const updated = await deps.db.$transaction(async (tx) => {
    const row = await tx.webhook.update({
      where: { id: hook.id },
      data: {
        secret: box.encrypt(secret, hook.id),
        keyId: box.currentKeyId,
        previousSecret: graceSeconds > 0 ? hook.secret : null,
        previousSecretExpiresAt: graceSeconds > 0 ? graceEnds : null,
      },
    });
    await audit(tx, req, {
      entityType: 'webhook',
      entityId: hook.id,
      action: 'SECRET_ROTATED',
      details: { jobId: hook.jobId, graceSeconds },
    });
    return row;
  });
  return { hook: updated, secret };
}

/** `/jobs/:id/webhook` (management) and `/hooks/:hookId` (signed deliveries). */
export function registerWebhookRoutes(api: ApiRouter, deps: ApiDeps): void {
  const deliver = createWebhookDelivery(deps);

  api.add({
    method: 'post',
    path: '/jobs/:id/webhook',
    tag: 'webhooks',
    summary: 'Create the job’s webhook (its secret is shown once)',
    description:
      'One webhook per job (409 when it has one). Also allows webhook triggers on the job. The answer carries the HMAC secret; it is never shown again (rotate to get a new one). Needs ENCRYPTION_KEY (409 without).',
    permission: 'webhook:write',
    params: idParams,
    body: webhookSettings,
    status: 201,
    responses: {
      201: { description: 'Created', schema: webhookWithSecret },
      409: { description: 'The job already has a webhook, or ENCRYPTION_KEY is not configured' },
    },
    handler: async ({ req, params, body, principal }) => {
      const job = await ownedJob(deps, principal, params.id);
      const { hook, secret } = await createWebhook(deps, req, job, body);
      return { ...toDto(deps, req, hook), secret };
    },
  });

  api.add({
    method: 'get',
    path: '/jobs/:id/webhook',
    tag: 'webhooks',
    summary: 'The job’s webhook (never its secret)',
    permission: 'webhook:write',
    params: idParams,
    responses: { 200: { description: 'The webhook', schema: webhookSchema } },
    handler: async ({ req, params, principal }) =>
      toDto(deps, req, await ownedWebhook(deps, principal, params.id)),
  });

  api.add({
    method: 'patch',
    path: '/jobs/:id/webhook',
    tag: 'webhooks',
    summary: 'Enable or disable the webhook, set its rate limit and forwarded headers',
    permission: 'webhook:write',
    params: idParams,
    body: webhookSettings,
    responses: { 200: { description: 'Updated', schema: webhookSchema } },
    handler: async ({ req, params, body, principal }) => {
      const hook = await ownedWebhook(deps, principal, params.id);
      const updated = await deps.db.$transaction(async (tx) => {
        const row = await tx.webhook.update({ where: { id: hook.id }, data: body });
        await audit(tx, req, {
          entityType: 'webhook',
          entityId: hook.id,
          action: 'UPDATED',
          details: { jobId: hook.jobId, ...body },
        });
        return row;
      });
      return toDto(deps, req, updated);
    },
  });

  api.add({
    method: 'post',
    path: '/jobs/:id/webhook/rotate',
    tag: 'webhooks',
    summary: 'Rotate the secret (the new one is shown once)',
    description:
      'The previous secret stays valid for `graceSeconds` (default 3600, at most 7 days; 0 ends it now), so senders can switch without losing deliveries. A second rotation within the grace period drops the older secret.',
    permission: 'webhook:write',
    params: idParams,
    body: z.strictObject({
      graceSeconds: z
        .int()
        .min(0)
        .max(MAX_GRACE_SECONDS)
        .default(3600)
        .describe('How long the previous secret is still accepted'),
    }),
    responses: {
      200: { description: 'Rotated', schema: webhookWithSecret },
      409: { description: 'ENCRYPTION_KEY is not configured' },
    },
    handler: async ({ req, params, body, principal }) => {
      const current = await ownedWebhook(deps, principal, params.id);
      const { hook, secret } = await rotateSecret(deps, req, current, body.graceSeconds);
      return { ...toDto(deps, req, hook), secret };
    },
  });

  api.add({
    method: 'delete',
    path: '/jobs/:id/webhook',
    tag: 'webhooks',
    summary: 'Delete the job’s webhook',
    description: 'Deliveries to its URL answer 404 from now on.',
    permission: 'webhook:write',
    params: idParams,
    responses: { 204: { description: 'Deleted' } },
    handler: async ({ req, params, principal }) => {
      const hook = await ownedWebhook(deps, principal, params.id);
      await deps.db.$transaction(async (tx) => {
        await tx.webhook.delete({ where: { id: hook.id } });
        await audit(tx, req, {
          entityType: 'webhook',
          entityId: hook.id,
          action: 'DELETED',
          details: { jobId: hook.jobId },
        });
      });
      return null;
    },
  });

  api.add({
    method: 'post',
    path: '/hooks/:hookId',
    tag: 'webhooks',
    summary: 'Deliver a signed webhook: starts a run of its job',
    description: [
      'Headers: `X-Chronos-Timestamp` (unix seconds, within 5 minutes of the server clock) and `X-Chronos-Signature` = hex HMAC-SHA256(secret, `<timestamp>.<raw body>`), optionally prefixed `sha256=`; optional `X-Chronos-Delivery` (a unique id per delivery).',
      'Any content type: JSON is parsed, a form becomes its fields, anything else is text. The run sees `{{trigger.body…}}`, `{{trigger.query…}}` and the webhook’s forwarded headers as `{{trigger.headers…}}`.',
      'A delivery is accepted once: the same signature, or the same delivery id, again answers 409. A refused delivery (429, paused job) may be retried.',
    ].join('\n\n'),
    auth: 'none',
    params: z.object({ hookId: z.string().min(1).max(64) }),
    status: 202,
    responses: {
      202: { description: 'Accepted: the run is queued', schema: z.object({ runId: z.string() }) },
      401: { description: 'Missing or wrong signature, or a stale timestamp' },
      403: { description: 'The webhook is disabled' },
      409: {
        description: 'A replayed delivery, or the job cannot be triggered now (paused, webhooks not allowed)',
      },
      429: { description: 'Over the webhook’s rate limit (see Retry-After)' },
    },
    handler: ({ req, res, params }) => deliver(req, res, params.hookId),
  });
}
