import {
  PermanentJobError,
  cacheEntriesOf,
  cacheKeyNamesOf,
  cachePayloadSchema,
  fieldIssues,
  hasTemplate,
  type CacheOperation,
  type CachePayload,
  type CachePayloadInput,
  type DatabasePayloadInput,
  type HttpPayloadInput,
} from '@chronos/core';
import {
  awaitReplicas,
  copyKeys,
  deleteKeys,
  deleteRegion,
  expireKeys,
  expireRegion,
  getValues,
  regionStats,
  writeEntries,
  type CacheRun,
  type CopyCounts,
  type GetResult,
  type RegionStats,
  type Replication,
  type WriteCounts,
} from './cache/operations.ts';
import { forbiddenOverlap, regionNamespace } from './cache/namespace.ts';
import { cacheFailure } from './cache/redis-errors.ts';
import { RedisPool, type RedisConnect } from './cache/redis-pool.ts';
import { defaultRedisOptions, resolveRedisTarget, type RedisTarget } from './cache/redis-target.ts';
import { encodeValue, fetchDatabaseEntries, fetchHttpEntries, type WarmEntry } from './cache/warm-source.ts';
import { createDatabaseExecutor } from './database.ts';
import { invalidPayload } from './errors.ts';
import { createHttpExecutor } from './http.ts';
import { compileOutboundPolicy, type CompiledOutboundPolicy, type LookupFunction } from './outbound-guard.ts';
import type { ExecContext, ExecResult, Executor } from './types.ts';

export { CACHE_ERROR_CODES, type CacheErrorCode } from './cache/redis-errors.ts';
export type { RedisConnect } from './cache/redis-pool.ts';
export type { CopyCounts, GetResult, RegionStats, Replication, WriteCounts } from './cache/operations.ts';

export interface CacheExecutorOptions {
  /** The default cache Redis, used when a job has no `cacheConfig.url`; the outbound policy does not apply to it. */
  defaultUrl: string;
  /**
   * Key prefixes no CACHE job may reach, on any target: Chronos's own queue keys (its REDIS_PREFIX,
   * e.g. `chronos:`). A region whose namespace starts with one, or that one starts with, is refused.
   * Applied to every target, because two URLs may name the same server (aliases, proxies).
   */
  forbiddenPrefixes: readonly string[];
  /** Opens a connection from complete client options (the checked address among them). @defaultValue `new Redis(options)` */
  connect?: RedisConnect;
  /** Resolver for cache Redis host names; every address it returns is checked. @defaultValue dns.lookup */
  lookup?: LookupFunction;
  /** Fetches WARM sources of type `http`. @defaultValue an HTTP executor reading up to `maxWarmBytes` */
  httpExecutor?: Executor<HttpPayloadInput>;
  /**
   * Reads WARM sources of type `database` — the worker's DATABASE executor, so its SQL guard and
   * superuser refusal (DATABASE_ALLOWED_SQL, DATABASE_ALLOW_SUPERUSER) hold here too.
   * @defaultValue a DATABASE executor with the safe defaults
   */
  databaseExecutor?: Executor<DatabasePayloadInput>;
  /** SCAN COUNT. @defaultValue 1000 */
  scanCount?: number;
  /** Keys per pipeline or multi-key DEL/UNLINK. @defaultValue 1000 */
  batchSize?: number;
  /** Bytes of one GET value kept in the output. @defaultValue 65_536 */
  maxValueBytes?: number;
  /** Bytes of all GET values kept in the output. @defaultValue 1_048_576 */
  maxGetBytes?: number;
  /** Keys whose MEMORY USAGE STATS reads; past it, memory is extrapolated. @defaultValue 10_000 */
  maxStatsSamples?: number;
  /** Entries a WARM from HTTP may write. @defaultValue 100_000 */
  maxWarmEntries?: number;
  /** Response bytes a WARM from HTTP reads (default HTTP executor only). @defaultValue 16_777_216 */
  maxWarmBytes?: number;
  /** How long a non-async run WAITs for replicas. @defaultValue 5_000 */
  replicationTimeoutMs?: number;
  /** @defaultValue 10_000 */
  connectTimeoutMs?: number;
  /** An unused pooled connection is closed after this long. @defaultValue 300_000 */
  idleTimeoutMs?: number;
}

