import { createHmac } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_AUDIENCE, TOKEN_ISSUER, hashToken } from '../src/auth/tokens.ts';
import { ADMIN, TEST_JWT_SECRET, startTestApi, type TestApi } from './harness.ts';

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi('auth', { LOGIN_MAX_FAILURES: '3', LOGIN_WINDOW_SECONDS: '120' });
});

afterAll(async () => {
  await t?.stop();
});

const key = new TextEncoder().encode(TEST_JWT_SECRET);
const meWith = (token: string) => t.call('get', '/auth/me', { token });

describe('sign-in', () => {
  it('returns an access token (HS256, ≤ 15 min, iss/aud set) and a refresh token', async () => {
    const res = await t.call('post', '/auth/login', {
      body: { email: ADMIN.email, password: ADMIN.password },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    const [header, payload] = (res.body.accessToken as string)
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')));
    expect(header.alg).toBe('HS256');
    expect(payload).toMatchObject({ iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE });
    expect(payload.exp - payload.iat).toBeLessThanOrEqual(900);
    expect(res.body.refreshToken).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    // Only the hash is stored.
    const stored = await t.db.refreshToken.findMany();
    expect(JSON.stringify(stored)).not.toContain(res.body.refreshToken);
  });

  it('answers the same 401 for an unknown e-mail and a wrong password, and audits both with IP and user agent', async () => {
    const user = await t.user(['USER']);
    const wrong = await t.call('post', '/auth/login', {
      body: { email: user.email, password: 'not-it' },
      headers: { 'user-agent': 'auth-test/1' },
    });
    const unknown = await t.call('post', '/auth/login', {
      body: { email: 'ghost@example.test', password: 'x' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.detail).toBe(unknown.body.detail);
    const events = await t.db.auditEvent.findMany({
      where: { action: 'LOGIN_FAILED', userEmail: user.email },
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ userId: user.id, userAgent: 'auth-test/1' });
    expect(events[0]?.ipAddress).toMatch(/127\.0\.0\.1/);
    const ok = await t.db.auditEvent.findMany({ where: { action: 'LOGIN_SUCCEEDED', userId: user.id } });
    expect(ok).toHaveLength(1);
  });

  it('validates the body with field paths', async () => {
    const res = await t.call('post', '/auth/login', { body: { email: 'a@b.c' } });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ path: 'password' })]);
  });

  it('refuses a deactivated account', async () => {
    const user = await t.user(['USER']);
    await t.db.user.update({ where: { id: user.id }, data: { isActive: false } });
    expect((await meWith(user.token)).status).toBe(401);
    const res = await t.call('post', '/auth/login', { body: { email: user.email, password: user.password } });
    expect(res.status).toBe(401);
  });
});

describe('GET /auth/me', () => {
  it('returns the caller with roles and permissions, never the password hash', async () => {
    const user = await t.user(['VIEWER']);
    const res = await meWith(user.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: user.id,
      email: user.email,
      displayName: null,
      roles: ['VIEWER'],
      permissions: ['execution:read', 'job:read'],
      isAdmin: false,
    });
    expect(res.text).not.toMatch(/\$2[aby]\$/);
  });

  it('answers 401 with a problem document and WWW-Authenticate without a token', async () => {
    const res = await t.call('get', '/auth/me');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
  });

  it('sees a role change on the very next request', async () => {
    const user = await t.user(['USER']);
    expect((await meWith(user.token)).body.roles).toEqual(['USER']);
    const viewer = await t.db.role.findUniqueOrThrow({ where: { name: 'VIEWER' } });
    await t.db.userRole.deleteMany({ where: { userId: user.id } });
    await t.db.userRole.create({ data: { userId: user.id, roleId: viewer.id } });
    expect((await meWith(user.token)).body.roles).toEqual(['VIEWER']);
  });
});

describe('forged and stale tokens', () => {
  let userId: string;
  beforeAll(async () => {
    userId = (await t.user(['USER'])).id;
  });

  /** A token like the API's own, with one thing changed. */
  const forge = (
    o: {
      alg?: string;
      key?: Uint8Array;
      iss?: string;
      aud?: string;
      iat?: number;
      exp?: number | string;
    } = {},
  ) =>
    new SignJWT({ tv: 0 })
      .setProtectedHeader({ alg: o.alg ?? 'HS256' })
      .setSubject(userId)
      .setIssuer(o.iss ?? TOKEN_ISSUER)
      .setAudience(o.aud ?? TOKEN_AUDIENCE)
      .setIssuedAt(o.iat)
      .setExpirationTime(o.exp ?? '5m')
      .sign(o.key ?? key);

  it('refuses alg:none', async () => {
    const token = new UnsecuredJWT({ tv: 0 })
      .setSubject(userId)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('5m')
      .encode();
    expect((await meWith(token)).status).toBe(401);
  });

  it('refuses a token signed with another key', async () => {
    const other = new TextEncoder().encode('another-secret-of-at-least-32-characters');
    expect((await meWith(await forge({ key: other }))).status).toBe(401);
  });

  it('refuses another algorithm with the right key (HS512)', async () => {
    expect((await meWith(await forge({ alg: 'HS512' }))).status).toBe(401);
  });

  it('refuses an expired token, saying so', async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await meWith(await forge({ iat: now - 1000, exp: now - 100 }));
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/expired/);
  });

  it('refuses a wrong audience and a wrong issuer', async () => {
    expect((await meWith(await forge({ aud: 'chronos-admin' }))).status).toBe(401);
    expect((await meWith(await forge({ iss: 'someone-else' }))).status).toBe(401);
  });

  it('accepts a well-formed token for the control case', async () => {
    expect((await meWith(await forge())).status).toBe(200);
  });

  it('refuses a tampered payload', async () => {
    const user = await t.user(['USER']);
    const [h, p, s] = user.token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    payload.sub = userId;
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    expect((await meWith(forged)).status).toBe(401);
    // And a signature recomputed with a guessed key does not help either.
    const guess = createHmac('sha256', 'chronos').update(`${h}.${p}`).digest('base64url');
    expect((await meWith(`${h}.${p}.${guess}`)).status).toBe(401);
  });
});

