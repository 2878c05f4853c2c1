import { newId } from '@chronos/core';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestApi, type TestApi } from './harness.ts';
import {
  allPages,
  customRole,
  expectFieldErrors,
  expectNoSecrets,
  expectPageCapped,
} from './admin-helpers.ts';

let t: TestApi;
let admin: string;
let rootId: string;

beforeAll(async () => {
  t = await startTestApi('users');
  admin = await t.adminToken();
  rootId = (await t.db.user.findUniqueOrThrow({ where: { email: ADMIN.email } })).id;
});

afterAll(async () => {
  await t?.stop();
});

const me = (token: string) => t.call('get', '/auth/me', { token });
/** Signs in with the password: the reply carries both tokens. */
const signIn = (user: { email: string; password: string }) =>
  t.call('post', '/auth/login', { body: { email: user.email, password: user.password } });
const activeAdmins = () =>
  t.db.user.count({ where: { isActive: true, roles: { some: { role: { name: 'ADMIN' } } } } });

describe('POST /users', () => {
  it('creates a user (bcrypt, cost ≥ 10) who can sign in, refusing fields the caller may not set', async () => {
    const person = {
      email: 'New.Person@Example.test',
      password: 'a long enough password',
      displayName: 'New Person',
      roles: ['viewer'],
    };
    const refused = await t.call('post', '/users', {
      token: admin,
      body: {
        ...person,
        id: 'CHOSEN-ID',
        isActive: false,
        tokenVersion: 7,
        passwordHash: '$2b$04$notahashnotahashnotahashnotahashnotahashnotahashnot',
      },
    });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      'id',
      'isActive',
      'passwordHash',
      'tokenVersion',
    ]);
    expect(await t.db.user.count({ where: { email: 'new.person@example.test' } })).toBe(0);
    const res = await t.call('post', '/users', { token: admin, body: person });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      email: 'new.person@example.test',
      displayName: 'New Person',
      isActive: true,
      roles: ['VIEWER'],
      lastLoginAt: null,
    });
    expect(res.body.id).not.toBe('CHOSEN-ID');
    expect(res.headers.get('location')).toBe(`/api/v1/users/${res.body.id}`);
    expectNoSecrets(res);
    const row = await t.db.user.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(bcrypt.getRounds(row.passwordHash)).toBeGreaterThanOrEqual(10);
    expect(row.tokenVersion).toBe(0);
    expect(await t.login('new.person@example.test', 'a long enough password')).toEqual(expect.any(String));
    const audited = await t.db.auditEvent.findMany({ where: { entityId: res.body.id, action: 'CREATED' } });
    expect(audited).toHaveLength(1);
    expect(JSON.stringify(audited)).not.toContain('a long enough password');
  });

  it('gives the USER role when roles are omitted', async () => {
    const res = await t.call('post', '/users', {
      token: admin,
      body: { email: `d-${newId()}@example.test`, password: 'another password' },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ roles: ['USER'], displayName: null });
  });

  it('answers 400 with the field paths', async () => {
    expectFieldErrors(
      await t.call('post', '/users', { token: admin, body: { email: 'not-an-email', password: 'short' } }),
      ['email', 'password'],
    );
    expectFieldErrors(
      await t.call('post', '/users', {
        token: admin,
        body: { email: 'x@example.test', password: 'long enough', roles: ['USER', 'NO_SUCH_ROLE'] },
      }),
      ['roles.1'],
    );
  });

  it('answers 409 for an e-mail in use (whatever its case)', async () => {
    const res = await t.call('post', '/users', {
      token: admin,
      body: { email: ADMIN.email.toUpperCase(), password: 'long enough' },
    });
    expect(res.status).toBe(409);
  });

  it('answers 401 without a token and 403 to a USER, on every user route', async () => {
    const user = await t.user(['USER']);
    const routes: [string, string, unknown][] = [
      ['get', '/users', undefined],
      ['post', '/users', { email: 'y@example.test', password: 'long enough' }],
      ['get', `/users/${user.id}`, undefined],
      ['patch', `/users/${user.id}`, { displayName: 'me' }],
      ['delete', `/users/${user.id}`, undefined],
      ['put', `/users/${user.id}/roles`, { roles: ['ADMIN'] }],
    ];
    for (const [method, path, body] of routes) {
      expect((await t.call(method, path, { body })).status, `${method} ${path}`).toBe(401);
      expect((await t.call(method, path, { token: user.token, body })).status, `${method} ${path}`).toBe(403);
    }
    expect((await me(user.token)).body.roles).toEqual(['USER']);
  });
});

