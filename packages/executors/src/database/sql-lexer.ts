/**
 * Just enough of the PostgreSQL and MySQL/MariaDB lexers to tell code from string literals, quoted
 * identifiers and comments: where statements end, and where `:name` / `$1` / `?` placeholders are.
 * It does not parse SQL; the server does. Where the servers' lexing depends on settings
 * (`standard_conforming_strings`, `NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`), {@link checkSingleStatement}
 * tries every variant and refuses when any of them sees a second statement.
 */

export type SqlDialect = 'postgres' | 'mysql';

export interface LexOptions {
  /** PostgreSQL `standard_conforming_strings = off` / MySQL without `NO_BACKSLASH_ESCAPES`. */
  backslashEscapes: boolean;
  /** MySQL `ANSI_QUOTES`: `"..."` quotes an identifier instead of a string. */
  ansiQuotes: boolean;
}

/** The server defaults: PostgreSQL 9.1+ and MySQL/MariaDB out of the box. */
export function defaultLexOptions(dialect: SqlDialect): LexOptions {
  return dialect === 'postgres'
    ? { backslashEscapes: false, ansiQuotes: true }
    : { backslashEscapes: true, ansiQuotes: false };
}

export type PlaceholderKind = 'named' | 'dollar' | 'question';

export interface Placeholder {
  kind: PlaceholderKind;
  /** The name of a `:name`, the number of a `$n`, '' for `?`. */
  name: string;
  start: number;
  end: number;
}

/**
 * What a piece of code is: `word` an unquoted identifier or keyword, `quoted` a quoted identifier
 * (`"x"`, `` `x` ``), `string` a string literal (dollar-quoted included; a prefix such as `E` or
 * `_utf8mb4` is a `word` of its own), `symbol` one character of punctuation (or `::`).
 */
export type SqlTokenKind = 'word' | 'quoted' | 'string' | 'number' | 'placeholder' | 'symbol';

export interface SqlToken {
  kind: SqlTokenKind;
  /** The source text, quotes included. */
  text: string;
  start: number;
  end: number;
}

export interface SqlScan {
  /** Statements that hold code (empty ones between semicolons are not counted). */
  statements: { start: number; end: number }[];
  placeholders: Placeholder[];
  /**
   * The code, comments left out. The markers of a MySQL executable comment (`/*!`, `*\/`) are
   * not tokens: the server reads what is between them as if they were not there.
   */
  tokens: SqlToken[];
  /** The first keyword of the first statement, upper case (`SELECT`, `WITH`, `CALL`...), or ''. */
  firstKeyword: string;
}

