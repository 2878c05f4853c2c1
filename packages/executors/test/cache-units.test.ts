import { PermanentJobError, RetryableJobError } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { forbiddenOverlap, regionNamespace, scanPattern } from '../src/cache/namespace.ts';
import { cacheFailure } from '../src/cache/redis-errors.ts';
import { displayRedisUrl } from '../src/cache/redis-target.ts';
import { entriesFromJson } from '../src/cache/warm-source.ts';

function replyError(message: string): Error {
  const err = new Error(message);
  err.name = 'ReplyError';
  return err;
}

describe('cache namespaces', () => {
  it('puts the key prefix before the region', () => {
    expect(regionNamespace('', 'users')).toBe('users:');
    expect(regionNamespace('app:', 'users:eu')).toBe('app:users:eu:');
  });

  it('escapes every glob character in a SCAN pattern', () => {
    expect(scanPattern('app:users:')).toBe('app:users:*');
    expect(scanPattern('a*b?c[d]e\\f:')).toBe('a\\*b\\?c\\[d\\]e\\\\f:*');
  });

  it('finds a reserved prefix the namespace is inside of, or above', () => {
    const reserved = ['chronos:'];
    expect(forbiddenOverlap('chronos:', reserved)).toBe('chronos:');
    expect(forbiddenOverlap('chronos:bull:', reserved)).toBe('chronos:');
    expect(forbiddenOverlap('chronos-cache:', reserved)).toBeNull();
    expect(forbiddenOverlap('chrono:', reserved)).toBeNull();
    expect(forbiddenOverlap('app:', ['app:queues:'])).toBe('app:queues:');
    // A bare prefix (REDIS_PREFIX without its colon) is stricter: anything starting with it.
    expect(forbiddenOverlap('chronos-cache:', ['chronos'])).toBe('chronos');
  });
});

describe('cache failures', () => {
  it('maps Redis replies and connection failures to job errors', () => {
    const cases: Array<[Error, boolean, string]> = [
      [replyError('WRONGPASS invalid username-password pair'), false, 'CACHE_AUTH_FAILED'],
      [replyError('NOAUTH Authentication required.'), false, 'CACHE_AUTH_FAILED'],
      [replyError('LOADING Redis is loading the dataset in memory'), true, 'CACHE_UNAVAILABLE'],
      [replyError("READONLY You can't write against a read only replica."), true, 'CACHE_UNAVAILABLE'],
      [replyError('OOM command not allowed when used memory > maxmemory'), true, 'CACHE_UNAVAILABLE'],
      [replyError('ERR max number of clients reached'), true, 'CACHE_UNAVAILABLE'],
      [replyError('ERR DB index is out of range'), false, 'CACHE_COMMAND_FAILED'],
      [
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
        true,
        'NETWORK',
      ],
      [new Error('Connection is closed.'), true, 'NETWORK'],
    ];
    for (const [err, retryable, code] of cases) {
      const mapped = cacheFailure(err, 'redis://h:6379/0');
      expect(mapped, err.message).toBeInstanceOf(retryable ? RetryableJobError : PermanentJobError);
      expect((mapped as RetryableJobError).code, err.message).toBe(code);
      expect(mapped.message).toContain('redis://h:6379/0');
      expect(mapped.cause).toBe(err);
    }
    const own = new PermanentJobError('x', 'CACHE_FORBIDDEN_NAMESPACE');
    expect(cacheFailure(own, 't')).toBe(own);
  });

  it('shows a Redis URL without its credentials', () => {
    expect(displayRedisUrl('redis://:secret@cache.example:6380/2')).toBe('redis://cache.example:6380/2');
    expect(displayRedisUrl('rediss://user:pw@cache.example', 3)).toBe('rediss://cache.example/3');
    expect(displayRedisUrl('not a url')).toBe('(invalid Redis URL)');
  });
});

describe('WARM entries from JSON', () => {
  it('reads an object of key: value, strings as they are and anything else as JSON', () => {
    expect(entriesFromJson({ a: 'x', b: { n: 1 }, c: 2 }, 'key', 'value', 10)).toEqual([
      { key: 'a', value: 'x' },
      { key: 'b', value: '{"n":1}' },
      { key: 'c', value: '2' },
    ]);
  });

  it('reads a list of records by keyField and valueField, `.` being the whole record', () => {
    const rows = [
      { id: 1, name: 'a' },
      { id: 'two', name: 'b' },
    ];
    expect(entriesFromJson(rows, 'id', 'name', 10)).toEqual([
      { key: '1', value: 'a' },
      { key: 'two', value: 'b' },
    ]);
    expect(entriesFromJson(rows, 'id', '.', 10)[0]).toEqual({ key: '1', value: '{"id":1,"name":"a"}' });
    expect(entriesFromJson([{ key: 'k', value: null }], 'key', 'value', 10)).toEqual([
      { key: 'k', value: 'null' },
    ]);
  });

  it('names what is wrong with a source', () => {
    const fail = (node: unknown, max = 10) => {
      try {
        entriesFromJson(node, 'id', 'name', max);
      } catch (err) {
        expect(err).toBeInstanceOf(PermanentJobError);
        expect((err as PermanentJobError).code).toBe('CACHE_WARM_SOURCE_INVALID');
        return (err as Error).message;
      }
      throw new Error('expected a failure');
    };
    expect(fail('text')).toContain('must be an object of key: value or a list of records');
    expect(fail([1])).toContain('item 0 is not an object');
    expect(fail([{ name: 'x' }])).toContain('item 0 has no string or number "id"');
    expect(fail([{ id: 1 }])).toContain('item 0 has no "name"');
    expect(fail([{ id: '', name: 'x' }])).toContain('a key must be 1 to 1024 characters');
    expect(fail({ a: 1, b: 2 }, 1)).toContain('2 entries, more than the 1');
  });
});
