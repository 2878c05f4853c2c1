import { PermanentJobError, type DatabaseSqlConstruct } from '@chronos/core';
import { lexVariants, scanSql, type SqlDialect, type SqlScan, type SqlToken } from './sql-lexer.ts';

/**
 * The guard on what a DATABASE job may run. It reads tokens from the lexer, never the raw text, so
 * string literals, quoted identifiers, comments and dollar-quoting can neither hide a construct
 * (`/* *\/ copy`, `CoPy`, `pg_catalog."pg_read_file"(…)`) nor fake one (`SELECT 'COPY x TO
 * PROGRAM'`). Where the server's lexing depends on its settings (backslash escapes, ANSI quotes),
 * every variant is read, as for stacked statements: what is a string under one setting may be
 * code under another.
 *
 * It is a deny-list over the SQL text, so it cannot see code that already lives in the database
 * (a function or view that calls `pg_read_file`, a foreign table): that is what a least-privilege
 * role is for, and why a superuser connection is refused as well (see `superuser-check.ts`).
 */

/** What each construct is, as error messages name it. */
export const SQL_CONSTRUCT_LABELS: Readonly<Record<DatabaseSqlConstruct, string>> = {
  COPY_PROGRAM: 'COPY … TO/FROM PROGRAM (a command run on the database host)',
  COPY_FILE: 'COPY … TO/FROM a server file',
  SERVER_FILE_FUNCTION: 'a server file function (pg_read_file, pg_ls_dir, …)',
  LARGE_OBJECT_FUNCTION: 'a large-object function (lo_import, lo_export, …)',
  DBLINK: 'a dblink call (a query on another server)',
  FOREIGN_DATA: 'foreign data (servers, foreign tables, user mappings, FEDERATED/CONNECT tables)',
  DYNAMIC_SQL: 'SQL run from a string (query_to_xml, ts_stat, PREPARE/EXECUTE, …)',
  DO_BLOCK: 'an anonymous code block (DO, BEGIN NOT ATOMIC)',
  CALL: 'CALL of a stored procedure',
  ROUTINE_DEFINITION: 'CREATE FUNCTION/PROCEDURE (a body the guard cannot read)',
  SET_ROLE: 'SET ROLE (or set_config of role)',
  SET_SESSION_AUTHORIZATION: 'SET SESSION AUTHORIZATION',
  TRANSACTION_CONTROL: 'transaction control (BEGIN, COMMIT, SET TRANSACTION, RESET ALL, …)',
  SERVER_CONFIGURATION: 'server configuration (ALTER SYSTEM, SET GLOBAL/PERSIST)',
  NATIVE_CODE: 'loading native code (LOAD, INSTALL PLUGIN/SONAME)',
  INTO_OUTFILE: 'SELECT … INTO OUTFILE (a server file)',
  INTO_DUMPFILE: 'SELECT … INTO DUMPFILE (a server file)',
  LOAD_DATA: 'LOAD DATA / LOAD XML (a file read into a table)',
  LOAD_FILE: 'LOAD_FILE() (a server file read)',
};

/** One refused construct: what it is and where (offset into the SQL text, 0-based). */
export interface ForbiddenSql {
  construct: DatabaseSqlConstruct;
  offset: number;
  /** The token that gave it away. */
  text: string;
}

/** A run refused for SQL the worker's configuration does not allow. Permanent: never retried. */
export class ForbiddenSqlError extends PermanentJobError {
  constructor(
    readonly construct: DatabaseSqlConstruct,
    /** `query` or `metadata.call`. */
    readonly field: string,
    /** 0-based offset into `query`; null for `metadata.call`. */
    readonly offset: number | null,
    detail: string,
  ) {
    super(
      `${field} uses ${SQL_CONSTRUCT_LABELS[construct]} [${construct}]${detail}; refused in every mode ` +
        `unless the worker's DATABASE_ALLOWED_SQL names ${construct}`,
      'SQL_FORBIDDEN',
    );
  }
}

// PostgreSQL ------------------------------------------------------------------------------------

