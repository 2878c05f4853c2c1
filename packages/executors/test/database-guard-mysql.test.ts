import { DATABASE_SQL_CONSTRUCTS, PermanentJobError, type DatabasePayloadInput } from '@chronos/core';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import mysql, { type Connection } from 'mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseExecutor, type DatabaseOutput } from '../src/database.ts';
import { makeCtx, rejection } from './helpers.ts';

const SUFFIX = randomBytes(6).toString('hex');
const DB = `chronos_dbguard_${SUFFIX}`;
const ROOT_URL = `mysql://root@127.0.0.1:3306/${DB}`;
const PASSWORD = randomBytes(12).toString('hex');
/** Accounts this file creates (server-wide, so named per run) and drops after. */
const USERS = {
  reader: `cg_reader_${SUFFIX}`,
  filer: `cg_filer_${SUFFIX}`,
  defaultRole: `cg_defrole_${SUFFIX}`,
  spareRole: `cg_sparerole_${SUFFIX}`,
  plainRoles: `cg_plainroles_${SUFFIX}`,
};
const FILE_ROLE = `cg_file_role_${SUFFIX}`;
const SUPER_ROLE = `cg_super_role_${SUFFIX}`;
const READ_ROLE = `cg_read_role_${SUFFIX}`;
const SPARE_READ_ROLE = `cg_spare_read_role_${SUFFIX}`;
const urlOf = (user: string) => `mysql://${user}:${PASSWORD}@127.0.0.1:3306/${DB}`;
const READER_URL = urlOf(USERS.reader);
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

let admin: Connection;
function sql<T = Record<string, unknown>[]>(text: string, values: unknown[] = []): Promise<T> {
  return new Promise((resolve, reject) =>
    admin.query(text, values, (err, rows) => (err ? reject(err) : resolve(rows as T))),
  );
}
const count = async () => Number((await sql<{ n: number }[]>('select count(*) as n from items'))[0]?.n);

async function runOutput(
  executor: typeof strict,
  payload: Omit<DatabasePayloadInput, 'databaseUrl'>,
  databaseUrl = ROOT_URL,
) {
  return (await executor({ databaseUrl, ...payload }, makeCtx())).output as DatabaseOutput;
}

/** Runs `payload` and expects SQL_FORBIDDEN naming `construct`, refused before any connection. */
async function expectForbidden(payload: Omit<DatabasePayloadInput, 'databaseUrl'>, construct: string) {
  const ctx = makeCtx();
  const err = await rejection(() => guardOnly({ databaseUrl: ROOT_URL, ...payload }, ctx));
  expect(err).toBeInstanceOf(PermanentJobError);
  expect(err.code).toBe('SQL_FORBIDDEN');
  expect(err.message).toContain(`[${construct}]`);
  expect(ctx.log.lines.map((l) => l.msg)).not.toContain('database: connecting');
  return err;
}

beforeAll(async () => {
  admin = mysql.createConnection({ host: '127.0.0.1', user: 'root', multipleStatements: true });
  await sql(`create database ${DB}`);
  await sql(`use ${DB}`);
  await sql(`
    create table items (id int primary key, name varchar(50) not null) engine = InnoDB;
    insert into items values (1, 'one'), (2, 'two');
    create procedure add_item(p_id int, p_name varchar(50)) insert into items values (p_id, p_name);
  `);
  await sql(`create procedure commit_then_write() begin
      commit; set session transaction read write; start transaction read write;
      insert into items values (99, 'escaped'); commit;
    end`);
  for (const user of Object.values(USERS)) {
    await sql(`create user '${user}'@'%' identified by '${PASSWORD}'`);
    await sql(`grant select on ${DB}.* to '${user}'@'%'`);
  }
  await sql(`
    grant file on *.* to '${USERS.filer}'@'%';
    create role ${FILE_ROLE};
    grant file on *.* to ${FILE_ROLE};
    grant ${FILE_ROLE} to '${USERS.defaultRole}'@'%';
    set default role ${FILE_ROLE} for '${USERS.defaultRole}'@'%';
    create role ${SUPER_ROLE};
    grant super on *.* to ${SUPER_ROLE};
    grant ${SUPER_ROLE} to '${USERS.spareRole}'@'%';
    create role ${READ_ROLE};
    grant select on ${DB}.items to ${READ_ROLE};
    create role ${SPARE_READ_ROLE};
    grant select on ${DB}.* to ${SPARE_READ_ROLE};
    grant ${READ_ROLE} to '${USERS.plainRoles}'@'%';
    grant ${SPARE_READ_ROLE} to '${USERS.plainRoles}'@'%';
    set default role ${READ_ROLE} for '${USERS.plainRoles}'@'%';
  `);
});

afterAll(async () => {
  if (!admin) return;
  await sql(`drop database if exists ${DB}`);
  for (const user of Object.values(USERS)) await sql(`drop user if exists '${user}'@'%'`);
  await sql(`drop role if exists ${FILE_ROLE}`);
  await sql(`drop role if exists ${SUPER_ROLE}`);
  await sql(`drop role if exists ${READ_ROLE}`);
  await sql(`drop role if exists ${SPARE_READ_ROLE}`);
  await new Promise<void>((resolve) => admin.end(() => resolve()));
  for (const name of ['outfile', 'dumpfile', 'reader-outfile']) rmSync(marker(name), { force: true });
});

