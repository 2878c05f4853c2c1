import { RetryableJobError, hasTemplate, type CacheConfig } from '@chronos/core';
import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress } from 'node:dns';
import type { RedisOptions } from 'ioredis';
import { invalidPayload } from '../errors.ts';
import { parseIp } from '../ip-address.ts';
import { normalizeHost, type CompiledOutboundPolicy, type LookupFunction } from '../outbound-guard.ts';

/** The Redis a run talks to, checked against the outbound policy, ready for the pool. */
export interface RedisTarget {
  /** Pool key: the URL, the database and the address dialled. */
  id: string;
  /** Everything the client needs (built here rather than from the URL, so nothing in it can override the address). */
  options: RedisOptions;
  /** For messages and output: no credentials. */
  display: string;
  isDefault: boolean;
}

/** `redis://host:port/db`, without credentials. */
export function displayRedisUrl(url: string, db?: number): string {
  try {
    const u = new URL(url);
    const path = db === undefined ? u.pathname : `/${db}`;
    return `${u.protocol}//${u.host}${path === '/' ? '' : path}`;
  } catch {
    return '(invalid Redis URL)';
  }
}

/** Client options from a redis:// or rediss:// URL, as ioredis reads one (host, port, credentials, db, TLS). */
export function redisOptionsFromUrl(url: URL): RedisOptions {
  const host = normalizeHost(url.hostname);
  const options: RedisOptions = { host, port: Number(url.port) || 6379 };
  if (url.username || url.password) {
    options.username = decodeURIComponent(url.username);
    options.password = decodeURIComponent(url.password);
  }
  const db = /^\/(\d+)$/.exec(url.pathname)?.[1];
  if (db !== undefined) options.db = Number(db);
  // Node refuses an IP address as TLS server name; certificates for IPs are checked without one.
  if (url.protocol === 'rediss:') options.tls = parseIp(host) ? {} : { servername: host };
  return options;
}

/** The default cache Redis's options; its query options (trusted configuration) are kept, as ioredis would. */
export function defaultRedisOptions(defaultUrl: string): RedisOptions {
  let url: URL;
  try {
    url = new URL(defaultUrl);
  } catch {
    throw new TypeError('the default cache Redis URL is not a valid URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new TypeError(`the default cache Redis URL must use redis or rediss, not ${url.protocol}`);
  }
  const query: Record<string, string | number> = {};
  url.searchParams.forEach((value, key) => {
    query[key] = key === 'family' && /^\d+$/.test(value) ? Number(value) : value;
  });
  return { ...query, ...redisOptionsFromUrl(url) };
}

function resolveAll(lookup: LookupFunction, host: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    lookup(host, { all: true }, (err, address) => {
      if (err) return reject(err);
      const list: LookupAddress[] = Array.isArray(address) ? address : [{ address, family: 0 }];
      resolve(list.map((a) => a.address));
    });
  });
}

/**
 * Where a run's cache Redis is. The default cache Redis is trusted (it comes from the worker's
 * configuration). A URL from the payload is checked like an HTTP target: allowHosts, then the
 * cloud-metadata names, then every address it resolves to; the client then dials the checked
 * address (TLS still verifies the name), so a second DNS answer cannot point it elsewhere.
 * @throws OutboundRefusedError, PermanentJobError INVALID_PAYLOAD, RetryableJobError NETWORK (DNS)
 */
export async function resolveRedisTarget(
  config: CacheConfig | null | undefined,
  defaultUrl: string,
  policy: CompiledOutboundPolicy,
  lookup: LookupFunction = dnsLookup as unknown as LookupFunction,
): Promise<RedisTarget> {
  const db = config?.db ?? undefined;
  const text = config?.url ?? undefined;
  if (text === undefined || text === defaultUrl) {
    const options = defaultRedisOptions(defaultUrl);
    if (db !== undefined) options.db = db;
    return {
      id: `default|${options.db ?? 0}`,
      options,
      display: displayRedisUrl(defaultUrl, options.db ?? 0),
      isDefault: true,
    };
  }
  if (hasTemplate(text)) throw invalidPayload('cacheConfig.url still holds an unresolved {{...}} template');
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw invalidPayload('cacheConfig.url is not a valid URL', err);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw invalidPayload(`cacheConfig.url must use redis or rediss, not ${url.protocol}`);
  }
  if (url.search !== '') throw invalidPayload('cacheConfig.url must not carry query options');
  const options = redisOptionsFromUrl(url);
  options.db = db ?? options.db ?? 0;
  const host = options.host ?? '';
  const port = options.port ?? 6379;
  const display = displayRedisUrl(text, options.db);

  let address = host;
  if (!policy.allowsHost(host, port)) {
    const nameRefusal = policy.refuseName(host);
    if (nameRefusal) throw nameRefusal;
    let addresses: string[];
    if (parseIp(host)) {
      addresses = [host];
    } else {
      try {
        addresses = await resolveAll(lookup, host);
      } catch (err) {
        throw new RetryableJobError(
          `cannot resolve cache Redis host ${host}: ${(err as Error).message}`,
          'NETWORK',
          {
            cause: err,
          },
        );
      }
    }
    for (const a of addresses) {
      const refusal = policy.refuseAddress(host, a);
      if (refusal) throw refusal;
    }
    address = addresses[0] ?? host;
  }
  options.host = address;
  return { id: `${text}|${options.db}|${address}`, options, display, isDefault: false };
}
