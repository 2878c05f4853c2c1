import { scanSql, type SqlToken } from './sql-lexer.ts';

/**
 * Reading MySQL/MariaDB `SHOW GRANTS` lines for what makes an account superuser-like: privileges
 * that reach the server's files or configuration, act as other accounts, or rewrite the grant
 * tables (any write privilege on `*.*` or on the `mysql` schema does: the grant tables live there).
 */

/** Global privileges that are superuser powers whatever else the account has. */
const POWERFUL = new Set([
  'ALL',
  'ALL PRIVILEGES',
  'SUPER',
  'FILE',
  'CREATE USER',
  'SET USER',
  'SHUTDOWN',
  'READ_ONLY ADMIN',
  'FEDERATED ADMIN',
  'ROLE_ADMIN',
  'SYSTEM_USER',
  'SYSTEM_VARIABLES_ADMIN',
]);
/** Privileges that, on `*.*` or `mysql`.*, let the account rewrite the grant tables. */
const WRITES = new Set(['INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER']);

export interface GrantReading {
  /** Why the account is superuser-like; empty when nothing was found. */
  reasons: string[];
  /** Roles granted to the account (as SHOW GRANTS spells them, quotes included). */
  roles: string[];
}

const LEX = { backslashEscapes: true, ansiQuotes: false };

/** The privileges and roles in `SHOW GRANTS` lines. A line that does not lex is a reason itself. */
export function readGrants(lines: readonly string[]): GrantReading {
  const reasons: string[] = [];
  const roles: string[] = [];
  for (const line of lines) {
    let tokens: SqlToken[];
    try {
      tokens = scanSql(line, 'mysql', LEX).tokens;
    } catch {
      reasons.push(`an unreadable grant: ${line.slice(0, 80)}`);
      continue;
    }
    const word = (i: number) =>
      tokens[i]?.kind === 'word' ? (tokens[i] as SqlToken).text.toUpperCase() : '';
    if (word(0) !== 'GRANT') continue;
    let on = -1;
    let to = -1;
    let depth = 0;
    for (let i = 1; i < tokens.length; i++) {
      const t = tokens[i] as SqlToken;
      if (t.kind === 'symbol' && t.text === '(') depth++;
      else if (t.kind === 'symbol' && t.text === ')') depth--;
      else if (depth === 0 && on < 0 && to < 0 && word(i) === 'ON') on = i;
      else if (depth === 0 && to < 0 && word(i) === 'TO') to = i;
    }
    if (to < 0) continue;
    if (on < 0) {
      // GRANT role [, role] TO account
      roles.push(...splitTopLevel(line, tokens.slice(1, to)));
      continue;
    }
    const privileges = privilegeNames(tokens.slice(1, on));
    const object = tokens
      .slice(on + 1, to)
      .map((t) => t.text)
      .join('');
    const global = object === '*.*';
    const grantTables = /^(`mysql`|mysql)\./i.test(object);
    const grantOption = tokens
      .slice(to)
      .some((t, k, rest) => t.text.toUpperCase() === 'GRANT' && rest[k + 1]?.text.toUpperCase() === 'OPTION');
    for (const p of privileges) {
      if (p === 'PROXY') reasons.push(`PROXY on ${object}`);
      else if (global && POWERFUL.has(p)) reasons.push(`${p} on *.*`);
      else if ((global || grantTables) && (WRITES.has(p) || p === 'ALL' || p === 'ALL PRIVILEGES')) {
        reasons.push(`${p} on ${object} (the grant tables)`);
      }
    }
    if (global && grantOption) reasons.push('WITH GRANT OPTION on *.*');
  }
  return { reasons: [...new Set(reasons)], roles: [...new Set(roles)] };
}

/** `SELECT (a, b), INSERT, CREATE USER` → SELECT, INSERT, CREATE USER (column lists dropped). */
function privilegeNames(tokens: SqlToken[]): string[] {
  const names: string[] = [];
  let current: string[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === 'symbol' && t.text === '(') depth++;
    else if (t.kind === 'symbol' && t.text === ')') depth--;
    else if (depth > 0) continue;
    else if (t.kind === 'symbol' && t.text === ',') {
      names.push(current.join(' '));
      current = [];
    } else if (t.kind === 'word') current.push(t.text.toUpperCase());
  }
  if (current.length > 0) names.push(current.join(' '));
  return names;
}

/** The source text of each comma-separated item. */
function splitTopLevel(line: string, tokens: SqlToken[]): string[] {
  const items: string[] = [];
  let first: SqlToken | null = null;
  let last: SqlToken | null = null;
  for (const t of tokens) {
    if (t.kind === 'symbol' && t.text === ',') {
      if (first && last) items.push(line.slice(first.start, last.end));
      first = null;
      last = null;
    } else {
      first ??= t;
      last = t;
    }
  }
  if (first && last) items.push(line.slice(first.start, last.end));
  return items;
}
