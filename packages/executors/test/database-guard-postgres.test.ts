import { DATABASE_SQL_CONSTRUCTS, PermanentJobError, type DatabasePayloadInput } from '@chronos/core';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseExecutor, type DatabaseOutput } from '../src/database.ts';
import { makeCtx, rejection } from './helpers.ts';

const SERVER = 'postgres://postgres@127.0.0.1:5432';
const SUFFIX = randomBytes(6).toString('hex');
const DB = `chronos_dbguard_${SUFFIX}`;
const SUPERUSER_URL = `${SERVER}/${DB}`;
/** Roles this file creates (cluster-wide, so named per run) and drops after. */
const ROLES = {
  reader: `chronos_reader_${SUFFIX}`,
  filer: `chronos_filer_${SUFFIX}`,
  sudoer: `chronos_sudoer_${SUFFIX}`,
  creator: `chronos_creator_${SUFFIX}`,
};
const urlOf = (role: string) => `postgres://${role}@127.0.0.1:5432/${DB}`;
const READER_URL = urlOf(ROLES.reader);
/** A file the database server would create (it runs on this host). */
const marker = (name: string) => `/tmp/chronos-dbguard-${SUFFIX}-${name}`;

/** The defaults: the guard closed, superusers refused. */
const strict = createDatabaseExecutor({ cleanupTimeoutMs: 1000 });
/** The guard closed, superusers allowed: isolates the guard from the superuser refusal. */
const guardOnly = createDatabaseExecutor({ cleanupTimeoutMs: 1000, allowSuperuser: true });
/** Everything allowed: what the server itself would do without Chronos in the way. */
const wideOpen = createDatabaseExecutor({
  cleanupTimeoutMs: 1000,
  allowSuperuser: true,
  allowedSql: DATABASE_SQL_CONSTRUCTS,
});

let admin: pg.Client;
const count = async () => Number((await admin.query('select count(*) as n from items')).rows[0].n);
const largeObjects = async () =>
  Number((await admin.query('select count(*) as n from pg_largeobject_metadata')).rows[0].n);

async function runOutput(
  executor: typeof strict,
  payload: Omit<DatabasePayloadInput, 'databaseUrl'>,
  databaseUrl = SUPERUSER_URL,
) {
  return (await executor({ databaseUrl, ...payload }, makeCtx())).output as DatabaseOutput;
}

/** Runs `payload` and expects SQL_FORBIDDEN naming `construct`, refused before any connection. */
async function expectForbidden(
  payload: Omit<DatabasePayloadInput, 'databaseUrl'>,
  construct: string,
  executor = guardOnly,
) {
  const ctx = makeCtx();
  const err = await rejection(() => executor({ databaseUrl: SUPERUSER_URL, ...payload }, ctx));
  expect(err).toBeInstanceOf(PermanentJobError);
  expect(err.code).toBe('SQL_FORBIDDEN');
  expect(err.retryable).toBe(false);
  expect(err.message).toContain(`[${construct}]`);
  expect(ctx.log.lines.map((l) => l.msg)).not.toContain('database: connecting');
  return err;
}

beforeAll(async () => {
  const root = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await root.connect();
  await root.query(`create database ${DB}`);
  await root.query(`
    create role ${ROLES.reader} login;
    create role ${ROLES.filer} login in role pg_read_server_files;
    create role ${ROLES.sudoer} login noinherit in role postgres;
    create role ${ROLES.creator} login createrole;
  `);
  await root.end();
  admin = new pg.Client({ connectionString: SUPERUSER_URL });
  await admin.connect();
  await admin.query(`
    create extension dblink;
    create table items (id int primary key, name text not null);
    insert into items values (1, 'one'), (2, 'two');
    create procedure add_item(p_id int, p_name text) language sql as $$ insert into items values (p_id, p_name) $$;
    create procedure commit_then_write() language plpgsql as $$
      begin commit; insert into items values (99, 'escaped'); end $$;
    grant connect on database ${DB} to ${ROLES.reader}, ${ROLES.filer}, ${ROLES.sudoer}, ${ROLES.creator};
    grant usage on schema public to ${ROLES.reader};
    grant select on items to ${ROLES.reader};
  `);
});

