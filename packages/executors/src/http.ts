import {
  MASK,
  PermanentJobError,
  createMasker,
  fieldIssues,
  hasTemplate,
  httpPayloadSchema,
  type HttpPayloadInput,
} from '@chronos/core';
import { Agent } from 'undici';
import { PermanentHttpError, invalidPayload } from './errors.ts';
import { displayUrl, sendOnce, type HttpResponse, type RequestHeaders } from './http-client.ts';
import { statusFailure } from './http-status.ts';
import { OAuth2TokenCache, requestClientCredentialsToken, type OAuth2ClientCredentials } from './oauth2.ts';
import { compileOutboundPolicy, createOutboundConnector, type LookupFunction } from './outbound-guard.ts';
import type { ExecContext, ExecResult, Executor } from './types.ts';

export interface HttpExecutorOptions {
  /** Response bytes kept in the output (and in error details); the rest is dropped. @defaultValue 65_536 */
  maxBodyBytes?: number;
  /** Redirects followed before the run fails with TOO_MANY_REDIRECTS. @defaultValue 5 */
  maxRedirects?: number;
  /** Access tokens of OAUTH2_CLIENT_CREDENTIALS jobs, shared by every run of this executor. */
  tokenCache?: OAuth2TokenCache;
  /** Resolver for host names; every address it returns is checked. @defaultValue dns.lookup */
  lookup?: LookupFunction;
  /** @defaultValue 10_000 */
  connectTimeoutMs?: number;
  /** @defaultValue 'Chronos-Scheduler/1' */
  userAgent?: string;
}

/** What a successful HTTP run outputs. */
export interface HttpOutput {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  bodyTruncated: boolean;
  durationMs: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/**
 * The headers a request keeps when a redirect leads to another origin: the ones this executor sets
 * itself (and the body's, while there is a body). Everything else the payload set — Authorization,
 * Cookie, an API key header, Host — may be a credential of the first origin and is not forwarded.
 */
const CROSS_ORIGIN_HEADERS = new Set([
  'user-agent',
  'idempotency-key',
  'accept',
  'accept-encoding',
  'accept-language',
]);
/** The request-body headers dropped when a redirect turns the request into a GET. */
const BODY_HEADERS = [
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-location',
];

interface Exchange {
  response: HttpResponse;
  finalUrl: URL;
  permit: ReturnType<ExecContext['breakers']['acquire']>;
  /** Whether the final response answered a request that still carried our Authorization. */
  authorizationSent: boolean;
}

function parseUrl(text: string, field: string): URL {
  if (hasTemplate(text)) throw invalidPayload(`${field} still holds an unresolved {{...}} template`);
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw invalidPayload(`${field} is not a valid URL`, err);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidPayload(`${field} must use http or https, not ${url.protocol}`);
  }
  return url;
}

function defaultContentType(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object') return 'application/json';
  } catch {
    // not JSON
  }
  return 'text/plain; charset=utf-8';
}

/**
 * The HTTP executor with its own token cache and options; the worker makes one per process.
 * Every connection is checked against `ctx.outbound` at connect time, every target host has a
 * circuit breaker per job in `ctx.breakers`, redirects are followed by hand.
 */
