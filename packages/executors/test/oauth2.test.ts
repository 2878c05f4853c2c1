import { PermanentJobError, RetryableJobError } from '@chronos/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHttpExecutor, OAuth2TokenCache } from '../src/index.ts';
import { makeCtx, rejection, startServer, type TestServer } from './helpers.ts';

/**
 * One server playing both roles: POST /token issues tok-1, tok-2, ...; /api accepts only the token
 * named by `valid` (so "revoking" is setting `valid` ahead).
 */
interface AuthServer extends TestServer {
  tokenRequests: () => TestServer['requests'];
  apiRequests: () => TestServer['requests'];
  state: { issued: number; valid: string | null; expiresIn: unknown; tokenStatus: number };
}

async function authServer(): Promise<AuthServer> {
  const state: AuthServer['state'] = { issued: 0, valid: null, expiresIn: 3600, tokenStatus: 200 };
  const s = await startServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/token') {
      res.statusCode = state.tokenStatus;
      if (state.tokenStatus !== 200) return res.end('{"error":"temporarily_unavailable"}');
      state.issued++;
      const token = `tok-${state.issued}`;
      state.valid ??= token;
      return res.end(
        JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: state.expiresIn }),
      );
    }
    if (req.headers.authorization !== `Bearer ${state.valid}`) {
      res.statusCode = 401;
      return res.end('{"error":"invalid_token"}');
    }
    res.end(JSON.stringify({ ok: true, auth: req.headers.authorization }));
  });
  return {
    ...s,
    state,
    tokenRequests: () => s.requests.filter((r) => r.url === '/token'),
    apiRequests: () => s.requests.filter((r) => r.url !== '/token'),
  };
}

let s: AuthServer;
beforeEach(async () => {
  s = await authServer();
});
afterEach(() => s.close());

const oauthPayload = (extra: Record<string, unknown> = {}) => ({
  httpUrl: `${s.origin}/api`,
  httpAuth: {
    type: 'OAUTH2_CLIENT_CREDENTIALS' as const,
    tokenUrl: `${s.origin}/token`,
    clientId: 'client id',
    clientSecret: 's3cr=t',
    scope: 'jobs:run',
    audience: 'https://api.example',
    ...extra,
  },
});

