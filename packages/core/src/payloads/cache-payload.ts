import { z } from 'zod';
import { httpPayloadSchema } from './http-payload.ts';
import { hasTemplate } from './template.ts';

export const CACHE_OPERATIONS = [
  'SET',
  'GET',
  'DELETE',
  'INVALIDATE',
  'WARM',
  'SYNC',
  'EXPIRE',
  'STATS',
] as const;
export type CacheOperation = (typeof CACHE_OPERATIONS)[number];

/** One year: the longest TTL a cache job may set. */
export const CACHE_MAX_TTL_SECONDS = 31_536_000;
/** Keys or entries one payload may list. */
export const CACHE_MAX_KEYS = 10_000;
export const CACHE_MAX_KEY_LENGTH = 1024;

/** What a cached value may be: strings are stored as they are, anything else as its JSON text. */
export type CacheValue = string | number | boolean | null | CacheValue[] | { [key: string]: CacheValue };

/** One key to write, with its value and, optionally, its own TTL (else the payload's). */
export interface CacheEntry {
  key: string;
  value: CacheValue;
  timeToLiveSeconds?: number | null;
}

/**
 * `cache_keys`: keys (`['a', 'b']`), or for SET/WARM the entries to write, as a list
 * (`[{ key, value, timeToLiveSeconds? }]`) or an object (`{ a: 1, b: 'x' }`).
 */
export type CacheKeys = string[] | CacheEntry[] | Record<string, CacheValue>;

/** The characters of a region or key prefix: a literal namespace, never a glob pattern. */
const NAMESPACE = /^[A-Za-z0-9_.:-]+$/;
const GLOB = /[*?[\]\\]/;
const NAMESPACE_MESSAGE = 'may only contain letters, digits and _ . : -';

/**
 * A cache region: the namespace of its keys (`<keyPrefix><region>:<key>`). Regions nest: region
 * `users` contains region `users:eu`. A `{{...}}` template is checked once resolved.
 */
export const cacheRegionSchema = z
  .string()
  .min(1, 'is required')
  .max(255, 'must be at most 255 characters')
  .superRefine((value, ctx) => {
    if (GLOB.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain the glob characters * ? [ ] \\' });
    } else if (value !== '' && !hasTemplate(value) && !NAMESPACE.test(value)) {
      ctx.addIssue({ code: 'custom', message: NAMESPACE_MESSAGE });
    }
  });

const cacheKeyPrefixSchema = z
  .string()
  .max(128, 'must be at most 128 characters')
  .superRefine((value, ctx) => {
    if (GLOB.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain the glob characters * ? [ ] \\' });
    } else if (value !== '' && !hasTemplate(value) && !NAMESPACE.test(value)) {
      ctx.addIssue({ code: 'custom', message: NAMESPACE_MESSAGE });
    }
  });

const ttlSchema = z
  .int()
  .min(1, `must be 1 to ${CACHE_MAX_TTL_SECONDS} seconds`)
  .max(CACHE_MAX_TTL_SECONDS, `must be 1 to ${CACHE_MAX_TTL_SECONDS} seconds`);

const cacheKeySchema = z
  .string()
  .min(1, 'must not be empty')
  .max(CACHE_MAX_KEY_LENGTH, `must be at most ${CACHE_MAX_KEY_LENGTH} characters`);

function isJsonValue(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isJsonValue(v, depth + 1));
  if (isPlainObject(value)) return Object.values(value).every((v) => isJsonValue(v, depth + 1));
  return false;
}

const cacheValueSchema = z.custom<CacheValue>((v) => isJsonValue(v), {
  error: 'must be a string or a JSON value',
});

const cacheEntrySchema = z.strictObject({
  key: cacheKeySchema,
  value: cacheValueSchema,
  timeToLiveSeconds: ttlSchema.nullish(),
});

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type Issue = { message: string; path: PropertyKey[] };

function issuesOf(schema: z.ZodType, value: unknown, path: PropertyKey[]): Issue[] {
  const result = schema.safeParse(value);
  return result.success
    ? []
    : result.error.issues.map((i) => ({ message: i.message, path: [...path, ...i.path] }));
}

