import { newId, queueName } from '@chronos/core';
import { resolveRunInputs } from '@chronos/engine';
import { jobDefinitionKey } from '@chronos/storage';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../src/webhooks/signature.ts';
import { startTestApi, type TestApi } from './harness.ts';
import { ownedJob } from './owned-job.ts';

let t: TestApi;
let admin: string;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
let viewer: { id: string; token: string };

interface Hook {
  id: string;
  url: string;
  secret: string;
  jobId: string;
}

beforeAll(async () => {
  t = await startTestApi('webhooks');
  admin = await t.adminToken();
  [alice, bob, viewer] = await Promise.all([t.user(['USER']), t.user(['USER']), t.user(['VIEWER'])]);
});

afterAll(async () => {
  await t?.stop();
});

/** A new job of alice's with a webhook (settings as given). */
async function hookedJob(settings: Record<string, unknown> = {}): Promise<Hook> {
  const jobId = await ownedJob(t, alice.id);
  const res = await t.call('post', `/jobs/${jobId}/webhook`, { token: alice.token, body: settings });
  expect(res.status).toBe(201);
  return { ...(res.body as Hook), jobId };
}

interface Delivery {
  body?: string;
  contentType?: string;
  secret?: string;
  timestamp?: number;
  headers?: Record<string, string>;
  query?: string;
  signature?: string;
}

