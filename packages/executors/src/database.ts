import {
  ChronosError,
  PermanentJobError,
  RetryableJobError,
  createMasker,
  databasePayloadSchema,
  fieldIssues,
  settleWithin,
  type DatabasePayloadInput,
  type DatabaseSqlConstruct,
} from '@chronos/core';
import { ForbiddenSqlError, findForbiddenSql } from './database/dangerous-sql.ts';
import { parseDatabaseUrl } from './database/database-url.ts';
import { jobErrorFor } from './database/job-errors.ts';
import { connectMysql, describeMysqlError } from './database/mysql-session.ts';
import { connectPostgres, describePostgresError } from './database/postgres-session.ts';
import { resolveTarget } from './database/resolve-target.ts';
import { toJsonValue, type DatabaseField, type DatabaseSession } from './database/session.ts';
import { bindQuery, buildCall } from './database/statement.ts';
import { invalidPayload } from './errors.ts';
import { compileOutboundPolicy, type LookupFunction } from './outbound-guard.ts';
import type { ExecContext, ExecResult, Executor } from './types.ts';

export { redactDatabaseUrl } from './database/database-url.ts';
export { ForbiddenSqlError, SQL_CONSTRUCT_LABELS } from './database/dangerous-sql.ts';
export type { DatabaseField } from './database/session.ts';

export interface DatabaseExecutorOptions {
  /** Resolver for host names; every address it returns is checked. @defaultValue dns.lookup */
  lookup?: LookupFunction;
  /** @defaultValue 10_000 */
  connectTimeoutMs?: number;
  /**
   * How long past `queryTimeoutSeconds` the executor waits for the server's own statement timeout
   * before cancelling the query itself. @defaultValue 500
   */
  clientTimeoutGraceMs?: number;
  /**
   * Bound on each clean-up step after a timeout or abort (cancel request, rollback, close); a
   * connection still busy after it is destroyed. @defaultValue 2_000
   */
  cleanupTimeoutMs?: number;
  /** Reported to the server (pg application_name, MySQL program_name). @defaultValue 'chronos' */
  applicationName?: string;
  /**
   * Guarded SQL constructs runs may use (`DATABASE_ALLOWED_SQL`); every other one fails the run
   * with SQL_FORBIDDEN before it connects, whether or not the run is read-only. `metadata.call`
   * is a `CALL`. @defaultValue [] (none)
   */
  allowedSql?: readonly DatabaseSqlConstruct[];
  /**
   * Run as an account that is a superuser or can act as one (`DATABASE_ALLOW_SUPERUSER`);
   * otherwise such a run fails with DB_SUPERUSER_REFUSED right after connecting.
   * @defaultValue false
   */
  allowSuperuser?: boolean;
}

/** What a successful DATABASE run outputs. */
export interface DatabaseOutput {
  server: DatabaseSession['flavor'];
  /** PostgreSQL's command tag, or the statement's first keyword. */
  command: string | null;
  /** At most `maxRows`, JSON-safe (bytes as base64, 64-bit integers and decimals as strings). */
  rows: Record<string, unknown>[];
  /** Rows in `rows`. */
  rowCount: number;
  /** The statement returned more than `maxRows` rows; the rest were not kept. */
  truncated: boolean;
  /** Rows written by INSERT/UPDATE/DELETE (null for reads, and when the server does not say). */
  rowsAffected: number | null;
  fields: DatabaseField[];
  /** Time the statement took (connection and transaction set-up excluded). */
  durationMs: number;
}

const SQL_LOG_LIMIT = 2000;

/**
 * The DATABASE executor: one statement (or stored-procedure call) against PostgreSQL or
 * MySQL/MariaDB over a connection of its own, inside a transaction (read-only and rolled back by
 * default), with the query timeout enforced by the server and by the executor, rows capped, and
 * the URL's password masked in everything it reports. The target host passes the same outbound
 * policy as HTTP. SQL that reaches past the database (`COPY … PROGRAM`, server files, dblink, `DO`,
 * `CALL`, …) is refused before connecting unless `allowedSql` names it, and so is, right after
 * connecting, an account that is a superuser or can act as one unless `allowSuperuser`.
 */
