import { PermanentJobError, type DatabasePayload } from '@chronos/core';
import { invalidPayload } from '../errors.ts';
import type { DatabaseDialect } from './database-url.ts';
import { checkSingleStatement, type Placeholder } from './sql-lexer.ts';

/** The statement as sent: one statement, placeholders in the driver's positional form. */
export interface BoundStatement {
  sql: string;
  values: unknown[];
  /** Upper-case first keyword (`SELECT`, `INSERT`, `CALL`...), or ''. */
  firstKeyword: string;
  /** Named parameters given but not used by the query. */
  unusedParameters: string[];
}

export function quoteIdentifier(part: string, dialect: DatabaseDialect): string {
  return dialect === 'postgres' ? `"${part.replaceAll('"', '""')}"` : `\`${part.replaceAll('`', '``')}\``;
}

const placeholder = (index: number, dialect: DatabaseDialect) => (dialect === 'postgres' ? `$${index}` : '?');

/**
 * `CALL name(args)` with every name part quoted. A dotted string is made of plain identifiers,
 * which PostgreSQL folds to lower case when unquoted: quoting keeps that meaning by folding first.
 */
export function buildCall(
  call: NonNullable<NonNullable<DatabasePayload['metadata']>['call']>,
  dialect: DatabaseDialect,
): BoundStatement {
  const parts =
    typeof call.name === 'string'
      ? call.name.split('.').map((p) => (dialect === 'postgres' ? p.toLowerCase() : p))
      : call.name;
  const name = parts.map((p) => quoteIdentifier(p, dialect)).join('.');
  const args = call.args.map((_, i) => placeholder(i + 1, dialect)).join(', ');
  return { sql: `CALL ${name}(${args})`, values: [...call.args], firstKeyword: 'CALL', unusedParameters: [] };
}

/**
 * Checks that `query` is one statement and binds `parameters`: an array as is (after checking it
 * matches the `$n` / `?` placeholders), an object by rewriting each `:name` outside literals and
 * comments to the driver's positional form.
 * @throws PermanentJobError STACKED_STATEMENTS, or INVALID_PAYLOAD
 */
export function bindQuery(
  query: string,
  parameters: DatabasePayload['parameters'],
  dialect: DatabaseDialect,
): BoundStatement {
  const check = checkSingleStatement(query, dialect);
  if (!check.ok) {
    if (check.reason === 'stacked') throw new PermanentJobError(check.message, 'STACKED_STATEMENTS');
    throw invalidPayload(`query: ${check.message}`);
  }
  const only = check.scan.statements[0] as { start: number; end: number };
  const inStatement = check.scan.placeholders.filter((p) => p.start >= only.start && p.end <= only.end);
  const named = inStatement.filter((p) => p.kind === 'named');
  const positional = inStatement.filter((p) => p.kind !== 'named');
  const firstKeyword = check.scan.firstKeyword;

  if (parameters === null || parameters === undefined || Array.isArray(parameters)) {
    const values = parameters ?? [];
    checkPositionalCount(positional, values.length, dialect);
    return {
      sql: query.slice(only.start, only.end),
      values: [...values],
      firstKeyword,
      unusedParameters: [],
    };
  }

  if (positional.length > 0) {
    const first = positional[0] as Placeholder;
    throw invalidPayload(
      `query: parameters is an object (named :name parameters) but the query also uses ${first.kind === 'dollar' ? `$${first.name}` : '?'}; use one style`,
    );
  }
  const missing = [...new Set(named.map((p) => p.name).filter((name) => !Object.hasOwn(parameters, name)))];
  if (missing.length > 0) {
    throw invalidPayload(`query uses :${missing.join(', :')} but parameters has no value for it`);
  }
  const values: unknown[] = [];
  const indexOf = new Map<string, number>();
  let sql = '';
  let cursor = only.start;
  for (const p of named) {
    sql += query.slice(cursor, p.start);
    if (dialect === 'postgres') {
      let index = indexOf.get(p.name);
      if (index === undefined) {
        values.push(parameters[p.name]);
        index = values.length;
        indexOf.set(p.name, index);
      }
      sql += `$${index}`;
    } else {
      // `?` is positional only: a name used twice is bound twice.
      values.push(parameters[p.name]);
      sql += '?';
    }
    cursor = p.end;
  }
  sql += query.slice(cursor, only.end);
  const used = new Set(named.map((p) => p.name));
  return { sql, values, firstKeyword, unusedParameters: Object.keys(parameters).filter((k) => !used.has(k)) };
}

function checkPositionalCount(positional: Placeholder[], count: number, dialect: DatabaseDialect): void {
  if (dialect === 'postgres') {
    const highest = Math.max(0, ...positional.map((p) => Number(p.name)));
    if (highest > count) {
      throw invalidPayload(
        `query uses $${highest} but parameters has ${count} value${count === 1 ? '' : 's'}`,
      );
    }
    return;
  }
  if (positional.length !== count) {
    throw invalidPayload(
      `query has ${positional.length} ? placeholder${positional.length === 1 ? '' : 's'} but parameters has ${count} value${count === 1 ? '' : 's'}`,
    );
  }
}