interface OutputBase {
  region: string;
  /** Where the region's keys live: `<keyPrefix><region>:`. */
  namespace: string;
  /** The cache Redis, without credentials. */
  target: string;
  durationMs: number;
  /** Writes of a non-async run: how many replicas acknowledged them. */
  replication?: Replication;
}

/** What each operation found and did. */
export type CacheOperationResult =
  | ({ operation: 'SET'; entries: number } & WriteCounts)
  | ({ operation: 'GET' } & GetResult)
  | { operation: 'DELETE'; requested: number; deleted: number }
  | { operation: 'INVALIDATE'; scope: 'keys'; requested: number; deleted: number }
  | { operation: 'INVALIDATE'; scope: 'region'; scanned: number; deleted: number; batches: number }
  | ({ operation: 'WARM'; source: 'http' | 'static' | 'database'; entries: number } & WriteCounts)
  | ({ operation: 'WARM'; source: 'region'; sourceRegion: string; written: number } & Omit<
      CopyCounts,
      'copied'
    >)
  | ({ operation: 'SYNC'; sourceRegion: string } & CopyCounts)
  | { operation: 'EXPIRE'; scope: 'keys'; requested: number; updated: number; missing: number }
  | { operation: 'EXPIRE'; scope: 'region'; scanned: number; updated: number }
  | ({ operation: 'STATS' } & RegionStats);

/** What a CACHE run outputs: its counts, and for GET the values. */
export type CacheOutput = OutputBase & CacheOperationResult;

/** The CACHE executor, with the pooled connections it keeps. */
export type CacheExecutor = Executor<CachePayloadInput> & {
  /** Closes every pooled connection; runs started afterwards fail with CACHE_UNAVAILABLE. */
  close(): Promise<void>;
};

const WRITES: ReadonlySet<CacheOperation> = new Set([
  'SET',
  'DELETE',
  'INVALIDATE',
  'WARM',
  'SYNC',
  'EXPIRE',
]);

function policyOf(ctx: ExecContext): CompiledOutboundPolicy {
  try {
    return compileOutboundPolicy(ctx.outbound);
  } catch (err) {
    throw new PermanentJobError(
      `the worker's outbound policy is invalid: ${(err as Error).message}`,
      'OUTBOUND_REFUSED',
      { cause: err },
    );
  }
}

function ttlOf(seconds: number | null | undefined): number | undefined {
  return seconds ?? undefined;
}

/**
 * The CACHE executor: SET, GET, DELETE, INVALIDATE, WARM, SYNC, EXPIRE and STATS on the keys of a
 * region (`<keyPrefix><region>:<key>`) in the default cache Redis or the one of `cacheConfig.url`.
 * Region-wide operations SCAN (never KEYS) and work a batch at a time, checking `ctx.signal`
 * between batches. Nothing is sent to Redis before the payload, the namespaces (against
 * `forbiddenPrefixes`) and the target (against `ctx.outbound`) have been checked.
 *
 * `async`: deletes use UNLINK instead of DEL, and writes are not followed by WAIT for replicas.
 * Either way the run ends once Redis has answered every command, so its counts are real.
 */