describe('DATABASE guard on MariaDB: refused SQL never reaches the server', () => {
  it('SELECT … INTO OUTFILE fails with SQL_FORBIDDEN and writes no file', async () => {
    const query = `select name from items into outfile '${marker('outfile')}'`;
    const err = await expectForbidden({ query }, 'INTO_OUTFILE');
    expect(err.message).toContain('at character 29 ("outfile")');
    expect(existsSync(marker('outfile'))).toBe(false);
    // The control: without the guard, the server writes the file from a read-only run.
    await runOutput(wideOpen, { query });
    expect(existsSync(marker('outfile'))).toBe(true);
  });

  it('INTO DUMPFILE, LOAD_FILE and LOAD DATA: refused, nothing written or read', async () => {
    await expectForbidden({ query: `select 'x' into dumpfile '${marker('dumpfile')}'` }, 'INTO_DUMPFILE');
    expect(existsSync(marker('dumpfile'))).toBe(false);
    await expectForbidden({ query: "select LOAD_FILE('/etc/hostname') as f" }, 'LOAD_FILE');
    await expectForbidden({ query: "select /*!LOAD_FILE*/('/etc/hostname') as f" }, 'LOAD_FILE');
    const before = await count();
    await expectForbidden(
      { query: "load data infile '/etc/hostname' into table items (name) set id = 40", readOnly: false },
      'LOAD_DATA',
    );
    expect(await count()).toBe(before);
  });

  it('CALL is refused: without the guard a procedure commits its way out of a read-only run', async () => {
    const before = await count();
    await expectForbidden({ query: 'call commit_then_write()' }, 'CALL');
    await expectForbidden({ metadata: { call: { name: 'commit_then_write', args: [] } } }, 'CALL');
    await expectForbidden(
      { metadata: { call: { name: 'add_item', args: [41, 'x'] } }, readOnly: false },
      'CALL',
    );
    expect(await count()).toBe(before);
    // The control: the server lets the procedure write although the run is read-only.
    await runOutput(wideOpen, { metadata: { call: { name: 'commit_then_write', args: [] } } });
    expect(await count()).toBe(before + 1);
    await sql('delete from items where id = 99');
  });

  it.each([
    ['set role ' + FILE_ROLE, 'SET_ROLE'],
    ["prepare s from 'select 1'", 'DYNAMIC_SQL'],
    ['set session transaction read write', 'TRANSACTION_CONTROL'],
    ["set statement tx_read_only = 0 for insert into items values (42, 'x')", 'TRANSACTION_CONTROL'],
    ['commit', 'TRANSACTION_CONTROL'],
    ['set global general_log = 1', 'SERVER_CONFIGURATION'],
    ["create table f (a int) engine = connect table_type = csv file_name = '/etc/hostname'", 'FOREIGN_DATA'],
  ])('refuses %j (%s)', async (query, construct) => {
    await expectForbidden({ query, readOnly: false }, construct);
  });

  it.each([
    ["select 'load_file(''/etc/hostname'')' as v", "load_file('/etc/hostname')"],
    ["select 1 as v # into outfile '/tmp/x'", 1],
    ["select 2 as v -- load data infile '/etc/hostname'", 2],
    ['select 3 as `into outfile`', undefined],
  ])('runs a look-alike as the least-privilege account: %j', async (query, v) => {
    const out = await runOutput(strict, { query }, READER_URL);
    if (v === undefined) expect(out.rows).toEqual([{ 'into outfile': 3 }]);
    else expect(out.rows).toEqual([{ v }]);
  });
});

describe('DATABASE on MariaDB: superuser accounts', () => {
  it('root is refused by default (DB_SUPERUSER_REFUSED, nothing runs) and allowed with allowSuperuser', async () => {
    const err = await rejection(() =>
      runOutput(strict, { query: "insert into items values (70, 'x')", readOnly: false }),
    );
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('DB_SUPERUSER_REFUSED');
    expect(err.message).toContain('ALL PRIVILEGES on *.*');
    expect(await count()).toBe(2);
    expect((await runOutput(guardOnly, { query: 'select count(*) as n from items' })).rows).toEqual([
      { n: 2 },
    ]);
  });

  it.each([
    ['FILE granted', USERS.filer, 'FILE on *.*'],
    ['FILE through its default role', USERS.defaultRole, 'FILE on *.*'],
    ['SUPER through a role it may SET ROLE to', USERS.spareRole, `SUPER on *.* (role \`${SUPER_ROLE}\`)`],
  ])('count as superusers: %s', async (_what, user, reason) => {
    const err = await rejection(() => runOutput(strict, { query: 'select 1' }, urlOf(user)));
    expect(err.code).toBe('DB_SUPERUSER_REFUSED');
    expect(err.message).toContain(reason);
  });

  it('roles without such privileges pass, and the run goes on under the role that was active', async () => {
    const out = await runOutput(strict, { query: 'select current_role() as r' }, urlOf(USERS.plainRoles));
    expect(out.rows).toEqual([{ r: READ_ROLE }]);
  });

  it('a least-privilege account runs with the defaults, and the server refuses what the guard was told to let through', async () => {
    expect(
      (await runOutput(strict, { query: 'select id, name from items order by id' }, READER_URL)).rows,
    ).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    // Without FILE, LOAD_FILE reads nothing and INTO OUTFILE is denied.
    expect(
      (await runOutput(wideOpen, { query: "select load_file('/etc/hostname') as f" }, READER_URL)).rows,
    ).toEqual([{ f: null }]);
    const err = await rejection(() =>
      runOutput(wideOpen, { query: `select 1 into outfile '${marker('reader-outfile')}'` }, READER_URL),
    );
    expect(err.code).toBe('SQLSTATE:42000');
    expect(err.message).toMatch(/Access denied/);
    expect(existsSync(marker('reader-outfile'))).toBe(false);
  });
});
