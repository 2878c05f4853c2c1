import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ValidationError,
  closestName,
  editDistance,
  parseFields,
  parsePayload,
  unknownFieldMessage,
} from '../src/index.ts';

function paths(fn: () => unknown): Record<string, string> {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return Object.fromEntries((err as ValidationError).issues.map((i) => [i.path, i.message]));
  }
  throw new Error('expected a ValidationError');
}

describe('the closest known name', () => {
  it.each([
    ['retryPolcy', ['name', 'retryPolicy', 'payload'], 'retryPolicy'],
    ['nmae', ['name', 'type'], 'name'],
    ['RetryPolicy', ['retryPolicy'], 'retryPolicy'],
    ['sleepMS', ['sleepMs', 'fail'], 'sleepMs'],
    ['cronExpresion', ['cronExpression', 'runAt'], 'cronExpression'],
    ['cacheTtlSeconds', ['cacheOperation', 'timeToLiveSeconds', 'cacheKeys'], undefined],
    ['foo', ['name', 'type'], undefined],
    ['x', ['y'], undefined],
    ['anything', [], undefined],
  ])('%s among %j is %s', (name, known, expected) => {
    expect(closestName(name, known)).toBe(expected);
  });

  it('counts an adjacent transposition as one edit', () => {
    expect(editDistance('nmae', 'name')).toBe(1);
    expect(editDistance('retryPolcy', 'retryPolicy')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('says what was meant when something is close', () => {
    expect(unknownFieldMessage('retryPolcy', ['retryPolicy'])).toBe(
      'is not a known field; did you mean `retryPolicy`?',
    );
    expect(unknownFieldMessage('zzz', ['retryPolicy'])).toBe('is not a known field');
  });
});

describe('parseFields', () => {
  const schema = z.strictObject({
    name: z.string(),
    retryPolicy: z.strictObject({ maxAttempts: z.int() }).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  });

  it('names every unknown field by its full path, nested ones too, with the field meant', () => {
    const result = parseFields(
      schema,
      { name: 'a', retryPolcy: {}, extra: 1, retryPolicy: { maxAtempts: 3, maxAttempts: 2 } },
      'body',
    );
    expect(result.success).toBe(false);
    expect(!result.success && result.issues).toEqual(
      expect.arrayContaining([
        { path: 'body.retryPolcy', message: 'is not a known field; did you mean `retryPolicy`?' },
        { path: 'body.extra', message: 'is not a known field' },
        { path: 'body.retryPolicy.maxAtempts', message: 'is not a known field; did you mean `maxAttempts`?' },
      ]),
    );
    expect(!result.success && result.issues).toHaveLength(3);
  });

  it('leaves free-form maps free and keeps other issues as they are', () => {
    expect(parseFields(schema, { name: 'a', labels: { anyKey: 'v', other: 'w' } })).toEqual({
      success: true,
      data: { name: 'a', labels: { anyKey: 'v', other: 'w' } },
    });
    const result = parseFields(schema, { name: 1 });
    expect(!result.success && result.issues.map((i) => i.path)).toEqual(['name']);
  });
});

describe('payloads as input are strict, stored columns are not', () => {
  it('refuses an unknown payload field of a definition, naming it under the prefix', () => {
    expect(
      paths(() =>
        parsePayload(
          'CACHE',
          { cacheOperation: 'STATS', cacheRegion: 'r', cacheTtlSeconds: 5 },
          'payload',
          'input',
        ),
      ),
    ).toEqual({
      'payload.cacheTtlSeconds': 'is not a known field',
    });
    expect(
      paths(() =>
        parsePayload('HTTP', { httpUrl: 'https://a.example', httpMethd: 'GET' }, 'payload', 'input'),
      ),
    ).toEqual({
      'payload.httpMethd': 'is not a known field; did you mean `httpMethod`?',
    });
  });

  it('refuses unknown fields in nested objects: metadata, auth, a stored-procedure call, limits', () => {
    expect(paths(() => parsePayload('DUMMY', { metadata: { sleepMS: 5 } }, 'payload', 'input'))).toEqual({
      'payload.metadata.sleepMS': 'is not a known field; did you mean `sleepMs`?',
    });
    // Nested objects are strict wherever the payload is parsed, not only as input.
    expect(paths(() => parsePayload('SCRIPT', { scriptContent: 'true', metadata: { limit: {} } }))).toEqual({
      'metadata.limit': 'is not a known field; did you mean `limits`?',
    });
    expect(
      paths(() =>
        parsePayload('HTTP', {
          httpUrl: 'https://a.example',
          httpAuth: { type: 'BEARER', token: 't', tokn: 't' },
        }),
      ),
    ).toEqual({ 'httpAuth.tokn': 'is not a known field; did you mean `token`?' });
    expect(
      paths(() =>
        parsePayload('DATABASE', {
          databaseUrl: 'postgres://h/db',
          metadata: { call: { name: 'p', arg: [] } },
        }),
      ),
    ).toEqual({ 'metadata.call.arg': 'is not a known field; did you mean `args`?' });
  });

  it('keeps free-form maps free: headers, query parameters, script environment, HTTP metadata, labels', () => {
    expect(
      parsePayload(
        'HTTP',
        {
          httpUrl: 'https://a.example',
          httpHeaders: { 'X-Anything': '1' },
          httpQueryParams: { whatever: 1 },
          metadata: { team: 'x', anyKey: true },
        },
        'payload',
        'input',
      ),
    ).toMatchObject({ httpHeaders: { 'X-Anything': '1' }, metadata: { team: 'x', anyKey: true } });
    expect(
      parsePayload('SCRIPT', { scriptContent: 'true', scriptEnv: { ANY_NAME: 'v' } }, 'payload', 'input'),
    ).toMatchObject({ scriptEnv: { ANY_NAME: 'v' } });
    // CACHE and DATABASE metadata carry free-form labels beside their checked fields.
    expect(
      parsePayload(
        'DATABASE',
        { databaseUrl: 'postgres://h/db', query: 'select 1', metadata: { team: 'x' } },
        'payload',
        'input',
      ),
    ).toMatchObject({ metadata: { team: 'x' } });
  });

  it('reads a job_payloads row with other types’ columns (as the worker does) without complaint', () => {
    expect(
      parsePayload('DUMMY', {
        type: 'DUMMY',
        httpFollowRedirects: true,
        readOnly: true,
        metadata: { sleepMs: 1 },
      }),
    ).toEqual({ metadata: { sleepMs: 1 } });
  });
});
