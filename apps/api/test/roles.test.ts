import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';
import {
  allPages,
  customRole,
  expectFieldErrors,
  expectNoSecrets,
  expectPageCapped,
} from './admin-helpers.ts';

let t: TestApi;
let admin: string;

beforeAll(async () => {
  t = await startTestApi('roles');
  admin = await t.adminToken();
});

afterAll(async () => {
  await t?.stop();
});

interface RoleBody {
  id: number;
  name: string;
  permissions: string[];
  isBuiltin: boolean;
  userCount: number;
}

const roleId = async (name: string) => (await t.db.role.findUniqueOrThrow({ where: { name } })).id;
let seq = 0;
const uniqueName = (base: string) => `${base}_${++seq}_${Date.now().toString(36)}`;

describe('GET /roles', () => {
  it('lists the built-in roles with permissions and holder counts', async () => {
    const res = await t.call('get', '/roles', { token: admin });
    expect(res.status).toBe(200);
    const byName = new Map((res.body.items as RoleBody[]).map((r) => [r.name, r]));
    expect(byName.get('ADMIN')).toMatchObject({ isBuiltin: true, userCount: 1 });
    expect(byName.get('VIEWER')?.permissions).toEqual(['job:read', 'execution:read']);
    expectNoSecrets(res);
  });

  it('is open to role:assign alone, not to a USER, not anonymously', async () => {
    const assigner = await t.user([await customRole(t, ['role:assign'])]);
    expect((await t.call('get', '/roles', { token: assigner.token })).status).toBe(200);
    const user = await t.user(['USER']);
    const denied = await t.call('get', '/roles', { token: user.token });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await t.call('get', `/roles/${await roleId('USER')}`, { token: user.token })).status).toBe(403);
    expect((await t.call('get', '/roles')).status).toBe(401);
  });

  it('returns one role; 404 for an unknown id, 400 for a non-numeric one', async () => {
    const res = await t.call('get', `/roles/${await roleId('OPERATOR')}`, { token: admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'OPERATOR', isBuiltin: true });
    expect((await t.call('get', '/roles/999999', { token: admin })).status).toBe(404);
    expectFieldErrors(await t.call('get', '/roles/abc', { token: admin }), ['id']);
  });
});

describe('POST /roles', () => {
  it('creates a role (name upper-cased, permissions de-duplicated), refusing isBuiltin and id', async () => {
    const name = uniqueName('auditor');
    const role = {
      name,
      description: 'Reads the trail',
      permissions: ['audit:read', 'job:read', 'audit:read'],
    };
    const refused = await t.call('post', '/roles', {
      token: admin,
      body: { ...role, isBuiltin: true, id: 1 },
    });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['id', 'isBuiltin']);
    expect(await t.db.role.count({ where: { name: name.toUpperCase() } })).toBe(0);
    const res = await t.call('post', '/roles', { token: admin, body: role });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      name: name.toUpperCase(),
      description: 'Reads the trail',
      permissions: ['audit:read', 'job:read'],
      isBuiltin: false,
      userCount: 0,
    });
    expect(res.body.id).not.toBe(1);
    expect(res.headers.get('location')).toBe(`/api/v1/roles/${res.body.id}`);
    expect(
      await t.db.auditEvent.count({
        where: { entityType: 'role', entityId: String(res.body.id), action: 'CREATED' },
      }),
    ).toBe(1);
  });

  it('answers 400 naming the bad permission by its index, and a bad name', async () => {
    expectFieldErrors(
      await t.call('post', '/roles', {
        token: admin,
        body: { name: uniqueName('r'), permissions: ['job:read', 'job:write', 'jobs:everything'] },
      }),
      ['permissions.2'],
    );
    expectFieldErrors(
      await t.call('post', '/roles', { token: admin, body: { name: '1 bad name!', permissions: [] } }),
      ['name'],
    );
  });

  it('answers 409 for a name in use, in any case (built-in names included)', async () => {
    const name = uniqueName('dup');
    expect((await t.call('post', '/roles', { token: admin, body: { name, permissions: [] } })).status).toBe(
      201,
    );
    const again = await t.call('post', '/roles', {
      token: admin,
      body: { name: name.toLowerCase(), permissions: [] },
    });
    expect(again.status).toBe(409);
    expect(
      (await t.call('post', '/roles', { token: admin, body: { name: 'admin', permissions: [] } })).status,
    ).toBe(409);
  });

  it('answers 401 anonymously, 403 to a USER and to a manager granting permissions it lacks', async () => {
    const body = { name: uniqueName('x'), permissions: ['job:read'] };
    expect((await t.call('post', '/roles', { body })).status).toBe(401);
    const user = await t.user(['USER']);
    expect((await t.call('post', '/roles', { token: user.token, body })).status).toBe(403);
    const manager = await t.user([await customRole(t, ['user:manage', 'job:read'])]);
    expect((await t.call('post', '/roles', { token: manager.token, body })).status).toBe(201);
    const escalate = await t.call('post', '/roles', {
      token: manager.token,
      body: { name: uniqueName('x'), permissions: ['job:read', 'audit:read'] },
    });
    expect(escalate.status).toBe(403);
    expect(escalate.body.detail).toMatch(/audit:read/);
  });

  it('pages through roles, capping the page at 200', async () => {
    await t.db.role.createMany({ data: Array.from({ length: 205 }, () => ({ name: uniqueName('BULK') })) });
    await expectPageCapped(t, admin, '/roles');
    const every = await allPages<RoleBody>(t, admin, '/roles?limit=100');
    expect(new Set(every.map((r) => r.id)).size).toBe(every.length);
    expect(every.length).toBe(await t.db.role.count());
  });
});