describe('HTTP executor: OAuth2 client credentials', () => {
  it('fetches a token once (form grant, Basic client auth) and reuses it across runs', async () => {
    const run = createHttpExecutor();
    for (let i = 0; i < 3; i++) {
      const { output } = await run(oauthPayload(), makeCtx());
      expect(output).toMatchObject({ status: 200 });
    }
    expect(s.tokenRequests()).toHaveLength(1);
    const tokenRequest = s.tokenRequests()[0]!;
    expect(tokenRequest.method).toBe('POST');
    expect(tokenRequest.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(tokenRequest.body))).toEqual({
      grant_type: 'client_credentials',
      scope: 'jobs:run',
      audience: 'https://api.example',
    });
    const basic = Buffer.from(
      tokenRequest.headers.authorization!.replace(/^Basic /, ''),
      'base64',
    ).toString();
    expect(basic).toBe('client+id:s3cr%3Dt');
    expect(s.apiRequests().map((r) => r.headers.authorization)).toEqual(Array(3).fill('Bearer tok-1'));
  });

  it('can authenticate the client in the form body instead', async () => {
    await createHttpExecutor()(oauthPayload({ clientAuth: 'BODY' }), makeCtx());
    const tokenRequest = s.tokenRequests()[0]!;
    expect(tokenRequest.headers.authorization).toBeUndefined();
    expect(Object.fromEntries(new URLSearchParams(tokenRequest.body))).toMatchObject({
      client_id: 'client id',
      client_secret: 's3cr=t',
    });
  });

  it('fetches a new token once the cached one is within its expiry margin', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const run = createHttpExecutor({ tokenCache: new OAuth2TokenCache({ clock: () => now }) });
    await run(oauthPayload(), makeCtx());
    now += 3540_000 - 1; // expires_in 3600 s minus a 60 s margin, not yet reached
    await run(oauthPayload(), makeCtx());
    expect(s.tokenRequests()).toHaveLength(1);
    now += 1;
    s.state.valid = 'tok-2';
    await run(oauthPayload(), makeCtx());
    expect(s.tokenRequests()).toHaveLength(2);
    expect(s.apiRequests().at(-1)?.headers.authorization).toBe('Bearer tok-2');
  });

  it('keeps a short-lived token for part of its lifetime only', async () => {
    s.state.expiresIn = 1; // kept 0.9 s
    const run = createHttpExecutor();
    await run(oauthPayload(), makeCtx());
    await run(oauthPayload(), makeCtx());
    expect(s.tokenRequests()).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 950));
    s.state.valid = 'tok-2';
    await run(oauthPayload(), makeCtx());
    expect(s.tokenRequests()).toHaveLength(2);
  });

  it('on a 401 with a cached token, drops it, fetches a new one and retries once', async () => {
    const run = createHttpExecutor();
    await run(oauthPayload(), makeCtx());
    s.state.valid = 'tok-2'; // tok-1 revoked
    const { output } = await run(oauthPayload(), makeCtx());
    expect(output).toMatchObject({ status: 200 });
    expect(s.apiRequests().map((r) => r.headers.authorization)).toEqual([
      'Bearer tok-1',
      'Bearer tok-1',
      'Bearer tok-2',
    ]);
    expect(s.tokenRequests()).toHaveLength(2);
    // The fresh token is cached in turn.
    await run(oauthPayload(), makeCtx());
    expect(s.tokenRequests()).toHaveLength(2);
  });

  it('does not loop: a 401 with a fresh token fails HTTP_4XX', async () => {
    const run = createHttpExecutor();
    s.state.valid = 'never';
    const first = await rejection(() => run(oauthPayload(), makeCtx()));
    expect(first).toMatchObject({ code: 'HTTP_4XX', httpStatus: 401 });
    expect(s.apiRequests()).toHaveLength(1);
    // Cached token, 401, one refetch, 401 again: stop.
    const second = await rejection(() => run(oauthPayload(), makeCtx()));
    expect(second).toMatchObject({ code: 'HTTP_4XX', httpStatus: 401 });
    expect(s.apiRequests()).toHaveLength(3);
    expect(s.tokenRequests()).toHaveLength(2);
  });

  it('does not share a token between clients that differ in secret, scope or audience', async () => {
    const run = createHttpExecutor();
    s.state.valid = null;
    await run(oauthPayload(), makeCtx());
    const tokensBefore = s.tokenRequests().length;
    await rejection(() => run(oauthPayload({ clientSecret: 'wrong' }), makeCtx()));
    await rejection(() => run(oauthPayload({ scope: 'other' }), makeCtx()));
    await rejection(() => run(oauthPayload({ audience: 'other' }), makeCtx()));
    expect(s.tokenRequests().length).toBe(tokensBefore + 3);
  });

  it('classifies token endpoint failures like any HTTP failure, and a response without a token', async () => {
    const run = createHttpExecutor();
    s.state.tokenStatus = 503;
    const unavailable = await rejection(() => run(oauthPayload(), makeCtx()));
    expect(unavailable).toBeInstanceOf(RetryableJobError);
    expect(unavailable).toMatchObject({ code: 'HTTP_5XX', httpStatus: 503 });
    expect(unavailable.message).toContain('OAuth2 token endpoint');
    s.state.tokenStatus = 401;
    expect(await rejection(() => run(oauthPayload(), makeCtx()))).toMatchObject({ code: 'HTTP_4XX' });
    expect(s.apiRequests()).toHaveLength(0);

    const empty = await startServer((_req, res) => res.end('{}'));
    try {
      const err = await rejection(() =>
        run(
          {
            httpUrl: `${s.origin}/api`,
            httpAuth: { ...oauthPayload().httpAuth, tokenUrl: `${empty.origin}/token` },
          },
          makeCtx(),
        ),
      );
      expect(err).toBeInstanceOf(PermanentJobError);
      expect(err.code).toBe('OAUTH2_TOKEN_INVALID');
    } finally {
      await empty.close();
    }
  });
});
