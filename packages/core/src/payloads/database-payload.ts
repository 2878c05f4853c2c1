import { z } from 'zod';
import { hasTemplate } from './template.ts';

/** URL schemes a DATABASE job may target; `postgres`/`postgresql` and `mysql`/`mariadb` are synonyms. */
export const DATABASE_URL_SCHEMES = ['postgres', 'postgresql', 'mysql', 'mariadb'] as const;
export type DatabaseUrlScheme = (typeof DATABASE_URL_SCHEMES)[number];

export const TRANSACTION_ISOLATION_LEVELS = [
  'READ UNCOMMITTED',
  'READ COMMITTED',
  'REPEATABLE READ',
  'SERIALIZABLE',
] as const;
export type TransactionIsolation = (typeof TRANSACTION_ISOLATION_LEVELS)[number];

/**
 * SQL a DATABASE job may not run unless the worker's configuration allows it
 * (`DATABASE_ALLOWED_SQL`): constructs that reach outside the database (the host's programs and
 * files, other servers), run code the worker cannot see, change who the session is, or take the
 * transaction out of the executor's hands. The executors' guard finds them; the names are stable.
 */
export const DATABASE_SQL_CONSTRUCTS = [
  'COPY_PROGRAM',
  'COPY_FILE',
  'SERVER_FILE_FUNCTION',
  'LARGE_OBJECT_FUNCTION',
  'DBLINK',
  'FOREIGN_DATA',
  'DYNAMIC_SQL',
  'DO_BLOCK',
  'CALL',
  'ROUTINE_DEFINITION',
  'SET_ROLE',
  'SET_SESSION_AUTHORIZATION',
  'TRANSACTION_CONTROL',
  'SERVER_CONFIGURATION',
  'NATIVE_CODE',
  'INTO_OUTFILE',
  'INTO_DUMPFILE',
  'LOAD_DATA',
  'LOAD_FILE',
] as const;
export type DatabaseSqlConstruct = (typeof DATABASE_SQL_CONSTRUCTS)[number];

/** @defaultValue of `maxRows` when the job leaves it unset. */
export const DEFAULT_DATABASE_MAX_ROWS = 1000;
export const MAX_DATABASE_MAX_ROWS = 100_000;

/** Both drivers' protocol limit on bind parameters. */
const MAX_PARAMETERS = 65_535;
/** `:name` placeholders: what the executor recognises in the query text. */
const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** One part of a procedure name written as a dotted string: an unquoted SQL identifier. */
const PLAIN_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/**
 * A postgres:// / mysql:// URL, or a string with a `{{...}}` template that resolves to one later
 * (typically the password: `postgres://app:{{var.DB_PASSWORD}}@db.internal/app`). Unlike HTTP
 * URLs, credentials belong here; the executor masks the password wherever it reports the URL.
 */
export const templatedDatabaseUrlSchema = z
  .string()
  .trim()
  .min(1, 'is required')
  .max(2048, 'must be at most 2048 characters')
  .superRefine((value, ctx) => {
    if (hasTemplate(value)) return;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      // The message must not echo the value: it holds a password.
      ctx.addIssue({ code: 'custom', message: `must be a URL like postgres://user:password@host:5432/db` });
      return;
    }
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    if (!(DATABASE_URL_SCHEMES as readonly string[]).includes(scheme)) {
      ctx.addIssue({
        code: 'custom',
        message: `must use one of ${DATABASE_URL_SCHEMES.join(', ')}, not ${scheme}`,
      });
    } else if (url.hostname === '') {
      ctx.addIssue({ code: 'custom', message: 'must name a host' });
    }
  });

/** A bind value: any JSON value (objects and arrays are sent as JSON, or as arrays to PostgreSQL). */
const sqlValueSchema = z.json();

