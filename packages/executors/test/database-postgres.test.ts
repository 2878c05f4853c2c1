import { PermanentJobError, RetryableJobError, type DatabasePayloadInput } from '@chronos/core';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseExecutor, type DatabaseOutput } from '../src/database.ts';
import { connectPostgres } from '../src/database/postgres-session.ts';
import { parseDatabaseUrl } from '../src/database/database-url.ts';
import { NOTHING_INTERNAL, makeCtx, rejection } from './helpers.ts';

const SERVER = 'postgres://postgres@127.0.0.1:5432';
const DB = `chronos_dbexec_${randomBytes(6).toString('hex')}`;
const URL_ = `${SERVER}/${DB}`;

let admin: pg.Client;
// These tests are not about the superuser refusal (database-guard-*.test.ts are): they connect as
// the server's superuser and say so.
const run = createDatabaseExecutor({ cleanupTimeoutMs: 1000, allowSuperuser: true });
const runWithCall = createDatabaseExecutor({
  cleanupTimeoutMs: 1000,
  allowSuperuser: true,
  allowedSql: ['CALL'],
});

async function exec(payload: Omit<DatabasePayloadInput, 'databaseUrl'>, ctx = makeCtx()) {
  const result = await (payload.metadata?.call ? runWithCall : run)({ databaseUrl: URL_, ...payload }, ctx);
  return result.output as DatabaseOutput;
}
const count = async () => Number((await admin.query('select count(*) as n from items')).rows[0].n);
const tableExists = async (name: string) =>
  (await admin.query('select to_regclass($1) as t', [name])).rows[0].t !== null;
/** Active statements of this test database other than the probe itself. */
const activeQueries = async (like: string) =>
  (
    await admin.query(
      `select query from pg_stat_activity where datname = $1 and state = 'active' and query like $2 and pid <> pg_backend_pid()`,
      [DB, like],
    )
  ).rows;
async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  const root = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await root.connect();
  await root.query(`create database ${DB}`);
  await root.end();
  admin = new pg.Client({ connectionString: URL_ });
  await admin.connect();
  await admin.query(`
    create table items (id int primary key, name text not null);
    insert into items values (1, 'one'), (2, 'two'), (3, 'three');
    create procedure add_item(p_id int, p_name text) language sql as $$ insert into items values (p_id, p_name) $$;
    create procedure double_it(inout x int) language plpgsql as $$ begin x := x * 2; end $$;
    create procedure "Mixed.Case"(inout x text) language plpgsql as $$ begin x := upper(x); end $$;
    create function raise_state(state text) returns int language plpgsql as $$
      begin raise exception 'conflict' using errcode = state; end $$;
  `);
});

afterAll(async () => {
  await admin?.end();
  const root = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await root.connect();
  await root.query(`drop database if exists ${DB} with (force)`);
  await root.end();
});