export function createHttpExecutor(options: HttpExecutorOptions = {}): Executor<HttpPayloadInput> {
  const maxBodyBytes = options.maxBodyBytes ?? 65_536;
  const maxRedirects = options.maxRedirects ?? 5;
  const tokenCache = options.tokenCache ?? new OAuth2TokenCache();
  const userAgent = options.userAgent ?? 'Chronos-Scheduler/1';

  return async function runHttp(input: HttpPayloadInput, ctx: ExecContext): Promise<ExecResult> {
    const parsed = httpPayloadSchema.safeParse(input);
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw invalidPayload(
        `invalid HTTP payload: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      );
    }
    const payload = parsed.data;
    if (ctx.signal.aborted) throw ctx.signal.reason;

    const url = parseUrl(payload.httpUrl, 'httpUrl');
    for (const [name, value] of Object.entries(payload.httpQueryParams ?? {})) {
      for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(v));
    }
    const auth = payload.httpAuth ?? { type: 'NONE' as const };
    const oauth = auth.type === 'OAUTH2_CLIENT_CREDENTIALS' ? auth : null;
    const body = payload.httpBody ?? undefined;

    let policy;
    try {
      policy = compileOutboundPolicy(ctx.outbound);
    } catch (err) {
      throw new PermanentJobError(
        `the worker's outbound policy is invalid: ${(err as Error).message}`,
        'OUTBOUND_REFUSED',
        { cause: err },
      );
    }
    // One dispatcher per run: its connections are checked against this run's policy and die with it.
    const dispatcher = new Agent({
      connect: createOutboundConnector(policy, {
        lookup: options.lookup,
        connectTimeoutMs: options.connectTimeoutMs,
      }),
      // The run's timeout (ctx.signal) bounds the request; undici's own 300 s limits would cut
      // long-running endpoints short of it.
      headersTimeout: 0,
      bodyTimeout: 0,
    });

    const baseHeaders: RequestHeaders = new Map();
    for (const [name, value] of Object.entries(payload.httpHeaders ?? {}))
      baseHeaders.set(name.toLowerCase(), value);
    // undici computes the length of the body it sends; a stale one from the payload would break the request.
    baseHeaders.delete('content-length');
    if (!baseHeaders.has('user-agent')) baseHeaders.set('user-agent', userAgent);
    if (!baseHeaders.has('idempotency-key')) baseHeaders.set('idempotency-key', ctx.idempotencyKey);
    // Not asking for compression keeps the body cap meaningful; a compressed answer is still decoded.
    if (!baseHeaders.has('accept-encoding')) baseHeaders.set('accept-encoding', 'identity');
    if (body !== undefined && !baseHeaders.has('content-type'))
      baseHeaders.set('content-type', defaultContentType(body));

    const token = async (): Promise<{ value: string; cached: boolean }> => {
      const a = oauth as OAuth2ClientCredentials;
      const key = OAuth2TokenCache.keyOf(a);
      const cached = tokenCache.get(key);
      if (cached !== undefined) return { value: cached, cached: true };
      const fresh = await requestClientCredentialsToken(a, ctx, { dispatcher, maxBodyBytes, userAgent });
      tokenCache.set(key, fresh.accessToken, fresh.expiresIn);
      return { value: fresh.accessToken, cached: false };
    };

    const exchange = async (authorization: string | undefined): Promise<Exchange> => {
      const headers = new Map(baseHeaders);
      if (authorization !== undefined) headers.set('authorization', authorization);
      let method: string = payload.httpMethod;
      let requestBody = body;
      let current = url;
      let credentialsDropped = false;
      for (let hop = 0; ; hop++) {
        ctx.log.debug('HTTP request', { method, url: displayUrl(current), hop });
        const { response, permit } = await sendOnce(ctx, {
          dispatcher,
          method,
          url: current,
          headers,
          body: requestBody,
          maxBodyBytes,
        });
        const location = response.headers['location'];
        if (
          !payload.httpFollowRedirects ||
          !REDIRECT_STATUSES.has(response.status) ||
          typeof location !== 'string'
        ) {
          return {
            response,
            finalUrl: current,
            permit,
            authorizationSent: authorization !== undefined && !credentialsDropped,
          };
        }
        permit.success();
        if (hop >= maxRedirects) {
          throw new PermanentHttpError(
            `too many redirects: more than ${maxRedirects} following ${payload.httpMethod} ${displayUrl(url)}`,
            'TOO_MANY_REDIRECTS',
            { httpStatus: response.status },
          );
        }
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          throw new PermanentHttpError(
            `${displayUrl(current)} redirected to an invalid Location`,
            'HTTP_3XX',
            { httpStatus: response.status },
          );
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new PermanentHttpError(
            `${displayUrl(current)} redirected to a ${next.protocol} URL`,
            'HTTP_3XX',
            { httpStatus: response.status },
          );
        }
        // As browsers do: 303 turns anything but HEAD into GET, 301/302 turn POST into GET.
        if (
          (response.status === 303 && method !== 'HEAD') ||
          ((response.status === 301 || response.status === 302) && method === 'POST')
        ) {
          method = 'GET';
          requestBody = undefined;
          for (const h of BODY_HEADERS) headers.delete(h);
        }
        if (current.protocol === 'https:' && next.protocol === 'http:') {
          throw new PermanentHttpError(
            `${displayUrl(current)} redirected from https to plain http (${displayUrl(next)}): not followed`,
            'HTTP_3XX',
            { httpStatus: response.status },
          );
        }
        if (next.origin !== current.origin && !credentialsDropped) {
          for (const h of [...headers.keys()])
            if (!CROSS_ORIGIN_HEADERS.has(h) && !(requestBody !== undefined && BODY_HEADERS.includes(h)))
              headers.delete(h);
          credentialsDropped = true;
        }
        ctx.log.debug('HTTP redirect', { status: response.status, to: displayUrl(next) });
        current = next;
      }
    };

    // The credentials this run sends: never kept in its output or error details, even when the
    // server echoes them (a fetched OAuth2 token is no variable the worker's masker knows).
    const credentials: string[] = [];
    const sent = (authorization: string) => {
      credentials.push(authorization, authorization.replace(/^\S+\s+/, ''));
      return authorization;
    };
    const scrub = <T>(value: T): T => withoutCookies(createMasker(credentials).maskDeep(value));

    const started = performance.now();
    try {
      let authorization: string | undefined;
      let tokenWasCached = false;
      if (auth.type === 'BASIC') {
        credentials.push(auth.password);
        authorization = sent(
          `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`,
        );
      } else if (auth.type === 'BEARER') {
        authorization = sent(`Bearer ${auth.token}`);
      } else if (oauth) {
        credentials.push(oauth.clientSecret);
        const t = await token();
        authorization = sent(`Bearer ${t.value}`);
        tokenWasCached = t.cached;
      }

      let result = await exchange(authorization);
      if (oauth && tokenWasCached && result.response.status === 401 && result.authorizationSent) {
        // The cached token was revoked or expired early: fetch a fresh one and try once more.
        result.permit.success();
        tokenCache.delete(OAuth2TokenCache.keyOf(oauth));
        ctx.log.info('HTTP 401 with a cached OAuth2 token; fetching a new token and retrying once');
        const fresh = await token();
        result = await exchange(sent(`Bearer ${fresh.value}`));
      }

      const { response, permit, finalUrl } = result;
      const durationMs = Math.round(performance.now() - started);
      const expected = payload.httpExpectedStatuses;
      const accepted = expected
        ? expected.includes(response.status)
        : response.status >= 200 && response.status < 300;
      ctx.log.info('HTTP response', {
        status: response.status,
        url: displayUrl(finalUrl),
        durationMs,
        accepted,
      });
      if (!accepted) {
        const failure = statusFailure(response, `${payload.httpMethod} ${displayUrl(finalUrl)}`, Date.now());
        if (failure.countsAsHostFailure) permit.failure();
        else permit.success();
        throw scrub(failure.error);
      }
      permit.success();
      const output: HttpOutput = {
        status: response.status,
        headers: response.headers,
        body: response.body.text,
        bodyTruncated: response.body.truncated,
        durationMs,
      };
      return { output: scrub(output) };
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw err;
    } finally {
      dispatcher.destroy().catch(() => {});
    }
  };
}

/** Response cookies are the server's credentials for this client: kept as present, not as values. */
function withoutCookies<T>(value: T): T {
  const v = value as { headers?: Record<string, unknown>; response?: { headers?: Record<string, unknown> } };
  for (const headers of [v?.headers, v?.response?.headers])
    if (headers && 'set-cookie' in headers) headers['set-cookie'] = MASK;
  return value;
}

/** The HTTP executor with default options (a process-wide token cache). */
export const runHttp: Executor<HttpPayloadInput> = createHttpExecutor();
