import { ChronosError, PermanentJobError, RetryableJobError } from '@chronos/core';
import type { Readable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { pipeline } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { request, type Dispatcher } from 'undici';
import type { CircuitPermit } from './circuit-breakers.ts';
import { OutboundRefusedError, invalidPayload } from './errors.ts';
import type { ExecContext } from './types.ts';

/** Header names in lower case → value, as sent. */
export type RequestHeaders = Map<string, string>;

export interface CappedBody {
  text: string;
  truncated: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: CappedBody;
}

export interface SendOptions {
  dispatcher: Dispatcher;
  method: string;
  url: URL;
  headers: RequestHeaders;
  body: string | undefined;
  maxBodyBytes: number;
}

/** The key of a target's circuit breaker: `host:port`, port explicit. */
export function breakerKey(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `${url.hostname}:${port}`;
}

/** Origin and path, without query string (which may carry secrets): what logs and errors show. */
export function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function headerObject(raw: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(raw)) if (value !== undefined) out[name] = value;
  return out;
}

export function firstHeader(headers: Record<string, string | string[]>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function charsetOf(contentType: string | undefined): string {
  const m = contentType && /;\s*charset="?([^";\s]+)"?/i.exec(contentType);
  return m?.[1] ?? 'utf-8';
}

/**
 * Reads at most `cap` bytes of a (possibly compressed) body as text, then drops the rest. The cap
 * applies to decoded bytes, so a compression bomb cannot blow it up.
 */
export async function readCappedBody(
  body: Readable,
  headers: Record<string, string | string[]>,
  cap: number,
): Promise<CappedBody> {
  const coding = firstHeader(headers, 'content-encoding')?.trim().toLowerCase();
  const decompress =
    coding === 'gzip' || coding === 'x-gzip'
      ? createGunzip()
      : coding === 'deflate'
        ? createInflate()
        : coding === 'br'
          ? createBrotliDecompress()
          : null;
  const source: Readable = decompress ? pipeline(body, decompress, () => {}) : body;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charsetOf(firstHeader(headers, 'content-type')));
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  let text = '';
  let size = 0;
  let truncated = false;
  try {
    for await (const chunk of source) {
      const bytes = chunk as Buffer;
      if (size + bytes.length > cap) {
        // stream mode: an incomplete trailing character is held back rather than mangled.
        text += decoder.decode(bytes.subarray(0, cap - size), { stream: true });
        truncated = true;
        break;
      }
      size += bytes.length;
      text += decoder.decode(bytes, { stream: true });
    }
    if (!truncated) text += decoder.decode();
  } finally {
    body.destroy();
    source.destroy();
  }
  return { text, truncated };
}

function findCause<T>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof type) return e;
  }
  return undefined;
}

/**
 * Turns what a request threw into the executor's taxonomy and settles the breaker permit: an abort
 * rethrows the signal's reason (the worker names it TIMEOUT or CANCELLED), a refused connection stays
 * OUTBOUND_REFUSED, bad request parts are INVALID_PAYLOAD, anything else is NETWORK.
 */
export function requestFailure(
  err: unknown,
  ctx: ExecContext,
  permit: CircuitPermit | null,
  what: string,
): unknown {
  if (ctx.signal.aborted) {
    permit?.release();
    return ctx.signal.reason;
  }
  const refused = findCause(err, OutboundRefusedError);
  if (refused) {
    permit?.release();
    return refused;
  }
  if (err instanceof ChronosError) {
    permit?.release();
    return err;
  }
  const code = (err as { code?: unknown })?.code;
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_INVALID_CHAR') {
    permit?.release();
    return invalidPayload(`${what}: ${(err as Error).message}`, err);
  }
  if (code === 'UND_ERR_HEADERS_OVERFLOW') {
    // The server answered, with more headers than a client reads (16 KiB): not a network failure,
    // not the host struggling, and the same again on a retry.
    permit?.success();
    return new PermanentJobError(`${what}: the response headers exceed 16 KiB`, 'HTTP_HEADERS_TOO_LARGE', {
      cause: err,
    });
  }
  permit?.failure();
  const detail = [typeof code === 'string' ? code : null, (err as Error)?.message ?? String(err)]
    .filter(Boolean)
    .join(' ');
  return new RetryableJobError(`network error on ${what}: ${detail}`, 'NETWORK', { cause: err });
}

/**
 * Sends one request (no redirect handling) through the target's circuit breaker and reads the
 * capped body. Returns the permit unsettled so the caller can judge the status; on error the permit
 * is settled and the mapped error thrown.
 */
export async function sendOnce(
  ctx: ExecContext,
  options: SendOptions,
): Promise<{ response: HttpResponse; permit: CircuitPermit }> {
  const what = `${options.method} ${displayUrl(options.url)}`;
  if (ctx.signal.aborted) throw ctx.signal.reason;
  // One breaker per job and target: another job's failing endpoint on the same host never opens it.
  const permit = ctx.breakers.acquire(breakerKey(options.url), ctx.jobId);
  try {
    const res = await request(options.url, {
      dispatcher: options.dispatcher,
      method: options.method as Dispatcher.HttpMethod,
      headers: Object.fromEntries(options.headers),
      body: options.body,
      signal: ctx.signal,
    });
    const headers = headerObject(res.headers);
    const body = await readCappedBody(res.body, headers, options.maxBodyBytes);
    return { response: { status: res.statusCode, headers, body }, permit };
  } catch (err) {
    throw requestFailure(err, ctx, permit, what);
  }
}

/** Retry-After as milliseconds from now (delta-seconds or HTTP date), when it parses. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