describe('PATCH /roles/:id', () => {
  it('changes a role; its holders get the new permissions on their next request', async () => {
    const name = await customRole(t, ['job:read']);
    const holder = await t.user([name]);
    expect((await t.call('get', '/audit-events', { token: holder.token })).status).toBe(403);
    const refused = await t.call('patch', `/roles/${await roleId(name)}`, {
      token: admin,
      body: { description: 'now audits', permissions: ['job:read', 'audit:read'], isBuiltin: true },
    });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path)).toEqual(['isBuiltin']);
    expect((await t.call('get', '/audit-events', { token: holder.token })).status).toBe(403);
    const res = await t.call('patch', `/roles/${await roleId(name)}`, {
      token: admin,
      body: { description: 'now audits', permissions: ['job:read', 'audit:read'] },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      description: 'now audits',
      permissions: ['audit:read', 'job:read'],
      isBuiltin: false,
      userCount: 1,
    });
    expect((await t.call('get', '/audit-events', { token: holder.token })).status).toBe(200);
  });

  it('answers 409 for a built-in role and for a taken name, 404 for an unknown role, 400 with the field path', async () => {
    const builtin = await t.call('patch', `/roles/${await roleId('VIEWER')}`, {
      token: admin,
      body: { permissions: ['job:read', 'job:write'] },
    });
    expect(builtin.status).toBe(409);
    expect((await t.db.role.findUniqueOrThrow({ where: { name: 'VIEWER' } })).permissions).toEqual([
      'job:read',
      'execution:read',
    ]);
    const name = await customRole(t, []);
    const other = await customRole(t, []);
    expect(
      (await t.call('patch', `/roles/${await roleId(name)}`, { token: admin, body: { name: other } })).status,
    ).toBe(409);
    expect(
      (await t.call('patch', '/roles/999999', { token: admin, body: { description: 'x' } })).status,
    ).toBe(404);
    expectFieldErrors(
      await t.call('patch', `/roles/${await roleId(name)}`, {
        token: admin,
        body: { permissions: ['nope'] },
      }),
      ['permissions.0'],
    );
  });

  it('answers 403 to a USER', async () => {
    const user = await t.user(['USER']);
    const res = await t.call('patch', `/roles/${await roleId('USER')}`, {
      token: user.token,
      body: { description: 'x' },
    });
    expect(res.status).toBe(403);
  });
});

describe('DELETE /roles/:id', () => {
  it('deletes a role nobody holds', async () => {
    const id = await roleId(await customRole(t, ['job:read']));
    expect((await t.call('delete', `/roles/${id}`, { token: admin })).status).toBe(204);
    expect((await t.call('get', `/roles/${id}`, { token: admin })).status).toBe(404);
    expect((await t.call('delete', `/roles/${id}`, { token: admin })).status).toBe(404);
  });

  it('answers 409 for a built-in role and for a role still assigned', async () => {
    expect((await t.call('delete', `/roles/${await roleId('OPERATOR')}`, { token: admin })).status).toBe(409);
    const name = await customRole(t, ['job:read']);
    const holder = await t.user([name]);
    const res = await t.call('delete', `/roles/${await roleId(name)}`, { token: admin });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/assigned to 1 user/);
    expect((await t.call('get', '/auth/me', { token: holder.token })).body.roles).toEqual([name]);
  });

  it('answers 401 anonymously and 403 to a USER', async () => {
    const id = await roleId(await customRole(t, []));
    expect((await t.call('delete', `/roles/${id}`)).status).toBe(401);
    const user = await t.user(['USER']);
    expect((await t.call('delete', `/roles/${id}`, { token: user.token })).status).toBe(403);
  });
});
