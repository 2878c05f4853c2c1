import { describe, expect, it } from 'vitest';
import {
  cacheEntriesOf,
  cacheKeyNamesOf,
  cacheKeysKind,
  cachePayloadSchema,
  regionsOverlap,
} from '../../src/payloads/cache-payload.ts';

/** `path → message` of every issue, for compact assertions. */
function issues(input: unknown): Record<string, string> {
  const result = cachePayloadSchema.safeParse(input);
  if (result.success) return {};
  return Object.fromEntries(result.error.issues.map((i) => [i.path.join('.'), i.message]));
}

const base = { cacheRegion: 'users' };

describe('cachePayloadSchema', () => {
  it('accepts each operation in its minimal form and applies defaults', () => {
    expect(cachePayloadSchema.parse({ ...base, cacheOperation: 'STATS' })).toEqual({
      ...base,
      cacheOperation: 'STATS',
      skipIfExists: false,
      async: false,
    });
    const ok = [
      { cacheOperation: 'SET', cacheKeys: { a: 1, b: 'two', c: { nested: [true, null] } } },
      { cacheOperation: 'SET', cacheKeys: [{ key: 'a', value: 'x', timeToLiveSeconds: 60 }] },
      { cacheOperation: 'GET', cacheKeys: ['a', 'b'] },
      { cacheOperation: 'DELETE', cacheKeys: ['a'] },
      { cacheOperation: 'INVALIDATE' },
      { cacheOperation: 'INVALIDATE', cacheKeys: ['a'] },
      { cacheOperation: 'EXPIRE', timeToLiveSeconds: 60 },
      { cacheOperation: 'EXPIRE', timeToLiveSeconds: 31_536_000, cacheKeys: ['a'] },
      { cacheOperation: 'SYNC', sourceRegion: 'users-staging' },
      { cacheOperation: 'WARM', sourceRegion: 'users-staging', cacheKeys: ['a'] },
      { cacheOperation: 'WARM', cacheKeys: { a: 1 }, timeToLiveSeconds: 5, skipIfExists: true },
      { cacheOperation: 'WARM', metadata: { warmSource: { type: 'region', region: 'other' } } },
      { cacheOperation: 'WARM', metadata: { warmSource: { type: 'static', entries: { a: 1 } } } },
      {
        cacheOperation: 'WARM',
        metadata: {
          team: 'x',
          warmSource: {
            type: 'http',
            httpUrl: 'https://api.example/users',
            httpAuth: { type: 'BEARER', token: '{{var.TOKEN}}' },
            entriesPath: 'data.items',
            keyField: 'id',
            valueField: '.',
          },
        },
      },
    ];
    for (const p of ok) expect(issues({ ...base, ...p }), JSON.stringify(p)).toEqual({});
  });

  it('accepts nulls as stored in job_payloads', () => {
    expect(
      issues({
        ...base,
        cacheOperation: 'INVALIDATE',
        cacheKeys: null,
        timeToLiveSeconds: null,
        sourceRegion: null,
        cacheConfig: null,
        timeoutSeconds: null,
        metadata: null,
      }),
    ).toEqual({});
    expect(
      issues({
        ...base,
        cacheOperation: 'STATS',
        cacheConfig: { url: null, keyPrefix: null, db: null },
        metadata: { warmSource: null },
      }),
    ).toEqual({});
  });

  it('keeps regions and key prefixes literal namespaces, never glob patterns', () => {
    const op = { cacheOperation: 'STATS' };
    for (const region of ['users', 'a.b:c-d_1', 'users:eu', '{{var.REGION}}']) {
      expect(issues({ ...op, cacheRegion: region }), region).toEqual({});
    }
    for (const region of ['users*', 'a?', 'a[bc]', 'a\\b', '{{var.X}}*']) {
      expect(issues({ ...op, cacheRegion: region }), region).toEqual({
        cacheRegion: 'must not contain the glob characters * ? [ ] \\',
      });
    }
    expect(issues({ ...op, cacheRegion: 'with space' })).toEqual({
      cacheRegion: 'may only contain letters, digits and _ . : -',
    });
    expect(issues({ ...op, cacheRegion: '' })).toEqual({ cacheRegion: 'is required' });
    expect(issues({ ...op })).toHaveProperty('cacheRegion');
    expect(issues({ ...op, cacheRegion: 'x'.repeat(256) })).toHaveProperty('cacheRegion');
    expect(issues({ ...op, ...base, cacheConfig: { keyPrefix: 'app*' } })).toEqual({
      'cacheConfig.keyPrefix': 'must not contain the glob characters * ? [ ] \\',
    });
    expect(issues({ ...op, ...base, cacheConfig: { keyPrefix: '' } })).toEqual({});
  });

  it('checks cacheConfig: redis(s) URLs without query options, one database, no unknown fields', () => {
    const stats = { ...base, cacheOperation: 'STATS' };
    for (const url of [
      'redis://cache.example:6379',
      'rediss://:{{var.PASSWORD}}@cache.example/2',
      'redis://user:pw@10.0.0.5/0',
      '{{var.CACHE_URL}}',
    ]) {
      expect(issues({ ...stats, cacheConfig: { url } }), url).toEqual({});
    }
    expect(issues({ ...stats, cacheConfig: { url: 'http://cache.example' } })).toEqual({
      'cacheConfig.url': 'must use redis or rediss, not http',
    });
    expect(issues({ ...stats, cacheConfig: { url: 'cache.example:6379' } })).toHaveProperty(
      'cacheConfig.url',
    );
    expect(issues({ ...stats, cacheConfig: { url: 'redis://h/?path=/tmp/redis.sock' } })).toEqual({
      'cacheConfig.url': 'must not carry query options or a fragment',
    });
    expect(issues({ ...stats, cacheConfig: { url: 'redis://h/x' } })).toEqual({
      'cacheConfig.url': 'may only have a database number as its path (/0)',
    });
    expect(issues({ ...stats, cacheConfig: { url: 'redis://h/1', db: 2 } })).toEqual({
      'cacheConfig.db': 'the url already names a database',
    });
    expect(issues({ ...stats, cacheConfig: { url: 'redis://h', db: 2 } })).toEqual({});
    expect(issues({ ...stats, cacheConfig: { db: 256 } })).toEqual({ 'cacheConfig.db': 'must be 0 to 255' });
    expect(issues({ ...stats, cacheConfig: { prefix: 'x' } })).toHaveProperty('cacheConfig');
  });

  it('reports bad keys and entries at their own paths', () => {
    const set = { ...base, cacheOperation: 'SET' };
    expect(
      issues({ ...set, cacheKeys: [{ key: 'a', value: 1 }, { key: '' }, 5, { key: 'a', value: 2 }] }),
    ).toEqual({
      'cacheKeys.1.key': 'must not be empty',
      'cacheKeys.1.value': 'must be a string or a JSON value',
      'cacheKeys.2': 'must be a key (a string) or a { key, value } entry',
      'cacheKeys.3': 'duplicate key "a"',
    });
    expect(issues({ ...set, cacheKeys: [{ key: 'a', value: 1, ttl: 5 }] })).toHaveProperty('cacheKeys.0');
    expect(issues({ ...set, cacheKeys: [{ key: 'a', value: 1, timeToLiveSeconds: 0 }] })).toEqual({
      'cacheKeys.0.timeToLiveSeconds': 'must be 1 to 31536000 seconds',
    });
    expect(issues({ ...set, cacheKeys: { a: 1, '': 2, b: undefined } })).toEqual({
      'cacheKeys.': 'must not be empty',
      'cacheKeys.b': 'must be a string or a JSON value',
    });
    expect(issues({ ...set, cacheKeys: 'a' })).toEqual({
      cacheKeys: 'must be a list of keys, a list of { key, value } entries, or an object of key: value',
    });
    expect(
      issues({ ...base, cacheOperation: 'GET', cacheKeys: ['a', { key: 'b', value: 1 }] }),
    ).toMatchObject({
      cacheKeys: 'must list either keys or { key, value } entries, not both',
    });
    expect(issues({ ...base, cacheOperation: 'GET', cacheKeys: ['a', 'a'] })).toEqual({
      'cacheKeys.1': 'duplicate key "a"',
    });
    expect(
      issues({
        ...base,
        cacheOperation: 'GET',
        cacheKeys: Array.from({ length: 10_001 }, (_, i) => `k${i}`),
      }),
    ).toEqual({ cacheKeys: 'must list at most 10000 keys' });
    expect(issues({ ...base, cacheOperation: 'GET', cacheKeys: ['x'.repeat(1025)] })).toEqual({
      'cacheKeys.0': 'must be at most 1024 characters',
    });
  });

  it('asks each operation for what it needs', () => {
    const t = (p: Record<string, unknown>) => issues({ ...base, ...p });
    expect(t({ cacheOperation: 'FLUSH' })).toHaveProperty('cacheOperation');
    expect(t({ cacheOperation: 'SET', cacheKeys: ['a'] })).toEqual({
      cacheKeys: 'must hold the { key, value } entries to set (a list, or an object of key: value)',
    });
    expect(t({ cacheOperation: 'SET' })).toHaveProperty('cacheKeys');
    expect(t({ cacheOperation: 'GET' })).toEqual({ cacheKeys: 'must list the keys to get' });
    expect(t({ cacheOperation: 'DELETE', cacheKeys: [] })).toEqual({
      cacheKeys: 'must list the keys to delete',
    });
    expect(t({ cacheOperation: 'DELETE', cacheKeys: { a: 1 } })).toEqual({
      cacheKeys: 'must list the keys to delete',
    });
    // An empty list must not silently mean "the whole region".
    expect(t({ cacheOperation: 'INVALIDATE', cacheKeys: [] })).toEqual({
      cacheKeys: 'must list at least one key, or be omitted to invalidate the whole region',
    });
    expect(t({ cacheOperation: 'EXPIRE', cacheKeys: ['a'] })).toEqual({
      timeToLiveSeconds: 'is required for EXPIRE',
    });
    expect(t({ cacheOperation: 'SYNC' })).toEqual({ sourceRegion: 'is required for SYNC' });
    expect(t({ cacheOperation: 'SYNC', sourceRegion: 'users' })).toEqual({
      sourceRegion: 'the source region must not overlap cacheRegion (one would contain the other)',
    });
    expect(t({ cacheOperation: 'SYNC', sourceRegion: 'users:eu' })).toHaveProperty('sourceRegion');
    expect(t({ cacheOperation: 'SYNC', sourceRegion: 'users-eu' })).toEqual({});
    expect(t({ cacheOperation: 'STATS', cacheKeys: ['a'] })).toEqual({
      cacheKeys: 'must be omitted for STATS (it covers the whole region)',
    });
    expect(t({ cacheOperation: 'WARM' })).toEqual({
      cacheKeys: 'WARM needs a source: metadata.warmSource, sourceRegion, or { key, value } entries here',
    });
    expect(
      t({
        cacheOperation: 'WARM',
        sourceRegion: 'a',
        metadata: { warmSource: { type: 'region', region: 'b' } },
      }),
    ).toEqual({ sourceRegion: 'give the WARM source once: sourceRegion or metadata.warmSource' });
    expect(
      t({
        cacheOperation: 'WARM',
        cacheKeys: { a: 1 },
        metadata: { warmSource: { type: 'http', httpUrl: 'https://a.example' } },
      }),
    ).toEqual({ cacheKeys: 'must be omitted when WARM reads from http' });
    expect(
      t({ cacheOperation: 'WARM', metadata: { warmSource: { type: 'region', region: 'users:eu' } } }),
    ).toEqual({
      'metadata.warmSource.region':
        'the source region must not overlap cacheRegion (one would contain the other)',
    });
  });

  it('refuses options that do not apply to the operation', () => {
    const t = (p: Record<string, unknown>) => issues({ ...base, ...p });
    expect(t({ cacheOperation: 'GET', cacheKeys: ['a'], timeToLiveSeconds: 5, skipIfExists: true })).toEqual({
      timeToLiveSeconds: 'only applies to SET, WARM, SYNC and EXPIRE',
      skipIfExists: 'only applies to SET, WARM and SYNC',
    });
    expect(t({ cacheOperation: 'INVALIDATE', sourceRegion: 'x' })).toEqual({
      sourceRegion: 'only applies to SYNC and WARM',
    });
    expect(
      t({ cacheOperation: 'STATS', metadata: { warmSource: { type: 'static', entries: { a: 1 } } } }),
    ).toEqual({ 'metadata.warmSource': 'only applies to WARM' });
    expect(t({ cacheOperation: 'STATS', skipIfExists: false, async: true })).toEqual({});
  });

  it('checks the WARM sources', () => {
    const warm = (warmSource: unknown) =>
      issues({ ...base, cacheOperation: 'WARM', metadata: { warmSource } });
    expect(warm({ type: 'ftp' })).toHaveProperty('metadata.warmSource.type');
    expect(warm({ type: 'region', region: 'a*' })).toEqual({
      'metadata.warmSource.region': 'must not contain the glob characters * ? [ ] \\',
    });
    expect(warm({ type: 'http', httpUrl: 'file:///etc/passwd' })).toEqual({
      'metadata.warmSource.httpUrl': 'must use http or https, not file',
    });
    expect(warm({ type: 'http', httpUrl: 'https://a.example', httpMethod: 'FETCH' })).toHaveProperty(
      'metadata.warmSource.httpMethod',
    );
    expect(warm({ type: 'static', entries: [{ key: 'a' }] })).toHaveProperty(
      'metadata.warmSource.entries.0.value',
    );
    expect(warm({ type: 'static', entries: ['a'] })).toEqual({
      'metadata.warmSource.entries': 'must hold { key, value } entries',
    });
    expect(warm({ type: 'region', region: 'a', extra: 1 })).toHaveProperty('metadata.warmSource');
  });

  it('reads keys and entries out of cache_keys', () => {
    expect(cacheKeysKind(undefined)).toBe('none');
    expect(cacheKeysKind([])).toBe('empty');
    expect(cacheKeysKind({})).toBe('empty');
    expect(cacheKeysKind(['a'])).toBe('keys');
    expect(cacheKeysKind({ a: 1 })).toBe('entries');
    expect(cacheKeysKind([{ key: 'a', value: 1 }])).toBe('entries');
    expect(cacheEntriesOf({ a: 1, b: 'x' })).toEqual([
      { key: 'a', value: 1 },
      { key: 'b', value: 'x' },
    ]);
    expect(cacheKeyNamesOf([{ key: 'a', value: 1 }])).toEqual(['a']);
    expect(cacheKeyNamesOf({ a: 1 })).toEqual(['a']);
  });

  it('knows when one region contains the other', () => {
    expect(regionsOverlap('a', 'a')).toBe(true);
    expect(regionsOverlap('a', 'a:b')).toBe(true);
    expect(regionsOverlap('a:b', 'a')).toBe(true);
    expect(regionsOverlap('a', 'ab')).toBe(false);
    expect(regionsOverlap('a-b', 'a')).toBe(false);
  });
});
