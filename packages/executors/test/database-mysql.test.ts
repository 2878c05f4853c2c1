import { PermanentJobError, RetryableJobError, type DatabasePayloadInput } from '@chronos/core';
import { randomBytes } from 'node:crypto';
import mysql, { type Connection } from 'mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseExecutor, type DatabaseOutput } from '../src/database.ts';
import { NOTHING_INTERNAL, makeCtx, rejection } from './helpers.ts';

const SERVER = 'mysql://root@127.0.0.1:3306';
const DB = `chronos_dbexec_${randomBytes(6).toString('hex')}`;
const URL_ = `${SERVER}/${DB}`;

let admin: Connection;
// These tests are not about the superuser refusal (database-guard-*.test.ts are): they connect as
// the server's superuser and say so.
const run = createDatabaseExecutor({ cleanupTimeoutMs: 1000, allowSuperuser: true });
const runWithCall = createDatabaseExecutor({
  cleanupTimeoutMs: 1000,
  allowSuperuser: true,
  allowedSql: ['CALL'],
});

function sql<T = Record<string, unknown>[]>(text: string, values: unknown[] = []): Promise<T> {
  return new Promise((resolve, reject) =>
    admin.query(text, values, (err, rows) => (err ? reject(err) : resolve(rows as T))),
  );
}
async function exec(payload: Omit<DatabasePayloadInput, 'databaseUrl'>, ctx = makeCtx()) {
  const result = await (payload.metadata?.call ? runWithCall : run)({ databaseUrl: URL_, ...payload }, ctx);
  return result.output as DatabaseOutput;
}
const count = async () => Number((await sql<{ n: number }[]>('select count(*) as n from items'))[0]?.n);
const tableExists = async (name: string) =>
  (await sql('select 1 from information_schema.tables where table_schema = ? and table_name = ?', [DB, name]))
    .length === 1;
/** Statements of this test database still executing. */
const runningQueries = async (like: string) =>
  sql(
    `select id, info from information_schema.processlist where db = ? and command = 'Query' and info like ? and id <> connection_id()`,
    [DB, like],
  );
async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  admin = mysql.createConnection({ host: '127.0.0.1', user: 'root', multipleStatements: true });
  await sql(`create database ${DB}`);
  await sql(`use ${DB}`);
  await sql(`
    create table items (id int primary key, name varchar(50) not null) engine = InnoDB;
    insert into items values (1, 'one'), (2, 'two'), (3, 'three');
    create procedure add_item(p_id int, p_name varchar(50)) insert into items values (p_id, p_name);
    create procedure list_items() select id, name from items order by id;
    create procedure conflict() signal sqlstate '40001' set message_text = 'conflict';
  `);
});

afterAll(async () => {
  if (!admin) return;
  await sql(`drop database if exists ${DB}`);
  await new Promise<void>((resolve) => admin.end(() => resolve()));
});

