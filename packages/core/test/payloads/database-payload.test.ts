import { describe, expect, it } from 'vitest';
import { databasePayloadSchema } from '../../src/payloads/database-payload.ts';
import { triggerInCode } from '../../src/payloads/template.ts';

/** `path → message` of every issue, for compact assertions. */
function issues(input: unknown): Record<string, string> {
  const result = databasePayloadSchema.safeParse(input);
  if (result.success) return {};
  return Object.fromEntries(result.error.issues.map((i) => [i.path.join('.'), i.message]));
}

const URL_ = 'postgres://app:pw@db.internal:5432/app';

describe('databasePayloadSchema', () => {
  it('accepts a minimal payload and applies defaults', () => {
    expect(databasePayloadSchema.parse({ databaseUrl: URL_, query: 'select 1' })).toEqual({
      databaseUrl: URL_,
      query: 'select 1',
      maxRows: 1000,
      readOnly: true,
    });
  });

  it('accepts a full payload, and nulls as stored in job_payloads', () => {
    const full = {
      databaseUrl: 'mysql://root:{{var.DB_PASSWORD}}@{{var.DB_HOST}}/shop',
      query: 'update orders set state = :state where id = :id',
      parameters: { state: 'PAID', id: 7 },
      queryTimeoutSeconds: 30,
      maxRows: 50,
      readOnly: false,
      transactionIsolation: 'READ COMMITTED',
      timeoutSeconds: 60,
      metadata: { team: 'x' },
    };
    expect(databasePayloadSchema.parse(full)).toEqual(full);
    expect(
      databasePayloadSchema.parse({
        databaseUrl: URL_,
        query: 'select $1',
        parameters: [1],
        queryTimeoutSeconds: null,
        maxRows: null,
        readOnly: null,
        transactionIsolation: null,
        timeoutSeconds: null,
        metadata: null,
      }),
    ).toMatchObject({ maxRows: 1000, readOnly: true });
  });

  it('checks the URL scheme only when it holds no template, and never echoes the URL', () => {
    expect(issues({ databaseUrl: '{{var.DATABASE_URL}}', query: 'select 1' })).toEqual({});
    expect(issues({ databaseUrl: 'postgresql://h/db', query: 'select 1' })).toEqual({});
    expect(issues({ databaseUrl: 'mariadb://h/db', query: 'select 1' })).toEqual({});
    expect(issues({ databaseUrl: 'https://h/db', query: 'select 1' })).toEqual({
      databaseUrl: 'must use one of postgres, postgresql, mysql, mariadb, not https',
    });
    const bad = issues({ databaseUrl: 'not a url with s3cret', query: 'select 1' });
    expect(Object.keys(bad)).toEqual(['databaseUrl']);
    expect(bad['databaseUrl']).not.toContain('s3cret');
    expect(issues({ databaseUrl: 'postgres:///db', query: 'select 1' })).toEqual({
      databaseUrl: 'must name a host',
    });
  });

  it('needs a query or metadata.call, not both', () => {
    expect(issues({ databaseUrl: URL_ })).toEqual({ query: 'is required (or metadata.call)' });
    expect(issues({ databaseUrl: URL_, query: '  ' })).toEqual({ query: 'must not be empty' });
    expect(issues({ databaseUrl: URL_, query: 'select 1', metadata: { call: { name: 'p' } } })).toEqual({
      'metadata.call': 'cannot be combined with query; give one of them',
    });
    expect(
      issues({ databaseUrl: URL_, metadata: { call: { name: 'p', args: [1] } }, parameters: [1] }),
    ).toEqual({ parameters: 'must be empty with metadata.call; pass the arguments in metadata.call.args' });
    expect(
      databasePayloadSchema.parse({
        databaseUrl: URL_,
        metadata: { call: { name: 'billing.close_month' }, x: 1 },
      }).metadata,
    ).toEqual({ call: { name: 'billing.close_month', args: [] }, x: 1 });
  });

  it('reports bad fields with their paths', () => {
    expect(
      issues({
        databaseUrl: URL_,
        query: 'select 1',
        parameters: { 'bad name': 1, ok: 2 },
        queryTimeoutSeconds: 0,
        maxRows: 100_001,
        transactionIsolation: 'SNAPSHOT',
      }),
    ).toEqual({
      'parameters.bad name':
        'is not a valid parameter name (letters, digits and _, not starting with a digit)',
      queryTimeoutSeconds: expect.any(String),
      maxRows: expect.any(String),
      transactionIsolation: expect.any(String),
    });
    expect(issues({ databaseUrl: URL_, query: 'select 1', parameters: 'x' })).toEqual({
      parameters: 'must be an array (positional $1 / ? parameters) or an object (named :name parameters)',
    });
    expect(issues({ databaseUrl: URL_, metadata: { call: { name: 'a.b;drop' } } })).toEqual({
      'metadata.call.name': expect.stringContaining('plain identifiers'),
    });
    expect(issues({ databaseUrl: URL_, metadata: { call: { name: ['a', 'b', 'c', 'd'] } } })).toEqual({
      'metadata.call.name': expect.any(String),
    });
  });
});

describe('trigger values and SQL', () => {
  it('a query that inserts {{trigger.…}} is named (it would run as SQL): trigger values go in as parameters', () => {
    expect(
      triggerInCode('DATABASE', { query: "SELECT * FROM t WHERE name = '{{trigger.body.name}}'" }),
    ).toEqual({
      field: 'query',
      message: expect.stringMatching(/pass them as parameters/),
    });
    expect(
      triggerInCode('DATABASE', {
        query: 'SELECT * FROM {{var.SCHEMA}}.t WHERE name = $1',
        parameters: ['{{trigger.body.name}}'],
      }),
    ).toBeNull();
  });
});