export function createDatabaseExecutor(
  options: DatabaseExecutorOptions = {},
): Executor<DatabasePayloadInput> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const graceMs = options.clientTimeoutGraceMs ?? 500;
  const cleanupMs = options.cleanupTimeoutMs ?? 2_000;
  const applicationName = options.applicationName ?? 'chronos';
  const allowedSql = new Set(options.allowedSql ?? []);
  const allowSuperuser = options.allowSuperuser ?? false;

  return async function runDatabase(input: DatabasePayloadInput, ctx: ExecContext): Promise<ExecResult> {
    const parsed = databasePayloadSchema.safeParse(input);
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw invalidPayload(
        `invalid DATABASE payload: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      );
    }
    const payload = parsed.data;
    if (ctx.signal.aborted) throw ctx.signal.reason;

    const target = parseDatabaseUrl(payload.databaseUrl);
    if (target.user === '') throw invalidPayload(`databaseUrl ${target.display} names no user`);
    const masker = createMasker([target.password]);
    // The masker skips very short passwords; the URL itself is always replaced by its display form.
    const mask = (text: string): string => masker.mask(text.replaceAll(payload.databaseUrl, target.display));
    for (const key of target.ignoredParams) {
      ctx.log.warn(`databaseUrl parameter ${JSON.stringify(key)} is not supported and was ignored`);
    }

    const call = payload.metadata?.call;
    const statement = call
      ? buildCall(call, target.dialect)
      : bindQuery(payload.query as string, payload.parameters, target.dialect);
    // Before anything connects: a refused construct never reaches the server.
    if (call) {
      if (!allowedSql.has('CALL')) throw new ForbiddenSqlError('CALL', 'metadata.call', null, '');
    } else {
      const query = payload.query as string;
      const refused = findForbiddenSql(query, target.dialect, allowedSql);
      if (refused) {
        throw new ForbiddenSqlError(
          refused.construct,
          'query',
          refused.offset,
          ` at character ${refused.offset + 1} (${JSON.stringify(refused.text)})`,
        );
      }
    }
    if (statement.unusedParameters.length > 0) {
      ctx.log.warn('named parameters not used by the query', { parameters: statement.unusedParameters });
    }

    let policy;
    try {
      policy = compileOutboundPolicy(ctx.outbound);
    } catch (err) {
      throw new PermanentJobError(
        `the worker's outbound policy is invalid: ${(err as Error).message}`,
        'OUTBOUND_REFUSED',
        { cause: err },
      );
    }
    const address = await untilAborted(
      resolveTarget(policy, target.host, target.port, options.lookup),
      ctx.signal,
    );

    const timeoutMs = payload.queryTimeoutSeconds ? payload.queryTimeoutSeconds * 1000 : null;
    const state = {
      session: null as DatabaseSession | null,
      running: false,
      timedOut: false,
      stopping: false,
    };
    let timer: NodeJS.Timeout | undefined;
    let durationMs = 0;

    ctx.log.info('database: connecting', { url: target.display, address });
    const work = (async () => {
      const session = await (target.dialect === 'postgres' ? connectPostgres : connectMysql)({
        target,
        address,
        connectTimeoutMs,
        applicationName,
      });
      state.session = session;
      try {
        if (state.stopping) throw new Error('interrupted while connecting');
        ctx.log.debug('database: connected', { server: session.flavor, version: session.serverVersion });
        if (!allowSuperuser) {
          const powers = await session.superuserPowers();
          if (powers.length > 0) {
            throw new PermanentJobError(
              `the databaseUrl account ${JSON.stringify(target.user)} is a superuser or can act as one ` +
                `(${powers.slice(0, 3).join('; ')}); give DATABASE jobs a least-privilege role, or set ` +
                `DATABASE_ALLOW_SUPERUSER=true on the worker`,
              'DB_SUPERUSER_REFUSED',
            );
          }
        }
        await session.begin({
          readOnly: payload.readOnly,
          isolation: payload.transactionIsolation ?? null,
          statementTimeoutMs: timeoutMs,
        });
        ctx.log.debug('database: statement', {
          sql: mask(statement.sql.slice(0, SQL_LOG_LIMIT)),
          parameters: statement.values.length,
          readOnly: payload.readOnly,
          isolation: payload.transactionIsolation ?? null,
        });
        if (timeoutMs !== null) {
          timer = setTimeout(() => {
            state.timedOut = true;
            interrupt(
              new RetryableJobError(
                `the query exceeded its timeout of ${payload.queryTimeoutSeconds}s and was cancelled`,
                'QUERY_TIMEOUT',
              ),
            );
          }, timeoutMs + graceMs);
        }
        state.running = true;
        const started = performance.now();
        const result = await session.run(statement.sql, statement.values, payload.maxRows);
        durationMs = Math.round(performance.now() - started);
        state.running = false;
        clearTimeout(timer);
        // Timed out or aborted while the result came in: it may be cut short (a killed SLEEP just
        // returns), and the run is failing anyway, so nothing is committed.
        if (state.stopping) throw new Error('the statement was cancelled');
        // A read-only run has nothing to keep.
        if (payload.readOnly) await session.rollback();
        else await session.commit();
        return { session, result };
      } catch (err) {
        state.running = false;
        clearTimeout(timer);
        await settleWithin(session.rollback(), cleanupMs, undefined);
        throw err;
      } finally {
        await session.close(cleanupMs);
      }
    })();
    const settled = work.then(
      () => true,
      () => true,
    );

    let stop: (reason: unknown) => void = () => {};
    const stopped = new Promise<never>((_, reject) => {
      stop = reject;
    });
    stopped.catch(() => {});
    /** Cancels the running statement, lets the run wind down briefly, then drops the connection. */
    const interrupt = (reason: unknown): void => {
      if (state.stopping) return;
      state.stopping = true;
      void (async () => {
        const session = state.session;
        // Still connecting: the run closes the connection as soon as it has one.
        if (session) {
          if (state.running) await session.cancel(cleanupMs);
          if (!(await settleWithin(settled, cleanupMs, false))) session.destroy();
        }
        stop(reason);
      })();
    };
    const onAbort = () => interrupt(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onAbort, { once: true });

    try {
      const { session, result } = await Promise.race([work, stopped]);
      const output: DatabaseOutput = {
        server: session.flavor,
        command: result.command ?? (statement.firstKeyword || null),
        rows: result.rows.map((row) => toJsonValue(row) as Record<string, unknown>),
        rowCount: result.rows.length,
        truncated: result.truncated,
        rowsAffected: result.rowsAffected,
        fields: result.fields,
        durationMs,
      };
      if (result.truncated) {
        ctx.log.warn(
          `database: the result had more than ${payload.maxRows} rows; only the first ${payload.maxRows} are kept`,
        );
      }
      if (result.extraResultSets > 0) {
        ctx.log.warn(
          `database: ${result.extraResultSets} further result set(s) were not kept (only the first is)`,
        );
      }
      ctx.log.info('database: done', {
        command: output.command,
        rowCount: output.rowCount,
        truncated: output.truncated,
        rowsAffected: output.rowsAffected,
        durationMs,
      });
      return { output };
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (err instanceof ChronosError) throw maskError(err, mask);
      const flavor = state.session?.flavor ?? (target.dialect === 'postgres' ? 'postgres' : 'mysql');
      const describe = target.dialect === 'postgres' ? describePostgresError : describeMysqlError;
      throw jobErrorFor(describe(err), {
        flavor,
        mask,
        timedOut: state.timedOut,
        timeoutSeconds: payload.queryTimeoutSeconds ?? null,
      });
    } finally {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
    }
  };
}

/** Chronos errors raised along the way, with the password masked in their message. */
function maskError(err: ChronosError, mask: (text: string) => string): ChronosError {
  const masked = mask(err.message);
  if (masked !== err.message) err.message = masked;
  return err;
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