describe('administration by a non-admin with user:manage and role:assign', () => {
  let manager: Awaited<ReturnType<TestApi['user']>>;
  beforeAll(async () => {
    manager = await t.user([
      await customRole(t, ['user:manage', 'role:assign', 'job:read', 'execution:read']),
    ]);
  });

  it('cannot create an ADMIN, nor give permissions it lacks (USER has job:write)', async () => {
    for (const roles of [['ADMIN'], ['USER']]) {
      const res = await t.call('post', '/users', {
        token: manager.token,
        body: { email: `m-${newId()}@example.test`, password: 'long enough', roles },
      });
      expect(res.status, roles.join()).toBe(403);
    }
  });

  it('may give roles within its own permissions', async () => {
    const target = await t.user([]);
    const res = await t.call('put', `/users/${target.id}/roles`, {
      token: manager.token,
      body: { roles: ['VIEWER'] },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.roles).toEqual(['VIEWER']);
  });

  it('cannot change, reset, delete or re-role an administrator', async () => {
    const calls = [
      t.call('patch', `/users/${rootId}`, { token: manager.token, body: { password: 'taken over!' } }),
      t.call('delete', `/users/${rootId}`, { token: manager.token }),
      t.call('put', `/users/${rootId}/roles`, { token: manager.token, body: { roles: ['VIEWER'] } }),
    ];
    for (const res of await Promise.all(calls)) expect(res.status, res.text).toBe(403);
    expect(await t.login(ADMIN.email, ADMIN.password)).toEqual(expect.any(String));
  });
  it("cannot change a user holding permissions it lacks (reset an OPERATOR's password and sign in as them)", async () => {
    const operator = await t.user(['OPERATOR']);
    const calls = [
      t.call('patch', `/users/${operator.id}`, { token: manager.token, body: { password: 'taken over!' } }),
      t.call('delete', `/users/${operator.id}`, { token: manager.token }),
      t.call('put', `/users/${operator.id}/roles`, { token: manager.token, body: { roles: ['VIEWER'] } }),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status, res.text).toBe(403);
      expect(res.text).toMatch(/holds permissions you do not/);
    }
    // A user within its own permissions it may still change.
    const viewer = await t.user(['VIEWER']);
    const ok = await t.call('patch', `/users/${viewer.id}`, {
      token: manager.token,
      body: { displayName: 'V' },
    });
    expect(ok.status, ok.text).toBe(200);
  });
});

describe('GET /users and /users/:id', () => {
  it('lists newest first, filters by e-mail (contains, any case), role and active flag', async () => {
    const tag = `flt${newId().toLowerCase()}`;
    const a = await t.user(['USER'], `a-${tag}@example.test`);
    const b = await t.user(['VIEWER'], `b-${tag}@example.test`);
    const c = await t.user(['USER'], `c-${tag}@example.test`);
    await t.db.user.update({ where: { id: c.id }, data: { isActive: false } });

    const all = await t.call('get', `/users?email=${tag.toUpperCase()}`, { token: admin });
    expect(all.status).toBe(200);
    expect(all.body.items.map((u: { id: string }) => u.id)).toEqual([c.id, b.id, a.id]);
    expectNoSecrets(all);
    const viewers = await t.call('get', `/users?email=${tag}&role=viewer`, { token: admin });
    expect(viewers.body.items.map((u: { id: string }) => u.id)).toEqual([b.id]);
    const active = await t.call('get', `/users?email=${tag}&isActive=true`, { token: admin });
    expect(active.body.items.map((u: { id: string }) => u.id)).toEqual([b.id, a.id]);
    // Pages of one, following the cursor.
    const paged = await allPages<{ id: string }>(t, admin, `/users?email=${tag}&limit=1`);
    expect(paged.map((u) => u.id)).toEqual([c.id, b.id, a.id]);
  });

  it('caps the page size at 200', async () => {
    await t.db.user.createMany({
      data: Array.from({ length: 205 }, (_, i) => ({
        id: newId(),
        email: `bulk-${i}-${newId().toLowerCase()}@example.test`,
        passwordHash: 'x',
      })),
    });
    await expectPageCapped(t, admin, '/users');
  });

  it('answers 400 for a bad query', async () => {
    expectFieldErrors(await t.call('get', '/users?limit=0&isActive=maybe', { token: admin }), [
      'limit',
      'isActive',
    ]);
  });

  it('returns one user without secrets, 404 for an unknown id', async () => {
    const user = await t.user(['OPERATOR']);
    const res = await t.call('get', `/users/${user.id}`, { token: admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: user.id, email: user.email, roles: ['OPERATOR'], isActive: true });
    expect(res.body.lastLoginAt).toEqual(expect.any(String));
    expectNoSecrets(res);
    expect((await t.call('get', `/users/${newId()}`, { token: admin })).status).toBe(404);
  });
});

