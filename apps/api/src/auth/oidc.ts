import {
  createLocalJWKSet,
  jwtVerify,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';
import { unauthorized } from '../http/errors.ts';

/** Asymmetric algorithms only: an HS256 token "signed" with the provider's public key is refused. */
const OIDC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];

export interface OidcOptions {
  issuer: string;
  audience: string | undefined;
  /** JWKS address; discovered from `<issuer>/.well-known/openid-configuration` when absent. */
  jwksUrl: string | undefined;
  /** Dotted claim path of the role names, e.g. `realm_access.roles`. */
  rolesClaim: string;
  /** How long fetched keys are used before a refresh is attempted. @defaultValue 10 min */
  refreshMs?: number;
  /** Minimum time between fetches triggered by an unknown key id. @defaultValue 30 s */
  cooldownMs?: number;
  fetch?: typeof fetch;
}

export interface OidcIdentity {
  subject: string;
  email: string;
  name: string | undefined;
  roles: string[];
}

export interface OidcVerifier {
  verify(token: string): Promise<OidcIdentity>;
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let v: unknown = payload;
  for (const part of path.split('.'))
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

/**
 * Verifies tokens of an external identity provider against its JWKS. Keys are cached: a refresh
 * happens after `refreshMs` or when a token names an unknown key (at most once per `cooldownMs`);
 * if the provider cannot be reached, the keys already held keep working, so a brief outage of the
 * provider does not sign everybody out.
 */
export function createOidcVerifier(opts: OidcOptions): OidcVerifier {
  const doFetch = opts.fetch ?? fetch;
  const refreshMs = opts.refreshMs ?? 600_000;
  const cooldownMs = opts.cooldownMs ?? 30_000;
  let jwksUrl = opts.jwksUrl;
  let keys: { set: ReturnType<typeof createLocalJWKSet>; kids: Set<string>; at: number } | undefined;
  let lastAttempt = 0;
  let inflight: Promise<void> | undefined;

  async function getJson(url: string): Promise<unknown> {
    const res = await doFetch(url, {
      signal: AbortSignal.timeout(5000),
      headers: { accept: 'application/json' },
    });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    return res.json();
  }

  async function load(): Promise<void> {
    lastAttempt = Date.now();
    if (!jwksUrl) {
      const meta = (await getJson(`${opts.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)) as {
        jwks_uri?: unknown;
      };
      if (typeof meta.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri');
      jwksUrl = meta.jwks_uri;
    }
    const jwks = (await getJson(jwksUrl)) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys)) throw new Error(`${jwksUrl} is not a JWK set`);
    keys = {
      set: createLocalJWKSet(jwks),
      kids: new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string')),
      at: Date.now(),
    };
  }

  /** Refreshes once at a time; a failure keeps the keys held (if any). */
  async function refresh(): Promise<void> {
    inflight ??= load().finally(() => {
      inflight = undefined;
    });
    try {
      await inflight;
    } catch (err) {
      if (!keys)
        throw unauthorized(`The identity provider's keys are unavailable: ${(err as Error).message}`);
    }
  }

  return {
    async verify(token) {
      let kid: string | undefined;
      try {
        const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as {
          kid?: unknown;
        };
        kid = typeof header.kid === 'string' ? header.kid : undefined;
      } catch {
        throw unauthorized('Invalid access token');
      }
      const now = Date.now();
      if (!keys || now - keys.at > refreshMs) {
        if (!keys || now - lastAttempt > cooldownMs) await refresh();
      } else if (kid && !keys.kids.has(kid) && now - lastAttempt > cooldownMs) {
        await refresh();
      }
      if (!keys) throw unauthorized("The identity provider's keys are unavailable");
      try {
        const { payload } = await jwtVerify(token, keys.set, {
          algorithms: OIDC_ALGS,
          issuer: opts.issuer,
          ...(opts.audience ? { audience: opts.audience } : {}),
          requiredClaims: ['sub', 'exp'],
        });
        // The e-mail is what links the identity to a Chronos account: only an address the provider
        // has not declared unverified (a user name is no e-mail, and could spell someone else's).
        const email = typeof payload.email === 'string' ? payload.email : undefined;
        if (!payload.sub || !email) throw unauthorized('The token names no subject or e-mail');
        // Some providers send the flag as a string.
        if (
          payload.email_verified !== undefined &&
          payload.email_verified !== true &&
          payload.email_verified !== 'true'
        )
          throw unauthorized('The identity provider has not verified this e-mail address');
        const roles = claimAt(payload, opts.rolesClaim);
        return {
          subject: payload.sub,
          email: email.toLowerCase(),
          name: typeof payload.name === 'string' ? payload.name : undefined,
          roles: Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [],
        };
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired) throw unauthorized('The access token has expired');
        if (err instanceof joseErrors.JOSEError) throw unauthorized('Invalid access token');
        throw err;
      }
    },
  };
}