describe('DATABASE executor on PostgreSQL', () => {
  it('runs a SELECT with positional parameters', async () => {
    const out = await exec({ query: 'select $1::int + 1 as n, $2::text as s', parameters: [41, 'x'] });
    expect(out).toMatchObject({
      server: 'postgres',
      command: 'SELECT',
      rows: [{ n: 42, s: 'x' }],
      rowCount: 1,
      truncated: false,
      rowsAffected: null,
      fields: [
        { name: 'n', dataType: 'int4' },
        { name: 's', dataType: 'text' },
      ],
    });
    expect(out.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('binds named parameters, leaving casts, literals and comments alone', async () => {
    const out = await exec({
      query: `select :a::int as a, ':notaparam' as lit, :b as b, :a::int + 1 as a2, $$:dollar$$ as d -- :c\n;`,
      parameters: { a: 5, b: 'hi' },
    });
    expect(out.rows).toEqual([{ a: 5, lit: ':notaparam', b: 'hi', a2: 6, d: ':dollar' }]);
  });

  it('writes when readOnly is false and reports rowsAffected', async () => {
    const ins = await exec({
      query: 'insert into items values (:id1, :n1), (:id2, :n2)',
      parameters: { id1: 10, n1: 'ten', id2: 11, n2: 'eleven' },
      readOnly: false,
    });
    expect(ins).toMatchObject({ command: 'INSERT', rowsAffected: 2, rows: [] });
    const del = await exec({ query: 'delete from items where id >= $1', parameters: [10], readOnly: false });
    expect(del).toMatchObject({ command: 'DELETE', rowsAffected: 2 });
  });

  it('rolls back and fails with READ_ONLY_VIOLATION when a read-only run writes', async () => {
    const before = await count();
    for (const query of [
      "insert into items values (20, 'x')",
      'delete from items',
      'drop table items',
      'create table sneaky (id int)',
    ]) {
      const err = await rejection(() => exec({ query }));
      expect(err).toBeInstanceOf(PermanentJobError);
      expect(err.code).toBe('READ_ONLY_VIOLATION');
    }
    expect(await count()).toBe(before);
    expect(await tableExists('items')).toBe(true);
    expect(await tableExists('sneaky')).toBe(false);
  });

  it('rolls back a failed write: nothing of it stays', async () => {
    const before = await count();
    const err = await rejection(() =>
      exec({ query: "insert into items values (30, 'a'), (1, 'duplicate')", readOnly: false }),
    );
    expect(err.code).toBe('SQLSTATE:23505');
    expect(await count()).toBe(before);
  });

  it.each([
    'select 1; drop table items',
    'select 1;drop table items;',
    'select 1 -- c\n; drop table items',
    "select 'a'';'; drop table items",
    'select $$;$$; drop table items',
    '/* ; */ select 1; drop table items',
    "select '\\'; drop table items; --'",
  ])('refuses stacked statements before connecting: %j', async (query) => {
    const err = await rejection(() => exec({ query, readOnly: false }));
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('STACKED_STATEMENTS');
    expect(await tableExists('items')).toBe(true);
  });

  it.each([
    ["select ';' as v", ';'],
    ['select 1 as v -- ; drop table items', 1],
    ['select $$;$$ as v', ';'],
    ['select $t$ ; drop table items; $t$ as v', ' ; drop table items; '],
    ["select E'\\'; drop table items; --' as v", "'; drop table items; --"],
    ['select 7 as v;', 7],
  ])('runs one statement that only looks stacked: %j', async (query, v) => {
    expect((await exec({ query })).rows).toEqual([{ v }]);
    expect(await tableExists('items')).toBe(true);
  });

  it('the extended protocol refuses two statements even without the lexer', async () => {
    const session = await connectPostgres({
      target: parseDatabaseUrl(URL_),
      address: '127.0.0.1',
      connectTimeoutMs: 5000,
      applicationName: 'test',
    });
    try {
      await session.begin({ readOnly: false, isolation: null, statementTimeoutMs: null });
      const err = await rejection(() => session.run('select 1; drop table items', [], 10));
      expect(err.message).toMatch(/multiple commands/);
      await session.rollback();
    } finally {
      await session.close(1000);
    }
    expect(await tableExists('items')).toBe(true);
  });

  it('cancels a query past queryTimeoutSeconds (QUERY_TIMEOUT) and leaves nothing running', async () => {
    const started = Date.now();
    const err = await rejection(() => exec({ query: 'select pg_sleep(5)', queryTimeoutSeconds: 1 }));
    expect(err).toBeInstanceOf(RetryableJobError);
    expect(err.code).toBe('QUERY_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await eventually(async () => (await activeQueries('%pg_sleep(5)%')).length === 0)).toBe(true);
  });

  it('keeps maxRows rows, flags truncation, and stops the server producing more', async () => {
    const out = await exec({ query: 'select g from generate_series(1, 100000) g' });
    expect(out.rowCount).toBe(1000);
    expect(out.rows).toHaveLength(1000);
    expect(out.rows[999]).toEqual({ g: 1000 });
    expect(out.truncated).toBe(true);

    // A lazily produced 10^9-row result returns at once: rows past the cap are never computed.
    const started = Date.now();
    const huge = await exec({ query: 'select generate_series(1, 1000000000) as g', maxRows: 5 });
    expect(huge).toMatchObject({ rowCount: 5, truncated: true });
    expect(Date.now() - started).toBeLessThan(5000);

    expect(await exec({ query: 'select generate_series(1, 10) g', maxRows: 10 })).toMatchObject({
      rowCount: 10,
      truncated: false,
    });
    expect(await exec({ query: 'select generate_series(1, 11) g', maxRows: 10 })).toMatchObject({
      rowCount: 10,
      truncated: true,
    });
  });

  it('applies the isolation level and the read-only mode to the transaction', async () => {
    const isolation = await exec({
      query: 'show transaction_isolation',
      transactionIsolation: 'SERIALIZABLE',
    });
    expect(isolation.rows).toEqual([{ transaction_isolation: 'serializable' }]);
    const rc = await exec({ query: 'show transaction_isolation', transactionIsolation: 'REPEATABLE READ' });
    expect(rc.rows).toEqual([{ transaction_isolation: 'repeatable read' }]);
    expect((await exec({ query: 'show transaction_read_only' })).rows).toEqual([
      { transaction_read_only: 'on' },
    ]);
    expect((await exec({ query: 'show transaction_read_only', readOnly: false })).rows).toEqual([
      { transaction_read_only: 'off' },
    ]);
  });

  it('calls stored procedures with quoted names and bound arguments', async () => {
    const before = await count();
    const added = await exec({
      metadata: { call: { name: 'add_item', args: [40, 'forty'] } },
      readOnly: false,
    });
    expect(added.command).toBe('CALL');
    expect(await count()).toBe(before + 1);
    await admin.query('delete from items where id = 40');

    expect((await exec({ metadata: { call: { name: 'public.double_it', args: [21] } } })).rows).toEqual([
      { x: 42 },
    ]);
    expect(
      (await exec({ metadata: { call: { name: ['public', 'Mixed.Case'], args: ['abc'] } } })).rows,
    ).toEqual([{ x: 'ABC' }]);
    const ro = await rejection(() => exec({ metadata: { call: { name: 'add_item', args: [41, 'x'] } } }));
    expect(ro.code).toBe('READ_ONLY_VIOLATION');
    expect(await count()).toBe(before);
  });

  it('refuses 127.0.0.1 and localhost unless the outbound policy allows them', async () => {
    for (const host of ['127.0.0.1', 'localhost', '[::1]']) {
      const err = await rejection(() =>
        run(
          { databaseUrl: `postgres://postgres@${host}:5432/${DB}`, query: 'select 1' },
          makeCtx({ outbound: NOTHING_INTERNAL }),
        ),
      );
      expect(err.code).toBe('OUTBOUND_REFUSED');
      expect(err.message).toContain('loopback');
    }
    const allowed = await run(
      { databaseUrl: `postgres://postgres@localhost:5432/${DB}`, query: 'select 1 as one' },
      makeCtx({ outbound: { allowHosts: [], allowCidrs: ['127.0.0.0/8', '::1'] } }),
    );
    expect((allowed.output as DatabaseOutput).rows).toEqual([{ one: 1 }]);
  });

  it('never shows the password: not in errors, not in logs', async () => {
    const secret = 'Sup3rSecretPw';
    // The server names the (missing) database in its error: here that name is the password.
    for (const url of [
      `postgres://postgres:${secret}@127.0.0.1:5432/${secret}`,
      `postgres://postgres:${secret}@127.0.0.1:1/${DB}`,
      `postgres://postgres:${secret}@no-such-host.invalid:5432/${DB}`,
      `postgres://postgres:${encodeURIComponent(secret + ':/@')}@127.0.0.1:1/${DB}`,
      `postgres://postgres:${secret}@127.0.0.1:5432/${DB}?password=${secret}&sslmode=bogus`,
    ]) {
      const ctx = makeCtx();
      const err = await rejection(() => run({ databaseUrl: url, query: 'select 1' }, ctx));
      expect(err).toBeInstanceOf(Error);
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err)).not.toContain(secret);
      expect(JSON.stringify(ctx.log.lines)).not.toContain(secret);
    }
    const ctx = makeCtx();
    const err = await rejection(() =>
      run({ databaseUrl: `postgres://postgres:${secret}@127.0.0.1:5432/${secret}`, query: 'select 1' }, ctx),
    );
    expect(err.code).toBe('SQLSTATE:3D000');
    expect(err.message).toContain('***');
    expect(JSON.stringify(ctx.log.lines)).toContain('postgres://postgres:***@127.0.0.1:5432/');
  });

  it('cancels the running query when the run is aborted, and rejects with the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled by test');
    const started = Date.now();
    setTimeout(() => controller.abort(reason), 300);
    const err = await rejection(() =>
      exec({ query: 'select pg_sleep(30)' }, makeCtx({ signal: controller.signal })),
    );
    expect(err).toBe(reason);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await eventually(async () => (await activeQueries('%pg_sleep(30)%')).length === 0)).toBe(true);
  });

  it('maps SQL errors to SQLSTATE codes, retryable for serialization failures and deadlocks', async () => {
    const missing = await rejection(() => exec({ query: 'select * from no_such_table' }));
    expect(missing).toBeInstanceOf(PermanentJobError);
    expect(missing.code).toBe('SQLSTATE:42P01');
    expect(missing.message).toContain('no_such_table');
    for (const state of ['40001', '40P01']) {
      const err = await rejection(() => exec({ query: 'select raise_state($1)', parameters: [state] }));
      expect(err).toBeInstanceOf(RetryableJobError);
      expect(err.code).toBe(`SQLSTATE:${state}`);
    }
  });

  it('fails with NETWORK (retryable) when the server cannot be reached', async () => {
    const err = await rejection(() =>
      run({ databaseUrl: `postgres://postgres@127.0.0.1:1/${DB}`, query: 'select 1' }, makeCtx()),
    );
    expect(err).toBeInstanceOf(RetryableJobError);
    expect(err.code).toBe('NETWORK');
  });

  it('refuses invalid payloads with field paths', async () => {
    const err = await rejection(() => run({ databaseUrl: 'ftp://x/y', query: '' }, makeCtx()));
    expect(err.code).toBe('INVALID_PAYLOAD');
    expect(err.message).toContain('databaseUrl');
  });
});