describe('refresh tokens', () => {
  const refresh = (refreshToken: string) => t.call('post', '/auth/refresh', { body: { refreshToken } });

  it('rotate: each refresh token works once and yields a new pair', async () => {
    const user = await t.user(['USER']);
    const first = await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
    });
    const second = await refresh(first.body.refreshToken);
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first.body.refreshToken);
    expect((await meWith(second.body.accessToken)).status).toBe(200);
    const third = await refresh(second.body.refreshToken);
    expect(third.status).toBe(200);
  });

  it('reusing an old refresh token revokes the whole family, including its newest token', async () => {
    const user = await t.user(['USER']);
    const login = await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
    });
    const rotated = await refresh(login.body.refreshToken);
    expect(rotated.status).toBe(200);
    const reuse = await refresh(login.body.refreshToken);
    expect(reuse.status).toBe(401);
    expect((await refresh(rotated.body.refreshToken)).status).toBe(401);
    const first = await t.db.refreshToken.findUniqueOrThrow({
      where: { tokenHash: hashToken(login.body.refreshToken) },
    });
    const family = await t.db.refreshToken.findMany({ where: { familyId: first.familyId } });
    expect(family).toHaveLength(2);
    expect(family.filter((r) => r.revokedAt === null)).toHaveLength(0);
    expect(await t.db.auditEvent.count({ where: { action: 'REFRESH_TOKEN_REUSED', userId: user.id } })).toBe(
      1,
    );
  });

  it('refuses an unknown, or expired refresh token', async () => {
    expect((await refresh('x'.repeat(43))).status).toBe(401);
    const user = await t.user(['USER']);
    const login = await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
    });
    await t.db.refreshToken.updateMany({
      where: { userId: user.id },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect((await refresh(login.body.refreshToken)).status).toBe(401);
  });

  it('a concurrent double refresh lets exactly one through', async () => {
    const user = await t.user(['USER']);
    const login = await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
    });
    const both = await Promise.all([refresh(login.body.refreshToken), refresh(login.body.refreshToken)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 401]);
  });
});

describe('logout and password change', () => {
  it('logout revokes the refresh token’s family', async () => {
    const user = await t.user(['USER']);
    const login = await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
    });
    const out = await t.call('post', '/auth/logout', {
      token: login.body.accessToken,
      body: { refreshToken: login.body.refreshToken },
    });
    expect(out.status).toBe(204);
    expect(
      (await t.call('post', '/auth/refresh', { body: { refreshToken: login.body.refreshToken } })).status,
    ).toBe(401);
  });

  it('logout everywhere voids every access and refresh token', async () => {
    const user = await t.user(['USER']);
    const other = await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
    });
    const out = await t.call('post', '/auth/logout', { token: user.token, body: { everywhere: true } });
    expect(out.status).toBe(204);
    expect((await meWith(user.token)).status).toBe(401);
    expect((await meWith(other.body.accessToken)).status).toBe(401);
    expect(
      (await t.call('post', '/auth/refresh', { body: { refreshToken: other.body.refreshToken } })).status,
    ).toBe(401);
  });

  it('a password change revokes earlier tokens and returns a working pair', async () => {
    const user = await t.user(['USER']);
    const login = await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
    });
    const wrong = await t.call('post', '/auth/password', {
      token: user.token,
      body: { currentPassword: 'nope', newPassword: 'a-new-password-1' },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors).toEqual([{ path: 'currentPassword', message: 'is wrong' }]);
    const short = await t.call('post', '/auth/password', {
      token: user.token,
      body: { currentPassword: user.password, newPassword: 'short' },
    });
    expect(short.status).toBe(400);
    expect(short.body.errors[0].path).toBe('newPassword');

    const changed = await t.call('post', '/auth/password', {
      token: user.token,
      body: { currentPassword: user.password, newPassword: 'a-new-password-1' },
    });
    expect(changed.status).toBe(200);
    expect((await meWith(user.token)).status).toBe(401);
    expect((await meWith(login.body.accessToken)).status).toBe(401);
    expect(
      (await t.call('post', '/auth/refresh', { body: { refreshToken: login.body.refreshToken } })).status,
    ).toBe(401);
    expect((await meWith(changed.body.accessToken)).status).toBe(200);
    const hash = (await t.db.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash;
    expect(hash).toMatch(/^\$2[aby]\$1[0-9]\$/);
    const relogin = await t.call('post', '/auth/login', {
      body: { email: user.email, password: 'a-new-password-1' },
    });
    expect(relogin.status).toBe(200);
  });
});
