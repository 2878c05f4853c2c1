import { connect as netConnect } from 'node:net';
import pg from 'pg';
import { settleWithin } from '@chronos/core';
import {
  tlsOptions,
  type BeginOptions,
  type ConnectOptions,
  type DatabaseField,
  type DatabaseSession,
  type DriverFailure,
  type StatementResult,
} from './session.ts';

/** pg's protocol connection, as far as the capped query drives it (not in @types/pg). */
interface PgConnection {
  sync(): void;
  stream: { destroy(): void };
}

/** The parts of pg.Query that @types/pg leaves out. */
interface PgQueryInternals {
  handleCommandComplete(msg: unknown, connection: PgConnection): void;
  handleEmptyQuery(connection: PgConnection): void;
  handleError(err: Error, connection: PgConnection): void;
}
const queryInternals = pg.Query.prototype as unknown as PgQueryInternals;

/**
 * A statement run over the extended query protocol (which refuses several statements in one text)
 * with Execute limited to `limit` rows: when the portal suspends, the remaining rows are never
 * produced or sent, and the query ends there (pg.Query would fetch page after page).
 */
class CappedQuery extends pg.Query {
  /** Whether Sync went out (pg.Query only sends it on CommandComplete when `rows` is set). */
  private synced = false;
  suspended = false;

  constructor(text: string, values: readonly unknown[], limit: number) {
    super({ text, values: [...values], rows: limit, queryMode: 'extended' } as pg.QueryConfig);
  }

  handlePortalSuspended(connection: PgConnection): void {
    this.suspended = true;
    this.synced = true;
    connection.sync();
  }

  handleCommandComplete(msg: unknown, connection: PgConnection): void {
    this.synced = true;
    queryInternals.handleCommandComplete.call(this, msg, connection);
  }

  handleEmptyQuery(connection: PgConnection): void {
    this.synced = true;
    queryInternals.handleEmptyQuery.call(this, connection);
  }

  handleError(err: Error, connection: PgConnection): void {
    // After an ErrorResponse the server skips to the next Sync, which pg.Query with `rows`
    // never sends: without this the connection would hang.
    if (!this.synced && err instanceof pg.DatabaseError) {
      this.synced = true;
      connection.sync();
    }
    queryInternals.handleError.call(this, err, connection);
  }
}

/** Built-in roles that read or write the server's files or run programs on its host. */
const SERVER_ACCESS_ROLES = ['pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'];

/**
 * The roles the session's login (or the role it starts as) is, or may SET ROLE to, that are
 * superusers, may create roles (which can grant the server-access roles before PostgreSQL 16), or
 * are a server-access role.
 */
const PRIVILEGED_ROLES_SQL = `
  select r.rolname, r.rolsuper, r.rolcreaterole
  from pg_catalog.pg_roles r
  where (pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')
         or pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'))
    and (r.rolsuper or r.rolcreaterole or r.rolname = any($1::text[]))
  order by r.rolsuper desc, r.rolname
  limit 20`;

const TYPE_NAMES = new Map<number, string>(
  Object.entries(pg.types.builtins).map(([name, oid]) => [oid as number, name.toLowerCase()]),
);
const WRITE_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'COPY']);

/** 16-byte CancelRequest (protocol 1234.5678) for the backend with `pid` and `secret`. */
function cancelRequest(pid: number, secret: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeInt32BE(16, 0);
  buf.writeInt32BE(80877102, 4);
  buf.writeInt32BE(pid, 8);
  buf.writeInt32BE(secret, 12);
  return buf;
}

