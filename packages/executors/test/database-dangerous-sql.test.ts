import { DATABASE_SQL_CONSTRUCTS } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { findForbiddenSql } from '../src/database/dangerous-sql.ts';
import { readGrants } from '../src/database/mysql-grants.ts';
import type { SqlDialect } from '../src/database/sql-lexer.ts';

const refused = (sql: string, dialect: SqlDialect) => findForbiddenSql(sql, dialect);

describe('the SQL guard reads tokens: PostgreSQL', () => {
  it.each([
    ["COPY (select 1) TO PROGRAM 'id'", 'COPY_PROGRAM', 'PROGRAM'],
    ["copy items from program 'cat /etc/passwd'", 'COPY_PROGRAM', 'program'],
    ["/* hidden */ CoPy items TO PROGRAM 'id'", 'COPY_PROGRAM', 'PROGRAM'],
    ["copy (select 'a) to stdout' from t) to program 'id'", 'COPY_PROGRAM', 'program'],
    ["COPY items TO '/tmp/out.csv'", 'COPY_FILE', "'/tmp/out.csv'"],
    ["COPY items (id, name) FROM '/etc/passwd' WITH (FORMAT text)", 'COPY_FILE', "'/etc/passwd'"],
    ["select pg_read_file('/etc/passwd')", 'SERVER_FILE_FUNCTION', 'pg_read_file'],
    ["select pg_catalog.pg_read_file('/etc/passwd')", 'SERVER_FILE_FUNCTION', 'pg_read_file'],
    ['select "pg_read_file"(\'/etc/passwd\')', 'SERVER_FILE_FUNCTION', '"pg_read_file"'],
    [
      'select pg_catalog . "pg_read_binary_file" /* c */ (\'/x\')',
      'SERVER_FILE_FUNCTION',
      '"pg_read_binary_file"',
    ],
    [
      'select U&"pg\\005fread\\005ffile"(\'/etc/passwd\')',
      'SERVER_FILE_FUNCTION',
      '"pg\\005fread\\005ffile"',
    ],
    ["select U&\"pg!005fls!005fdir\" UESCAPE '!' ('/')", 'SERVER_FILE_FUNCTION', '"pg!005fls!005fdir"'],
    ["select * from pg_ls_dir('/')", 'SERVER_FILE_FUNCTION', 'pg_ls_dir'],
    ["select pg_stat_file('/etc/passwd')", 'SERVER_FILE_FUNCTION', 'pg_stat_file'],
    ["select lo_import('/etc/passwd')", 'LARGE_OBJECT_FUNCTION', 'lo_import'],
    ["select LO_EXPORT(1, '/tmp/x')", 'LARGE_OBJECT_FUNCTION', 'LO_EXPORT'],
    ["select * from dblink('host=x', 'select 1') as t(a int)", 'DBLINK', 'dblink'],
    ["select public.dblink_exec('host=x', 'drop table t')", 'DBLINK', 'dblink_exec'],
    ["create foreign table f (a int) server s options (filename '/etc/passwd')", 'FOREIGN_DATA', 'foreign'],
    ["create server s foreign data wrapper postgres_fdw options (host 'x')", 'FOREIGN_DATA', 'server'],
    ['create user mapping for public server s', 'FOREIGN_DATA', 'user'],
    ['import foreign schema public from server s into x', 'FOREIGN_DATA', 'import'],
    [
      "select query_to_xml('select pg_read_file(''/etc/passwd'')', true, true, '')",
      'DYNAMIC_SQL',
      'query_to_xml',
    ],
    ["select * from ts_stat('select v from t')", 'DYNAMIC_SQL', 'ts_stat'],
    ['DO $$ begin perform 1; end $$', 'DO_BLOCK', 'DO'],
    ['call add_item(1, $1)', 'CALL', 'call'],
    [
      'create or replace function f() returns int language sql as $$ select 1 $$',
      'ROUTINE_DEFINITION',
      'function',
    ],
    ['create procedure p() language plpgsql as $$ begin end $$', 'ROUTINE_DEFINITION', 'procedure'],
    ['SET ROLE admin', 'SET_ROLE', 'SET'],
    ['set local role admin', 'SET_ROLE', 'set'],
    ['set role = admin', 'SET_ROLE', 'set'],
    ['set "role" to admin', 'SET_ROLE', '"role"'],
    ['reset role', 'SET_ROLE', 'reset'],
    ["select set_config('role', 'admin', false)", 'SET_ROLE', "'role'"],
    ["select set_config('ro' || 'le', 'admin', false)", 'SET_ROLE', 'set_config'],
    ["select set_config(E'role', 'admin', false)", 'SET_ROLE', 'set_config'],
    ['SET SESSION AUTHORIZATION admin', 'SET_SESSION_AUTHORIZATION', 'SET'],
    ['set local session authorization admin', 'SET_SESSION_AUTHORIZATION', 'set'],
    ['set session_authorization = admin', 'SET_SESSION_AUTHORIZATION', 'session_authorization'],
    [
      "select set_config('session_authorization', 'admin', false)",
      'SET_SESSION_AUTHORIZATION',
      "'session_authorization'",
    ],
    ['SET default_transaction_read_only = off', 'TRANSACTION_CONTROL', 'default_transaction_read_only'],
    ['set transaction_read_only to off', 'TRANSACTION_CONTROL', 'transaction_read_only'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'TRANSACTION_CONTROL', 'SET'],
    ['set transaction read write', 'TRANSACTION_CONTROL', 'set'],
    ['RESET ALL', 'TRANSACTION_CONTROL', 'RESET'],
    ['reset default_transaction_read_only', 'TRANSACTION_CONTROL', 'default_transaction_read_only'],
    [
      "select set_config('default_transaction_read_only', 'off', false)",
      'TRANSACTION_CONTROL',
      "'default_transaction_read_only'",
    ],
    ['COMMIT', 'TRANSACTION_CONTROL', 'COMMIT'],
    ['begin read write', 'TRANSACTION_CONTROL', 'begin'],
    ['start transaction read write', 'TRANSACTION_CONTROL', 'start'],
    ['end', 'TRANSACTION_CONTROL', 'end'],
    ['rollback', 'TRANSACTION_CONTROL', 'rollback'],
    ["prepare transaction 'x'", 'TRANSACTION_CONTROL', 'prepare'],
    ["alter system set archive_command = 'id'", 'SERVER_CONFIGURATION', 'system'],
    ["load '/tmp/evil.so'", 'NATIVE_CODE', 'load'],
  ])('refuses %j as %s', (sql, construct, text) => {
    expect(refused(sql, 'postgres')).toMatchObject({ construct, text, offset: sql.indexOf(text) });
  });

  it.each([
    "SELECT 'COPY x TO PROGRAM ''id''' as v",
    "select $$ pg_read_file('/etc/passwd') $$ as v",
    "select $t$ COPY x TO PROGRAM 'id' $t$",
    "select 1 as v -- copy x to program 'id'",
    '/* DO $$ begin end $$ */ select 1',
    'select 1 as "pg_read_file"',
    'select pg_read_file from (select 1 as pg_read_file) as t',
    "select 'lo_import(1)', 'set role admin' as v",
    'select id, name from items where name = $1',
    'COPY items TO STDOUT',
    'copy (select 1) to stdout with (format csv)',
    'copy items from stdin',
    'insert into items values (1, $1) on conflict (id) do nothing',
    "select set_config('search_path', 'public', true)",
    "select set_config('application_name', 'x', false)",
    'set search_path = public',
    'show transaction_read_only',
    'select "call", "do" from t',
    "select E'\\' COPY x TO PROGRAM \\'id\\''",
  ])('lets a look-alike pass: %j', (sql) => {
    expect(refused(sql, 'postgres')).toBeNull();
  });

  it('reads the text as a server with backslash escapes in strings would, too', () => {
    // Default lexing: one string 'a\', then code. With standard_conforming_strings off: one string.
    expect(refused("select 'a\\', pg_read_file('/etc/passwd') -- '", 'postgres')).toMatchObject({
      construct: 'SERVER_FILE_FUNCTION',
    });
    // Default lexing: strings around a lone `/`. With backslash escapes: a call, then a comment.
    expect(refused("select '\\'' , pg_ls_dir('/') -- '", 'postgres')).toMatchObject({
      construct: 'SERVER_FILE_FUNCTION',
    });
  });

  it('lets an allowed construct through and still finds the others', () => {
    const sql = "copy (select pg_read_file('/x')) to program 'id'";
    expect(findForbiddenSql(sql, 'postgres', new Set(['COPY_PROGRAM']))).toMatchObject({
      construct: 'SERVER_FILE_FUNCTION',
    });
    expect(findForbiddenSql(sql, 'postgres', new Set(['COPY_PROGRAM', 'SERVER_FILE_FUNCTION']))).toBeNull();
    // A computed set_config name could set any of three things: all three must be allowed.
    const computed = "select set_config(current_setting('x'), 'on', false)";
    expect(findForbiddenSql(computed, 'postgres', new Set(['SET_ROLE']))).toMatchObject({
      construct: 'SET_SESSION_AUTHORIZATION',
    });
    expect(
      findForbiddenSql(
        computed,
        'postgres',
        new Set(['SET_ROLE', 'SET_SESSION_AUTHORIZATION', 'TRANSACTION_CONTROL']),
      ),
    ).toBeNull();
  });
});

