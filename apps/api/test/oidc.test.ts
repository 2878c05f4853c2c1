import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcVerifier } from '../src/auth/oidc.ts';
import { startTestApi, type TestApi } from './harness.ts';

type Key = { kid: string; privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; jwk: JWK };

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** A stand-in identity provider (Keycloak-like paths): discovery + JWKS, which can be taken down. */
class Provider {
  keys: Key[] = [];
  up = true;
  jwksHits = 0;
  private server: Server | undefined;
  issuer = '';

  async start() {
    this.server = createServer((req, res) => {
      if (!this.up) {
        res.writeHead(503).end();
        return;
      }
      if (req.url === '/realms/test/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ issuer: this.issuer, jwks_uri: `${this.issuer}/protocol/openid-connect/certs` }),
        );
      } else if (req.url === '/realms/test/protocol/openid-connect/certs') {
        this.jwksHits++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.issuer = `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}/realms/test`;
  }

  token(
    key: Key,
    claims: Record<string, unknown> = {},
    opts: { aud?: string; exp?: string | number; iss?: string } = {},
  ) {
    return new SignJWT({
      email: 'ops@example.test',
      realm_access: { roles: ['operator', 'offline_access'] },
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .setSubject('kc-user-1')
      .setIssuer(opts.iss ?? this.issuer)
      .setAudience(opts.aud ?? 'chronos')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(key.privateKey);
  }

  async stop() {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

const provider = new Provider();
let t: TestApi;
let key1: Key;

beforeAll(async () => {
  await provider.start();
  key1 = await newKey('k1');
  provider.keys = [key1];
  t = await startTestApi('oidc', {
    AUTH_MODE: 'oidc',
    OIDC_ISSUER: provider.issuer,
    OIDC_AUDIENCE: 'chronos',
  });
});

afterAll(async () => {
  await t?.stop();
  await provider.stop();
});

describe('AUTH_MODE=oidc', () => {
  it('accepts a provider token, creates the user on first sight and takes roles from the claim', async () => {
    const res = await t.call('get', '/auth/me', { token: await provider.token(key1) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: 'ops@example.test', roles: ['OPERATOR'], isAdmin: false });
    expect(res.body.permissions).toContain('dlq:manage');
    const user = await t.db.user.findUniqueOrThrow({ where: { email: 'ops@example.test' } });
    expect(res.body.id).toBe(user.id);
  });

  it('applies a role change at the provider with the next token', async () => {
    const res = await t.call('get', '/auth/me', {
      token: await provider.token(key1, { realm_access: { roles: ['viewer'] } }),
    });
    expect(res.body.roles).toEqual(['VIEWER']);
  });

  it('refuses a wrong audience, a wrong issuer, an expired token and an unknown signing key', async () => {
    const other = await newKey('stranger');
    for (const token of [
      await provider.token(key1, {}, { aud: 'someone-else' }),
      await provider.token(key1, {}, { iss: 'http://evil.example/realms/test' }),
      await provider.token(key1, {}, { exp: Math.floor(Date.now() / 1000) - 60 }),
      await provider.token({ ...other, kid: 'k1' }),
    ])
      expect((await t.call('get', '/auth/me', { token })).status).toBe(401);
  });

  it('refuses a token whose e-mail the provider declares unverified, or that names only a user name', async () => {
    for (const claims of [
      { email_verified: false },
      { email_verified: 'false' },
      { email: undefined, preferred_username: 'ops@example.test' },
    ]) {
      const res = await t.call('get', '/auth/me', { token: await provider.token(key1, claims) });
      expect(res.status, JSON.stringify(claims)).toBe(401);
    }
    const verified = await t.call('get', '/auth/me', {
      token: await provider.token(key1, { email_verified: true }),
    });
    expect(verified.status).toBe(200);
  });

  it('refuses an HS256 token keyed with the provider’s public key (algorithm confusion)', async () => {
    const token = await new SignJWT({ email: 'ops@example.test', realm_access: { roles: ['admin'] } })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setSubject('kc-user-1')
      .setIssuer(provider.issuer)
      .setAudience('chronos')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(key1.jwk)));
    expect((await t.call('get', '/auth/me', { token })).status).toBe(401);
  });

  it('keeps working on cached keys while the provider is down', async () => {
    const token = await provider.token(key1);
    expect((await t.call('get', '/auth/me', { token })).status).toBe(200);
    provider.up = false;
    try {
      expect((await t.call('get', '/auth/me', { token })).status).toBe(200);
    } finally {
      provider.up = true;
    }
  });

  it('disables local sign-in', async () => {
    const res = await t.call('post', '/auth/login', { body: { email: 'a@b.c', password: 'whatever-123' } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/AUTH_MODE=oidc/);
  });
});

describe('the JWKS cache', () => {
  /** A fresh provider with one key `a`, and a verifier of it; the provider stops after `body`. */
  async function withProvider(
    opts: Partial<Parameters<typeof createOidcVerifier>[0]>,
    body: (p: Provider, a: Key, verifier: ReturnType<typeof createOidcVerifier>) => Promise<void>,
  ) {
    const p = new Provider();
    await p.start();
    try {
      const a = await newKey('a');
      p.keys = [a];
      const verifier = createOidcVerifier({
        issuer: p.issuer,
        audience: undefined,
        jwksUrl: undefined,
        rolesClaim: 'realm_access.roles',
        ...opts,
      });
      await body(p, a, verifier);
    } finally {
      await p.stop();
    }
  }

  it('fetches once, refreshes on an unknown key id (rotation) and survives a failed refresh', () =>
    withProvider({ audience: 'chronos', cooldownMs: 0 }, async (p, a, verifier) => {
      await verifier.verify(await p.token(a));
      await verifier.verify(await p.token(a));
      expect(p.jwksHits).toBe(1);

      const b = await newKey('b');
      p.keys = [a, b];
      expect((await verifier.verify(await p.token(b))).email).toBe('ops@example.test');
      expect(p.jwksHits).toBe(2);

      p.up = false;
      const c = await newKey('c');
      await expect(verifier.verify(await p.token(c))).rejects.toMatchObject({ status: 401 });
      expect((await verifier.verify(await p.token(b))).roles).toEqual(['operator', 'offline_access']);
    }));

  it('keeps using expired-by-age keys when the refresh fails', () =>
    withProvider({ refreshMs: 0, cooldownMs: 0 }, async (p, a, verifier) => {
      await verifier.verify(await p.token(a));
      const hits = p.jwksHits;
      p.up = false;
      expect((await verifier.verify(await p.token(a))).subject).toBe('kc-user-1');
      p.up = true;
      await verifier.verify(await p.token(a));
      expect(p.jwksHits).toBeGreaterThan(hits);
    }));

  it('does not accept anything before it ever got keys', () =>
    withProvider({}, async (p, a, verifier) => {
      p.up = false;
      await expect(verifier.verify(await p.token(a))).rejects.toMatchObject({ status: 401 });
    }));
});
