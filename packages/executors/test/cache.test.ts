import { PermanentJobError, RetryableJobError, type CachePayloadInput } from '@chronos/core';
import { randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createCacheExecutor,
  type CacheExecutor,
  type CacheExecutorOptions,
  type CacheOutput,
  type RedisConnect,
} from '../src/cache.ts';
import { createDatabaseExecutor } from '../src/database.ts';
import type { LookupFunction } from '../src/outbound-guard.ts';
import { LOCAL_ONLY, NOTHING_INTERNAL, makeCtx, rejection, startServer, type TestServer } from './helpers.ts';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** The test's own connection, for seeding and checking what the executor did. */
let admin: Redis;
beforeAll(() => {
  admin = new Redis(REDIS_URL);
});
afterAll(async () => {
  await admin.quit();
});

/** Every key a test writes starts with its own random prefix (or a reserved prefix made of it). */
let id: string;
let prefix: string;
const executors: CacheExecutor[] = [];
const servers: TestServer[] = [];
beforeEach(() => {
  id = randomBytes(6).toString('hex');
  prefix = `test-cache-${id}:`;
});
afterEach(async () => {
  await Promise.all(executors.splice(0).map((e) => e.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const p of [prefix, `chronos-test-queue-${id}`, `chronos-test-nested-${id}`]) await removeKeys(p);
});

async function removeKeys(keyPrefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await admin.unlink(...keys);
  } while (cursor !== '0');
}