describe('PATCH /users/:id', () => {
  it('renames and deactivates (signing the user out everywhere), then reactivates', async () => {
    const user = await t.user(['USER']);
    const pair = await signIn(user);
    const res = await t.call('patch', `/users/${user.id}`, {
      token: admin,
      body: { displayName: 'Renamed', isActive: false },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ displayName: 'Renamed', isActive: false });
    expectNoSecrets(res);
    expect((await me(user.token)).status).toBe(401);
    await t.call('patch', `/users/${user.id}`, { token: admin, body: { isActive: true } });
    // Reactivation does not revive the tokens of before.
    expect((await me(user.token)).status).toBe(401);
    const refresh = await t.call('post', '/auth/refresh', { body: { refreshToken: pair.body.refreshToken } });
    expect(refresh.status).toBe(401);
    expect(await t.login(user.email, user.password)).toEqual(expect.any(String));
  });

  it('resets a password: earlier access and refresh tokens stop working, the new password signs in', async () => {
    const user = await t.user(['USER']);
    const pair = await signIn(user);
    const res = await t.call('patch', `/users/${user.id}`, {
      token: admin,
      body: { password: 'brand new secret' },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.text).not.toContain('brand new secret');
    expect((await me(user.token)).status).toBe(401);
    expect((await me(pair.body.accessToken)).status).toBe(401);
    const refresh = await t.call('post', '/auth/refresh', { body: { refreshToken: pair.body.refreshToken } });
    expect(refresh.status).toBe(401);
    const tokens = await t.db.refreshToken.findMany({ where: { userId: user.id } });
    expect(tokens.every((r) => r.revokedAt !== null)).toBe(true);
    expect(await t.login(user.email, 'brand new secret')).toEqual(expect.any(String));
    const audited = await t.db.auditEvent.findMany({
      where: { entityId: user.id, action: 'PASSWORD_RESET' },
    });
    expect(audited).toHaveLength(1);
    expect(JSON.stringify(audited)).not.toContain('brand new secret');
  });

  it('refuses fields it does not change (e-mail, roles, token version), changing nothing', async () => {
    const user = await t.user(['VIEWER']);
    const refused = await t.call('patch', `/users/${user.id}`, {
      token: admin,
      body: { email: 'hijack@example.test', roles: ['ADMIN'], tokenVersion: 42, id: 'OTHER' },
    });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      'email',
      'id',
      'roles',
      'tokenVersion',
    ]);
    const res = await t.call('patch', `/users/${user.id}`, { token: admin, body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: user.id, email: user.email, roles: ['VIEWER'] });
    expect((await t.db.user.findUniqueOrThrow({ where: { id: user.id } })).tokenVersion).toBe(0);
    expect((await me(user.token)).status).toBe(200);
  });

  it('answers 400 with field paths, 404 for an unknown user, 409 when deactivating yourself', async () => {
    const user = await t.user(['USER']);
    expectFieldErrors(
      await t.call('patch', `/users/${user.id}`, {
        token: admin,
        body: { password: 'short', isActive: 'no' },
      }),
      ['password', 'isActive'],
    );
    expect(
      (await t.call('patch', `/users/${newId()}`, { token: admin, body: { displayName: 'x' } })).status,
    ).toBe(404);
    expect(
      (await t.call('patch', `/users/${rootId}`, { token: admin, body: { isActive: false } })).status,
    ).toBe(409);
  });
});