const parametersSchema = z.union(
  [
    z.array(sqlValueSchema).max(MAX_PARAMETERS, `must have at most ${MAX_PARAMETERS} entries`),
    z.record(z.string(), sqlValueSchema).superRefine((params, ctx) => {
      for (const name of Object.keys(params)) {
        if (!PARAMETER_NAME.test(name)) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'is not a valid parameter name (letters, digits and _, not starting with a digit)',
          });
        }
      }
    }),
  ],
  { error: 'must be an array (positional $1 / ? parameters) or an object (named :name parameters)' },
);

const identifierPart = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[^\0]*$/, 'must not contain NUL');

/**
 * A stored-procedure call, run as `CALL name(args...)` with quoted identifiers and bound arguments.
 * `name` is `proc` or `schema.proc` made of plain identifiers (folded to lower case on PostgreSQL,
 * as it does for unquoted names), or an array of parts used verbatim (case and dots preserved).
 */
export const databaseCallSchema = z.strictObject({
  name: z.union([
    z
      .string()
      .max(200)
      .refine(
        (name) => {
          const parts = name.split('.');
          return parts.length <= 3 && parts.every((p) => PLAIN_IDENTIFIER.test(p));
        },
        { message: 'must be proc or schema.proc of plain identifiers; use an array of parts for others' },
      ),
    z.array(identifierPart).min(1, 'must have at least one part').max(3, 'must have at most 3 parts'),
  ]),
  args: z.array(sqlValueSchema).max(MAX_PARAMETERS).default([]),
});
export type DatabaseCall = z.infer<typeof databaseCallSchema>;

/**
 * A DATABASE job's payload: the database columns of job_payloads plus `timeoutSeconds` and
 * `metadata`. Optional columns accept `null` (as stored) as well as absence. Either `query` or
 * `metadata.call` says what runs.
 */
export const databasePayloadSchema = z
  .object({
    databaseUrl: templatedDatabaseUrlSchema,
    /** One SQL statement; a trailing `;` is allowed, a second statement is refused. */
    query: z
      .string()
      .max(1024 * 1024, 'must be at most 1 MiB')
      .refine((q) => q.trim() !== '', 'must not be empty')
      .nullish(),
    /** Array: positional (`$1` on PostgreSQL, `?` on MySQL). Object: named (`:name`). */
    parameters: parametersSchema.nullish(),
    /** Enforced by the server (statement timeout) and by the executor, which cancels the query. */
    queryTimeoutSeconds: z.int().min(1).max(3600).nullish(),
    /** Rows kept in the output; the rest are not read. @defaultValue 1000 */
    maxRows: z
      .int()
      .min(1)
      .max(MAX_DATABASE_MAX_ROWS)
      .nullish()
      .transform((v) => v ?? DEFAULT_DATABASE_MAX_ROWS),
    /** Runs the statement in a read-only transaction, rolled back afterwards. @defaultValue true */
    readOnly: z
      .boolean()
      .nullish()
      .transform((v) => v ?? true),
    /** Absent: the server's default level. */
    transactionIsolation: z.enum(TRANSACTION_ISOLATION_LEVELS).nullish(),
    timeoutSeconds: z.int().min(1).max(86_400).nullish(),
    // Free-form labels (`team`) beside `call`, as CACHE's: a stored job may hold them.
    metadata: z.looseObject({ call: databaseCallSchema.optional() }).nullish(),
  })
  .superRefine((payload, ctx) => {
    const hasQuery = payload.query !== null && payload.query !== undefined;
    const call = payload.metadata?.call;
    if (!hasQuery && !call) {
      ctx.addIssue({ code: 'custom', path: ['query'], message: 'is required (or metadata.call)' });
    }
    if (hasQuery && call) {
      ctx.addIssue({
        code: 'custom',
        path: ['metadata', 'call'],
        message: 'cannot be combined with query; give one of them',
      });
    }
    if (call && payload.parameters !== null && payload.parameters !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['parameters'],
        message: 'must be empty with metadata.call; pass the arguments in metadata.call.args',
      });
    }
  });
export type DatabasePayload = z.infer<typeof databasePayloadSchema>;
export type DatabasePayloadInput = z.input<typeof databasePayloadSchema>;