const PG_FILE_FUNCTIONS = new Set(['pg_read_file', 'pg_read_binary_file', 'pg_stat_file', 'pg_logdir_ls']);
const PG_LARGE_OBJECT_FUNCTIONS = new Set([
  'lo_import',
  'lo_export',
  'lo_open',
  'lo_close',
  'lo_creat',
  'lo_create',
  'lo_unlink',
  'lo_get',
  'lo_put',
  'lo_from_bytea',
  'lo_lseek',
  'lo_lseek64',
  'lo_tell',
  'lo_tell64',
  'lo_truncate',
  'lo_truncate64',
  'loread',
  'lowrite',
]);
/** Functions that run SQL given to them as text, where the guard cannot read it. */
const PG_DYNAMIC_SQL_FUNCTIONS = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'ts_stat',
  'ts_rewrite',
]);
const PG_TRANSACTION_SETTINGS = new Set([
  'transaction_read_only',
  'default_transaction_read_only',
  'transaction_isolation',
  'default_transaction_isolation',
  'transaction_deferrable',
  'default_transaction_deferrable',
]);
const PG_TRANSACTION_STATEMENTS = new Set([
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT',
  'RELEASE',
]);

function pgFunctionConstruct(name: string): DatabaseSqlConstruct | null {
  if (PG_FILE_FUNCTIONS.has(name) || name.startsWith('pg_ls_') || name.startsWith('pg_file_')) {
    return 'SERVER_FILE_FUNCTION';
  }
  if (PG_LARGE_OBJECT_FUNCTIONS.has(name)) return 'LARGE_OBJECT_FUNCTION';
  if (name === 'dblink' || name.startsWith('dblink_')) return 'DBLINK';
  if (name.startsWith('postgres_fdw_')) return 'FOREIGN_DATA';
  if (PG_DYNAMIC_SQL_FUNCTIONS.has(name)) return 'DYNAMIC_SQL';
  return null;
}

/** What a PostgreSQL setting name is, when setting it is refused. */
function pgSettingConstruct(name: string): DatabaseSqlConstruct | null {
  if (name === 'role') return 'SET_ROLE';
  if (name === 'session_authorization') return 'SET_SESSION_AUTHORIZATION';
  if (PG_TRANSACTION_SETTINGS.has(name)) return 'TRANSACTION_CONTROL';
  return null;
}

// MySQL / MariaDB -------------------------------------------------------------------------------

const MYSQL_TRANSACTION_VARIABLES = new Set([
  'autocommit',
  'tx_read_only',
  'transaction_read_only',
  'tx_isolation',
  'transaction_isolation',
  'completion_type',
]);
const MYSQL_TRANSACTION_STATEMENTS = new Set([
  'BEGIN',
  'START',
  'COMMIT',
  'ROLLBACK',
  'SAVEPOINT',
  'RELEASE',
  'XA',
]);
const MYSQL_FOREIGN_ENGINES = new Set(['CONNECT', 'FEDERATED', 'FEDERATEDX', 'SPIDER']);

// Reading tokens ----------------------------------------------------------------------------------

/** A statement's tokens with the helpers the rules read them with. */
class Tokens {
  constructor(
    readonly list: readonly SqlToken[],
    private readonly dialect: SqlDialect,
  ) {}

  at(i: number): SqlToken | undefined {
    return this.list[i];
  }

  /** The upper-case keyword at `i`, or '' when it is not an unquoted word. */
  word(i: number): string {
    const t = this.list[i];
    return t?.kind === 'word' ? t.text.toUpperCase() : '';
  }

  isSymbol(i: number, symbol: string): boolean {
    const t = this.list[i];
    return t?.kind === 'symbol' && t.text === symbol;
  }

  /**
   * The name a word or quoted identifier at `i` stands for, lower case (quoted names compared
   * case-insensitively: refusing `"PG_READ_FILE"(…)` too costs nothing), and the index after it.
   * PostgreSQL's `U&"…"` identifiers are decoded, `UESCAPE` included.
   */
  name(i: number): { name: string; next: number } | null {
    const t = this.list[i];
    if (!t) return null;
    if (t.kind === 'word') return { name: t.text.toLowerCase(), next: i + 1 };
    if (t.kind !== 'quoted') return null;
    const body = t.text.slice(1, -1);
    const quote = t.text[0] as string;
    let name = body.replaceAll(quote + quote, quote);
    let next = i + 1;
    const u = this.list[i - 2];
    const amp = this.list[i - 1];
    if (
      this.dialect === 'postgres' &&
      u?.kind === 'word' &&
      u.text.toUpperCase() === 'U' &&
      amp?.kind === 'symbol' &&
      amp.text === '&' &&
      u.end === amp.start &&
      amp.end === t.start
    ) {
      let escape = '\\';
      const esc = this.list[i + 2];
      if (this.word(i + 1) === 'UESCAPE' && esc?.kind === 'string') {
        escape = esc.text.slice(1, -1);
        next = i + 3;
      }
      name = decodeUnicodeEscapes(name, escape);
    }
    return { name: name.toLowerCase(), next };
  }
}