/** The issues of a `cache_keys` value, each at its own path (a zod union would only say "invalid"). */
function cacheKeysIssues(value: unknown): Issue[] {
  if (Array.isArray(value)) {
    const issues: Issue[] = [];
    if (value.length > CACHE_MAX_KEYS) {
      return [{ message: `must list at most ${CACHE_MAX_KEYS} keys`, path: [] }];
    }
    let keys = 0;
    let entries = 0;
    const seen = new Set<string>();
    value.forEach((item: unknown, i) => {
      let key: unknown;
      if (typeof item === 'string') {
        keys++;
        issues.push(...issuesOf(cacheKeySchema, item, [i]));
        key = item;
      } else if (isPlainObject(item)) {
        entries++;
        issues.push(...issuesOf(cacheEntrySchema, item, [i]));
        key = item['key'];
      } else {
        issues.push({ message: 'must be a key (a string) or a { key, value } entry', path: [i] });
        return;
      }
      if (typeof key !== 'string') return;
      if (seen.has(key)) issues.push({ message: `duplicate key ${JSON.stringify(key)}`, path: [i] });
      seen.add(key);
    });
    if (keys > 0 && entries > 0) {
      issues.push({ message: 'must list either keys or { key, value } entries, not both', path: [] });
    }
    return issues;
  }
  if (isPlainObject(value)) {
    const pairs = Object.entries(value);
    if (pairs.length > CACHE_MAX_KEYS) {
      return [{ message: `must hold at most ${CACHE_MAX_KEYS} entries`, path: [] }];
    }
    return pairs.flatMap(([key, v]) => [
      ...issuesOf(cacheKeySchema, key, [key]),
      ...issuesOf(cacheValueSchema, v, [key]),
    ]);
  }
  return [
    {
      message: 'must be a list of keys, a list of { key, value } entries, or an object of key: value',
      path: [],
    },
  ];
}

/** `cache_keys`; see {@link CacheKeys}. */
export const cacheKeysSchema = z.unknown().superRefine((value, ctx) => {
  if (value === undefined || value === null) return;
  for (const issue of cacheKeysIssues(value)) ctx.addIssue({ code: 'custom', ...issue });
}) as unknown as z.ZodType<CacheKeys, CacheKeys>;

/** What a `cache_keys` value holds; `empty` is a list or object without items. */
export function cacheKeysKind(keys: CacheKeys | null | undefined): 'none' | 'empty' | 'keys' | 'entries' {
  if (keys === undefined || keys === null) return 'none';
  if (Array.isArray(keys)) {
    if (keys.length === 0) return 'empty';
    return typeof keys[0] === 'string' ? 'keys' : 'entries';
  }
  return Object.keys(keys).length === 0 ? 'empty' : 'entries';
}

/** The entries of a `cache_keys` value (a list of entries, or an object of key: value); plain keys are skipped. */
export function cacheEntriesOf(keys: CacheKeys): CacheEntry[] {
  if (Array.isArray(keys)) return keys.flatMap((k) => (typeof k === 'string' ? [] : [k]));
  return Object.entries(keys).map(([key, value]) => ({ key, value }));
}

/** The keys a `cache_keys` value names: its plain keys, or the keys of its entries. */
export function cacheKeyNamesOf(keys: CacheKeys): string[] {
  if (Array.isArray(keys)) return keys.map((k) => (typeof k === 'string' ? k : k.key));
  return Object.keys(keys);
}

/**
 * A Redis URL (`redis://` or `rediss://` for TLS, optionally `/<db>`). Credentials belong in a
 * `{{var.X}}` template. Query options are refused: they would reach the Redis client's own options
 * (a `path` there dials a Unix socket, past the outbound policy).
 */
export const cacheRedisUrlSchema = z
  .string()
  .min(1, 'is required')
  .max(2048, 'must be at most 2048 characters')
  .superRefine((value, ctx) => {
    if (hasTemplate(value)) return;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' });
      return;
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      ctx.addIssue({ code: 'custom', message: `must use redis or rediss, not ${url.protocol.slice(0, -1)}` });
    } else if (url.hostname === '') {
      ctx.addIssue({ code: 'custom', message: 'must name a host' });
    } else if (url.search !== '' || url.hash !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not carry query options or a fragment' });
    } else if (!/^\/?(\d{1,5})?$/.test(url.pathname)) {
      ctx.addIssue({ code: 'custom', message: 'may only have a database number as its path (/0)' });
    }
  });