/** Opens a PostgreSQL session to the checked address. Rejects with the driver's error. */
export async function connectPostgres(options: ConnectOptions): Promise<DatabaseSession> {
  const { target, address } = options;
  const tls = tlsOptions(target);
  const client = new pg.Client({
    // The checked address is dialled; the name stays the TLS server name.
    host: address,
    port: target.port,
    user: target.user,
    // A function, so that an empty password is not replaced by the worker's PGPASSWORD or ~/.pgpass.
    password: () => target.password,
    // libpq's default; pg would otherwise fall back to the worker's PGDATABASE.
    database: target.database || target.user,
    ssl: tls ?? false,
    connectionTimeoutMillis: options.connectTimeoutMs,
    application_name: options.applicationName,
  });
  // A dead socket is reported here as well as to the running query; without a listener it would
  // be an uncaught 'error' event.
  client.on('error', () => {});
  await client.connect();
  const backend = client as unknown as { processID: number | null; secretKey: number | null };
  const connection = (client as unknown as { connection: PgConnection }).connection;

  const simple = async (sql: string) => {
    await client.query(sql);
  };

  return {
    flavor: 'postgres',
    serverVersion: null,

    async superuserPowers() {
      const { rows } = await client.query<{ rolname: string; rolsuper: boolean; rolcreaterole: boolean }>(
        PRIVILEGED_ROLES_SQL,
        [SERVER_ACCESS_ROLES],
      );
      return rows.map((r) =>
        r.rolsuper
          ? `superuser role ${JSON.stringify(r.rolname)}`
          : r.rolcreaterole
            ? `role ${JSON.stringify(r.rolname)} has CREATEROLE`
            : `member of ${r.rolname}`,
      );
    },

    async begin({ readOnly, isolation, statementTimeoutMs }: BeginOptions) {
      // isolation comes from a fixed enum; the timeout is an integer.
      await simple(
        `BEGIN${isolation ? ` ISOLATION LEVEL ${isolation}` : ''} ${readOnly ? 'READ ONLY' : 'READ WRITE'}`,
      );
      if (statementTimeoutMs !== null)
        await simple(`SET LOCAL statement_timeout = ${Math.ceil(statementTimeoutMs)}`);
    },

    run(sql, values, maxRows) {
      return new Promise<StatementResult>((resolve, reject) => {
        const rows: Record<string, unknown>[] = [];
        const query = new CappedQuery(sql, values, maxRows + 1);
        query.on('row', (row: Record<string, unknown>) => {
          if (rows.length < maxRows) rows.push(row);
        });
        query.on('error', reject);
        query.on('end', (result) => {
          const r = result as unknown as pg.QueryResult;
          const fields: DatabaseField[] = (r.fields ?? []).map((f) => ({
            name: f.name,
            dataType: TYPE_NAMES.get(f.dataTypeID) ?? `oid:${f.dataTypeID}`,
          }));
          const command = r.command || null;
          resolve({
            rows,
            fields,
            truncated: query.suspended,
            rowsAffected: command && WRITE_COMMANDS.has(command) ? (r.rowCount ?? null) : null,
            command,
            extraResultSets: 0,
          });
        });
        client.query(query);
      });
    },

    commit: () => simple('COMMIT'),
    rollback: () => simple('ROLLBACK'),

    cancel(timeoutMs) {
      const { processID, secretKey } = backend;
      if (processID === null || secretKey === null) return Promise.resolve();
      // The protocol's CancelRequest needs no login, so it works even when the server is out of
      // connection slots. It goes to the same checked address.
      const sent = new Promise<void>((resolve) => {
        const socket = netConnect({ host: address, port: target.port }, () => {
          socket.end(cancelRequest(processID, secretKey));
        });
        socket.setTimeout(timeoutMs, () => socket.destroy());
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
      });
      return settleWithin(sent, timeoutMs, undefined);
    },

    async close(timeoutMs) {
      const ended = await settleWithin(
        client.end().then(() => true),
        timeoutMs,
        false,
      );
      if (!ended) connection.stream.destroy();
    },

    destroy() {
      connection.stream.destroy();
    },
  };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'ECONNABORTED',
  'EAI_AGAIN',
]);
const NETWORK_MESSAGES =
  /Connection terminated|timeout expired|connection error and is not queryable|Client was closed|Connection ended/i;

export function describePostgresError(err: unknown): DriverFailure {
  if (err instanceof pg.DatabaseError) {
    const parts = [err.message, err.detail && `DETAIL: ${err.detail}`, err.hint && `HINT: ${err.hint}`];
    return {
      kind: 'sql',
      sqlState: err.code ?? 'XX000',
      errno: null,
      errorName: null,
      message: parts.filter(Boolean).join(' '),
    };
  }
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if ((typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) || NETWORK_MESSAGES.test(message)) {
    return { kind: 'network', message };
  }
  return { kind: 'other', message };
}