export class SqlLexError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at character ${offset + 1})`);
  }
}

const isIdentStart = (c: string): boolean => /[A-Za-z_\u0080-\uffff]/.test(c);
const isIdentChar = (c: string): boolean => /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
/** MySQL's `-- ` comment needs a space or control character after the dashes. */
const isMysqlDashCommentEnd = (c: string | undefined): boolean =>
  c === undefined || c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

/**
 * Scans `sql` and reports statements and placeholders.
 * @throws SqlLexError on an unterminated string, quoted identifier or comment
 */
export function scanSql(sql: string, dialect: SqlDialect, options = defaultLexOptions(dialect)): SqlScan {
  const pg = dialect === 'postgres';
  const statements: SqlScan['statements'] = [];
  const placeholders: Placeholder[] = [];
  const tokens: SqlToken[] = [];
  let firstKeyword = '';
  let stmtStart = -1;
  let stmtEnd = -1;
  /** Open MySQL executable comments (`/*! ... *\/`), whose content the server runs as code. */
  let executableComments = 0;
  const n = sql.length;
  let i = 0;

  const code = (start: number, end: number) => {
    if (stmtStart < 0) stmtStart = start;
    stmtEnd = end;
  };
  const token = (kind: SqlTokenKind, start: number, end: number) => {
    code(start, end);
    tokens.push({ kind, text: sql.slice(start, end), start, end });
  };
  const endStatement = () => {
    if (stmtStart >= 0) statements.push({ start: stmtStart, end: stmtEnd });
    stmtStart = -1;
    stmtEnd = -1;
  };
  /** Index just past a quoted run starting at `i` (the opening quote). */
  const skipQuoted = (quote: string, backslash: boolean, what: string): number => {
    let j = i + 1;
    for (;;) {
      if (j >= n) throw new SqlLexError(`unterminated ${what}`, i);
      const c = sql[j];
      if (backslash && c === '\\') {
        j += 2;
      } else if (c === quote) {
        if (sql[j + 1] === quote) j += 2;
        else return j + 1;
      } else {
        j++;
      }
    }
  };

  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];

    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    // Line comments
    if ((c === '-' && next === '-' && (pg || isMysqlDashCommentEnd(sql[i + 2]))) || (!pg && c === '#')) {
      while (i < n && sql[i] !== '\n' && sql[i] !== '\r') i++;
      continue;
    }
    // Block comments: nested in PostgreSQL, not in MySQL
    if (c === '/' && next === '*') {
      if (!pg) {
        const exec = /^\/\*(?:M?!)(\d{5,6})?/.exec(sql.slice(i, i + 10));
        if (exec) {
          code(i, i + exec[0].length);
          executableComments++;
          i += exec[0].length;
          continue;
        }
      }
      const start = i;
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) throw new SqlLexError('unterminated /* comment', start);
        if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else if (pg && sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else {
          i++;
        }
      }
      continue;
    }
    if (!pg && executableComments > 0 && c === '*' && next === '/') {
      executableComments--;
      code(i, i + 2);
      i += 2;
      continue;
    }
    if (c === ';') {
      endStatement();
      i++;
      continue;
    }
    // String literals
    if (c === "'") {
      // PostgreSQL E'...' strings take backslash escapes whatever the settings.
      const prev = sql[i - 1];
      const escape =
        options.backslashEscapes ||
        (pg && (prev === 'E' || prev === 'e') && (i < 2 || !isIdentChar(sql[i - 2] as string)));
      const end = skipQuoted("'", escape, 'string literal');
      token('string', i, end);
      i = end;
      continue;
    }
    if (c === '"') {
      const identifier = pg || options.ansiQuotes;
      const end = skipQuoted(
        '"',
        !identifier && options.backslashEscapes,
        identifier ? 'quoted identifier' : 'string literal',
      );
      token(identifier ? 'quoted' : 'string', i, end);
      i = end;
      continue;
    }
    if (!pg && c === '`') {
      const end = skipQuoted('`', false, 'quoted identifier');
      token('quoted', i, end);
      i = end;
      continue;
    }
    if (pg && c === '$') {
      if (next !== undefined && isDigit(next)) {
        let j = i + 1;
        while (j < n && isDigit(sql[j] as string)) j++;
        placeholders.push({ kind: 'dollar', name: sql.slice(i + 1, j), start: i, end: j });
        token('placeholder', i, j);
        i = j;
        continue;
      }
      // A dollar-quoted string: $$...$$ or $tag$...$tag$ (the tag cannot start with a digit).
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 200));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        if (close < 0) throw new SqlLexError('unterminated dollar-quoted string', i);
        const end = close + tag[0].length;
        token('string', i, end);
        i = end;
        continue;
      }
      token('symbol', i, i + 1);
      i++;
      continue;
    }
    if (isIdentStart(c) || (!pg && isDigit(c))) {
      let j = i + 1;
      while (j < n && isIdentChar(sql[j] as string)) j++;
      if (statements.length === 0 && firstKeyword === '' && !isDigit(c)) {
        firstKeyword = sql.slice(i, j).toUpperCase();
      }
      token(isDigit(c) ? 'number' : 'word', i, j);
      i = j;
      continue;
    }
    if (isDigit(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(sql[j] as string)) j++;
      token('number', i, j);
      i = j;
      continue;
    }
    if (c === ':') {
      if (next === ':') {
        // PostgreSQL cast (x::int)
        token('symbol', i, i + 2);
        i += 2;
        continue;
      }
      const prev = sql[i - 1];
      // After an identifier or number it is an array slice (a[lo:hi]) or a label, not a parameter.
      const afterWord = prev !== undefined && (isIdentChar(prev) || prev === ':');
      if (next !== undefined && /[A-Za-z_]/.test(next) && !afterWord) {
        let j = i + 2;
        while (j < n && /[A-Za-z0-9_]/.test(sql[j] as string)) j++;
        placeholders.push({ kind: 'named', name: sql.slice(i + 1, j), start: i, end: j });
        token('placeholder', i, j);
        i = j;
        continue;
      }
      token('symbol', i, i + 1);
      i++;
      continue;
    }
    if (!pg && c === '?') {
      placeholders.push({ kind: 'question', name: '', start: i, end: i + 1 });
      token('placeholder', i, i + 1);
      i++;
      continue;
    }
    token('symbol', i, i + 1);
    i++;
  }
  if (executableComments > 0) throw new SqlLexError('unterminated /*! comment', n);
  endStatement();
  return { statements, placeholders, tokens, firstKeyword };
}

/** The lexing variants a server of the dialect may be configured with, its default first. */
export function lexVariants(dialect: SqlDialect): LexOptions[] {
  return dialect === 'postgres'
    ? [
        { backslashEscapes: false, ansiQuotes: true },
        { backslashEscapes: true, ansiQuotes: true },
      ]
    : [
        { backslashEscapes: true, ansiQuotes: false },
        { backslashEscapes: false, ansiQuotes: false },
        { backslashEscapes: true, ansiQuotes: true },
        { backslashEscapes: false, ansiQuotes: true },
      ];
}

export type SingleStatementCheck =
  | { ok: true; scan: SqlScan; statement: string }
  | { ok: false; reason: 'empty' | 'stacked' | 'lex'; message: string };

/**
 * Whether `sql` is exactly one statement (a trailing `;` allowed), under the server's default
 * lexing and under every other setting that could change where literals end. `statement` is the
 * statement's text without the trailing semicolons and comments.
 */
export function checkSingleStatement(sql: string, dialect: SqlDialect): SingleStatementCheck {
  let scan: SqlScan;
  try {
    scan = scanSql(sql, dialect);
  } catch (err) {
    return { ok: false, reason: 'lex', message: (err as Error).message };
  }
  if (scan.statements.length === 0) {
    return { ok: false, reason: 'empty', message: 'the query holds no statement (only comments or ;)' };
  }
  const stacked = (s: SqlScan) => s.statements.length > 1;
  if (stacked(scan)) {
    const second = scan.statements[1] as { start: number };
    return {
      ok: false,
      reason: 'stacked',
      message: `the query holds more than one statement (the second starts at character ${second.start + 1}); run one statement per job`,
    };
  }
  for (const options of lexVariants(dialect).slice(1)) {
    let other: SqlScan;
    try {
      other = scanSql(sql, dialect, options);
    } catch {
      // Unterminated under this setting: the server would refuse it as a syntax error.
      continue;
    }
    if (stacked(other)) {
      return {
        ok: false,
        reason: 'stacked',
        message:
          'the query holds more than one statement under some server settings (backslash escapes or ' +
          'ANSI quotes in literals); run one statement per job',
      };
    }
  }
  const only = scan.statements[0] as { start: number; end: number };
  return { ok: true, scan, statement: sql.slice(0, only.end) };
}
