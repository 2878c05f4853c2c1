import { describe, expect, it } from 'vitest';
import { redactDatabaseUrl } from '../src/database.ts';
import { parseDatabaseUrl } from '../src/database/database-url.ts';
import { checkSingleStatement, scanSql, type SqlDialect } from '../src/database/sql-lexer.ts';
import { bindQuery, buildCall } from '../src/database/statement.ts';
import { rejection } from './helpers.ts';

const stacked = (sql: string, dialect: SqlDialect) => {
  const r = checkSingleStatement(sql, dialect);
  return !r.ok && r.reason === 'stacked';
};

describe('one statement only: the lexer tells separators from literals and comments', () => {
  it.each([
    'select 1; drop table x',
    'select 1;drop table x;',
    'select 1; -- c\n drop table x',
    'select 1 /* x */; drop table x',
    "select 'a'';'; drop table x",
    'select $$;$$; drop table x',
    'select "a;b" from t; drop table x',
    '/* ; */ select 1; drop table x',
    'select 1;\n\nselect 2',
    // with standard_conforming_strings off, this is two statements
    "select '\\'; drop table x; --'",
  ])('PostgreSQL: refuses %j', (sql) => {
    expect(stacked(sql, 'postgres')).toBe(true);
  });

  it.each([
    "select ';' as s",
    'select 1 -- ; drop table x',
    'select $$;$$ as s',
    'select $tag$ ; drop $$ table $tag$ as s',
    "select E'\\'; drop table x; --' as s",
    '/* /* nested */ ; still comment */ select 1',
    'select 1;',
    'select 1 ;  -- trailing\n ;; ',
    'select "a;b" from t',
    "select 'x'::text, a[1:2] from t",
  ])('PostgreSQL: accepts %j', (sql) => {
    expect(checkSingleStatement(sql, 'postgres')).toMatchObject({ ok: true });
  });

  it.each([
    'select 1; drop table x',
    'select 1 # c\n; drop table x',
    'select "a;"; drop table x',
    'select `a;`; drop table x',
    'select 1 /*! ; drop table x */',
    // one string with backslash escapes; two statements under NO_BACKSLASH_ESCAPES
    "select 'a\\'; drop table x; -- '",
    // a string by default; an identifier (and two statements) under ANSI_QUOTES
    'select "a\\"; drop table x; -- "',
  ])('MySQL: refuses %j', (sql) => {
    expect(stacked(sql, 'mysql')).toBe(true);
  });

  it.each([
    "select ';' as s",
    'select 1 -- ; drop table x',
    'select 1 # ; drop table x',
    'select 1 as `a;b`',
    'select 1;',
    'select 1--1',
    "select 'it''s; fine'",
  ])('MySQL: accepts %j', (sql) => {
    expect(checkSingleStatement(sql, 'mysql')).toMatchObject({ ok: true });
  });

  it('reports unterminated literals and empty queries as such, not as stacked', () => {
    expect(checkSingleStatement("select 'abc", 'postgres')).toMatchObject({ ok: false, reason: 'lex' });
    expect(checkSingleStatement('select $x$ abc', 'postgres')).toMatchObject({ ok: false, reason: 'lex' });
    expect(checkSingleStatement('select 1 /* abc', 'mysql')).toMatchObject({ ok: false, reason: 'lex' });
    expect(checkSingleStatement(' -- nothing\n ; ', 'postgres')).toMatchObject({
      ok: false,
      reason: 'empty',
    });
  });
});

