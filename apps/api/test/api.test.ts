import { loadConfig } from '@chronos/config';
import { JOB_TYPES, queueName } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import bcrypt from 'bcryptjs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer, type ApiServer } from '../src/server.ts';
import { newId } from '@chronos/core';

const ADMIN = { email: 'root@example.test', password: 'correct horse battery' };
const basic = (email: string, password: string) =>
  `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`;

let tdb: TestDatabase;
let api: ApiServer;
let base: string;

beforeAll(async () => {
  tdb = await createTestDatabase('api');
  const config = loadConfig({
    DATABASE_URL: tdb.url,
    REDIS_PREFIX: `test-api-${newId()}`,
    HOST: '127.0.0.1',
    PORT: '0',
    CHRONOS_ADMIN_EMAIL: ADMIN.email,
    CHRONOS_ADMIN_PASSWORD: ADMIN.password,
  });
  api = createApiServer(config, pino({ level: 'silent' }));
  await api.start();
  base = `http://127.0.0.1:${api.port}`;
});

afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

describe('the API process', () => {
  it('answers /healthz with 200', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers an unknown route with a 404 problem document', async () => {
    const res = await fetch(`${base}/api/v1/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ title: 'Not Found', status: 404, instance: '/api/v1/nope' });
  });

  it('created the first admin from CHRONOS_ADMIN_EMAIL / CHRONOS_ADMIN_PASSWORD with the ADMIN role', async () => {
    const users = await tdb.db.user.findMany({ include: { roles: { include: { role: true } } } });
    expect(users).toHaveLength(1);
    const [admin] = users;
    expect(admin?.email).toBe(ADMIN.email);
    expect(admin?.roles.map((r) => r.role.name)).toEqual(['ADMIN']);
    expect(await bcrypt.compare(ADMIN.password, admin?.passwordHash ?? '')).toBe(true);
    expect(bcrypt.getRounds(admin?.passwordHash ?? '')).toBeGreaterThanOrEqual(10);
  });

  it('seeded the built-in roles with their permissions', async () => {
    const roles = await tdb.db.role.findMany({ orderBy: { name: 'asc' } });
    expect(roles.map((r) => r.name)).toEqual(['ADMIN', 'OPERATOR', 'USER', 'VIEWER']);
    expect(roles.every((r) => r.isBuiltin)).toBe(true);
    expect(roles.find((r) => r.name === 'ADMIN')?.permissions).toContain('user:manage');
    expect(roles.find((r) => r.name === 'VIEWER')?.permissions).toEqual(['job:read', 'execution:read']);
  });
});

describe('Bull Board at /admin/queues', () => {
  it('is not reachable anonymously', async () => {
    const res = await fetch(`${base}/admin/queues`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('refuses a wrong password and an unknown user alike', async () => {
    const wrong = await fetch(`${base}/admin/queues`, {
      headers: { authorization: basic(ADMIN.email, 'nope') },
    });
    const unknown = await fetch(`${base}/admin/queues`, {
      headers: { authorization: basic('ghost@example.test', ADMIN.password) },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(await wrong.text()).toBe(await unknown.text());
  });

  it('refuses a signed-in user without the ADMIN role', async () => {
    const viewer = await tdb.db.role.findUniqueOrThrow({ where: { name: 'VIEWER' } });
    await tdb.db.user.create({
      data: {
        id: newId(),
        email: 'viewer@example.test',
        passwordHash: await bcrypt.hash('viewer-password', 10),
        roles: { create: { roleId: viewer.id } },
      },
    });
    const res = await fetch(`${base}/admin/queues`, {
      headers: { authorization: basic('viewer@example.test', 'viewer-password') },
    });
    expect(res.status).toBe(401);
  });

  it('shows the queue of every job type to an admin', async () => {
    const auth = { authorization: basic(ADMIN.email, ADMIN.password) };
    const page = await fetch(`${base}/admin/queues`, { headers: auth });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const res = await fetch(`${base}/admin/queues/api/queues`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: { name: string }[] };
    expect(body.queues.map((q) => q.name).sort()).toEqual(JOB_TYPES.map(queueName).sort());
  });
});