describe('PUT /users/:id/roles', () => {
  it('applies on the very next request: a USER given VIEWER only loses job:write at once', async () => {
    const user = await t.user(['USER']);
    expect((await me(user.token)).body.permissions).toContain('job:write');
    const res = await t.call('put', `/users/${user.id}/roles`, { token: admin, body: { roles: ['VIEWER'] } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.roles).toEqual(['VIEWER']);
    expectNoSecrets(res);
    const after = await me(user.token);
    expect(after.body.roles).toEqual(['VIEWER']);
    expect(after.body.permissions).toEqual(['execution:read', 'job:read']);
  });

  it('grants and takes a permission between two requests with the same token', async () => {
    const user = await t.user(['USER']);
    const auditor = await customRole(t, ['audit:read'], 'AUDITOR');
    expect((await t.call('get', '/audit-events', { token: user.token })).status).toBe(403);
    await t.call('put', `/users/${user.id}/roles`, { token: admin, body: { roles: ['USER', auditor] } });
    expect((await t.call('get', '/audit-events', { token: user.token })).status).toBe(200);
    await t.call('put', `/users/${user.id}/roles`, { token: admin, body: { roles: ['USER'] } });
    expect((await t.call('get', '/audit-events', { token: user.token })).status).toBe(403);
    const changes = await t.db.auditEvent.findMany({ where: { entityId: user.id, action: 'ROLES_CHANGED' } });
    expect(changes).toHaveLength(2);
  });

  it('answers 400 for an unknown role, 404 for an unknown user, 403 without role:assign', async () => {
    const user = await t.user(['USER']);
    expectFieldErrors(
      await t.call('put', `/users/${user.id}/roles`, { token: admin, body: { roles: ['VIEWER', 'GHOST'] } }),
      ['roles.1'],
    );
    expectFieldErrors(await t.call('put', `/users/${user.id}/roles`, { token: admin, body: {} }), ['roles']);
    const res = await t.call('put', `/users/${newId()}/roles`, { token: admin, body: { roles: ['USER'] } });
    expect(res.status).toBe(404);
    const manager = await t.user([await customRole(t, ['user:manage'])]);
    const denied = await t.call('put', `/users/${user.id}/roles`, {
      token: manager.token,
      body: { roles: ['VIEWER'] },
    });
    expect(denied.status).toBe(403);
  });

  it('answers 409 when taking ADMIN from the last active administrator', async () => {
    expect(await activeAdmins()).toBe(1);
    const res = await t.call('put', `/users/${rootId}/roles`, { token: admin, body: { roles: ['USER'] } });
    expect(res.status, res.text).toBe(409);
    expect((await me(admin)).body.roles).toEqual(['ADMIN']);
  });
});

describe('DELETE /users/:id', () => {
  it('deletes a user; the audit trail keeps the e-mail', async () => {
    const user = await t.user(['USER']);
    const res = await t.call('delete', `/users/${user.id}`, { token: admin });
    expect(res.status, res.text).toBe(204);
    expect((await t.call('get', `/users/${user.id}`, { token: admin })).status).toBe(404);
    expect((await t.call('delete', `/users/${user.id}`, { token: admin })).status).toBe(404);
    const audited = await t.db.auditEvent.findFirstOrThrow({
      where: { entityId: user.id, action: 'DELETED' },
    });
    expect(audited.details).toEqual({ email: user.email });
  });

  it('answers 409 for yourself and for a user who still owns jobs', async () => {
    expect((await t.call('delete', `/users/${rootId}`, { token: admin })).status).toBe(409);
    const owner = await t.user(['USER']);
    await t.db.job.create({ data: { id: newId(), ownerId: owner.id, name: 'kept', type: 'DUMMY' } });
    const res = await t.call('delete', `/users/${owner.id}`, { token: admin });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/owns 1 job/);
  });

  it('two administrators deleting each other at once leave one active administrator', async () => {
    const [a, b] = [await t.user(['ADMIN']), await t.user(['ADMIN'])];
    // Make a and b the only active administrators for this test.
    await t.db.user.update({ where: { id: rootId }, data: { isActive: false } });
    try {
      const answers = await Promise.all([
        t.call('delete', `/users/${b.id}`, { token: a.token }),
        t.call('delete', `/users/${a.id}`, { token: b.token }),
      ]);
      const statuses = answers.map((r) => r.status).sort();
      // One wins; the other is refused as the last administrator (409), or finds itself deleted (401).
      expect(statuses[0]).toBe(204);
      expect([401, 409]).toContain(statuses[1]);
      expect(await activeAdmins()).toBe(1);
    } finally {
      await t.db.user.update({ where: { id: rootId }, data: { isActive: true } });
    }
  });
});