describe('the SQL guard reads tokens: MySQL/MariaDB', () => {
  it.each([
    ["select * from t into outfile '/tmp/x'", 'INTO_OUTFILE', 'outfile'],
    ["SELECT 1 INTO /* c */ OutFile '/tmp/x'", 'INTO_OUTFILE', 'OutFile'],
    ["select 1 /*!50000 into outfile '/tmp/x' */", 'INTO_OUTFILE', 'outfile'],
    ["select 0x41 into dumpfile '/tmp/x'", 'INTO_DUMPFILE', 'dumpfile'],
    ["load data infile '/etc/passwd' into table t", 'LOAD_DATA', 'load'],
    ["LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t", 'LOAD_DATA', 'LOAD'],
    ["load xml infile '/x.xml' into table t", 'LOAD_DATA', 'load'],
    ["select load_file('/etc/passwd')", 'LOAD_FILE', 'load_file'],
    ["select LOAD_FILE /* c */ ('/etc/passwd')", 'LOAD_FILE', 'LOAD_FILE'],
    ["select /*!LOAD_FILE*/('/etc/passwd')", 'LOAD_FILE', 'LOAD_FILE'],
    ["select `load_file`('/etc/passwd')", 'LOAD_FILE', '`load_file`'],
    ["do load_file('/etc/passwd')", 'LOAD_FILE', 'load_file'],
    ["set statement max_statement_time = 0 for select load_file('/x')", 'LOAD_FILE', 'load_file'],
    ["set statement max_statement_time = 0 for load data infile '/x' into table t", 'LOAD_DATA', 'load'],
    ['set statement tx_read_only = 0 for insert into t values (1)', 'TRANSACTION_CONTROL', 'tx_read_only'],
    ['call p()', 'CALL', 'call'],
    ["prepare s from 'select 1'", 'DYNAMIC_SQL', 'prepare'],
    ["execute immediate 'select 1'", 'DYNAMIC_SQL', 'execute'],
    ['set role admin', 'SET_ROLE', 'set'],
    ['set default role admin for u', 'SET_ROLE', 'set'],
    ['set session transaction read write', 'TRANSACTION_CONTROL', 'set'],
    ['set @@session.tx_read_only = 0', 'TRANSACTION_CONTROL', 'tx_read_only'],
    ['set autocommit = 1', 'TRANSACTION_CONTROL', 'autocommit'],
    ['commit', 'TRANSACTION_CONTROL', 'commit'],
    ['start transaction read write', 'TRANSACTION_CONTROL', 'start'],
    ["xa start 'x'", 'TRANSACTION_CONTROL', 'xa'],
    ['begin not atomic select 1; end', 'DO_BLOCK', 'begin'],
    ['set global general_log = 1', 'SERVER_CONFIGURATION', 'global'],
    ["set @@global.general_log_file = '/tmp/x'", 'SERVER_CONFIGURATION', 'global'],
    ["install soname 'ha_connect'", 'NATIVE_CODE', 'install'],
    ["create function sys_exec returns int soname 'lib_mysqludf_sys.so'", 'NATIVE_CODE', 'soname'],
    [
      "create table f (a int) engine = connect table_type = csv file_name = '/etc/passwd'",
      'FOREIGN_DATA',
      'connect',
    ],
    ["create table f (a int) engine=FEDERATED connection='mysql://u@h/db/t'", 'FOREIGN_DATA', 'FEDERATED'],
    ["create server s foreign data wrapper mysql options (host 'x')", 'FOREIGN_DATA', 'create'],
  ])('refuses %j as %s', (sql, construct, text) => {
    const found = refused(sql, 'mysql');
    expect(found).toMatchObject({ construct, text });
    expect(found?.offset).toBe(sql.indexOf(text));
  });

  it.each([
    "select 'load_file(x)' as v",
    "select 1 as v # into outfile '/tmp/x'",
    "select 1 as v -- load data infile '/x'",
    'select 1 as `into outfile`',
    'select "load_file(\'/x\')" as v',
    'select load_file_count from t',
    'select 1 into @v',
    'set @x = 1',
    'set @global = 1, @autocommit = 2',
    'set names utf8mb4',
    'set statement max_statement_time = 0 for select sleep(5)',
    'insert into t values (1) on duplicate key update a = 1',
  ])('lets a look-alike pass: %j', (sql) => {
    expect(refused(sql, 'mysql')).toBeNull();
  });

  it('reads the text as a server without backslash escapes (NO_BACKSLASH_ESCAPES) would, too', () => {
    expect(refused("select 'a\\', load_file('/etc/passwd') -- '", 'mysql')).toMatchObject({
      construct: 'LOAD_FILE',
    });
    // Under ANSI_QUOTES "…" is an identifier, so what follows its end is code.
    expect(refused('select "a\\" , load_file(\'/x\') -- "', 'mysql')).toMatchObject({
      construct: 'LOAD_FILE',
    });
  });
});