describe('placeholders', () => {
  it('finds :name outside literals, comments, casts and array slices', () => {
    const sql =
      'select :a::int, \':nope\', ":nope", $$:nope$$, a[1:2], a[lo:hi], x::text -- :nope\n, :b /* :nope */, :a';
    const names = scanSql(sql, 'postgres')
      .placeholders.filter((p) => p.kind === 'named')
      .map((p) => p.name);
    expect(names).toEqual(['a', 'b', 'a']);
  });

  it('names the first keyword of the statement', () => {
    expect(scanSql('/* c */ (select 1)', 'postgres').firstKeyword).toBe('SELECT');
    expect(scanSql('-- c\nwith x as (select 1) delete from t', 'postgres').firstKeyword).toBe('WITH');
    expect(scanSql('  insert into t values (?)', 'mysql').firstKeyword).toBe('INSERT');
  });

  it('PostgreSQL: a named parameter used twice is bound once', () => {
    expect(bindQuery('select :a::int + :b, :a', { a: 1, b: 2 }, 'postgres')).toMatchObject({
      sql: 'select $1::int + $2, $1',
      values: [1, 2],
    });
  });

  it('MySQL: each use of a name is its own ?; := and @vars are left alone', () => {
    expect(bindQuery("select :a + :b, :a, ':x', @v := 1", { a: 1, b: 2, c: 3 }, 'mysql')).toEqual({
      sql: "select ? + ?, ?, ':x', @v := 1",
      values: [1, 2, 1],
      firstKeyword: 'SELECT',
      unusedParameters: ['c'],
    });
  });

  it('strips the trailing semicolon and comment', () => {
    expect(bindQuery('select 1 ; -- done', null, 'postgres').sql).toBe('select 1');
  });

  it('refuses missing names, mixed styles and wrong positional counts', async () => {
    const codeOf = async (fn: () => unknown) => (await rejection(async () => fn())).code;
    expect(await codeOf(() => bindQuery('select :a, :b', { a: 1 }, 'postgres'))).toBe('INVALID_PAYLOAD');
    expect(await codeOf(() => bindQuery('select :a, $1', { a: 1 }, 'postgres'))).toBe('INVALID_PAYLOAD');
    expect(await codeOf(() => bindQuery('select :a, ?', { a: 1 }, 'mysql'))).toBe('INVALID_PAYLOAD');
    expect(await codeOf(() => bindQuery('select $2', [1], 'postgres'))).toBe('INVALID_PAYLOAD');
    expect(await codeOf(() => bindQuery('select ?, ?', [1], 'mysql'))).toBe('INVALID_PAYLOAD');
    expect(await codeOf(() => bindQuery('select 1; select 2', null, 'mysql'))).toBe('STACKED_STATEMENTS');
  });
});

describe('CALL', () => {
  it('quotes every name part and binds the arguments', () => {
    expect(buildCall({ name: 'Billing.Close_Month', args: [2026, 'x'] }, 'postgres')).toMatchObject({
      sql: 'CALL "billing"."close_month"($1, $2)',
      values: [2026, 'x'],
    });
    expect(buildCall({ name: ['My"Schema', 'Proc.With.Dots'], args: [] }, 'postgres').sql).toBe(
      'CALL "My""Schema"."Proc.With.Dots"()',
    );
    expect(buildCall({ name: ['d`b', 'p'], args: [1] }, 'mysql').sql).toBe('CALL `d``b`.`p`(?)');
  });
});

describe('database URLs', () => {
  it('masks the password, in good URLs and in ones that do not parse', () => {
    expect(redactDatabaseUrl('postgres://app:s3cr%40t@db.internal:5432/app?sslmode=require')).toBe(
      'postgres://app:***@db.internal:5432/app?sslmode=require',
    );
    expect(redactDatabaseUrl('mysql://root@db/x?password=hunter22')).toBe('mysql://root@db/x?password=***');
    expect(redactDatabaseUrl('postgres://app:pa/ss@word@db/app')).not.toContain('pa/ss');
    expect(redactDatabaseUrl('postgres://app:pa/ss@word@db/app')).not.toContain('word');
    expect(redactDatabaseUrl('postgres://db/app')).toBe('postgres://db/app');
  });

  it('parses host, port, credentials, database and TLS mode', () => {
    expect(parseDatabaseUrl('postgresql://app:p%40ss@[::1]/my%20db?sslmode=verify-full&schema=x')).toEqual({
      dialect: 'postgres',
      host: '::1',
      port: 5432,
      user: 'app',
      password: 'p@ss',
      database: 'my db',
      tls: 'verify-full',
      display: 'postgresql://app:***@[::1]/my%20db?sslmode=verify-full&schema=x',
      ignoredParams: ['schema'],
    });
    expect(parseDatabaseUrl('mariadb://root@127.0.0.1/test?ssl-mode=REQUIRED')).toMatchObject({
      dialect: 'mysql',
      port: 3306,
      tls: 'require',
    });
  });

  it('never echoes the password when refusing a URL', async () => {
    for (const url of [
      'postgres://app:Hunter2Secret@/db',
      'redis://app:Hunter2Secret@h/db',
      'postgres://app:Hunter2Secret@h:99999/db',
    ]) {
      const err = await rejection(async () => parseDatabaseUrl(url));
      expect(err.code).toBe('INVALID_PAYLOAD');
      expect(err.message).not.toContain('Hunter2Secret');
    }
  });
});