/** `U&"d\0061t\+000061"`: `\XXXX` and `\+XXXXXX` code points, `\\` a backslash (any escape char). */
function decodeUnicodeEscapes(text: string, escape: string): string {
  if (escape.length !== 1) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c !== escape) {
      out += c;
      continue;
    }
    if (text[i + 1] === escape) {
      out += escape;
      i++;
    } else if (text[i + 1] === '+' && /^[0-9A-Fa-f]{6}$/.test(text.slice(i + 2, i + 8))) {
      out += String.fromCodePoint(Number.parseInt(text.slice(i + 2, i + 8), 16));
      i += 7;
    } else if (/^[0-9A-Fa-f]{4}$/.test(text.slice(i + 1, i + 5))) {
      out += String.fromCodePoint(Number.parseInt(text.slice(i + 1, i + 5), 16));
      i += 4;
    } else {
      out += c;
    }
  }
  return out;
}

/** The value of a plain `'…'` literal, or null for anything else (E'…', U&'…', $$…$$, concatenation). */
function plainString(t: Tokens, i: number): string | null {
  const tok = t.at(i);
  if (tok?.kind !== 'string' || !tok.text.startsWith("'") || tok.text.includes('\\')) return null;
  const before = t.at(i - 1);
  if (before?.kind === 'word' || (before?.kind === 'symbol' && before.text === '&')) return null;
  // 'a'
  // 'b' is one literal in PostgreSQL (constants separated by a newline are concatenated).
  if (t.at(i + 1)?.kind === 'string') return null;
  return tok.text.slice(1, -1).replaceAll("''", "'");
}

type Found = (construct: DatabaseSqlConstruct, token: SqlToken | undefined) => void;

/** Skips `SET`'s scope words; returns the index of what is being set. */
function afterSetScope(t: Tokens, i: number, scopes: readonly string[]): number {
  let j = i;
  while (scopes.includes(t.word(j))) j++;
  return j;
}

