import { createHash } from 'node:crypto';
import { PermanentJobError } from '@chronos/core';
import type { HttpAuth } from '@chronos/core';
import type { Dispatcher } from 'undici';
import { statusFailure } from './http-status.ts';
import { displayUrl, sendOnce } from './http-client.ts';
import { invalidPayload } from './errors.ts';
import type { ExecContext } from './types.ts';

export type OAuth2ClientCredentials = Extract<HttpAuth, { type: 'OAUTH2_CLIENT_CREDENTIALS' }>;

export interface OAuth2TokenCacheOptions {
  /** Milliseconds since the epoch. @defaultValue Date.now */
  clock?: () => number;
  /** A token is dropped this long before it expires (at most a tenth of its lifetime). @defaultValue 60_000 */
  marginMs?: number;
  /** Lifetime assumed when the token response has no expires_in. @defaultValue 300_000 */
  defaultLifetimeMs?: number;
  /** Entries kept; the oldest goes first. @defaultValue 1000 */
  maxEntries?: number;
}

interface CachedToken {
  accessToken: string;
  expiresAt: number;
}

/**
 * Access tokens by client: (tokenUrl, clientId, scope, audience) plus a hash of the client secret and
 * the client-auth method, so a job cannot borrow another job's token by naming the same client id
 * with a wrong secret.
 */
export class OAuth2TokenCache {
  private readonly clock: () => number;
  private readonly marginMs: number;
  private readonly defaultLifetimeMs: number;
  private readonly maxEntries: number;
  private readonly tokens = new Map<string, CachedToken>();

  constructor(options: OAuth2TokenCacheOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.marginMs = options.marginMs ?? 60_000;
    this.defaultLifetimeMs = options.defaultLifetimeMs ?? 300_000;
    this.maxEntries = options.maxEntries ?? 1000;
  }

  static keyOf(auth: OAuth2ClientCredentials): string {
    const secret = createHash('sha256').update(auth.clientSecret).digest('base64url');
    return JSON.stringify([
      auth.tokenUrl,
      auth.clientId,
      auth.scope ?? '',
      auth.audience ?? '',
      auth.clientAuth,
      secret,
    ]);
  }

  get(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (!t) return undefined;
    if (this.clock() >= t.expiresAt) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.accessToken;
  }

  /** Stores a token for `expiresInSeconds` (from the token response) minus the margin. */
  set(key: string, accessToken: string, expiresInSeconds: number | undefined): void {
    const lifetime = expiresInSeconds === undefined ? this.defaultLifetimeMs : expiresInSeconds * 1000;
    const margin = Math.min(this.marginMs, lifetime / 10);
    if (lifetime - margin <= 0) return;
    this.tokens.delete(key);
    this.tokens.set(key, { accessToken, expiresAt: this.clock() + lifetime - margin });
    while (this.tokens.size > this.maxEntries) {
      const oldest = this.tokens.keys().next();
      if (oldest.done) break;
      this.tokens.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.tokens.delete(key);
  }

  get size(): number {
    return this.tokens.size;
  }
}

export interface TokenRequestOptions {
  dispatcher: Dispatcher;
  maxBodyBytes: number;
  userAgent: string;
}

export interface TokenResponse {
  accessToken: string;
  expiresIn: number | undefined;
}

/**
 * The client-credentials grant (RFC 6749 §4.4): POST grant_type=client_credentials as a form, with
 * the client authenticated by HTTP Basic (§2.3.1, form-encoded id and secret) or in the body.
 * The token endpoint goes through the same outbound checks and circuit breakers as the job's URL.
 */
export async function requestClientCredentialsToken(
  auth: OAuth2ClientCredentials,
  ctx: ExecContext,
  options: TokenRequestOptions,
): Promise<TokenResponse> {
  let url: URL;
  try {
    url = new URL(auth.tokenUrl);
  } catch (err) {
    throw invalidPayload(`httpAuth.tokenUrl is not a valid URL after variable resolution`, err);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidPayload(`httpAuth.tokenUrl must use http or https`);
  }
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (auth.scope) form.set('scope', auth.scope);
  if (auth.audience) form.set('audience', auth.audience);
  const headers = new Map([
    ['content-type', 'application/x-www-form-urlencoded'],
    ['accept', 'application/json'],
    ['user-agent', options.userAgent],
  ]);
  if (auth.clientAuth === 'BODY') {
    form.set('client_id', auth.clientId);
    form.set('client_secret', auth.clientSecret);
  } else {
    const enc = (s: string) => new URLSearchParams({ s }).toString().slice(2);
    const basic = Buffer.from(`${enc(auth.clientId)}:${enc(auth.clientSecret)}`).toString('base64');
    headers.set('authorization', `Basic ${basic}`);
  }

  const { response, permit } = await sendOnce(ctx, {
    dispatcher: options.dispatcher,
    method: 'POST',
    url,
    headers,
    body: form.toString(),
    maxBodyBytes: options.maxBodyBytes,
  });
  const where = `OAuth2 token endpoint ${displayUrl(url)}`;
  if (response.status < 200 || response.status >= 300) {
    const failure = statusFailure(response, where, Date.now());
    if (failure.countsAsHostFailure) permit.failure();
    else permit.success();
    throw failure.error;
  }
  permit.success();

  let parsed: unknown;
  try {
    parsed = JSON.parse(response.body.text);
  } catch {
    parsed = undefined;
  }
  const body = (parsed ?? {}) as { access_token?: unknown; expires_in?: unknown };
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    throw new PermanentJobError(
      `${where} answered ${response.status} without an access_token`,
      'OAUTH2_TOKEN_INVALID',
    );
  }
  const expiresIn = Number(body.expires_in);
  ctx.log.debug('OAuth2 token obtained', { tokenUrl: displayUrl(url), expiresIn: body.expires_in ?? null });
  return {
    accessToken: body.access_token,
    expiresIn:
      body.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn >= 0 ? expiresIn : undefined,
  };
}