/** POSTs a delivery signed with the hook's secret (or `secret`) at `timestamp` (default now). */
async function deliver(hook: Hook, d: Delivery = {}) {
  const body = d.body ?? JSON.stringify({ event: 'push', n: 1 });
  const ts = String(d.timestamp ?? Math.floor(Date.now() / 1000));
  const signature = d.signature ?? signWebhook(d.secret ?? hook.secret, ts, body);
  const res = await fetch(`${t.api}/hooks/${hook.id}${d.query ?? ''}`, {
    method: 'POST',
    headers: {
      'content-type': d.contentType ?? 'application/json',
      'x-chronos-timestamp': ts,
      'x-chronos-signature': signature,
      ...d.headers,
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
}

describe('webhook management (/jobs/:id/webhook)', () => {
  it('creates the job’s one webhook, shows its secret once and stores only ciphertext', async () => {
    const jobId = await ownedJob(t, alice.id);
    const created = await t.call('post', `/jobs/${jobId}/webhook`, {
      token: alice.token,
      body: { forwardHeaders: ['X-Event', 'x-event'], rateLimitPerMinute: 30 },
    });
    expect(created.status).toBe(201);
    const hook = created.body as Hook;
    expect(created.body).toMatchObject({
      jobId,
      url: `${t.api}/hooks/${hook.id}`,
      enabled: true,
      rateLimitPerMinute: 30,
      forwardHeaders: ['x-event'],
      previousSecretExpiresAt: null,
      lastTriggeredAt: null,
    });
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);

    const row = await t.db.webhook.findUniqueOrThrow({ where: { id: hook.id } });
    expect(row.secret).not.toContain(hook.secret);
    expect(t.deps.secretBox?.decrypt(row.secret, hook.id)).toBe(hook.secret);
    // The job now allows webhook triggers: a new definition version, stored and audited.
    const job = await t.db.job.findUniqueOrThrow({ where: { id: jobId } });
    expect(job).toMatchObject({ allowWebhook: true, version: 2 });
    const doc = await t.deps.storage.getJson<{ triggers: { webhook: boolean } }>(jobDefinitionKey(jobId, 2));
    expect(doc?.triggers.webhook).toBe(true);
    const jobAudit = await t.db.auditEvent.findFirst({ where: { entityId: jobId, action: 'UPDATED' } });
    expect(jobAudit?.details).toMatchObject({ version: 2, changed: ['allowWebhook'] });

    const again = await t.call('post', `/jobs/${jobId}/webhook`, { token: alice.token });
    expect(again.status).toBe(409);

    const got = await t.call('get', `/jobs/${jobId}/webhook`, { token: alice.token });
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(hook.id);
    expect(got.body).not.toHaveProperty('secret');
    expect(got.text).not.toContain(hook.secret);
    const audits = await t.db.auditEvent.findMany({ where: { entityType: 'webhook', entityId: hook.id } });
    expect(audits.map((a) => a.action)).toEqual(['CREATED']);
    expect(JSON.stringify(audits)).not.toContain(hook.secret);
  });

  it('answers 404 to another owner, 403 without webhook:write and 401 without a token', async () => {
    const hook = await hookedJob();
    const path = `/jobs/${hook.jobId}/webhook`;
    const others = await Promise.all([
      t.call('get', path, { token: bob.token }),
      t.call('post', path, { token: bob.token }),
      t.call('patch', path, { token: bob.token, body: { enabled: false } }),
      t.call('post', `${path}/rotate`, { token: bob.token, body: {} }),
      t.call('delete', path, { token: bob.token }),
    ]);
    expect(others.map((r) => r.status)).toEqual([404, 404, 404, 404, 404]);
    for (const r of others) expect(r.text).not.toContain(hook.secret);
    expect((await t.call('get', path, { token: viewer.token })).status).toBe(403);
    expect((await t.call('get', path)).status).toBe(401);
    expect((await t.call('get', path, { token: admin })).status).toBe(200);
    expect((await t.db.webhook.findUniqueOrThrow({ where: { id: hook.id } })).enabled).toBe(true);
  });

  it('answers 404 for a job without a webhook', async () => {
    const jobId = await ownedJob(t, alice.id);
    expect((await t.call('get', `/jobs/${jobId}/webhook`, { token: alice.token })).status).toBe(404);
  });

  it('validates settings with field paths', async () => {
    const hook = await hookedJob();
    const res = await t.call('patch', `/jobs/${hook.jobId}/webhook`, {
      token: alice.token,
      body: { rateLimitPerMinute: 0, forwardHeaders: ['ok', 'not a header'] },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      'forwardHeaders.1',
      'rateLimitPerMinute',
    ]);
    const grace = await t.call('post', `/jobs/${hook.jobId}/webhook/rotate`, {
      token: alice.token,
      body: { graceSeconds: 8 * 24 * 3600 },
    });
    expect(grace.status).toBe(400);
    expect(grace.body.errors.map((e: { path: string }) => e.path)).toEqual(['graceSeconds']);
  });

  it('refuses to create a webhook without ENCRYPTION_KEY (409)', async () => {
    const jobId = await ownedJob(t, alice.id);
    const box = t.deps.secretBox;
    t.deps.secretBox = undefined;
    try {
      const res = await t.call('post', `/jobs/${jobId}/webhook`, { token: alice.token });
      expect(res.status).toBe(409);
      expect(res.body.detail).toMatch(/ENCRYPTION_KEY/);
    } finally {
      t.deps.secretBox = box;
    }
    expect(await t.db.webhook.count({ where: { jobId } })).toBe(0);
  });

  it('deletes the webhook: its URL answers 404 from then on', async () => {
    const hook = await hookedJob();
    expect((await t.call('delete', `/jobs/${hook.jobId}/webhook`, { token: alice.token })).status).toBe(204);
    expect((await deliver(hook)).status).toBe(404);
    expect((await t.call('get', `/jobs/${hook.jobId}/webhook`, { token: alice.token })).status).toBe(404);
    // A job that already allows webhook triggers gets a new one without a new definition version.
    const again = await t.call('post', `/jobs/${hook.jobId}/webhook`, { token: alice.token });
    expect(again.status).toBe(201);
    expect((await deliver({ ...hook, ...again.body })).status).toBe(202);
    expect((await t.db.job.findUniqueOrThrow({ where: { id: hook.jobId } })).version).toBe(2);
  });
});

describe('webhook delivery (POST /hooks/:hookId)', () => {
  it('accepts a signed delivery: 202 with a QUEUED WEBHOOK run carrying body, query and chosen headers', async () => {
    const hook = await hookedJob({ forwardHeaders: ['X-Event'] });
    const res = await deliver(hook, {
      body: JSON.stringify({ name: 'Ada', items: [1, 2] }),
      query: '?q=search&tag=a&tag=b',
      headers: { 'x-event': 'push', 'x-other': 'not forwarded', 'x-chronos-delivery': newId() },
    });
    expect(res.status).toBe(202);
    const runId = res.body.runId as string;
    const run = await t.db.jobRun.findUniqueOrThrow({ where: { id: runId } });
    expect(run).toMatchObject({ jobId: hook.jobId, status: 'QUEUED', trigger: 'WEBHOOK', attempt: 1 });
    expect(run.triggerPayload).toEqual({
      body: { name: 'Ada', items: [1, 2] },
      query: { q: 'search', tag: 'a,b' },
      headers: { 'x-event': 'push' },
    });
    const queue = new Queue(queueName('DUMMY'), { connection: t.deps.redis, prefix: t.prefix });
    try {
      expect(await queue.getJob(run.idempotencyKey)).toBeDefined();
    } finally {
      await queue.close();
    }
    expect((await t.db.webhook.findUniqueOrThrow({ where: { id: hook.id } })).lastTriggeredAt).not.toBeNull();

    // The run sees them as {{trigger.…}}.
    const job = await t.db.job.findUniqueOrThrow({ where: { id: hook.jobId } });
    const fields = await t.db.jobPayload.findUniqueOrThrow({
      where: { jobId: hook.jobId },
      omit: { id: true, jobId: true },
    });
    const { payload } = await resolveRunInputs(t.db, t.deps.secretBox, {
      job,
      run,
      payload: {
        ...fields,
        metadata: { message: '{{trigger.body.name}}/{{trigger.query.q}}/{{trigger.headers.x-event}}' },
      },
      trigger: run.triggerPayload as never,
    });
    expect(payload.metadata).toEqual({ message: 'Ada/search/push' });
  });

  it('accepts text and form bodies, signed over their exact bytes, and a sha256= prefix', async () => {
    const hook = await hookedJob();
    const body = 'plain text body\n';
    const ts = String(Math.floor(Date.now() / 1000));
    const text = await deliver(hook, {
      body,
      contentType: 'text/plain',
      timestamp: Number(ts),
      signature: `sha256=${signWebhook(hook.secret, ts, body)}`,
    });
    expect(text.status).toBe(202);
    const form = await deliver(hook, {
      body: 'a=1&b=two+words',
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(202);
    const runs = await t.db.jobRun.findMany({ where: { id: { in: [text.body.runId, form.body.runId] } } });
    const payloads = Object.fromEntries(runs.map((r) => [r.id, r.triggerPayload as { body: unknown }]));
    expect(payloads[text.body.runId]?.body).toBe(body);
    expect(payloads[form.body.runId]?.body).toEqual({ a: '1', b: 'two words' });

    // Any JSON value, not only objects and arrays.
    const scalar = await deliver(hook, { body: '"just a string"' });
    expect(scalar.status, scalar.text).toBe(202);
    const run = await t.db.jobRun.findUniqueOrThrow({ where: { id: scalar.body.runId } });
    expect((run.triggerPayload as { body: unknown }).body).toBe('just a string');
  });

  it('refuses a missing or wrong signature, a tampered body and a stale timestamp (401), an unknown hook (404)', async () => {
    const hook = await hookedJob();
    const now = Math.floor(Date.now() / 1000);
    const body = '{"a":1}';
    const results = await Promise.all([
      deliver(hook, { secret: 'whsec_wrong' }),
      deliver(hook, { signature: '' }),
      deliver(hook, { signature: 'not-hex' }),
      deliver(hook, {
        body: '{"a":2}',
        signature: signWebhook(hook.secret, String(now), body),
        timestamp: now,
      }),
      deliver(hook, { timestamp: now - 400 }),
      deliver(hook, { timestamp: now + 400 }),
    ]);
    expect(results.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(results[4]?.body.detail).toMatch(/5 minutes/);
    expect(results[0]?.headers.get('www-authenticate')).toBeNull();
    const unsigned = await fetch(`${t.api}/hooks/${hook.id}`, { method: 'POST', body: '{}' });
    expect(unsigned.status).toBe(401);
    expect((await deliver({ ...hook, id: newId() })).status).toBe(404);
    expect(await t.db.jobRun.count({ where: { jobId: hook.jobId } })).toBe(0);
  });

  it('refuses a replayed delivery (409): same request, same delivery id, or same signature with another id', async () => {
    const hook = await hookedJob();
    const ts = Math.floor(Date.now() / 1000);
    const first = await deliver(hook, { timestamp: ts, headers: { 'x-chronos-delivery': 'd-1' } });
    expect(first.status).toBe(202);
    const same = await deliver(hook, { timestamp: ts, headers: { 'x-chronos-delivery': 'd-1' } });
    const resent = await deliver(hook, { timestamp: ts + 1, headers: { 'x-chronos-delivery': 'd-1' } });
    const relabelled = await deliver(hook, { timestamp: ts, headers: { 'x-chronos-delivery': 'd-2' } });
    const reformatted = await deliver(hook, {
      timestamp: ts,
      signature: `sha256=${signWebhook(hook.secret, String(ts), JSON.stringify({ event: 'push', n: 1 })).toUpperCase()}`,
    });
    expect([same.status, resent.status, relabelled.status, reformatted.status]).toEqual([409, 409, 409, 409]);
    expect(await t.db.jobRun.count({ where: { jobId: hook.jobId } })).toBe(1);
    // Without a delivery id the signature identifies the delivery.
    const plain = await deliver(hook, { timestamp: ts + 2 });
    expect(plain.status).toBe(202);
    expect((await deliver(hook, { timestamp: ts + 2 })).status).toBe(409);
  });

  it('answers 403 for a disabled webhook, but only to a correctly signed delivery', async () => {
    const hook = await hookedJob();
    const patched = await t.call('patch', `/jobs/${hook.jobId}/webhook`, {
      token: alice.token,
      body: { enabled: false },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.enabled).toBe(false);
    expect((await deliver(hook, { secret: 'whsec_wrong' })).status).toBe(401);
    expect((await deliver(hook)).status).toBe(403);
    await t.call('patch', `/jobs/${hook.jobId}/webhook`, { token: alice.token, body: { enabled: true } });
    expect((await deliver(hook, { body: '{"again":true}' })).status).toBe(202);
  });

  it('limits deliveries per minute (429 with Retry-After)', async () => {
    const hook = await hookedJob({ rateLimitPerMinute: 2 });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 3; i++) {
      const res = await deliver(hook, { body: JSON.stringify({ i }) });
      statuses.push(res.status);
      retryAfter = res.headers.get('retry-after');
    }
    expect(statuses).toEqual([202, 202, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect(await t.db.jobRun.count({ where: { jobId: hook.jobId } })).toBe(2);
  });

  it('refuses a paused job (409) and lets the sender retry the same delivery after resume', async () => {
    const hook = await hookedJob();
    await t.db.job.update({ where: { id: hook.jobId }, data: { status: 'PAUSED' } });
    const ts = Math.floor(Date.now() / 1000);
    const paused = await deliver(hook, { timestamp: ts });
    expect(paused.status).toBe(409);
    expect(paused.body.detail).toMatch(/paused/);
    await t.db.job.update({ where: { id: hook.jobId }, data: { status: 'SCHEDULED' } });
    expect((await deliver(hook, { timestamp: ts })).status).toBe(202);
  });
});

describe('secret rotation (POST /jobs/:id/webhook/rotate)', () => {
  it('keeps the previous secret valid during the grace period, and not after', async () => {
    const hook = await hookedJob();
    const rotated = await t.call('post', `/jobs/${hook.jobId}/webhook/rotate`, {
      token: alice.token,
      body: { graceSeconds: 600 },
    });
    expect(rotated.status).toBe(200);
    const secret = rotated.body.secret as string;
    expect(secret).not.toBe(hook.secret);
    expect(new Date(rotated.body.previousSecretExpiresAt).getTime()).toBeGreaterThan(Date.now() + 500_000);

    expect((await deliver(hook, { body: '{"k":"old"}' })).status).toBe(202);
    expect((await deliver(hook, { secret, body: '{"k":"new"}' })).status).toBe(202);

    await t.db.webhook.update({
      where: { id: hook.id },
      data: { previousSecretExpiresAt: new Date(Date.now() - 1000) },
    });
    expect((await deliver(hook, { body: '{"k":"old2"}' })).status).toBe(401);
    expect((await deliver(hook, { secret, body: '{"k":"new2"}' })).status).toBe(202);

    const got = await t.call('get', `/jobs/${hook.jobId}/webhook`, { token: alice.token });
    expect(got.text).not.toContain(secret);
    expect(got.text).not.toContain(hook.secret);
    const audits = await t.db.auditEvent.findMany({ where: { entityId: hook.id } });
    expect(audits.map((a) => a.action).sort()).toEqual(['CREATED', 'SECRET_ROTATED']);
    expect(JSON.stringify(audits)).not.toContain(secret);
  });

  it('ends the previous secret at once with graceSeconds 0', async () => {
    const hook = await hookedJob();
    const rotated = await t.call('post', `/jobs/${hook.jobId}/webhook/rotate`, {
      token: alice.token,
      body: { graceSeconds: 0 },
    });
    expect(rotated.body.previousSecretExpiresAt).toBeNull();
    expect((await deliver(hook)).status).toBe(401);
    expect((await deliver(hook, { secret: rotated.body.secret })).status).toBe(202);
  });
});