/** `cache_config`: which Redis, and the prefix every key of the job gets. */
export const cacheConfigSchema = z
  .strictObject({
    /** The cache Redis; absent means the worker's default cache Redis. */
    url: cacheRedisUrlSchema.nullish(),
    /** Put before the region in every key: `<keyPrefix><region>:<key>`. @defaultValue '' */
    keyPrefix: cacheKeyPrefixSchema.nullish(),
    /** The logical database; absent means the URL's (`/N`) or 0. */
    db: z.int().min(0, 'must be 0 to 255').max(255, 'must be 0 to 255').nullish(),
  })
  .superRefine((config, ctx) => {
    if (config.db === undefined || config.db === null || !config.url || hasTemplate(config.url)) return;
    if (/^\/\d/.test(new URL(config.url).pathname)) {
      ctx.addIssue({ code: 'custom', path: ['db'], message: 'the url already names a database' });
    }
  });
export type CacheConfig = z.infer<typeof cacheConfigSchema>;

/** The HTTP request of a WARM from HTTP: the `http*` fields of an HTTP job. */
const warmHttpRequest = httpPayloadSchema.pick({
  httpUrl: true,
  httpMethod: true,
  httpHeaders: true,
  httpBody: true,
  httpQueryParams: true,
  httpAuth: true,
  httpExpectedStatuses: true,
  httpFollowRedirects: true,
}).shape;

/**
 * Where WARM takes its entries (`metadata.warmSource`):
 * - `region`: the keys of another region on the same Redis (values and TTLs copied);
 * - `http`: a JSON response — an object of key: value, or a list of records (`keyField`,
 *   `valueField`), found at `entriesPath` (dotted, e.g. `data.items`) in the body;
 * - `static`: entries given here;
 * - `database`: the rows of a read-only query (`keyField` / `valueField` columns).
 */
export const cacheWarmSourceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('region'), region: cacheRegionSchema }),
  z.strictObject({
    type: z.literal('http'),
    ...warmHttpRequest,
    /** Dotted path to the entries in the JSON body; absent means the body itself. */
    entriesPath: z.string().min(1).max(512).nullish(),
    /** For a list of records: the field holding the key. @defaultValue 'key' */
    keyField: z.string().min(1).max(256).nullish(),
    /** For a list of records: the field holding the value; `.` caches the whole record. @defaultValue 'value' */
    valueField: z.string().min(1).max(256).nullish(),
  }),
  z.strictObject({ type: z.literal('static'), entries: cacheKeysSchema }),
  z.strictObject({
    type: z.literal('database'),
    /** Read through the DATABASE executor, in a read-only transaction (its safety rules apply). */
    databaseUrl: z.string().min(1).max(2048),
    query: z.string().min(1).max(100_000),
    parameters: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]).nullish(),
    queryTimeoutSeconds: z.number().int().min(1).max(3600).nullish(),
    maxRows: z.number().int().min(1).max(100_000).nullish(),
    /** The column holding the key. @defaultValue 'key' */
    keyField: z.string().min(1).max(256).nullish(),
    /** The column holding the value; `.` caches the whole row. @defaultValue 'value' */
    valueField: z.string().min(1).max(256).nullish(),
  }),
]);
export type CacheWarmSource = z.infer<typeof cacheWarmSourceSchema>;

/** `metadata` of a CACHE job: free-form, with `warmSource` checked when present. */
export const cacheMetadataSchema = z.looseObject({ warmSource: cacheWarmSourceSchema.nullish() });

const TTL_OPERATIONS: readonly CacheOperation[] = ['SET', 'WARM', 'SYNC', 'EXPIRE'];
const SKIP_OPERATIONS: readonly CacheOperation[] = ['SET', 'WARM', 'SYNC'];

/**
 * A CACHE job's payload: the `cache*` columns of job_payloads plus `async`, `timeoutSeconds` and
 * `metadata`. What each operation needs:
 * - SET: entries in `cacheKeys`;
 * - GET, DELETE: keys in `cacheKeys`;
 * - INVALIDATE: keys in `cacheKeys`, or none for the whole region;
 * - EXPIRE: `timeToLiveSeconds`, and keys or none for the whole region;
 * - SYNC: `sourceRegion` (copied into `cacheRegion`), optionally keys to copy;
 * - WARM: a source — `metadata.warmSource`, `sourceRegion`, or entries in `cacheKeys`;
 * - STATS: nothing more.
 *
 * `async`: deletes use UNLINK (memory is freed in the background) instead of DEL, and the run does
 * not WAIT for replicas to acknowledge its writes. Either way the run ends once Redis has answered
 * every command, so its counts are real.
 */