afterAll(async () => {
  await admin?.end();
  const root = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await root.connect();
  await root.query(`drop database if exists ${DB} with (force)`);
  for (const role of Object.values(ROLES)) await root.query(`drop role if exists ${role}`);
  await root.end();
  for (const name of ['program', 'copy-file', 'reader-program']) rmSync(marker(name), { force: true });
});

describe('DATABASE guard on PostgreSQL: refused SQL never reaches the server', () => {
  it('COPY … TO PROGRAM in a read-only run fails with SQL_FORBIDDEN and the command never runs', async () => {
    const query = `COPY (select 1) TO PROGRAM 'touch ${marker('program')}'`;
    const err = await expectForbidden({ query, readOnly: true }, 'COPY_PROGRAM');
    expect(err.message).toContain('at character 20 ("PROGRAM")');
    expect(err.message).toContain('DATABASE_ALLOWED_SQL');
    expect(existsSync(marker('program'))).toBe(false);
    // The control: without the guard, the server runs the command — read-only or not.
    await runOutput(wideOpen, { query, readOnly: true });
    expect(existsSync(marker('program'))).toBe(true);
  });

  it('COPY to a server file: refused, no file', async () => {
    await expectForbidden({ query: `copy items to '${marker('copy-file')}'`, readOnly: false }, 'COPY_FILE');
    expect(existsSync(marker('copy-file'))).toBe(false);
  });

  it('large objects: lo_import creates nothing', async () => {
    const before = await largeObjects();
    await expectForbidden(
      { query: "select lo_import('/etc/hostname')", readOnly: false },
      'LARGE_OBJECT_FUNCTION',
    );
    expect(await largeObjects()).toBe(before);
  });

  it('dblink: refused, although without the guard it writes from a read-only run', async () => {
    const before = await count();
    const query = `select dblink_exec('host=127.0.0.1 user=postgres dbname=${DB}', 'insert into items values (50, ''remote'')')`;
    await expectForbidden({ query, readOnly: true }, 'DBLINK');
    expect(await count()).toBe(before);
    await runOutput(wideOpen, { query, readOnly: true });
    expect(await count()).toBe(before + 1);
    await admin.query('delete from items where id = 50');
  });

  it('DO blocks and CALL (query or metadata.call) run nothing, in write runs too', async () => {
    const before = await count();
    await expectForbidden(
      { query: "do $$ begin insert into items values (60, 'do'); end $$", readOnly: false },
      'DO_BLOCK',
    );
    await expectForbidden({ query: "call add_item(61, 'call')", readOnly: false }, 'CALL');
    await expectForbidden(
      { metadata: { call: { name: 'add_item', args: [62, 'meta'] } }, readOnly: false },
      'CALL',
    );
    expect(await count()).toBe(before);
  });

  it.each([
    ["select pg_read_file('/etc/hostname')", 'SERVER_FILE_FUNCTION'],
    ["select pg_catalog.pg_read_file('/etc/hostname')", 'SERVER_FILE_FUNCTION'],
    ['select "pg_read_file"(\'/etc/hostname\')', 'SERVER_FILE_FUNCTION'],
    ["/* */ select * from pg_ls_dir('/')", 'SERVER_FILE_FUNCTION'],
    ["select lo_export(1, '/tmp/x')", 'LARGE_OBJECT_FUNCTION'],
    ["select * from query_to_xml('select 1', true, true, '')", 'DYNAMIC_SQL'],
    ['set role postgres', 'SET_ROLE'],
    ["select set_config('role', 'postgres', false)", 'SET_ROLE'],
    ['SET SESSION AUTHORIZATION postgres', 'SET_SESSION_AUTHORIZATION'],
    ['SET default_transaction_read_only = off', 'TRANSACTION_CONTROL'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'TRANSACTION_CONTROL'],
    ['RESET ALL', 'TRANSACTION_CONTROL'],
    ['COMMIT', 'TRANSACTION_CONTROL'],
    ['BEGIN READ WRITE', 'TRANSACTION_CONTROL'],
    ['create function f() returns int language sql as $$ select 1 $$', 'ROUTINE_DEFINITION'],
    ["alter system set archive_command = 'id'", 'SERVER_CONFIGURATION'],
  ])('refuses %j (%s)', async (query, construct) => {
    await expectForbidden({ query, readOnly: false }, construct);
  });

  it.each([
    ["SELECT 'COPY x TO PROGRAM ''id''' as v", "COPY x TO PROGRAM 'id'"],
    ["select $$ pg_read_file('/etc/passwd') $$ as v", " pg_read_file('/etc/passwd') "],
    ["select 1 as v -- ; copy items to program 'id'", 1],
    ["/* DO $$ begin end $$ */ select 'lo_import' as v", 'lo_import'],
    ['select name as "pg_read_file" from items where id = 1', undefined],
  ])('runs a look-alike as the least-privilege role: %j', async (query, v) => {
    const out = await runOutput(strict, { query }, READER_URL);
    if (v === undefined) expect(out.rows).toEqual([{ pg_read_file: 'one' }]);
    else expect(out.rows).toEqual([{ v }]);
  });
});