function postgresStatement(t: Tokens, found: Found): void {
  const first = t.word(0);
  const at0 = t.at(0);
  if (first === 'COPY') {
    // COPY table [(cols)] TO|FROM …, COPY (query) TO …: the first TO/FROM outside parentheses.
    let depth = 0;
    let target = -1;
    for (let i = 1; i < t.list.length; i++) {
      if (t.isSymbol(i, '(')) depth++;
      else if (t.isSymbol(i, ')')) depth--;
      else if (depth === 0 && (t.word(i) === 'TO' || t.word(i) === 'FROM')) {
        target = i + 1;
        break;
      }
    }
    const where = t.word(target);
    if (where === 'PROGRAM') found('COPY_PROGRAM', t.at(target));
    else if (where !== 'STDIN' && where !== 'STDOUT') found('COPY_FILE', t.at(target) ?? at0);
  } else if (first === 'DO') {
    found('DO_BLOCK', at0);
  } else if (first === 'CALL') {
    found('CALL', at0);
  } else if (first === 'LOAD') {
    found('NATIVE_CODE', at0);
  } else if (first === 'IMPORT') {
    found('FOREIGN_DATA', at0);
  } else if (first === 'CREATE' || first === 'ALTER') {
    let i = 1;
    if (t.word(1) === 'OR' && t.word(2) === 'REPLACE') i = 3;
    const what = t.word(i);
    if (first === 'ALTER' && what === 'SYSTEM') found('SERVER_CONFIGURATION', t.at(i));
    if (first === 'CREATE' && (what === 'FUNCTION' || what === 'PROCEDURE'))
      found('ROUTINE_DEFINITION', t.at(i));
    if (what === 'SERVER' || what === 'FOREIGN' || (what === 'USER' && t.word(i + 1) === 'MAPPING')) {
      found('FOREIGN_DATA', t.at(i));
    }
  } else if (first === 'PREPARE' && t.word(1) === 'TRANSACTION') {
    found('TRANSACTION_CONTROL', at0);
  } else if (PG_TRANSACTION_STATEMENTS.has(first)) {
    found('TRANSACTION_CONTROL', at0);
  } else if (first === 'SET') {
    // SET [SESSION | LOCAL] …; "SET SESSION AUTHORIZATION" and "SET SESSION CHARACTERISTICS"
    // read SESSION as part of the phrase.
    const i = t.word(1) === 'SESSION' || t.word(1) === 'LOCAL' ? 2 : 1;
    const phrase = (j: number, ...words: string[]) => words.every((w, k) => t.word(j + k) === w);
    if (phrase(i, 'ROLE')) found('SET_ROLE', at0);
    else if (phrase(1, 'SESSION', 'AUTHORIZATION') || phrase(i, 'SESSION', 'AUTHORIZATION')) {
      found('SET_SESSION_AUTHORIZATION', at0);
    } else if (phrase(i, 'TRANSACTION') || phrase(1, 'SESSION', 'CHARACTERISTICS')) {
      found('TRANSACTION_CONTROL', at0);
    } else {
      const setting = t.name(i);
      const construct = setting && pgSettingConstruct(setting.name);
      if (construct) found(construct, t.at(i));
    }
  } else if (first === 'RESET') {
    if (t.word(1) === 'ALL') found('TRANSACTION_CONTROL', at0);
    else if (t.word(1) === 'ROLE') found('SET_ROLE', at0);
    else if (t.word(1) === 'SESSION' && t.word(2) === 'AUTHORIZATION')
      found('SET_SESSION_AUTHORIZATION', at0);
    else {
      const setting = t.name(1);
      const construct = setting && pgSettingConstruct(setting.name);
      if (construct) found(construct, t.at(1));
    }
  }

  // Function calls anywhere: name(…), schema.name(…), "name"(…), and attribute notation x.name.
  for (let i = 0; i < t.list.length; i++) {
    const named = t.name(i);
    if (!named) continue;
    const called = t.isSymbol(named.next, '(');
    if (!called && !t.isSymbol(i - 1, '.')) continue;
    if (named.name === 'set_config') {
      if (!called) continue;
      const setting = plainString(t, named.next + 1);
      const closesArg = t.isSymbol(named.next + 2, ',');
      if (setting === null || !closesArg) {
        // A computed name could be any of them.
        found('SET_ROLE', t.at(i));
        found('SET_SESSION_AUTHORIZATION', t.at(i));
        found('TRANSACTION_CONTROL', t.at(i));
      } else {
        const construct = pgSettingConstruct(setting.trim().toLowerCase());
        if (construct) found(construct, t.at(named.next + 1));
      }
      continue;
    }
    const construct = pgFunctionConstruct(named.name);
    if (construct) found(construct, t.at(i));
  }
}