describe('SHOW GRANTS readings', () => {
  it('finds superuser-like privileges and the roles to follow', () => {
    expect(
      readGrants(['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION']).reasons,
    ).toEqual(['ALL PRIVILEGES on *.*', 'WITH GRANT OPTION on *.*']);
    expect(readGrants(["GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION"]).reasons).toEqual([
      "PROXY on ''@'%'",
    ]);
    expect(readGrants(['GRANT FILE ON *.* TO `r`']).reasons).toEqual(['FILE on *.*']);
    expect(readGrants(['GRANT SELECT, INSERT ON *.* TO `u`@`%`']).reasons).toEqual([
      'INSERT on *.* (the grant tables)',
    ]);
    expect(readGrants(['GRANT UPDATE ON `mysql`.* TO `u`@`%`']).reasons).toEqual([
      'UPDATE on `mysql`.* (the grant tables)',
    ]);
    expect(
      readGrants([
        'GRANT `zz_filer`,`other` TO `u`@`%`',
        "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122'",
        'GRANT SELECT, INSERT (id, name), UPDATE ON `app`.* TO `u`@`%`',
        'GRANT SELECT ON `app`.`items` TO `u`@`%`',
        'SET DEFAULT ROLE `zz_filer` FOR `u`@`%`',
      ]),
    ).toEqual({ reasons: [], roles: ['`zz_filer`', '`other`'] });
  });
});

it('names every construct the core list holds', () => {
  expect(new Set(DATABASE_SQL_CONSTRUCTS).size).toBe(DATABASE_SQL_CONSTRUCTS.length);
});
