import { ConflictError, NotFoundError, type SecretBox } from '@chronos/core';
import type { Webhook } from '@chronos/db';
import { triggerRun, type TriggerPayload } from '@chronos/engine';
import type { Request, Response } from 'express';
import type { ApiDeps } from '../deps.ts';
import { HttpError, forbidden, tooManyRequests } from '../http/errors.ts';
import { createDeliveryGuard } from './delivery-guard.ts';
import { decodeBody, readRawBody } from './raw-body.ts';
import { parseSignature, parseTimestamp, signatureMatches, timestampIsFresh } from './signature.ts';

/** 401 without the Bearer challenge of the token-authenticated routes: webhooks sign, they do not sign in. */
const rejected = (detail: string) => new HttpError(401, 'Unauthorized', detail);

/** The secrets a delivery may be signed with now: the current one, and the previous one during its grace. */
function acceptedSecrets(box: SecretBox | undefined, hook: Webhook, now: Date): string[] {
  if (!box)
    throw new HttpError(
      503,
      'Service Unavailable',
      'Webhook secrets cannot be read: ENCRYPTION_KEY is not configured on this deployment',
    );
  const secrets = [box.decrypt(hook.secret, hook.id)];
  if (hook.previousSecret && hook.previousSecretExpiresAt && hook.previousSecretExpiresAt > now)
    secrets.push(box.decrypt(hook.previousSecret, hook.id));
  return secrets;
}

/**
 * Returns the signature in canonical form (lowercase hex: `sha256=` or upper case must not make a
 * replay look new).
 * @throws HttpError 401 unless the request carries a fresh timestamp and a matching signature.
 */
function verifyDelivery(secrets: readonly string[], req: Request, raw: Buffer, now: Date): string {
  const timestampHeader = req.get('x-chronos-timestamp')?.trim();
  const timestamp = parseTimestamp(timestampHeader);
  const signature = parseSignature(req.get('x-chronos-signature'));
  if (!signature || timestamp === null || !timestampHeader)
    throw rejected(
      'Sign the delivery: X-Chronos-Timestamp (unix seconds) and X-Chronos-Signature (hex HMAC-SHA256 of "<timestamp>.<raw body>")',
    );
  if (!signatureMatches(signature, secrets, timestampHeader, raw))
    throw rejected('X-Chronos-Signature does not match');
  if (!timestampIsFresh(timestamp, now))
    throw rejected('X-Chronos-Timestamp is more than 5 minutes away from the server clock');
  return signature.toString('hex');
}

/** `?a=1&a=2` arrives as an array: the run sees `1,2`. */
function queryStrings(query: Request['query']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value)) out[name] = value.filter((v) => typeof v === 'string').join(',');
  }
  return out;
}

/** Only the headers the webhook forwards (names stored lowercased) reach the run. */
function forwardedHeaders(req: Request, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = req.get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function triggerPayload(req: Request, raw: Buffer, hook: Webhook): TriggerPayload {
  const body = decodeBody(req, raw);
  return {
    ...(body !== undefined ? { body } : {}),
    query: queryStrings(req.query),
    headers: forwardedHeaders(req, hook.forwardHeaders),
  };
}

/**
 * `POST /hooks/:hookId`. The checks run in an order that tells a caller without the secret nothing
 * beyond "no such hook" (404) and "not signed" (401): signature and timestamp first, then disabled
 * (403), replay (409), rate limit (429). A refused delivery is forgotten again, so its sender may
 * retry it later.
 */
export function createWebhookDelivery(deps: ApiDeps) {
  const guard = createDeliveryGuard(deps.redis, deps.config.redis.prefix);

  return async (req: Request, res: Response, hookId: string): Promise<{ runId: string }> => {
    const hook = await deps.db.webhook.findUnique({ where: { id: hookId } });
    if (!hook) throw new NotFoundError('webhook', hookId);
    const raw = await readRawBody(req, res, deps.config.bodyLimitBytes);
    const now = new Date();
    const signature = verifyDelivery(acceptedSecrets(deps.secretBox, hook, now), req, raw, now);
    if (!hook.enabled) throw forbidden('This webhook is disabled');

    const deliveryId = req.get('x-chronos-delivery')?.trim() || undefined;
    const claimed = await guard.claim(hook.id, deliveryId ? [signature, deliveryId] : [signature]);
    if (!claimed) throw new ConflictError('This delivery was already received (replay)');
    try {
      const wait = await guard.overLimit(hook.id, hook.rateLimitPerMinute);
      if (wait !== null)
        throw tooManyRequests(`This webhook accepts ${hook.rateLimitPerMinute} deliveries per minute`, wait);
      const { runId } = await triggerRun(
        deps.engine,
        {
          jobId: hook.jobId,
          trigger: 'WEBHOOK',
          idempotencyKey: deliveryId ?? signature,
          payload: triggerPayload(req, raw, hook),
          reason: `webhook ${hook.id}`,
        },
        {
          // updateMany: a webhook deleted meanwhile is no reason to fail an accepted delivery.
          withinTransaction: async (tx) => {
            await tx.webhook.updateMany({ where: { id: hook.id }, data: { lastTriggeredAt: now } });
          },
        },
      );
      return { runId };
    } catch (err) {
      await guard.release(claimed);
      throw err;
    }
  };
}