export function createCacheExecutor(options: CacheExecutorOptions): CacheExecutor {
  // Fails at start-up, not in the first run, when the configured URL is wrong.
  defaultRedisOptions(options.defaultUrl);
  const forbidden = [...options.forbiddenPrefixes];
  if (forbidden.some((p) => p === '')) {
    throw new TypeError('forbiddenPrefixes must not hold an empty prefix (it would forbid every key)');
  }
  const pool = new RedisPool({
    connect: options.connect,
    idleTimeoutMs: options.idleTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
  });
  const http =
    options.httpExecutor ?? createHttpExecutor({ maxBodyBytes: options.maxWarmBytes ?? 16 * 1024 * 1024 });
  const database = options.databaseExecutor ?? createDatabaseExecutor();
  const limits = {
    scanCount: options.scanCount ?? 1000,
    batchSize: options.batchSize ?? 1000,
    maxValueBytes: options.maxValueBytes ?? 65_536,
    maxGetBytes: options.maxGetBytes ?? 1_048_576,
    maxStatsSamples: options.maxStatsSamples ?? 10_000,
    maxWarmEntries: options.maxWarmEntries ?? 100_000,
    replicationTimeoutMs: options.replicationTimeoutMs ?? 5_000,
  };

  async function runCache(input: CachePayloadInput, ctx: ExecContext): Promise<ExecResult> {
    const parsed = cachePayloadSchema.safeParse(input);
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw invalidPayload(
        `invalid CACHE payload: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
      );
    }
    const p = parsed.data;
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const started = performance.now();

    const keyPrefix = p.cacheConfig?.keyPrefix ?? '';
    const warm = p.metadata?.warmSource ?? null;
    const sourceRegion = p.sourceRegion ?? (warm?.type === 'region' ? warm.region : null);
    for (const [field, value] of [
      ['cacheRegion', p.cacheRegion],
      ['sourceRegion', sourceRegion],
      ['cacheConfig.keyPrefix', keyPrefix],
    ] as const) {
      if (value && hasTemplate(value))
        throw invalidPayload(`${field} still holds an unresolved {{...}} template`);
    }
    const namespace = regionNamespace(keyPrefix, p.cacheRegion);
    const sourceNamespace = sourceRegion === null ? null : regionNamespace(keyPrefix, sourceRegion);
    for (const ns of [namespace, sourceNamespace]) {
      if (ns === null) continue;
      const hit = forbiddenOverlap(ns, forbidden);
      if (hit !== null) {
        throw new PermanentJobError(
          `the cache namespace ${JSON.stringify(ns)} overlaps ${JSON.stringify(hit)}, which is reserved ` +
            `(Chronos's own keys); choose another region or key prefix`,
          'CACHE_FORBIDDEN_NAMESPACE',
        );
      }
    }

    const target = await resolveRedisTarget(p.cacheConfig, options.defaultUrl, policyOf(ctx), options.lookup);

    // Fetched before touching Redis: a failing source leaves the cache as it was.
    let entries: WarmEntry[] | null = null;
    if (p.cacheOperation === 'SET' || (p.cacheOperation === 'WARM' && sourceRegion === null)) {
      if (warm?.type === 'http') {
        entries = await fetchHttpEntries(warm, http, ctx, limits.maxWarmEntries);
      } else if (warm?.type === 'database') {
        entries = await fetchDatabaseEntries(warm, database, ctx, limits.maxWarmEntries);
      } else {
        const given = warm?.type === 'static' ? warm.entries : p.cacheKeys;
        entries = cacheEntriesOf(given ?? []).map((e) => ({
          key: e.key,
          value: encodeValue(e.value),
          ttlSeconds: ttlOf(e.timeToLiveSeconds),
        }));
      }
    }

    const lease = pool.acquire(target);
    const run: CacheRun = {
      redis: lease.redis,
      signal: ctx.signal,
      log: ctx.log,
      unlink: p.async,
      scanCount: limits.scanCount,
      batchSize: limits.batchSize,
    };
    try {
      const result = await operate(run, p, { namespace, sourceNamespace, sourceRegion, entries });
      const replication =
        WRITES.has(p.cacheOperation) && !p.async
          ? await awaitReplicas(run, limits.replicationTimeoutMs)
          : undefined;
      const output = {
        region: p.cacheRegion,
        namespace,
        target: target.display,
        ...result,
        durationMs: Math.round(performance.now() - started),
        ...(replication ? { replication } : {}),
      } as CacheOutput;
      ctx.log.info(`cache ${p.cacheOperation} done`, summary(output, target));
      return { output };
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw cacheFailure(err, target.display);
    } finally {
      lease.release();
    }
  }

  async function operate(
    run: CacheRun,
    p: CachePayload,
    at: {
      namespace: string;
      sourceNamespace: string | null;
      sourceRegion: string | null;
      entries: WarmEntry[] | null;
    },
  ): Promise<CacheOperationResult> {
    const keys = p.cacheKeys ? cacheKeyNamesOf(p.cacheKeys) : null;
    const ttlSeconds = ttlOf(p.timeToLiveSeconds);
    const { namespace } = at;
    switch (p.cacheOperation) {
      case 'SET': {
        const entries = at.entries ?? [];
        const counts = await writeEntries(run, namespace, entries, {
          ttlSeconds,
          skipIfExists: p.skipIfExists,
        });
        return { operation: 'SET', entries: entries.length, ...counts };
      }
      case 'GET': {
        const result = await getValues(run, namespace, keys ?? [], {
          maxValueBytes: limits.maxValueBytes,
          maxTotalBytes: limits.maxGetBytes,
        });
        return { operation: 'GET', ...result };
      }
      case 'DELETE': {
        const { deleted } = await deleteKeys(run, namespace, keys ?? []);
        return { operation: 'DELETE', requested: keys?.length ?? 0, deleted };
      }
      case 'INVALIDATE': {
        if (keys) {
          const { deleted } = await deleteKeys(run, namespace, keys);
          return { operation: 'INVALIDATE', scope: 'keys', requested: keys.length, deleted };
        }
        return { operation: 'INVALIDATE', scope: 'region', ...(await deleteRegion(run, namespace)) };
      }
      case 'EXPIRE': {
        const ttl = ttlSeconds ?? 0;
        if (keys) {
          return {
            operation: 'EXPIRE',
            scope: 'keys',
            requested: keys.length,
            ...(await expireKeys(run, namespace, keys, ttl)),
          };
        }
        return { operation: 'EXPIRE', scope: 'region', ...(await expireRegion(run, namespace, ttl)) };
      }
      case 'SYNC':
      case 'WARM': {
        if (at.sourceNamespace !== null && at.sourceRegion !== null) {
          const counts = await copyKeys(run, at.sourceNamespace, namespace, {
            keys: keys ?? undefined,
            ttlSeconds,
            skipIfExists: p.skipIfExists,
          });
          if (p.cacheOperation === 'SYNC')
            return { operation: 'SYNC', sourceRegion: at.sourceRegion, ...counts };
          const { copied, ...rest } = counts;
          return {
            operation: 'WARM',
            source: 'region',
            sourceRegion: at.sourceRegion,
            written: copied,
            ...rest,
          };
        }
        const entries = at.entries ?? [];
        const counts = await writeEntries(run, namespace, entries, {
          ttlSeconds,
          skipIfExists: p.skipIfExists,
        });
        const sourceType = p.metadata?.warmSource?.type;
        const source = sourceType === 'http' || sourceType === 'database' ? sourceType : 'static';
        return { operation: 'WARM', source, entries: entries.length, ...counts };
      }
      case 'STATS':
        return { operation: 'STATS', ...(await regionStats(run, namespace, limits.maxStatsSamples)) };
    }
  }

  return Object.assign(runCache, { close: () => pool.close() });
}

/** The run log's line: the counts, not the values. */
function summary(output: CacheOutput, target: RedisTarget): Record<string, unknown> {
  const line: Record<string, unknown> = { ...output, defaultTarget: target.isDefault };
  if (output.operation === 'GET') {
    delete line['values'];
    line['missing'] = output.missing.length;
    line['notStrings'] = output.notStrings.length;
    line['truncated'] = output.truncated.length;
    line['omitted'] = output.omitted.length;
  }
  return line;
}