export const cachePayloadSchema = z
  .object({
    cacheOperation: z.enum(CACHE_OPERATIONS),
    cacheRegion: cacheRegionSchema,
    cacheKeys: cacheKeysSchema.nullish(),
    timeToLiveSeconds: ttlSchema.nullish(),
    /** SET NX: keys that already exist are left as they are. */
    skipIfExists: z.boolean().default(false),
    sourceRegion: cacheRegionSchema.nullish(),
    cacheConfig: cacheConfigSchema.nullish(),
    async: z.boolean().default(false),
    timeoutSeconds: z.int().min(1).max(86_400).nullish(),
    metadata: cacheMetadataSchema.nullish(),
  })
  .superRefine((p, ctx) => {
    const op = p.cacheOperation;
    const issue = (path: PropertyKey | PropertyKey[], message: string) =>
      ctx.addIssue({ code: 'custom', path: Array.isArray(path) ? path : [path], message });
    const kind = cacheKeysKind(p.cacheKeys);
    const warm = p.metadata?.warmSource ?? null;

    const needKeys = (verb: string) => {
      if (kind !== 'keys') issue('cacheKeys', `must list the keys to ${verb}`);
    };
    const keysOrRegion = (verb: string) => {
      if (kind === 'empty') {
        issue('cacheKeys', `must list at least one key, or be omitted to ${verb} the whole region`);
      } else if (kind === 'entries') {
        issue('cacheKeys', `must list keys (not entries) to ${verb}`);
      }
    };

    switch (op) {
      case 'SET':
        if (kind !== 'entries') {
          issue(
            'cacheKeys',
            'must hold the { key, value } entries to set (a list, or an object of key: value)',
          );
        }
        break;
      case 'GET':
        needKeys('get');
        break;
      case 'DELETE':
        needKeys('delete');
        break;
      case 'INVALIDATE':
        keysOrRegion('invalidate');
        break;
      case 'EXPIRE':
        keysOrRegion('expire');
        if (p.timeToLiveSeconds === undefined || p.timeToLiveSeconds === null) {
          issue('timeToLiveSeconds', 'is required for EXPIRE');
        }
        break;
      case 'SYNC':
        if (!p.sourceRegion) issue('sourceRegion', 'is required for SYNC');
        keysOrRegion('sync');
        break;
      case 'STATS':
        if (kind !== 'none') issue('cacheKeys', 'must be omitted for STATS (it covers the whole region)');
        break;
      case 'WARM':
        if (warm && p.sourceRegion) {
          issue('sourceRegion', 'give the WARM source once: sourceRegion or metadata.warmSource');
        } else if (p.sourceRegion || warm?.type === 'region') {
          keysOrRegion('copy');
        } else if (warm) {
          if (kind !== 'none') issue('cacheKeys', `must be omitted when WARM reads from ${warm.type}`);
          if (warm.type === 'static' && cacheKeysKind(warm.entries) !== 'entries') {
            issue(['metadata', 'warmSource', 'entries'], 'must hold { key, value } entries');
          }
        } else if (kind !== 'entries') {
          issue(
            'cacheKeys',
            'WARM needs a source: metadata.warmSource, sourceRegion, or { key, value } entries here',
          );
        }
        break;
    }

    if (p.sourceRegion && op !== 'SYNC' && op !== 'WARM')
      issue('sourceRegion', 'only applies to SYNC and WARM');
    if (warm && op !== 'WARM') issue(['metadata', 'warmSource'], 'only applies to WARM');
    const from = p.sourceRegion ?? (warm?.type === 'region' ? warm.region : null);
    if (from && (op === 'SYNC' || op === 'WARM') && regionsOverlap(from, p.cacheRegion)) {
      issue(
        p.sourceRegion ? 'sourceRegion' : ['metadata', 'warmSource', 'region'],
        'the source region must not overlap cacheRegion (one would contain the other)',
      );
    }
    if (p.timeToLiveSeconds && !TTL_OPERATIONS.includes(op)) {
      issue('timeToLiveSeconds', 'only applies to SET, WARM, SYNC and EXPIRE');
    }
    if (p.skipIfExists && !SKIP_OPERATIONS.includes(op)) {
      issue('skipIfExists', 'only applies to SET, WARM and SYNC');
    }
  });
export type CachePayload = z.infer<typeof cachePayloadSchema>;
export type CachePayloadInput = z.input<typeof cachePayloadSchema>;

/**
 * Whether two regions (under one key prefix) share keys: `a` contains `a:b`, so copying one into
 * the other would read its own writes. Templated regions are compared once resolved.
 */
export function regionsOverlap(a: string, b: string): boolean {
  if (hasTemplate(a) || hasTemplate(b)) return false;
  const na = `${a}:`;
  const nb = `${b}:`;
  return na.startsWith(nb) || nb.startsWith(na);
}
