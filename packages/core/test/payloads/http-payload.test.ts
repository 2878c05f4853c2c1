import { describe, expect, it } from 'vitest';
import { httpPayloadSchema, parsePayload, ValidationError } from '../../src/index.ts';

/** `path → message` of every issue, for compact assertions. */
function issues(input: unknown): Record<string, string> {
  const result = httpPayloadSchema.safeParse(input);
  if (result.success) return {};
  return Object.fromEntries(result.error.issues.map((i) => [i.path.join('.'), i.message]));
}

describe('httpPayloadSchema', () => {
  it('accepts a minimal payload and applies defaults', () => {
    expect(httpPayloadSchema.parse({ httpUrl: 'https://api.example/v1/ping' })).toEqual({
      httpUrl: 'https://api.example/v1/ping',
      httpMethod: 'GET',
      httpFollowRedirects: true,
    });
  });

  it('accepts a full payload, with nulls as stored in job_payloads', () => {
    const full = {
      httpUrl: 'http://api.example:8080/jobs?x=1',
      httpMethod: 'POST',
      httpHeaders: { 'Content-Type': 'application/json', 'X-Trace': '{{var.TRACE}}' },
      httpBody: '{"a":1}',
      httpQueryParams: { page: 2, tag: ['a', 'b'], flag: true },
      httpAuth: {
        type: 'OAUTH2_CLIENT_CREDENTIALS',
        tokenUrl: 'https://auth.example/token',
        clientId: 'id',
        clientSecret: '{{var.SECRET}}',
        scope: 'a b',
      },
      httpExpectedStatuses: [200, 202],
      httpFollowRedirects: false,
      timeoutSeconds: 30,
      metadata: { team: 'x' },
    };
    expect(httpPayloadSchema.parse(full)).toEqual({
      ...full,
      httpAuth: { ...full.httpAuth, clientAuth: 'BASIC' },
    });
    expect(
      httpPayloadSchema.parse({
        httpUrl: 'https://a.example',
        httpHeaders: null,
        httpBody: null,
        httpQueryParams: null,
        httpAuth: null,
        httpExpectedStatuses: null,
        timeoutSeconds: null,
        metadata: null,
      }),
    ).toMatchObject({ httpMethod: 'GET' });
  });

  it('accepts a templated URL, and checks an untemplated one', () => {
    expect(issues({ httpUrl: '{{var.BASE_URL}}/hooks' })).toEqual({});
    expect(issues({ httpUrl: 'https://{{var.HOST}}/x' })).toEqual({});
    expect(issues({ httpUrl: 'not a url' })).toEqual({
      httpUrl: 'must be an absolute http:// or https:// URL',
    });
    expect(issues({ httpUrl: '/relative' })).toEqual({
      httpUrl: 'must be an absolute http:// or https:// URL',
    });
    expect(issues({ httpUrl: 'file:///etc/passwd' })).toEqual({
      httpUrl: 'must use http or https, not file',
    });
    expect(issues({ httpUrl: 'https://user:pw@a.example/' })).toEqual({
      httpUrl: 'must not embed credentials; use httpAuth',
    });
    expect(issues({})).toHaveProperty('httpUrl');
    expect(issues({ httpUrl: `https://a.example/${'x'.repeat(2048)}` })).toHaveProperty('httpUrl');
  });

  it('reports every bad field with its path', () => {
    expect(
      issues({
        httpUrl: 'https://a.example',
        httpMethod: 'FETCH',
        httpHeaders: { 'bad name': 'x', 'X-Ok': 'line\r\nInjected: 1' },
        httpQueryParams: { q: { nested: true } },
        httpExpectedStatuses: [200, 99, 600, 200.5],
        httpFollowRedirects: 'yes',
        timeoutSeconds: 86_401,
      }),
    ).toEqual({
      httpMethod: expect.stringContaining('GET'),
      'httpHeaders.bad name': 'is not a valid header name',
      'httpHeaders.X-Ok': 'must not contain CR, LF or NUL',
      'httpQueryParams.q': expect.any(String),
      'httpExpectedStatuses.1': 'must be a status 100–599',
      'httpExpectedStatuses.2': 'must be a status 100–599',
      'httpExpectedStatuses.3': expect.stringContaining('int'),
      httpFollowRedirects: expect.any(String),
      timeoutSeconds: expect.any(String),
    });
    expect(issues({ httpUrl: 'https://a.example', httpExpectedStatuses: [] })).toHaveProperty(
      'httpExpectedStatuses',
    );
    expect(issues({ httpUrl: 'https://a.example', timeoutSeconds: 0 })).toHaveProperty('timeoutSeconds');
  });

  it('discriminates auth by type and names the missing fields', () => {
    const base = { httpUrl: 'https://a.example' };
    expect(issues({ ...base, httpAuth: { type: 'NONE' } })).toEqual({});
    expect(issues({ ...base, httpAuth: { type: 'BASIC', username: 'u', password: 'p' } })).toEqual({});
    expect(issues({ ...base, httpAuth: { type: 'BEARER', token: '{{var.TOKEN}}' } })).toEqual({});
    expect(issues({ ...base, httpAuth: { type: 'KERBEROS' } })).toHaveProperty(['httpAuth.type']);
    expect(issues({ ...base, httpAuth: { type: 'BEARER' } })).toHaveProperty(['httpAuth.token']);
    expect(
      Object.keys(
        issues({ ...base, httpAuth: { type: 'OAUTH2_CLIENT_CREDENTIALS', tokenUrl: 'ftp://x' } }),
      ).sort(),
    ).toEqual(['httpAuth.clientId', 'httpAuth.clientSecret', 'httpAuth.tokenUrl']);
    expect(
      issues({
        ...base,
        httpAuth: {
          type: 'OAUTH2_CLIENT_CREDENTIALS',
          tokenUrl: 'https://t',
          clientId: 'i',
          clientSecret: 's',
          clientAuth: 'X',
        },
      }),
    ).toHaveProperty(['httpAuth.clientAuth']);
  });

  it('parsePayload throws a ValidationError with dotted, prefixed field paths', () => {
    let caught: unknown;
    try {
      parsePayload('HTTP', { httpUrl: 'nope', httpAuth: { type: 'BEARER', token: '' } }, 'payload');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const v = caught as ValidationError;
    expect(v.code).toBe('VALIDATION_FAILED');
    expect(v.issues.map((i) => i.path).sort()).toEqual(['payload.httpAuth.token', 'payload.httpUrl']);
    expect(v.message).toContain('payload.httpUrl: must be an absolute');
    expect(parsePayload('HTTP', { httpUrl: 'https://a.example' })).toMatchObject({ httpMethod: 'GET' });
  });
});
