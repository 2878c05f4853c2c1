// SCRIPT jobs are code that runs on the workers: defining or changing one needs script:write,
// which ADMIN holds and USER and OPERATOR do not.
import { BUILTIN_ROLES, PERMISSIONS } from '@chronos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedBuiltinRoles } from '../src/bootstrap.ts';
import { customRole } from './admin-helpers.ts';
import { startTestApi, type Reply, type TestApi } from './harness.ts';
import { dummyJob } from './jobs-fixtures.ts';

let t: TestApi;
let user: { id: string; token: string };
let operator: { id: string; token: string };
let author: { id: string; token: string };

beforeAll(async () => {
  t = await startTestApi('jobs_script_permission');
  user = await t.user(['USER']);
  operator = await t.user(['OPERATOR']);
  // A USER an administrator allowed to write scripts, through a role of its own.
  author = await t.user(['USER', await customRole(t, ['script:write'], 'SCRIPT_AUTHOR')]);
});

afterAll(async () => {
  await t?.stop();
});

const scriptJob = (name: string, extra: Record<string, unknown> = {}) => ({
  ...dummyJob(name),
  type: 'SCRIPT',
  payload: { scriptContent: 'cat /proc/$PPID/environ' },
  ...extra,
});

/** A 403 problem document naming script:write. */
function expectScriptWriteRefused(res: Reply): void {
  expect(res.status, res.text).toBe(403);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status: 403, title: 'Forbidden' });
  expect(res.body.detail).toContain('script:write');
}

describe('defining SCRIPT jobs', () => {
  it('is refused to a USER and an OPERATOR with 403 naming script:write, writing and auditing nothing', async () => {
    const jobsBefore = await t.db.job.count();
    const auditBefore = await t.db.auditEvent.count({ where: { entityType: 'job' } });
    for (const caller of [user, operator]) {
      const res = await t.call('post', '/jobs', { token: caller.token, body: scriptJob(`s-${caller.id}`) });
      expectScriptWriteRefused(res);
    }
    expect(await t.db.job.count()).toBe(jobsBefore);
    expect(await t.db.auditEvent.count({ where: { entityType: 'job' } })).toBe(auditBefore);
    // Other types stay theirs to define.
    const dummy = await t.call('post', '/jobs', { token: user.token, body: dummyJob('still-allowed') });
    expect(dummy.status, dummy.text).toBe(201);
  });

  it('is allowed to an ADMIN and to a role granting script:write', async () => {
    const admin = await t.call('post', '/jobs', { token: await t.adminToken(), body: scriptJob('by-admin') });
    expect(admin.status, admin.text).toBe(201);
    const byAuthor = await t.call('post', '/jobs', { token: author.token, body: scriptJob('by-author') });
    expect(byAuthor.status, byAuthor.text).toBe(201);
    expect(byAuthor.body).toMatchObject({ type: 'SCRIPT', ownerId: author.id });
  });

  it('refuses changing a SCRIPT job (PUT, PATCH) without script:write, even the caller’s own; pausing and deleting stay job:execute / job:delete', async () => {
    // A SCRIPT job a USER owns: defined for them by an administrator (or before this permission).
    const created = await t.call('post', '/jobs', {
      token: await t.adminToken(),
      body: { ...scriptJob('owned-by-user'), ownerId: user.id },
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    const put = await t.call('put', `/jobs/${id}`, {
      token: user.token,
      body: { ...scriptJob('owned-by-user'), payload: { scriptContent: 'env' } },
    });
    expectScriptWriteRefused(put);
    const patch = await t.call('patch', `/jobs/${id}`, {
      token: user.token,
      body: { payload: { scriptContent: 'env' } },
    });
    expectScriptWriteRefused(patch);
    // Not even a harmless field: the definition of a SCRIPT job is theirs to change only with it.
    expectScriptWriteRefused(
      await t.call('patch', `/jobs/${id}`, { token: user.token, body: { name: 'x' } }),
    );
    const stored = await t.db.jobPayload.findUnique({ where: { jobId: id } });
    expect(stored?.scriptContent).toBe('cat /proc/$PPID/environ');
    expect((await t.db.job.findUnique({ where: { id } }))?.version).toBe(1);

    expect((await t.call('post', `/jobs/${id}/pause`, { token: user.token })).status).toBe(200);
    expect((await t.call('delete', `/jobs/${id}`, { token: user.token })).status).toBe(204);
  });

  it('refuses naming SCRIPT as the type of a change to another job', async () => {
    const dummy = await t.call('post', '/jobs', { token: user.token, body: dummyJob('becomes-script') });
    expect(dummy.status, dummy.text).toBe(201);
    const put = await t.call('put', `/jobs/${dummy.body.id}`, {
      token: user.token,
      body: scriptJob('becomes-script'),
    });
    expectScriptWriteRefused(put);
    const patch = await t.call('patch', `/jobs/${dummy.body.id}`, {
      token: user.token,
      body: { type: 'SCRIPT', payload: { scriptContent: 'id' } },
    });
    expectScriptWriteRefused(patch);
    expect((await t.db.job.findUnique({ where: { id: dummy.body.id as string } }))?.type).toBe('DUMMY');
  });

  it('lets a holder of script:write change their SCRIPT job', async () => {
    const created = await t.call('post', '/jobs', { token: author.token, body: scriptJob('author-edits') });
    expect(created.status, created.text).toBe(201);
    const patch = await t.call('patch', `/jobs/${created.body.id}`, {
      token: author.token,
      body: { payload: { scriptContent: 'echo changed' } },
    });
    expect(patch.status, patch.text).toBe(200);
    expect(patch.body.payload).toMatchObject({ scriptContent: 'echo changed' });
  });
});

describe('script:write in the built-in roles', () => {
  it('is held by ADMIN only, as GET /auth/me shows each caller', async () => {
    const me = async (token: string) =>
      ((await t.call('get', '/auth/me', { token })).body.permissions ?? []) as string[];
    expect(await me(await t.adminToken())).toContain('script:write');
    expect(await me(user.token)).not.toContain('script:write');
    expect(await me(operator.token)).not.toContain('script:write');
    expect(BUILTIN_ROLES.find((r) => r.name === 'ADMIN')?.permissions).toEqual(PERMISSIONS);
  });

  it('reaches an existing installation: the start refreshes the built-in roles', async () => {
    // An installation from before script:write: its ADMIN role lacks it, its USER role is as it was.
    const old = PERMISSIONS.filter((p) => p !== 'script:write');
    await t.db.role.update({ where: { name: 'ADMIN' }, data: { permissions: old } });
    await t.db.role.update({ where: { name: 'USER' }, data: { permissions: [...old] } });
    await seedBuiltinRoles(t.db);
    const roles = await t.db.role.findMany({ where: { name: { in: ['ADMIN', 'USER', 'OPERATOR'] } } });
    const of = (name: string) => roles.find((r) => r.name === name)?.permissions ?? [];
    expect(of('ADMIN')).toContain('script:write');
    expect(of('USER')).not.toContain('script:write');
    expect(of('OPERATOR')).not.toContain('script:write');
  });
});