async function keysUnder(keyPrefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

interface SentCommand {
  name: string;
  args: string[];
}

/**
 * Opens real connections and records every command the executor sends on them (pipelines
 * included: ioredis sends each of their commands through `sendCommand`). Redis executes them all.
 */
function recording(onCommand?: (c: SentCommand) => void): {
  connect: RedisConnect;
  commands: SentCommand[];
  opened: RedisOptions[];
} {
  const commands: SentCommand[] = [];
  const opened: RedisOptions[] = [];
  const connect: RedisConnect = (options) => {
    opened.push(options);
    const redis = new Redis(options);
    const send = redis.sendCommand.bind(redis);
    // A command sent before the connection is ready passes here again when the offline queue is flushed.
    const seen = new WeakSet<object>();
    redis.sendCommand = (command, stream) => {
      if (seen.has(command)) return send(command, stream);
      seen.add(command);
      const sent = {
        name: command.name.toLowerCase(),
        args: command.args.map((a) => (Buffer.isBuffer(a) ? a.toString() : String(a))),
      };
      commands.push(sent);
      onCommand?.(sent);
      return send(command, stream);
    };
    return redis;
  };
  return { connect, commands, opened };
}

function executor(options: Partial<CacheExecutorOptions> = {}): CacheExecutor {
  const e = createCacheExecutor({
    defaultUrl: REDIS_URL,
    forbiddenPrefixes: [`chronos-test-queue-${id}:`, `chronos-test-nested-${id}:app:queues:`],
    ...options,
  });
  executors.push(e);
  return e;
}

/** Runs `payload` with the test's key prefix and returns the output. */
async function run(
  e: CacheExecutor,
  payload: Omit<CachePayloadInput, 'cacheRegion'> & { cacheRegion?: string },
  ctx = makeCtx(),
): Promise<CacheOutput> {
  const { output } = await e(
    { cacheRegion: 'users', ...payload, cacheConfig: { keyPrefix: prefix, ...payload.cacheConfig } },
    ctx,
  );
  return output as CacheOutput;
}

async function seed(keys: number, region = 'users', ttlSeconds?: number): Promise<void> {
  for (let start = 0; start < keys; start += 5000) {
    const p = admin.pipeline();
    for (let i = start; i < Math.min(keys, start + 5000); i++) {
      if (ttlSeconds) p.set(`${prefix}${region}:k${i}`, `v${i}`, 'EX', ttlSeconds);
      else p.set(`${prefix}${region}:k${i}`, `v${i}`);
    }
    await p.exec();
  }
}

describe('CACHE executor: SET and GET', () => {
  it('sets entries (objects as JSON) under <keyPrefix><region>: and gets them back', async () => {
    const e = executor();
    const set = await run(e, {
      cacheOperation: 'SET',
      cacheKeys: { a: 'plain', b: { n: 1, tags: ['x'] }, c: 42, d: null },
    });
    expect(set).toMatchObject({
      operation: 'SET',
      region: 'users',
      namespace: `${prefix}users:`,
      entries: 4,
      written: 4,
      skipped: 0,
    });
    expect(await admin.get(`${prefix}users:a`)).toBe('plain');
    expect(await admin.get(`${prefix}users:b`)).toBe('{"n":1,"tags":["x"]}');
    expect(await admin.ttl(`${prefix}users:a`)).toBe(-1);

    const ctx = makeCtx();
    const get = await run(e, { cacheOperation: 'GET', cacheKeys: ['a', 'b', 'c', 'd', 'nope'] }, ctx);
    expect(get).toMatchObject({
      operation: 'GET',
      requested: 5,
      found: 4,
      values: { a: 'plain', b: '{"n":1,"tags":["x"]}', c: '42', d: 'null', nope: null },
      missing: ['nope'],
      truncated: [],
      omitted: [],
    });
    // The run log gets the counts, never the values.
    const line = ctx.log.lines.find((l) => l.msg === 'cache GET done');
    expect(line?.context).toMatchObject({ operation: 'GET', found: 4, missing: 1 });
    expect(line?.context).not.toHaveProperty('values');
  });

  it('applies timeToLiveSeconds, and an entry’s own TTL before it', async () => {
    const e = executor();
    await run(e, {
      cacheOperation: 'SET',
      cacheKeys: [
        { key: 'short', value: 1, timeToLiveSeconds: 30 },
        { key: 'default', value: 2 },
      ],
      timeToLiveSeconds: 3600,
    });
    const short = await admin.ttl(`${prefix}users:short`);
    const long = await admin.ttl(`${prefix}users:default`);
    expect(short).toBeGreaterThan(25);
    expect(short).toBeLessThanOrEqual(30);
    expect(long).toBeGreaterThan(3590);
    expect(long).toBeLessThanOrEqual(3600);
  });

  it('with skipIfExists, keeps the keys that exist and counts them as skipped', async () => {
    await admin.set(`${prefix}users:a`, 'old');
    const out = await run(executor(), {
      cacheOperation: 'SET',
      cacheKeys: { a: 'new', b: 'new' },
      skipIfExists: true,
      timeToLiveSeconds: 60,
    });
    expect(out).toMatchObject({ written: 1, skipped: 1 });
    expect(await admin.get(`${prefix}users:a`)).toBe('old');
    expect(await admin.ttl(`${prefix}users:a`)).toBe(-1);
    expect(await admin.get(`${prefix}users:b`)).toBe('new');
  });

  it('caps GET values: each at maxValueBytes, all at maxGetBytes, and says which', async () => {
    await admin.set(`${prefix}users:big`, 'x'.repeat(100));
    await admin.set(`${prefix}users:small`, 'y'.repeat(10));
    await admin.set(`${prefix}users:later`, 'z'.repeat(10));
    await admin.hset(`${prefix}users:hash`, 'f', 'v');
    const out = await run(executor({ maxValueBytes: 50, maxGetBytes: 65 }), {
      cacheOperation: 'GET',
      cacheKeys: ['big', 'small', 'hash', 'later'],
    });
    expect(out).toMatchObject({
      found: 4,
      values: { big: 'x'.repeat(50), small: 'y'.repeat(10), hash: null, later: null },
      truncated: ['big'],
      omitted: ['later'],
      notStrings: [{ key: 'hash', type: 'hash' }],
      missing: [],
    });
  });
});

describe('CACHE executor: DELETE, INVALIDATE, EXPIRE', () => {
  it('deletes listed keys with DEL, or UNLINK when async, and WAITs for replicas only when not async', async () => {
    await seed(4);
    const rec = recording();
    const e = executor({ connect: rec.connect });
    const sync = await run(e, { cacheOperation: 'DELETE', cacheKeys: ['k0', 'k1', 'gone'] });
    expect(sync).toMatchObject({ operation: 'DELETE', requested: 3, deleted: 2 });
    expect(sync.replication).toEqual({ replicas: 0, acknowledged: 0 });
    const async = await run(e, { cacheOperation: 'DELETE', cacheKeys: ['k2'], async: true });
    expect(async).toMatchObject({ deleted: 1 });
    expect(async.replication).toBeUndefined();

    const names = rec.commands.map((c) => c.name);
    expect(names.filter((n) => n === 'del')).toHaveLength(1);
    expect(names.filter((n) => n === 'unlink')).toHaveLength(1);
    expect(await keysUnder(prefix)).toEqual([`${prefix}users:k3`]);
  });

  it('invalidates listed keys', async () => {
    await seed(3);
    const out = await run(executor(), { cacheOperation: 'INVALIDATE', cacheKeys: ['k0', 'k2'] });
    expect(out).toMatchObject({ scope: 'keys', requested: 2, deleted: 2 });
    expect(await keysUnder(prefix)).toEqual([`${prefix}users:k1`]);
  });

  it('invalidates a region of 20k keys by SCAN (COUNT 1000) in batches, never KEYS, and nothing else', async () => {
    await seed(20_000);
    await admin.set(`${prefix}users:eu:nested`, 'in a sub-region');
    await admin.set(`${prefix}users2:k0`, 'a sibling region');
    await admin.set(`${prefix}user:k0`, 'a shorter region');
    const rec = recording();
    const out = await run(executor({ connect: rec.connect }), { cacheOperation: 'INVALIDATE', async: true });

    // SCAN may return a key twice while Redis resizes its table: scanned can exceed the key count,
    // deleted cannot.
    expect(out).toMatchObject({ scope: 'region', deleted: 20_001 });
    expect((out as { scanned: number }).scanned).toBeGreaterThanOrEqual(20_001);
    expect((out as { batches: number }).batches).toBeGreaterThanOrEqual(21);
    expect(await keysUnder(`${prefix}users:`)).toEqual([]);
    expect(await keysUnder(prefix)).toEqual([`${prefix}user:k0`, `${prefix}users2:k0`]);

    const names = rec.commands.map((c) => c.name);
    expect(names).not.toContain('keys');
    expect(names).not.toContain('flushdb');
    const scans = rec.commands.filter((c) => c.name === 'scan');
    expect(scans.length).toBeGreaterThan(1);
    for (const s of scans) expect(s.args.slice(1)).toEqual(['MATCH', `${prefix}users:*`, 'COUNT', '1000']);
    const unlinks = rec.commands.filter((c) => c.name === 'unlink');
    expect(unlinks.length).toBeGreaterThanOrEqual(21);
    expect(Math.max(...unlinks.map((u) => u.args.length))).toBeLessThanOrEqual(1000);
  });

  it('escapes glob characters of the key prefix in the SCAN pattern', async () => {
    // The schema refuses glob characters; a prefix that reaches the executor still cannot widen the match.
    const rec = recording();
    const e = executor({ connect: rec.connect });
    await run(e, { cacheOperation: 'STATS', cacheRegion: 'a.b-c_d:e' });
    expect(rec.commands.find((c) => c.name === 'scan')?.args[2]).toBe(`${prefix}a.b-c_d:e:*`);
  });

  it('expires listed keys, or the whole region', async () => {
    await seed(5);
    const e = executor();
    const listed = await run(e, {
      cacheOperation: 'EXPIRE',
      cacheKeys: ['k0', 'nope'],
      timeToLiveSeconds: 100,
    });
    expect(listed).toMatchObject({ scope: 'keys', requested: 2, updated: 1, missing: 1 });
    expect(await admin.ttl(`${prefix}users:k0`)).toBeGreaterThan(90);
    expect(await admin.ttl(`${prefix}users:k1`)).toBe(-1);

    const region = await run(e, { cacheOperation: 'EXPIRE', timeToLiveSeconds: 500 });
    expect(region).toMatchObject({ scope: 'region', scanned: 5, updated: 5 });
    for (let i = 0; i < 5; i++) expect(await admin.ttl(`${prefix}users:k${i}`)).toBeGreaterThan(490);
  });
});

describe('CACHE executor: STATS', () => {
  it('counts the region’s keys and sums their memory', async () => {
    await seed(250);
    await admin.set(`${prefix}other:k`, 'not counted');
    const out = await run(executor(), { cacheOperation: 'STATS' });
    expect(out).toMatchObject({
      operation: 'STATS',
      keyCount: 250,
      sampledKeys: 250,
      memoryEstimated: false,
    });
    expect((out as { memoryBytes: number }).memoryBytes).toBeGreaterThan(250 * 10);
    expect(out.replication).toBeUndefined();
  });

  it('estimates memory from a capped sample', async () => {
    await seed(3000);
    const out = await run(executor({ maxStatsSamples: 100 }), { cacheOperation: 'STATS' });
    expect(out).toMatchObject({ sampledKeys: 100, memoryEstimated: true });
    // Counted by SCAN, which may return a key twice while Redis resizes its table.
    expect((out as { keyCount: number }).keyCount).toBeGreaterThanOrEqual(3000);
    expect((out as { keyCount: number }).keyCount).toBeLessThan(3100);
    expect((out as { memoryBytes: number }).memoryBytes).toBeGreaterThan(3000 * 10);
  });
});

describe('CACHE executor: SYNC and WARM', () => {
  async function seedSource(): Promise<void> {
    await admin.set(`${prefix}source:str`, 'hello', 'EX', 1000);
    await admin.hset(`${prefix}source:hash`, { a: '1', b: '2' });
    await admin.rpush(`${prefix}source:list`, 'x', 'y');
    await admin.pexpire(`${prefix}source:list`, 50_000);
  }

  it('SYNC copies every type with its remaining TTL into the region, replacing what is there', async () => {
    await seedSource();
    await admin.set(`${prefix}users:str`, 'stale');
    await admin.set(`${prefix}users:only-here`, 'kept');
    const out = await run(executor(), { cacheOperation: 'SYNC', sourceRegion: 'source' });
    expect(out).toMatchObject({
      operation: 'SYNC',
      sourceRegion: 'source',
      scanned: 3,
      copied: 3,
      skipped: 0,
    });

    expect(await admin.get(`${prefix}users:str`)).toBe('hello');
    expect(await admin.hgetall(`${prefix}users:hash`)).toEqual({ a: '1', b: '2' });
    expect(await admin.lrange(`${prefix}users:list`, 0, -1)).toEqual(['x', 'y']);
    const strTtl = await admin.ttl(`${prefix}users:str`);
    expect(strTtl).toBeGreaterThan(990);
    expect(strTtl).toBeLessThanOrEqual(1000);
    const listTtl = await admin.pttl(`${prefix}users:list`);
    expect(listTtl).toBeGreaterThan(45_000);
    expect(listTtl).toBeLessThanOrEqual(50_000);
    expect(await admin.ttl(`${prefix}users:hash`)).toBe(-1);
    expect(await admin.get(`${prefix}users:only-here`)).toBe('kept');
    // The source is left as it was.
    expect(await admin.get(`${prefix}source:str`)).toBe('hello');
  });

  it('SYNC with skipIfExists keeps existing keys; with keys listed copies only those; a TTL replaces the source’s', async () => {
    await seedSource();
    await admin.set(`${prefix}users:str`, 'mine');
    const e = executor();
    const skip = await run(e, { cacheOperation: 'SYNC', sourceRegion: 'source', skipIfExists: true });
    expect(skip).toMatchObject({ copied: 2, skipped: 1 });
    expect(await admin.get(`${prefix}users:str`)).toBe('mine');

    await removeKeys(`${prefix}users:`);
    const listed = await run(e, {
      cacheOperation: 'SYNC',
      sourceRegion: 'source',
      cacheKeys: ['hash', 'absent'],
      timeToLiveSeconds: 77,
    });
    expect(listed).toMatchObject({ scanned: 2, copied: 1, missing: 1 });
    expect(await keysUnder(`${prefix}users:`)).toEqual([`${prefix}users:hash`]);
    expect(await admin.ttl(`${prefix}users:hash`)).toBeGreaterThan(70);
  });

  it('WARM from a region (sourceRegion or metadata.warmSource) copies its keys', async () => {
    await seedSource();
    const e = executor();
    const out = await run(e, { cacheOperation: 'WARM', sourceRegion: 'source', skipIfExists: true });
    expect(out).toMatchObject({ operation: 'WARM', source: 'region', written: 3, skipped: 0 });
    expect(await admin.get(`${prefix}users:str`)).toBe('hello');

    const again = await run(e, {
      cacheOperation: 'WARM',
      cacheRegion: 'copy',
      metadata: { warmSource: { type: 'region', region: 'source' } },
    });
    expect(again).toMatchObject({ source: 'region', sourceRegion: 'source', written: 3 });
    expect(await admin.lrange(`${prefix}copy:list`, 0, -1)).toEqual(['x', 'y']);
  });

  it('WARM from static entries, in cacheKeys or in metadata.warmSource', async () => {
    const e = executor();
    const a = await run(e, { cacheOperation: 'WARM', cacheKeys: { a: 1 }, timeToLiveSeconds: 60 });
    expect(a).toMatchObject({ source: 'static', entries: 1, written: 1 });
    const b = await run(e, {
      cacheOperation: 'WARM',
      metadata: { warmSource: { type: 'static', entries: [{ key: 'b', value: { x: true } }] } },
    });
    expect(b).toMatchObject({ source: 'static', entries: 1, written: 1 });
    expect(await admin.get(`${prefix}users:a`)).toBe('1');
    expect(await admin.ttl(`${prefix}users:a`)).toBeGreaterThan(50);
    expect(await admin.get(`${prefix}users:b`)).toBe('{"x":true}');
  });

  it('WARM from a database query: rows become entries, read in a read-only transaction', async () => {
    // The test server's only account is the superuser: allowed here explicitly, as a worker would.
    const e = executor({ databaseExecutor: createDatabaseExecutor({ allowSuperuser: true }) });
    const out = await run(
      e,
      {
        cacheOperation: 'WARM',
        metadata: {
          warmSource: {
            type: 'database',
            databaseUrl: 'postgresql://postgres@127.0.0.1:5432/postgres',
            query: "SELECT 'k' || g AS key, json_build_object('n', g) AS value FROM generate_series(1, :n) g",
            parameters: { n: 3 },
          },
        },
      },
      makeCtx({ outbound: LOCAL_ONLY }),
    );
    expect(out).toMatchObject({ source: 'database', entries: 3, written: 3 });
    expect(await admin.get(`${prefix}users:k2`)).toBe('{"n":2}');
    // The query runs read-only: a write in it fails the run and writes nothing to the cache.
    const refused = await rejection(() =>
      run(
        e,
        {
          cacheOperation: 'WARM',
          cacheRegion: 'never',
          metadata: {
            warmSource: {
              type: 'database',
              databaseUrl: 'postgresql://postgres@127.0.0.1:5432/postgres',
              query: 'CREATE TABLE chronos_warm_should_not_exist (key text, value text)',
            },
          },
        },
        makeCtx({ outbound: LOCAL_ONLY }),
      ),
    );
    expect(refused).toMatchObject({ code: 'READ_ONLY_VIOLATION' });
    expect(await admin.exists(`${prefix}never:x`)).toBe(0);
  });

  it('WARM from HTTP reads records at entriesPath through the outbound policy', async () => {
    const s = await startServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          data: {
            items: [
              { id: 7, name: 'Ada' },
              { id: 'x', name: 'Grace' },
            ],
          },
          auth: req.headers['authorization'] ?? null,
        }),
      );
    });
    servers.push(s);
    const out = await run(
      executor(),
      {
        cacheOperation: 'WARM',
        timeToLiveSeconds: 120,
        metadata: {
          warmSource: {
            type: 'http',
            httpUrl: `${s.origin}/users`,
            httpAuth: { type: 'BEARER', token: 't0ken' },
            entriesPath: 'data.items',
            keyField: 'id',
            valueField: '.',
          },
        },
      },
      makeCtx({ outbound: LOCAL_ONLY }),
    );
    expect(out).toMatchObject({ source: 'http', entries: 2, written: 2 });
    expect(s.requests[0]?.headers['authorization']).toBe('Bearer t0ken');
    expect(await admin.get(`${prefix}users:7`)).toBe('{"id":7,"name":"Ada"}');
    expect(await admin.get(`${prefix}users:x`)).toBe('{"id":"x","name":"Grace"}');
    expect(await admin.ttl(`${prefix}users:7`)).toBeGreaterThan(110);
  });

  it('WARM from HTTP writes nothing when the source is refused or not usable', async () => {
    const s = await startServer((_req, res) => res.end('not json'));
    servers.push(s);
    const warm = (ctx = makeCtx()) =>
      run(
        executor(),
        { cacheOperation: 'WARM', metadata: { warmSource: { type: 'http', httpUrl: s.origin } } },
        ctx,
      );
    const refused = await rejection(() => warm(makeCtx({ outbound: NOTHING_INTERNAL })));
    expect(refused).toBeInstanceOf(PermanentJobError);
    expect(refused.code).toBe('OUTBOUND_REFUSED');
    expect(s.requests).toHaveLength(0);

    const invalid = await rejection(() => warm());
    expect(invalid.code).toBe('CACHE_WARM_SOURCE_INVALID');
    expect(await keysUnder(prefix)).toEqual([]);
  });
});