describe('DATABASE executor on MariaDB', () => {
  it('runs a SELECT with positional parameters', async () => {
    const out = await exec({ query: 'select ? + 1 as n, ? as s', parameters: [41, 'x'] });
    expect(out).toMatchObject({
      server: 'mariadb',
      command: 'SELECT',
      rows: [{ n: 42, s: 'x' }],
      rowCount: 1,
      truncated: false,
      rowsAffected: null,
    });
    expect(out.fields.map((f) => f.name)).toEqual(['n', 's']);
  });

  it('binds named parameters, leaving literals, comments and := alone', async () => {
    const out = await exec({
      query: "select :a + 1 as a1, ':notaparam' as lit, :b as b, :a as a, @v := 3 as v # :c\n;",
      parameters: { a: 5, b: 'hi' },
    });
    expect(out.rows).toEqual([{ a1: 6, lit: ':notaparam', b: 'hi', a: 5, v: 3 }]);
  });

  it('writes when readOnly is false and reports rowsAffected', async () => {
    const ins = await exec({
      query: 'insert into items values (:id1, :n1), (:id2, :n2)',
      parameters: { id1: 10, n1: 'ten', id2: 11, n2: 'eleven' },
      readOnly: false,
    });
    expect(ins).toMatchObject({ command: 'INSERT', rowsAffected: 2, rows: [] });
    const del = await exec({ query: 'delete from items where id >= ?', parameters: [10], readOnly: false });
    expect(del).toMatchObject({ rowsAffected: 2 });
  });

  it('refuses writes in a read-only run, DDL included (no implicit-commit escape)', async () => {
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

  it.each([
    'select 1; drop table items',
    'select 1 # c\n; drop table items',
    'select "a;"; drop table items',
    'select 1 /*! ; drop table items */',
    "select 'a\\'; drop table items; -- '",
  ])('refuses stacked statements: %j', async (query) => {
    const err = await rejection(() => exec({ query, readOnly: false }));
    expect(err.code).toBe('STACKED_STATEMENTS');
    expect(await tableExists('items')).toBe(true);
  });

  it.each([
    ["select ';' as v", ';'],
    ['select 1 as v -- ; drop table items', 1],
    ['select 1 as v # ; drop table items', 1],
    ['select 2 as `v` ;', 2],
  ])('runs one statement that only looks stacked: %j', async (query, v) => {
    expect((await exec({ query })).rows).toEqual([{ v }]);
  });

  it('cancels a query past queryTimeoutSeconds on the server (QUERY_TIMEOUT)', async () => {
    const started = Date.now();
    const err = await rejection(() => exec({ query: 'select sleep(5)', queryTimeoutSeconds: 1 }));
    expect(err).toBeInstanceOf(RetryableJobError);
    expect(err.code).toBe('QUERY_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await eventually(async () => (await runningQueries('%sleep(5)%')).length === 0)).toBe(true);
  });

  it('cancels from the client (KILL QUERY) when the server limit does not stop the query', async () => {
    const started = Date.now();
    const err = await rejection(() =>
      exec({ query: 'set statement max_statement_time = 0 for select sleep(5)', queryTimeoutSeconds: 1 }),
    );
    expect(err.code).toBe('QUERY_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await eventually(async () => (await runningQueries('%sleep(5)%')).length === 0)).toBe(true);
  });

  it('keeps maxRows rows and flags truncation', async () => {
    const out = await exec({ query: 'select seq from seq_1_to_100000' });
    expect(out).toMatchObject({ rowCount: 1000, truncated: true });
    expect(out.rows[999]).toEqual({ seq: 1000 });
    expect(await exec({ query: 'select seq from seq_1_to_10', maxRows: 10 })).toMatchObject({
      rowCount: 10,
      truncated: false,
    });
    expect(await exec({ query: 'select seq from seq_1_to_11', maxRows: 10 })).toMatchObject({
      rowCount: 10,
      truncated: true,
    });
  });

  it('applies the isolation level and read-only mode', async () => {
    const out = await exec({
      query: 'select @@tx_isolation as iso, @@tx_read_only as ro',
      transactionIsolation: 'SERIALIZABLE',
    });
    expect(out.rows).toEqual([{ iso: 'SERIALIZABLE', ro: 1 }]);
    const rc = await exec({
      query: 'select @@tx_isolation as iso, @@tx_read_only as ro',
      transactionIsolation: 'READ COMMITTED',
      readOnly: false,
    });
    expect(rc.rows).toEqual([{ iso: 'READ-COMMITTED', ro: 0 }]);
  });

  it('calls stored procedures', async () => {
    const before = await count();
    await exec({ metadata: { call: { name: 'add_item', args: [40, 'forty'] } }, readOnly: false });
    expect(await count()).toBe(before + 1);
    const listed = await exec({ metadata: { call: { name: [DB, 'list_items'], args: [] } } });
    expect(listed.rows.at(-1)).toEqual({ id: 40, name: 'forty' });
    expect(listed.command).toBe('CALL');
    await sql('delete from items where id = 40');
    const ro = await rejection(() => exec({ metadata: { call: { name: 'add_item', args: [41, 'x'] } } }));
    expect(ro.code).toBe('READ_ONLY_VIOLATION');
    expect(await count()).toBe(before);
  });

  it('refuses 127.0.0.1 unless the outbound policy allows it', async () => {
    const err = await rejection(() =>
      run({ databaseUrl: URL_, query: 'select 1' }, makeCtx({ outbound: NOTHING_INTERNAL })),
    );
    expect(err.code).toBe('OUTBOUND_REFUSED');
    expect(err.message).toContain('127.0.0.1');
  });

  it('never shows the password when the server rejects it', async () => {
    const secret = 'WrongPassw0rdXyz';
    const ctx = makeCtx();
    const err = await rejection(() =>
      run({ databaseUrl: `mysql://root:${secret}@127.0.0.1:3306/${DB}`, query: 'select 1' }, ctx),
    );
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('SQLSTATE:28000');
    expect(err.message).toMatch(/Access denied/);
    expect(err.message).not.toContain(secret);
    expect(JSON.stringify(ctx.log.lines)).not.toContain(secret);
    expect(JSON.stringify(ctx.log.lines)).toContain('mysql://root:***@127.0.0.1:3306/');
  });

  it('cancels the running query when the run is aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled by test');
    setTimeout(() => controller.abort(reason), 300);
    const started = Date.now();
    const err = await rejection(() =>
      exec({ query: 'select sleep(30)' }, makeCtx({ signal: controller.signal })),
    );
    expect(err).toBe(reason);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await eventually(async () => (await runningQueries('%sleep(30)%')).length === 0)).toBe(true);
  });

  it('maps SQL errors to SQLSTATE codes, retryable for serialization failures', async () => {
    const missing = await rejection(() => exec({ query: 'select * from no_such_table' }));
    expect(missing).toBeInstanceOf(PermanentJobError);
    expect(missing.code).toBe('SQLSTATE:42S02');
    const conflict = await rejection(() => exec({ metadata: { call: { name: 'conflict', args: [] } } }));
    expect(conflict).toBeInstanceOf(RetryableJobError);
    expect(conflict.code).toBe('SQLSTATE:40001');
  });
});
