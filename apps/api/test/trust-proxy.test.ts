// Whose word the API takes for the client's address. Both servers share one database and Redis
// prefix; one runs with the default (TRUST_PROXY unset), the other with TRUST_PROXY=loopback.
import { loadConfig } from '@chronos/config';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer, type ApiServer } from '../src/server.ts';
import { startTestApi, type TestApi } from './harness.ts';

const MAX_FAILURES = 2;
/** Failed sign-ins one client address may make in the window (4× the per-account limit). */
const PER_IP = MAX_FAILURES * 4;

let t: TestApi;
let behindProxy: ApiServer;
let users: { email: string; password: string; id: string }[];

beforeAll(async () => {
  t = await startTestApi('trust-proxy', {
    LOGIN_MAX_FAILURES: String(MAX_FAILURES),
    LOGIN_WINDOW_SECONDS: '300',
  });
  expect(t.deps.config.trustProxy).toBe(false);
  behindProxy = createApiServer(
    { ...t.deps.config, trustProxy: loadConfig({ TRUST_PROXY: 'loopback' }).trustProxy },
    pino({ level: 'silent' }),
  );
  await behindProxy.start();
  // Accounts made before any address is throttled (making one signs it in from 127.0.0.1).
  users = [await t.user(['USER']), await t.user(['USER'])];
});

afterAll(async () => {
  await behindProxy?.stop();
  await t?.stop();
});

async function login(base: string, email: string, password: string, forwardedFor: string) {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
    body: JSON.stringify({ email, password }),
  });
  return { status: res.status, body: (await res.json()) as { refreshToken?: string } };
}

/** The address recorded with the newest refresh token of `userId`. */
async function recordedAddress(userId: string): Promise<string | null> {
  const row = await t.db.refreshToken.findFirst({ where: { userId }, orderBy: { createdAt: 'desc' } });
  return row?.ipAddress ?? null;
}

describe('the client address', () => {
  it('by default is the peer: X-Forwarded-For sent from this host is ignored, so rotating it does not escape the per-IP throttle', async () => {
    const [user] = users as [(typeof users)[number]];
    expect((await login(t.base, user.email, user.password, '198.51.100.250')).status).toBe(200);
    expect(await recordedAddress(user.id)).toBe('127.0.0.1');
    for (let i = 0; i < PER_IP; i++) {
      const res = await login(t.base, `nobody-${i}@example.test`, 'wrong', `198.51.100.${i + 1}`);
      expect(res.status).toBe(401);
    }
    const blocked = await login(t.base, user.email, user.password, '198.51.100.200');
    expect(blocked.status).toBe(429);
  });

  it('with TRUST_PROXY=loopback is the one X-Forwarded-For names (a proxy on this host)', async () => {
    const [, user] = users as [unknown, (typeof users)[number]];
    const base = `http://127.0.0.1:${behindProxy.port}`;
    for (let i = 0; i < PER_IP + 1; i++) {
      const res = await login(base, `someone-${i}@example.test`, 'wrong', `203.0.113.${i + 1}`);
      expect(res.status).toBe(401);
    }
    const signedIn = await login(base, user.email, user.password, '203.0.113.99');
    expect(signedIn.status).toBe(200);
    expect(await recordedAddress(user.id)).toBe('203.0.113.99');
  });
});
