import { describe, expect, it } from 'vitest';
import { dummyPayloadSchema, httpPayloadSchema, JOB_TYPES, payloadSchemaFor } from '../../src/index.ts';

function issues(input: unknown): Record<string, string> {
  const result = dummyPayloadSchema.safeParse(input);
  if (result.success) return {};
  return Object.fromEntries(result.error.issues.map((i) => [i.path.join('.'), i.message]));
}

describe('dummyPayloadSchema', () => {
  it('accepts an empty payload and a full one', () => {
    expect(dummyPayloadSchema.parse({})).toEqual({});
    expect(dummyPayloadSchema.parse({ metadata: null, timeoutSeconds: null })).toEqual({
      metadata: null,
      timeoutSeconds: null,
    });
    const metadata = {
      sleepMs: 3_600_000,
      fail: 'retryable',
      failCode: 'UPSTREAM_DOWN',
      message: 'boom',
      logLines: 100_000,
      output: { anything: [1, 'two'] },
    };
    expect(dummyPayloadSchema.parse({ metadata, timeoutSeconds: 5 })).toEqual({
      metadata,
      timeoutSeconds: 5,
    });
  });

  it("reads the older `fail: true` as 'permanent'", () => {
    expect(dummyPayloadSchema.parse({ metadata: { fail: true } }).metadata?.fail).toBe('permanent');
    expect(dummyPayloadSchema.parse({ metadata: { fail: false } }).metadata?.fail).toBe(false);
  });

  it('reports bad fields with their paths', () => {
    expect(
      issues({
        metadata: { sleepMs: 3_600_001, fail: 'sometimes', failCode: 'lower case', logLines: -1 },
        timeoutSeconds: 0,
      }),
    ).toEqual({
      'metadata.sleepMs': expect.any(String),
      'metadata.fail': expect.any(String),
      'metadata.failCode': 'must be an UPPER_SNAKE_CASE code of at most 64 characters',
      'metadata.logLines': expect.any(String),
      timeoutSeconds: expect.any(String),
    });
    expect(issues({ metadata: { logLines: 100_001 } })).toHaveProperty(['metadata.logLines']);
    expect(issues({ metadata: { sleepMs: 1.5 } })).toHaveProperty(['metadata.sleepMs']);
  });
});

describe('payloadSchemaFor', () => {
  it('returns the schema of each type that has one, undefined for types without one yet', () => {
    expect(payloadSchemaFor('HTTP')).toBe(httpPayloadSchema);
    expect(payloadSchemaFor('DUMMY')).toBe(dummyPayloadSchema);
    const withSchema = ['HTTP', 'DUMMY', 'CACHE', 'DATABASE', 'FILE_SYSTEM', 'SCRIPT'];
    for (const type of JOB_TYPES) {
      if (withSchema.includes(type)) expect(payloadSchemaFor(type)).toBeDefined();
      else expect(payloadSchemaFor(type)).toBeUndefined();
    }
  });
});