describe('DATABASE on PostgreSQL: superuser connections', () => {
  it('are refused by default (DB_SUPERUSER_REFUSED, nothing runs) and allowed with allowSuperuser', async () => {
    const err = await rejection(() =>
      runOutput(strict, { query: "insert into items values (70, 'x')", readOnly: false }),
    );
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('DB_SUPERUSER_REFUSED');
    expect(err.message).toContain('superuser role "postgres"');
    expect(err.message).toContain('least-privilege');
    expect(await count()).toBe(2);
    expect((await runOutput(guardOnly, { query: 'select count(*)::int as n from items' })).rows).toEqual([
      { n: 2 },
    ]);
  });

  it.each([
    ['a member of pg_read_server_files', ROLES.filer, 'member of pg_read_server_files'],
    ['able to SET ROLE to a superuser', ROLES.sudoer, 'superuser role "postgres"'],
    ['a CREATEROLE role', ROLES.creator, `role "${ROLES.creator}" has CREATEROLE`],
  ])('count as superusers: %s', async (_what, role, reason) => {
    const err = await rejection(() => runOutput(strict, { query: 'select 1' }, urlOf(role)));
    expect(err.code).toBe('DB_SUPERUSER_REFUSED');
    expect(err.message).toContain(reason);
  });

  it('a least-privilege role runs with the defaults, and the server refuses what the guard was told to let through', async () => {
    expect(
      (await runOutput(strict, { query: 'select id, name from items order by id' }, READER_URL)).rows,
    ).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    const err = await rejection(() =>
      runOutput(
        wideOpen,
        { query: `COPY (select 1) TO PROGRAM 'touch ${marker('reader-program')}'` },
        READER_URL,
      ),
    );
    expect(err.code).toBe('SQLSTATE:42501');
    expect(existsSync(marker('reader-program'))).toBe(false);
  });
});

describe('DATABASE on PostgreSQL: a read-only run stays read-only', () => {
  it('a procedure cannot commit its way out of the run’s transaction, even with CALL allowed', async () => {
    const before = await count();
    const err = await rejection(() => runOutput(wideOpen, { query: 'call commit_then_write()' }));
    expect(err.code).toBe('SQLSTATE:2D000');
    expect(await count()).toBe(before);
  });

  it('what the guard calls transaction control changes nothing for the next run when allowed', async () => {
    for (const query of [
      'SET default_transaction_read_only = off',
      'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
      'RESET ALL',
      'COMMIT',
      'BEGIN READ WRITE',
    ]) {
      await runOutput(wideOpen, { query });
      const err = await rejection(() => runOutput(wideOpen, { query: "insert into items values (80, 'x')" }));
      expect(err.code).toBe('READ_ONLY_VIOLATION');
    }
    expect(await count()).toBe(2);
  });

  it('a second statement after COMMIT is refused before anything runs', async () => {
    const err = await rejection(() =>
      runOutput(wideOpen, { query: "COMMIT; insert into items values (81, 'x')", readOnly: true }),
    );
    expect(err.code).toBe('STACKED_STATEMENTS');
    expect(await count()).toBe(2);
  });
});