describe('CACHE executor: what it never touches', () => {
  it('refuses a region in or above a reserved prefix before connecting, and the queue keys survive', async () => {
    const queueKey = `chronos-test-queue-${id}:chronos-http:meta`;
    const nestedKey = `chronos-test-nested-${id}:app:queues:wait`;
    await admin.set(queueKey, 'queue');
    await admin.set(nestedKey, 'queue');
    const rec = recording();
    const e = executor({ connect: rec.connect });
    const attempts: CachePayloadInput[] = [
      { cacheOperation: 'INVALIDATE', cacheRegion: `chronos-test-queue-${id}` },
      { cacheOperation: 'DELETE', cacheRegion: `chronos-test-queue-${id}:chronos-http`, cacheKeys: ['meta'] },
      {
        cacheOperation: 'INVALIDATE',
        cacheRegion: 'x',
        cacheConfig: { keyPrefix: `chronos-test-queue-${id}:` },
      },
      // Above the reserved prefix: a region-wide SCAN of it would sweep the queue keys up.
      { cacheOperation: 'INVALIDATE', cacheRegion: `chronos-test-nested-${id}:app` },
      { cacheOperation: 'SYNC', cacheRegion: 'copy', sourceRegion: `chronos-test-queue-${id}` },
      {
        cacheOperation: 'WARM',
        cacheRegion: 'copy',
        metadata: { warmSource: { type: 'region', region: `chronos-test-queue-${id}` } },
      },
      // Another URL naming the same server changes nothing.
      {
        cacheOperation: 'INVALIDATE',
        cacheRegion: `chronos-test-queue-${id}`,
        cacheConfig: { url: 'redis://127.0.0.1:6379' },
      },
    ];
    for (const payload of attempts) {
      const err = await rejection(() => e(payload, makeCtx()));
      expect(err, JSON.stringify(payload)).toBeInstanceOf(PermanentJobError);
      expect(err.code, JSON.stringify(payload)).toBe('CACHE_FORBIDDEN_NAMESPACE');
    }
    expect(rec.opened).toHaveLength(0);
    expect(await admin.get(queueKey)).toBe('queue');
    expect(await admin.get(nestedKey)).toBe('queue');

    // A neighbour that merely shares characters is fine.
    await run(e, { cacheOperation: 'STATS', cacheRegion: `chronos-test-queue-${id}-cache` });
    expect(await admin.get(queueKey)).toBe('queue');
  });

  it('refuses an empty forbidden prefix, which would forbid everything', () => {
    expect(() => createCacheExecutor({ defaultUrl: REDIS_URL, forbiddenPrefixes: [''] })).toThrow(TypeError);
  });

  it('refuses a cacheConfig.url to an internal address without connecting', async () => {
    const rec = recording();
    const e = executor({ connect: rec.connect });
    for (const url of ['redis://10.1.2.3:6379', 'redis://[::1]:6379', 'rediss://metadata.google.internal']) {
      const err = await rejection(() =>
        e(
          { cacheOperation: 'STATS', cacheRegion: 'users', cacheConfig: { url } },
          makeCtx({ outbound: NOTHING_INTERNAL }),
        ),
      );
      expect(err.code, url).toBe('OUTBOUND_REFUSED');
    }
    // The default cache Redis is the worker's own configuration: always allowed.
    await run(e, { cacheOperation: 'STATS' }, makeCtx({ outbound: NOTHING_INTERNAL }));
    expect(rec.opened).toHaveLength(1);
    expect(rec.opened[0]).toMatchObject({ host: '127.0.0.1', port: 6379 });
  });

  it('checks every address a host name resolves to, and dials the checked address', async () => {
    const calls: string[] = [];
    const resolvingTo =
      (...addresses: string[]): LookupFunction =>
      (hostname, _options, callback) => {
        calls.push(hostname);
        const all: LookupAddress[] = addresses.map((address) => ({ address, family: 4 }));
        (callback as unknown as (err: null, all: LookupAddress[]) => void)(null, all);
      };
    const rec = recording();
    const refused = executor({ connect: rec.connect, lookup: resolvingTo('93.184.216.34', '10.0.0.1') });
    const err = await rejection(() =>
      refused(
        { cacheOperation: 'STATS', cacheRegion: 'users', cacheConfig: { url: 'redis://cache.example:6379' } },
        makeCtx({ outbound: NOTHING_INTERNAL }),
      ),
    );
    expect(err.code).toBe('OUTBOUND_REFUSED');
    expect(calls).toEqual(['cache.example']);
    expect(rec.opened).toHaveLength(0);

    const allowed = executor({ connect: rec.connect, lookup: resolvingTo('127.0.0.1') });
    await run(
      allowed,
      { cacheOperation: 'STATS', cacheConfig: { url: 'redis://cache.example:6379' } },
      makeCtx({ outbound: { allowHosts: [], allowCidrs: ['127.0.0.1/32'] } }),
    );
    expect(rec.opened[0]).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
  });

  it('connects to an allowed cacheConfig.url, one pooled connection per target until close()', async () => {
    const rec = recording();
    const e = executor({ connect: rec.connect });
    // The same server as the default, by another URL: a target of its own, checked by the policy.
    const url = 'redis://127.0.0.1:6379/0';
    const ctx = () => makeCtx({ outbound: LOCAL_ONLY });
    const set = await run(e, { cacheOperation: 'SET', cacheKeys: { a: 1 }, cacheConfig: { url } }, ctx());
    expect(set.target).toBe('redis://127.0.0.1:6379/0');
    const get = await run(e, { cacheOperation: 'GET', cacheKeys: ['a'], cacheConfig: { url } }, ctx());
    expect(get).toMatchObject({ values: { a: '1' } });
    await Promise.all([run(e, { cacheOperation: 'STATS' }), run(e, { cacheOperation: 'STATS' })]);
    expect(rec.opened).toHaveLength(2);
    expect(rec.opened[0]).toMatchObject({ host: '127.0.0.1', db: 0 });
    expect(rec.opened[1]).toMatchObject({ host: '127.0.0.1' });
    await run(e, { cacheOperation: 'STATS', cacheConfig: { db: 1 } });
    expect(rec.opened).toHaveLength(3);
    expect(rec.opened[2]).toMatchObject({ db: 1 });

    await e.close();
    const closed = await rejection(() => run(e, { cacheOperation: 'STATS' }));
    expect(closed).toBeInstanceOf(RetryableJobError);
    expect(closed.code).toBe('CACHE_UNAVAILABLE');
  });

  it('closes a pooled connection left idle, and opens a new one when needed', async () => {
    const rec = recording();
    const e = executor({ connect: rec.connect, idleTimeoutMs: 50 });
    await run(e, { cacheOperation: 'STATS' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await run(e, { cacheOperation: 'STATS' });
    expect(rec.opened).toHaveLength(2);
    expect(rec.commands.filter((c) => c.name === 'quit')).toHaveLength(1);
  });

  it('fails with a retryable NETWORK error when the cache Redis cannot be reached', async () => {
    const err = await rejection(() =>
      run(executor(), { cacheOperation: 'STATS', cacheConfig: { url: 'redis://127.0.0.1:1' } }),
    );
    expect(err).toBeInstanceOf(RetryableJobError);
    expect(err.code).toBe('NETWORK');
    expect(err.message).toContain('redis://127.0.0.1:1/0');
  });

  it('refuses an invalid payload or an unresolved template before connecting', async () => {
    const rec = recording();
    const e = executor({ connect: rec.connect });
    const invalid = await rejection(() => e({ cacheOperation: 'GET', cacheRegion: 'a*' }, makeCtx()));
    expect(invalid.code).toBe('INVALID_PAYLOAD');
    expect(invalid.message).toContain('cacheRegion: must not contain the glob characters');
    expect(invalid.message).toContain('cacheKeys: must list the keys to get');
    const template = await rejection(() =>
      e({ cacheOperation: 'STATS', cacheRegion: '{{var.REGION}}' }, makeCtx()),
    );
    expect(template.code).toBe('INVALID_PAYLOAD');
    expect(template.message).toContain('cacheRegion still holds an unresolved');
    expect(rec.opened).toHaveLength(0);
  });
});

describe('CACHE executor: aborts', () => {
  it('stops between batches when the run is aborted', async () => {
    await seed(5000);
    const controller = new AbortController();
    const reason = new Error('run timed out');
    const rec = recording((c) => {
      if (c.name === 'del') controller.abort(reason);
    });
    const e = executor({ connect: rec.connect });
    const err = await rejection(() =>
      run(e, { cacheOperation: 'INVALIDATE' }, makeCtx({ signal: controller.signal })),
    );
    expect(err).toBe(reason);
    expect(rec.commands.filter((c) => c.name === 'del')).toHaveLength(1);
    const left = (await keysUnder(`${prefix}users:`)).length;
    expect(left).toBeGreaterThanOrEqual(3000);
    expect(left).toBeLessThan(5000);
  });

  it('does nothing when the run is aborted before it starts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    const rec = recording();
    const err = await rejection(() =>
      run(
        executor({ connect: rec.connect }),
        { cacheOperation: 'STATS' },
        makeCtx({ signal: controller.signal }),
      ),
    );
    expect(err.message).toBe('cancelled');
    expect(rec.opened).toHaveLength(0);
  });
});