function mysqlStatement(t: Tokens, found: Found): void {
  let start = 0;
  // MariaDB's SET STATEMENT var = value [, …] FOR <statement>: the statement after FOR is what runs.
  if (t.word(0) === 'SET' && t.word(1) === 'STATEMENT') {
    let depth = 0;
    for (let i = 2; i < t.list.length; i++) {
      if (t.isSymbol(i, '(')) depth++;
      else if (t.isSymbol(i, ')')) depth--;
      else if (depth === 0 && t.word(i) === 'FOR') {
        start = i + 1;
        break;
      }
      const name = t.name(i);
      if (name && MYSQL_TRANSACTION_VARIABLES.has(name.name)) found('TRANSACTION_CONTROL', t.at(i));
    }
    if (start === 0) return;
  }
  const w = (k: number) => t.word(start + k);
  const at0 = t.at(start);
  const first = w(0);
  if (first === 'LOAD' && (w(1) === 'DATA' || w(1) === 'XML')) found('LOAD_DATA', at0);
  else if (first === 'CALL') found('CALL', at0);
  else if (first === 'PREPARE' || first === 'EXECUTE' || first === 'DEALLOCATE') found('DYNAMIC_SQL', at0);
  else if (first === 'INSTALL' || first === 'UNINSTALL') found('NATIVE_CODE', at0);
  else if (first === 'BEGIN' && w(1) === 'NOT' && w(2) === 'ATOMIC') found('DO_BLOCK', at0);
  else if (first === 'XA' || MYSQL_TRANSACTION_STATEMENTS.has(first)) found('TRANSACTION_CONTROL', at0);
  else if (
    (first === 'CREATE' || first === 'ALTER' || first === 'DROP') &&
    (w(1) === 'SERVER' || (w(1) === 'OR' && w(3) === 'SERVER'))
  ) {
    found('FOREIGN_DATA', at0);
  } else if (first === 'SET') {
    if (w(1) === 'ROLE' || (w(1) === 'DEFAULT' && w(2) === 'ROLE')) found('SET_ROLE', at0);
    const scoped = afterSetScope(t, start + 1, ['GLOBAL', 'SESSION', 'LOCAL', 'PERSIST', 'PERSIST_ONLY']);
    if (t.word(scoped) === 'TRANSACTION') found('TRANSACTION_CONTROL', at0);
    for (let i = start + 1; i < t.list.length; i++) {
      // @name is a user variable, whatever its name (@@name is the server's).
      if (t.isSymbol(i - 1, '@') && !t.isSymbol(i - 2, '@')) continue;
      const word = t.word(i);
      if (word === 'GLOBAL' || word === 'PERSIST' || word === 'PERSIST_ONLY')
        found('SERVER_CONFIGURATION', t.at(i));
      const name = t.name(i);
      if (name && MYSQL_TRANSACTION_VARIABLES.has(name.name)) found('TRANSACTION_CONTROL', t.at(i));
    }
  }

  for (let i = 0; i < t.list.length; i++) {
    const word = t.word(i);
    if (word === 'INTO' && t.word(i + 1) === 'OUTFILE') found('INTO_OUTFILE', t.at(i + 1));
    else if (word === 'INTO' && t.word(i + 1) === 'DUMPFILE') found('INTO_DUMPFILE', t.at(i + 1));
    else if (word === 'SONAME') found('NATIVE_CODE', t.at(i));
    else if (word === 'ENGINE') {
      const engine = t.isSymbol(i + 1, '=') ? i + 2 : i + 1;
      const name = t.name(engine);
      if (name && MYSQL_FOREIGN_ENGINES.has(name.name.toUpperCase())) found('FOREIGN_DATA', t.at(engine));
    }
    const named = t.name(i);
    if (named?.name === 'load_file' && t.isSymbol(named.next, '(')) found('LOAD_FILE', t.at(i));
  }
}

/** Every refused construct in one lexing of `sql`, in order of position. */
function findingsOf(scan: SqlScan, dialect: SqlDialect): ForbiddenSql[] {
  const findings: ForbiddenSql[] = [];
  for (const statement of scan.statements) {
    const list = scan.tokens.filter((tok) => tok.start >= statement.start && tok.end <= statement.end);
    if (list.length === 0) continue;
    const fallback = list[0] as SqlToken;
    const found: Found = (construct, token) => {
      const at = token ?? fallback;
      findings.push({ construct, offset: at.start, text: at.text.slice(0, 40) });
    };
    const tokens = new Tokens(list, dialect);
    if (dialect === 'postgres') postgresStatement(tokens, found);
    else mysqlStatement(tokens, found);
  }
  return findings.sort((a, b) => a.offset - b.offset);
}

/**
 * The first construct in `sql` that `allowed` does not list, read under the server's default
 * lexing, then under every other setting that could move where literals end; null when there is
 * none.
 * @throws SqlLexError when `sql` does not lex under the server's defaults
 */
export function findForbiddenSql(
  sql: string,
  dialect: SqlDialect,
  allowed: ReadonlySet<DatabaseSqlConstruct> = new Set(),
): ForbiddenSql | null {
  const [defaults, ...others] = lexVariants(dialect);
  const scans = [scanSql(sql, dialect, defaults)];
  for (const options of others) {
    try {
      scans.push(scanSql(sql, dialect, options));
    } catch {
      // Unterminated under this setting: the server would refuse it as a syntax error.
    }
  }
  for (const scan of scans) {
    const refused = findingsOf(scan, dialect).find((f) => !allowed.has(f.construct));
    if (refused) return refused;
  }
  return null;
}
